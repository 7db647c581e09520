"""MuJoCo Warp engine vs the MuJoCo CPU engine: same model, same start states, same actions.

Runs on Warp's CPU device in CI (a few envs: ~15 s with a warm Warp kernel cache, plus 30-110 s of
kernel compilation on a cold one: cache ``~/.cache/warp`` or ``$WARP_CACHE_PATH`` in CI) and on CUDA
with ``-m gpu``. One rollout of 90 control steps (720 physics steps at 240 Hz) of six
envs in three scenarios is simulated once per device and shared by the tests:

- envs 0-1 *in the air* (root at 50 m, T-pose, legs apart: no ground and no self contact for 3 s), PD
  tracking a sinusoid of 0.3 / 0.2 rad amplitude on every DoF (joint limits engage);
- envs 2-3 *standing* on the ground (MimicKit's init pose), arms tracking a sinusoid: sustained foot
  contact, a stable equilibrium;
- envs 4-5 *falling* from random poses and velocities 1 m up with random-phase targets: impacts and
  rolling on the ground, i.e. chaotic, compared over the first second and then only statistically.

Why the tolerances are what they are. MJWarp computes in float32 (eps 1.2e-7), MuJoCo in float64; both
run the same Newton solver, implicitfast integrator and pyramidal cone, but MJWarp stops its solver at
float32 resolution and orders its contacts and atomic sums differently. In smooth, PD-stabilised motion
those rounding differences do not grow: over the full 3 s, joint angles agreed to 5e-6 rad and body
positions relative to the root to 8e-6 m (the root itself, at 6-50 m altitude, is stored to a float32 ulp
of ~4e-6 m; 720 steps of rounding in its integration bound its drift by ~3e-3 m; measured 1.2e-4 m).
Contact onset is a discontinuity: a contact that activates one physics step earlier in one engine changes
the trajectory by O(v * dt). Env 5 starts with a self contact and two hinges past their limits: its left
ankle angle differs by up to 2.8e-3 rad (1.0e-2 with CPU mujoco 4.0.1) for a few steps and then re-converges
under PD. So the falling
envs are compared tightly only over the first second and afterwards only in what survives chaos (both lie
on the ground, root heights within 5 cm; measured 7 mm). Thresholds are ~10x (smooth motion) to ~4x
(contact events) the deviations measured on Warp's CPU device, quoted at each assert.
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import pytest
import torch
from engine_testlib import HUMANOID_INIT_POSE, pose_state, random_state, step

from mimictools.engines.base import EngineSpec, SimState, set_state
from mimictools.math.rotations import quat_diff_angle, quat_rotate_inv

mjw = pytest.importorskip(
    "mujoco_warp", reason="mujoco-warp not installed (pip install 'mimictools[gpu]', Python >= 3.11)"
)

NUM_STEPS = 90  # control steps at 30 Hz = 3 s = 720 physics steps
AIR, STAND, FALL = [0, 1], [2, 3], [4, 5]
FALL_COMPARE_STEPS = 30  # first second of the falling envs: impact included, before chaos takes over

DEVICES = [
    pytest.param("cpu", id="warp-cpu"),
    pytest.param("cuda", marks=pytest.mark.gpu, id="cuda"),
]


def _start_state(char) -> SimState:
    names = char.dof_names
    air = pose_state([0.0] * char.frame_width, 2)  # T-pose: hands away from the thighs
    air.root_pos[:, 2] = 50.0
    air.dof_pos[:, names.index("right_hip_x")] = -0.3  # legs apart: feet do not touch each other
    air.dof_pos[:, names.index("left_hip_x")] = 0.3
    stand = pose_state(HUMANOID_INIT_POSE, 2)
    fall = random_state(char, 2, seed=7, height=1.0)
    return SimState(*(torch.cat(parts) for parts in zip(air.fields(), stand.fields(), fall.fields())))


def _targets(char, base: torch.Tensor, num_steps: int) -> torch.Tensor:
    """(num_steps, 6, num_dofs) float32 PD targets: base + amp * sin(2 pi t + phase)."""
    n, nd = base.shape
    g = torch.Generator().manual_seed(0)
    phase = 2 * math.pi * torch.rand(n, nd, generator=g, dtype=torch.float64)
    amp = torch.zeros(n, nd, dtype=torch.float64)
    amp[0], amp[1], amp[4], amp[5] = 0.3, 0.2, 0.5, 0.5
    arms = [i for i, name in enumerate(char.dof_names) if "shoulder" in name or "elbow" in name]
    amp[2, arms], amp[3, arms] = 0.3, 0.5
    t = torch.arange(num_steps, dtype=torch.float64)[:, None, None] / 30.0
    return (base + amp * torch.sin(2 * math.pi * t + phase)).float()


@pytest.fixture(scope="module", params=DEVICES)
def rollout(request, humanoid) -> Dict[str, np.ndarray]:
    """Both engines through the same 90 steps; per step and env: the deviations and a few raw values."""
    from mimictools.engines.mjwarp import MjWarpEngine
    from mimictools.engines.mujoco import MuJoCoEngine

    device = request.param
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    start = _start_state(humanoid)
    n = start.root_pos.shape[0]
    warp = MjWarpEngine(humanoid, EngineSpec(num_envs=n, device=device))
    cpu = MuJoCoEngine(humanoid, EngineSpec(num_envs=n, num_threads=1))
    targets = _targets(humanoid, start.dof_pos, NUM_STEPS)
    rec: Dict[str, list] = {
        k: []
        for k in ("dof", "dof_vel", "root_pos", "root_rot", "rel_pos", "cf", "cf_mag", "root_z_w", "root_z_c")
    }
    try:
        for eng in (warp, cpu):
            set_state(eng, None, start)
        for k in range(NUM_STEPS):
            for eng in (warp, cpu):
                step(eng, targets[k].to(eng.device))
            sw, sc = warp.get_state(), cpu.get_state()
            sw = SimState(*(t.double().cpu() for t in sw.fields()))
            sc = SimState(*(t.double().cpu() for t in sc.fields()))
            pw, pc = warp.body_pos().double().cpu(), cpu.body_pos().double().cpu()
            # body positions in the root frame: the internal motion, free of the root's float32 altitude
            rel_w = quat_rotate_inv(sw.root_rot[:, None], pw - sw.root_pos[:, None])
            rel_c = quat_rotate_inv(sc.root_rot[:, None], pc - sc.root_pos[:, None])
            cw, cc = warp.contact_forces().double().cpu(), cpu.contact_forces().double().cpu()
            rec["dof"].append((sw.dof_pos - sc.dof_pos).abs().amax(-1))
            rec["dof_vel"].append((sw.dof_vel - sc.dof_vel).abs().amax(-1))
            rec["root_pos"].append((sw.root_pos - sc.root_pos).norm(dim=-1))
            rec["root_rot"].append(quat_diff_angle(sw.root_rot, sc.root_rot).abs())
            rec["rel_pos"].append((rel_w - rel_c).norm(dim=-1).amax(-1))
            rec["cf"].append((cw - cc).norm(dim=-1).amax(-1))
            rec["cf_mag"].append(cc.norm(dim=-1).amax(-1))
            rec["root_z_w"].append(sw.root_pos[:, 2])
            rec["root_z_c"].append(sc.root_pos[:, 2])
        out = {k: torch.stack(v).numpy() for k, v in rec.items()}  # (num_steps, n)
        out["overflow"] = np.asarray(warp.overflow_report()["overflow_bits"])
    finally:
        warp.close()
        cpu.close()
    return out


def _max(r: Dict[str, np.ndarray], key: str, envs, steps: int = NUM_STEPS) -> float:
    return float(r[key][:steps, envs].max())


def test_no_capacity_overflow(rollout):
    assert int(rollout["overflow"]) == 0


def test_in_the_air_pd_tracking_matches_cpu(rollout):
    r = rollout
    assert _max(r, "cf_mag", AIR) == 0.0  # really in the air
    assert _max(r, "dof", AIR) < 1e-4  # rad; measured 1.3e-6 on Warp's CPU device
    assert _max(r, "dof_vel", AIR) < 2e-3  # rad/s; measured 6.4e-5 (velocities up to ~3 rad/s)
    assert _max(r, "rel_pos", AIR) < 1e-4  # m; measured 7.5e-6
    assert _max(r, "root_rot", AIR) < 2e-3  # rad; measured 1.5e-4 (free-floating: no restoring torque)
    assert _max(r, "root_pos", AIR) < 3e-3  # m; bound: float32 ulp at 50 m x 720 steps; measured 7e-5


def test_standing_with_contacts_matches_cpu(rollout):
    r = rollout
    weight_n = 9.81 * 50.0  # the humanoid weighs 50.0 kg; a foot carries about half
    assert (r["cf_mag"][:, STAND] > 0.2 * weight_n).all()  # feet on the ground the whole time
    assert (r["root_z_c"][:, STAND] > 0.6).all()  # still standing in the reference
    assert _max(r, "dof", STAND) < 1e-4  # rad; measured 4.8e-6
    assert _max(r, "rel_pos", STAND) < 1e-4  # m; measured 3.5e-6
    assert _max(r, "root_pos", STAND) < 2e-3  # m; measured 1.2e-4
    assert _max(r, "cf", STAND) < 1.0  # N, per body, of 210-440 N per foot; measured 0.063


def test_falling_matches_cpu_until_chaos(rollout):
    r = rollout
    n = FALL_COMPARE_STEPS
    assert (r["cf_mag"][:n, FALL].max(axis=0) > 0.0).all()  # both falling envs hit the ground within 1 s
    # rad; measured 2.8e-3 with CPU mujoco 4.0.0 and 1.0e-2 with 4.0.1 (mujoco-warp 4.0.0 both times): env 5's
    # ankle, where a contact activates a physics step apart (module docstring). A wrong joint convention or
    # DoF order is off by tenths of a radian on every env, far above this bound.
    assert _max(r, "dof", FALL, n) < 3e-2
    assert _max(r, "rel_pos", FALL, n) < 1e-3  # m; measured 3.6e-5 (mujoco 4.0.0), 5.9e-4 (4.0.1)
    assert _max(r, "root_pos", FALL, n) < 1e-3  # m; measured 4.6e-5 (mujoco 4.0.0), 2.4e-4 (4.0.1)
    # impact forces peak at ~3.5e3 N; the same impact a physics step apart would differ by ~1e3 N
    assert _max(r, "cf", FALL, n) < 20.0  # N; measured 0.85 (mujoco 4.0.0), 4.2 (4.0.1)
    # after 3 s: both lie on the ground, root heights within 5 cm (measured 7 mm)
    zw, zc = r["root_z_w"][-1, FALL], r["root_z_c"][-1, FALL]
    assert (zw < 0.6).all() and (zc < 0.6).all(), (zw, zc)
    assert np.abs(zw - zc).max() < 0.05, (zw, zc)


@pytest.mark.parametrize("device", DEVICES)
def test_fk_check_against_mjwarp_engine(device, humanoid, shared_dir):
    """``mimic fk-check --engine mjwarp``'s path: set_state -> body poses == our FK (clip + random poses)."""
    from mimictools.app.fkcheck import EngineReference, check_frames, random_frames
    from mimictools.engines.mjwarp import MjWarpEngine
    from mimictools.motion import load_motion

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    eng = MjWarpEngine(humanoid, EngineSpec(num_envs=64, device=device, ground=False))
    try:
        ref = EngineReference(eng, "mjwarp")
        clip = load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_spinkick.pkl")
        for frames in (clip.frames, random_frames(humanoid, 100, seed=3)):
            res = check_frames(humanoid, frames, ref)
            # float32 poses of a 5-level chain ~1-2 m from the origin: ~1e-6 m rounding; measured 7e-4 mm, 7e-5 deg
            assert res.max_pos_err_mm < 0.01, res.max_pos_err_mm
            assert res.max_rot_err_deg < 1e-3, res.max_rot_err_deg
    finally:
        eng.close()


