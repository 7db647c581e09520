"""The one step path (`mimictools.rl.step`), which GPU training captures as CUDA graphs.

CUDA graphs need a GPU; what they replay is the same Python code, which runs eagerly here: the blended
(GPU) reset must equal the indexed (CPU) one, the step must equal the env's own step, and nothing in the
captured halves may sync with the host. Uses the bundled demo.
"""

from __future__ import annotations

import pytest
import torch

from mimictools.app.run import build_env, resolve_run
from mimictools.engines.base import SimState
from mimictools.rl.action_scale import ActionScale
from mimictools.rl.step import PolicyStep
from mimictools.tasks.env_api import DoneFlag

pytest.importorskip("mujoco")

ENGINES = ["mujoco", "mjwarp"]


def _env(engine: str, n: int):
    if engine == "mjwarp":
        pytest.importorskip("mujoco_warp", reason="mjwarp needs the 'gpu' extra (mujoco-warp, warp-lang)")
    cfg, spec = resolve_run(engine=engine, num_envs=n, device="cpu", num_threads=1)
    return cfg, build_env(cfg, spec)


def _state_rows(env) -> SimState:
    return env.engine.get_state()


IDENTITY = ActionScale(torch.tensor(-1.0), torch.tensor(1.0))  # env actions = policy outputs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("given", [True, False], ids=["given-clips", "drawn-clips"])
def test_blended_reset_equals_indexed_reset(engine, given):
    """``reset_where`` written by blend (GPU) and by index (CPU): same state, obs and draws."""
    n = 6
    _, a = _env(engine, n)
    _, b = _env(engine, n)
    a.reset_by_blend, b.reset_by_blend = False, True
    try:
        lib = a.motion_lib
        ids0 = torch.zeros(n, dtype=torch.long)
        t0 = torch.linspace(0.0, 0.5 * float(lib.motion_lengths[0]), n, dtype=torch.float64)
        a.reset(None, motion_ids=ids0, start_time_s=t0)
        obs_b = b.reset(None, motion_ids=ids0, start_time_s=t0)
        act = torch.zeros(n, a.action_dim)
        for _ in range(3):  # move away from the start so that reset and kept rows differ
            obs_a, *_ = a.step(act)
            obs_b, *_ = b.step(act)
        torch.testing.assert_close(obs_a, obs_b)

        mask = torch.tensor([True, False, True, False, False, True])
        kw = {}
        if given:
            new_t = torch.full((n,), 0.25 * float(lib.motion_lengths[0]), dtype=torch.float64)
            kw = dict(
                motion_ids=torch.zeros(n, dtype=torch.long), start_time_s=new_t + 0.01 * torch.arange(n)
            )
        torch.manual_seed(7)
        got_a = a.reset_where(mask, obs_a, **kw)
        torch.manual_seed(7)
        got_b = b.reset_where(mask, obs_b, **kw)

        torch.testing.assert_close(got_b, got_a)
        assert torch.equal(got_a[~mask], obs_a[~mask])  # untouched rows
        for x, y in zip(_state_rows(a).fields(), _state_rows(b).fields()):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
        for name in ("timestep", "time_s", "motion_ids", "motion_time_offset"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name))
        for name in ("root_pos", "root_rot", "joint_rot", "body_pos"):
            torch.testing.assert_close(getattr(a.ref_state, name), getattr(b.ref_state, name))
        # and the next step from there is the same too
        obs_a, rew_a, done_a, _ = a.step(act)
        obs_b, rew_b, done_b, _ = b.step(act)
        torch.testing.assert_close(obs_a, obs_b, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(rew_a, rew_b, rtol=1e-4, atol=1e-5)
        assert torch.equal(done_a, done_b)
    finally:
        a.close()
        b.close()


def test_reset_where_draws_clips_by_weight():
    _, env = _env("mujoco", 4)
    try:
        lib = env.motion_lib
        u = torch.tensor([0.0, 0.3, 0.999999], dtype=torch.float64)
        ids = lib.motion_ids_from_uniform(u)
        assert ids.dtype == torch.long and (ids >= 0).all() and (ids < lib.num_motions).all()
        # an all-False mask changes nothing
        obs = env.reset()
        before = env.engine.get_state()
        out = env.reset_where(torch.zeros(4, dtype=torch.bool), obs)
        assert torch.equal(out, obs)
        for x, y in zip(before.fields(), env.engine.get_state().fields()):
            assert torch.equal(x, y)
    finally:
        env.close()


def test_motion_ids_from_uniform_follows_the_weights(tmp_path):
    from mimictools.motion.library import MotionLib
    from mimictools.paths import bundled_data_dir

    clips = bundled_data_dir() / "motions"
    data = tmp_path / "set.yaml"
    data.write_text(
        "motions:\n"
        f"  - file: {clips / 'demo_squat.pkl'}\n    weight: 3.0\n"
        f"  - file: {clips / 'demo_wave.pkl'}\n    weight: 0.0\n"
        f"  - file: {clips / 'demo_wave.pkl'}\n    weight: 1.0\n",
        encoding="utf-8",
    )
    lib = MotionLib.from_path(data)
    u = torch.rand(40000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    counts = torch.bincount(lib.motion_ids_from_uniform(u), minlength=3).double() / u.numel()
    assert counts[1] == 0.0  # a zero-weight clip is never drawn
    torch.testing.assert_close(
        counts, torch.tensor([0.75, 0.0, 0.25], dtype=torch.float64), atol=0.01, rtol=0
    )


def test_policy_step_equals_env_step_then_reset():
    n = 4
    cfg, a = _env("mujoco", n)
    _, b = _env("mujoco", n)
    try:
        from mimictools.rl.networks import build_actor_critic

        torch.manual_seed(0)
        actor, _ = build_actor_critic(cfg.agent.model, a.obs_dim, a.action_dim)
        ids0 = torch.zeros(n, dtype=torch.long)
        t0 = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
        obs = a.reset(None, motion_ids=ids0, start_time_s=t0)
        g = PolicyStep(b, actor, lambda x: x, IDENTITY, deterministic=True, capture=False)
        g.obs.copy_(b.reset(None, motion_ids=ids0, start_time_s=t0))
        g.prepare()  # no-op on the CPU
        assert not g.captured and g.capture_error is None
        for _ in range(4):
            with torch.no_grad():
                mean = actor(obs)
            next_a, rew_a, done_a, _ = a.step(mean)
            norm_a, logp, next_b, rew_b, done_b, info = g.step()
            torch.testing.assert_close(norm_a, mean)
            assert torch.isfinite(logp).all() and "Body_Pos_Err" in info
            torch.testing.assert_close(next_b, next_a)
            torch.testing.assert_close(rew_b, rew_a)
            assert torch.equal(done_b, done_a)
            if (done_a != int(DoneFlag.NULL)).any():
                break  # resets draw differently from here on
            torch.testing.assert_close(g.obs, next_a)
            obs = next_a
    finally:
        a.close()
        b.close()


def test_runner_trains_on_the_demo_env(tmp_path):
    from mimictools.rl.runner import Runner

    cfg, env = _env("mujoco", 4)
    try:
        agent = cfg.agent.__class__(**{**cfg.agent.__dict__, "steps_per_iter": 8, "test_episodes": 4})
        runner = Runner(env, agent, tmp_path, seed=0, tensorboard=False)
        assert not runner.capture  # CUDA graphs only on a GPU; the same calls run here
        with pytest.raises(ValueError, match="CUDA"):
            Runner(env, agent, tmp_path / "x", tensorboard=False, capture=True)
        assert env.tracking_errors_in_training is False  # its rollouts discard info
        result = runner.train(max_samples=3 * 8 * 4)
        assert result.samples >= 96 and result.last_test is not None
        assert result.last_test.episodes >= 4
        assert result.last_test.info["Body_Pos_Err"] > 0  # test episodes still compute the errors
        assert runner.capture_errors == []
        lines = (tmp_path / "log.txt").read_text().splitlines()
        assert len(lines) >= 2 and "Test_Return" in lines[0]
    finally:
        env.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_replay_equals_eager_steps():
    """Captured replays compute what the eager code computes: two envs from the same state, one
    stepped through graphs, one eagerly, deterministic policy, no early resets (clamp at clip end)."""
    pytest.importorskip("mujoco_warp", reason="mjwarp needs the 'gpu' extra")
    from mimictools.rl.networks import build_actor_critic

    n = 64
    cfg, spec = resolve_run(engine="mjwarp", num_envs=n, device="cuda", num_threads=1)
    a, b = build_env(cfg, spec), build_env(cfg, spec)
    try:
        torch.manual_seed(0)
        actor, _ = build_actor_critic(cfg.agent.model, a.obs_dim, a.action_dim)
        actor = actor.cuda()
        ids0 = torch.zeros(n, dtype=torch.long, device="cuda")
        t0 = torch.linspace(0.0, 1.0, n, dtype=torch.float64, device="cuda")
        scale = ActionScale(torch.tensor(-1.0), torch.tensor(1.0), device="cuda")
        ga = PolicyStep(a, actor, lambda x: x, scale, deterministic=True, capture=True)
        gb = PolicyStep(b, actor, lambda x: x, scale, deterministic=True, capture=False)
        ga.obs.copy_(a.reset(None, motion_ids=ids0, start_time_s=t0))
        ga.prepare()  # two warm-up steps happen here: the eager twin makes them too
        assert ga.captured, ga.capture_error
        gb.obs.copy_(b.reset(None, motion_ids=ids0, start_time_s=t0))
        for _ in range(2):
            gb.step()
        # MJWarp's contact force sums use float atomics (order differs run to run): after two steps one
        # velocity entry of 29,696 once differed by 1.7e-3 (2026-11-24, H100); 5e-3 still catches a wrong step
        torch.testing.assert_close(ga.obs, gb.obs, rtol=1e-3, atol=5e-3)
        for _ in range(20):
            _, _, next_a, rew_a, done_a, info_a = ga.step()
            _, _, next_b, rew_b, done_b, info_b = gb.step()
            if (done_a != int(DoneFlag.NULL)).any() or (done_b != int(DoneFlag.NULL)).any():
                break  # resets draw clips/times independently from here
            # MJWarp's contact atomics are not bitwise deterministic: close, not equal
            torch.testing.assert_close(rew_a, rew_b, rtol=2e-3, atol=2e-3)
            torch.testing.assert_close(info_a["Body_Pos_Err"], info_b["Body_Pos_Err"], rtol=0, atol=2e-3)
    finally:
        a.close()
        b.close()


def test_the_captured_step_makes_no_host_transfers_or_syncs(host_sync_spy):
    """What a CUDA graph cannot hold, caught on the CPU: tensors made from host data (a host->device
    copy on a GPU), explicit device moves, ``nonzero`` and ``.item()`` (host syncs). Checked on every op
    of the two captured halves with the MJWarp engine (Warp's CPU device) and MimicKit-style obs."""
    from mimictools.rl.networks import build_actor_critic

    cfg, env = _env("mjwarp", 4)
    try:
        actor, _ = build_actor_critic(cfg.agent.model, env.obs_dim, env.action_dim)
        env.reset_by_blend = True  # the GPU path (the CPU path indexes the reset envs: one nonzero)
        g = PolicyStep(env, actor, lambda x: x, IDENTITY, capture=False)
        g.obs.copy_(env.reset())
        g.step()  # first calls fill per-device caches (allowed: the warm-up does the same)
        done = torch.ones(env.num_envs, dtype=torch.int32)  # force the reset path too
        with host_sync_spy() as spy:
            g._act()
            env.step_physics()
            g._post()
            env.reset_where(done != 0, g.obs)
        assert spy.bad == [], f"ops that a CUDA graph cannot capture: {sorted(set(spy.bad))}"
    finally:
        env.close()


def test_a_diverged_policy_is_reported_as_divergence_not_as_bad_engine_input(tmp_path):
    """NaN actions from a diverged policy reach the env as 0 (never as an engine "bad input" error, exit 2);
    the runner reports them from its own record: TrainingDivergedError (exit 1) naming the actions."""
    from mimictools.errors import TrainingDivergedError
    from mimictools.rl.runner import Runner

    cfg, env = _env("mujoco", 4)
    try:
        agent = cfg.agent.__class__(**{**cfg.agent.__dict__, "steps_per_iter": 4})
        runner = Runner(env, agent, tmp_path, seed=0, tensorboard=False)
        with torch.no_grad():
            for p in runner.actor.parameters():
                p.fill_(float("nan"))
        with pytest.raises(TrainingDivergedError, match="actions") as exc:
            runner.iterate()
        assert exc.value.exit_code == 1
    finally:
        env.close()
