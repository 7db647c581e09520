"""Evaluation episodes on the real DeepMimic env (bundled demo, CPU MuJoCo)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mimictools.app import run as runlib
from mimictools.config.load import apply_overrides
from mimictools.errors import MimicToolsError
from mimictools.eval.metrics import compute_frame_errors
from mimictools.eval.rollout import EpisodeSpec, plan_episodes, run_episodes
from mimictools.tasks.tracking import TRACKING_ERROR_KEYS


def test_plan_episodes_cycles_clips_and_seeds_starts():
    specs = plan_episodes(5, [2.0, 3.0])
    assert [s.motion_id for s in specs] == [0, 1, 0, 1, 0]
    assert all(s.start_time_s == 0.0 for s in specs)
    a = plan_episodes(6, [2.0, 3.0], rand_start=True, seed=7)
    b = plan_episodes(6, [2.0, 3.0], rand_start=True, seed=7)
    assert a == b
    assert all(0.0 <= s.start_time_s <= (2.0, 3.0)[s.motion_id] for s in a)
    assert len({s.start_time_s for s in a}) == 6
    with pytest.raises(MimicToolsError):
        plan_episodes(0, [1.0])


class _InfoRecorder:
    """Wraps the env to keep the tracking errors the env itself reported at each step."""

    def __init__(self, env):
        self._env = env
        self.infos = []

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, actions):
        out = self._env.step(actions)
        self.infos.append({k: v.clone() for k, v in out[3].items()})
        return out


@pytest.fixture(scope="module")
def demo_env():
    cfg, spec = runlib.resolve_run(num_envs=2, num_threads=1)
    cfg = apply_overrides(cfg, ["env.episode_length=0.5"])
    env = runlib.build_env(cfg, spec)
    yield env
    env.close()


def test_episodes_record_the_env_frames(demo_env):
    """Reference-action policy (PD targets = the reference pose): the recorded frames reproduce the
    env's own tracking errors, episodes end at episode_length (0.5 s = 15 steps) or by failure, and
    the same plan run twice gives the same numbers (deterministic)."""
    env = _InfoRecorder(demo_env)

    def ref_policy(obs):
        f = env.motion_lib.calc_motion_frame(env.motion_ids, env.motion_time_s + env.control_dt)
        return f.dof_pos.to(torch.float32)

    specs = [EpisodeSpec(0, 0.0), EpisodeSpec(0, 0.7), EpisodeSpec(0, 1.3)]
    eps = run_episodes(env, ref_policy, specs)
    assert [e.spec for e in eps] == specs
    char = demo_env.character
    for e in eps:
        assert e.end in ("TIME", "FAIL")
        assert e.num_frames == 15 or e.end == "FAIL"
        np.testing.assert_allclose(e.time_s, np.arange(1, e.num_frames + 1) * demo_env.control_dt, atol=1e-9)
        np.testing.assert_allclose(e.motion_time_s, e.spec.start_time_s + e.time_s, atol=1e-6)
        assert np.isfinite(e.sim.body_pos).all() and np.isfinite(e.rewards).all()
    # Episode 0 ran in env 0 from the first step: its frames are the env's steps 0..T-1.
    e0 = eps[0]
    errs = compute_frame_errors(char, e0.sim.track_state(), e0.ref.track_state())
    env_errs = np.stack(
        [[env.infos[t][k][0].item() for k in TRACKING_ERROR_KEYS] for t in range(e0.num_frames)]
    )
    # same function on float32 states copied out: float32 rounding only
    np.testing.assert_allclose(errs.tracking, env_errs, rtol=1e-5, atol=1e-6)
    # tracking the reference pose keeps the body error small at first
    assert errs.body_pos_err_local_m[0].mean() < 0.05

    again = run_episodes(demo_env, ref_policy, specs[:1])
    np.testing.assert_array_equal(again[0].sim.body_pos, eps[0].sim.body_pos)
    np.testing.assert_array_equal(again[0].rewards, eps[0].rewards)


def test_zero_policy_falls_and_qpos_shapes(demo_env):
    zero = lambda obs: torch.zeros(demo_env.num_envs, demo_env.action_dim)  # noqa: E731
    (e,) = run_episodes(demo_env, zero, [EpisodeSpec(0, 0.0)])
    char = demo_env.character
    assert e.sim.qpos(char).shape == (e.num_frames, char.num_qpos)
    assert e.ref.dof_pos.shape == (e.num_frames, char.num_dofs)
    assert e.sim.body_pos.shape == (e.num_frames, char.num_bodies, 3)