@pytest.mark.gpu
def test_cuda_step_has_no_host_device_copies(humanoid):
    """Profile 10 control steps (set_targets + graph replay + reading state): no memcpy HtoD/DtoH."""
    from torch.profiler import ProfilerActivity, profile

    from mimictools.engines.mjwarp import MjWarpEngine

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    n = 256
    eng = MjWarpEngine(humanoid, EngineSpec(num_envs=n, device="cuda"))
    try:
        start = pose_state(HUMANOID_INIT_POSE, n)
        set_state(eng, None, start)
        targets = start.dof_pos.float().cuda()
        ids = torch.arange(0, n, 7, device="cuda")
        reset = SimState(*(t[: ids.numel()].cuda() for t in start.fields()))
        for _ in range(3):
            step(eng, targets)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                step(eng, targets)
                _ = eng.get_state(), eng.body_pos().sum(), eng.contact_forces().sum()
                set_state(eng, ids, reset)
            torch.cuda.synchronize()
        names = [e.name for e in prof.events()]
        copies = [x for x in names if "memcpy" in x.lower() and ("htod" in x.lower() or "dtoh" in x.lower())]
        assert not copies, sorted(set(copies))
    finally:
        eng.close()


def test_fk_check_cli_with_mjwarp_engine():
    """``mimic fk-check --engine mjwarp`` on random poses (bundled humanoid): passes, JSON names the reference."""
    import json

    from typer.testing import CliRunner

    from mimictools.cli.app import app

    result = CliRunner().invoke(app, ["fk-check", "--engine", "mjwarp", "--random", "64", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "MuJoCo Warp" in doc["reference"] and doc["summary"]["passed"]
    assert doc["summary"]["max_pos_err_mm"] < 0.01
