"""MotionLib: interpolation against hand-computed values, loop modes, velocities, sampling, NaN refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mimictools.errors import MotionFormatError
from mimictools.math.rotations import exp_map_to_quat, quat_conj, quat_diff_angle, quat_mul, quat_rotate
from mimictools.motion import Motion, MotionLib, load_motion

FPS = 10.0


def _toy(loop_mode: int = 0) -> Motion:
    """3 frames at 10 fps (length 0.2 s): root moves +x then +y and yaws 0.4 rad per frame; right_elbow
    (col 15) 0 -> 1 -> 1.5 rad; abdomen (cols 6-8) rotates about x by 0 -> 0.2 -> 0.6 rad."""
    f = np.zeros((3, 34), dtype=np.float32)
    f[:, 0:3] = [[0, 0, 1], [1, 0, 1], [1, 2, 1]]
    f[:, 5] = [0.0, 0.4, 0.8]
    f[:, 15] = [0.0, 1.0, 1.5]
    f[:, 6] = [0.0, 0.2, 0.6]
    return Motion(fps=FPS, loop_mode=loop_mode, frames=f, source=f"toy{loop_mode}.pkl")


def _zquat(angle: float) -> torch.Tensor:
    return torch.tensor([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


def _close_rot(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """q and -q are the same rotation: compare by angle, never elementwise."""
    return bool(quat_diff_angle(a, b).max() < tol)


def _query(lib, times, ids=None):
    t = torch.tensor(times, dtype=torch.float32)
    i = torch.zeros(len(times), dtype=torch.long) if ids is None else torch.tensor(ids)
    return lib.calc_motion_frame(i, t)


def test_interpolation_matches_hand_computed_values(humanoid):
    lib = MotionLib([_toy()], char=humanoid)
    assert lib.motion_lengths.tolist() == pytest.approx([0.2])
    f = _query(lib, [0.05, 0.15, 0.0, 0.1])
    # half-way between frames 0 and 1, and between 1 and 2
    torch.testing.assert_close(f.root_pos[0], torch.tensor([0.5, 0.0, 1.0]))
    torch.testing.assert_close(f.root_pos[1], torch.tensor([1.0, 1.0, 1.0]))
    assert _close_rot(f.root_rot[0], _zquat(0.2)) and _close_rot(f.root_rot[1], _zquat(0.6))
    assert f.dof_pos[0, 9].item() == pytest.approx(0.5) and f.dof_pos[1, 9].item() == pytest.approx(1.25)
    torch.testing.assert_close(
        f.dof_pos[0, 0:3], torch.tensor([0.1, 0.0, 0.0])
    )  # slerp of a single-axis rotation
    torch.testing.assert_close(f.dof_pos[1, 0:3], torch.tensor([0.4, 0.0, 0.0]))
    # velocities (forward differences x fps, lerped): frame0 (10,0,0), frame1 (0,20,0)
    torch.testing.assert_close(f.root_vel[0], torch.tensor([5.0, 10.0, 0.0]))
    torch.testing.assert_close(f.root_ang_vel[0], torch.tensor([0.0, 0.0, 4.0]))
    assert f.dof_vel[0, 9].item() == pytest.approx(7.5)  # elbow: 10 then 5 rad/s
    torch.testing.assert_close(f.dof_vel[0, 0:3], torch.tensor([3.0, 0.0, 0.0]))  # abdomen: 2 then 4 rad/s
    # exact frame times reproduce the frames
    torch.testing.assert_close(f.root_pos[2], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(f.root_pos[3], torch.tensor([1.0, 0.0, 1.0]))
    assert _close_rot(f.root_rot[3], _zquat(0.4))
    # the last frame repeats the previous velocity
    assert lib.frame_root_vel[2].tolist() == pytest.approx([0.0, 20.0, 0.0])
    assert lib.frame_dof_vel[2, 9].item() == pytest.approx(5.0)


def test_clamp_at_ends(humanoid):
    lib = MotionLib([_toy(loop_mode=0)], char=humanoid)
    f = _query(lib, [-1.0, 0.0, 0.2, 5.0])
    for k, expect in ((0, [0, 0, 1]), (1, [0, 0, 1]), (2, [1, 2, 1]), (3, [1, 2, 1])):
        torch.testing.assert_close(f.root_pos[k], torch.tensor(expect, dtype=torch.float32))
    assert _close_rot(f.root_rot[3], _zquat(0.8))
    assert f.dof_pos[3, 9].item() == pytest.approx(1.5)
    torch.testing.assert_close(f.body_pos[3, 0], f.root_pos[3])


def test_wrap_keeps_the_root_progressing(humanoid):
    lib = MotionLib([_toy(loop_mode=1)], char=humanoid)
    torch.testing.assert_close(lib.motion_wrap_delta[0], torch.tensor([1.0, 2.0, 0.0]))  # xy only
    f = _query(lib, [0.45, -0.15, 0.2])
    # 0.45 s = 2 cycles + 0.05 s: (0.5, 0, 1) + 2 * (1, 2, 0)
    torch.testing.assert_close(f.root_pos[0], torch.tensor([2.5, 4.0, 1.0]))
    # -0.15 s = -1 cycle + 0.05 s
    torch.testing.assert_close(f.root_pos[1], torch.tensor([-0.5, -2.0, 1.0]))
    # t = length is the start of cycle 1: first frame + one cycle == last frame's position
    torch.testing.assert_close(f.root_pos[2], torch.tensor([1.0, 2.0, 1.0]))
    # the rest of the pose wraps without offsets; bodies move with the root
    assert f.dof_pos[0, 9].item() == pytest.approx(0.5)
    torch.testing.assert_close(f.body_pos[:, 0], f.root_pos)
    assert lib.loop_mode(torch.tensor([0])).tolist() == [1]


def test_clamp_clip_has_no_wrap_offset(humanoid):
    lib = MotionLib([_toy(0), _toy(1)], char=humanoid)
    f = _query(lib, [0.45, 0.45], ids=[0, 1])
    torch.testing.assert_close(f.root_pos[0], torch.tensor([1.0, 2.0, 1.0]))
    torch.testing.assert_close(f.root_pos[1], torch.tensor([2.5, 4.0, 1.0]))


def _analytic_clip(fps: float, n: int) -> tuple:
    """Root and abdomen follow q(t) = exp(a t) exp(b t); returns (Motion, a, b)."""
    from mimictools.math.rotations import quat_to_exp_map

    t = torch.arange(n, dtype=torch.float64) / fps
    a = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    b = torch.tensor([-0.6, 0.4, 0.2], dtype=torch.float64)
    q = quat_mul(exp_map_to_quat(a * t[:, None]), exp_map_to_quat(b * t[:, None]))
    f = np.zeros((n, 34), dtype=np.float32)
    f[:, 0] = (0.5 * t).numpy()
    f[:, 2] = (1.0 + 0.1 * torch.sin(t)).numpy()
    f[:, 3:6] = quat_to_exp_map(q).numpy()
    f[:, 6:9] = quat_to_exp_map(q).numpy()
    f[:, 15] = torch.sin(2.0 * t).numpy()
    return Motion(fps=fps, loop_mode=0, frames=f, source="analytic.pkl"), a, b, t


def test_velocities_match_analytic_derivatives(humanoid):
    fps, n = 1000.0, 400
    m, a, b, t = _analytic_clip(fps, n)
    lib = MotionLib([m], char=humanoid, dtype=torch.float64)
    # forward differences approximate the derivative at t + dt/2
    tm = t[:-1] + 0.5 / fps
    qa = exp_map_to_quat(a * tm[:, None])
    qb = exp_map_to_quat(b * tm[:, None])
    world = a + quat_rotate(qa, b.expand(len(tm), 3))  # d/dt of exp(at) exp(bt), world frame
    body = quat_rotate(quat_conj(qb), a.expand(len(tm), 3)) + b  # child frame: R_B^T a + b
    # MotionLib's frames are float32 exp maps, so compare at ~1e-3 rad/s (|omega| ~ 1 rad/s)
    torch.testing.assert_close(lib.frame_root_ang_vel[:-1], world, atol=5e-3, rtol=0)
    torch.testing.assert_close(lib.frame_dof_vel[:-1, 0:3], body, atol=5e-3, rtol=0)
    torch.testing.assert_close(
        lib.frame_root_vel[:-1, 0], torch.full((n - 1,), 0.5, dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(lib.frame_root_vel[:-1, 2], 0.1 * torch.cos(tm), atol=2e-3, rtol=0)
    torch.testing.assert_close(lib.frame_dof_vel[:-1, 9], 2.0 * torch.cos(2.0 * tm), atol=5e-3, rtol=0)


def test_frame_times_reproduce_fk(mk_motions, humanoid):
    from mimictools.character.kinematics import frames_to_body_poses

    # clamp: with wrap, t = length is frame 0 of the next cycle (as in MimicKit)
    m = load_motion(mk_motions / "humanoid_spinkick.pkl").replace(loop_mode=0)
    lib = MotionLib([m], char=humanoid)
    k = torch.arange(m.num_frames)
    f = lib.calc_motion_frame(torch.zeros_like(k), k.to(torch.float32) / m.fps)
    pos, rot = frames_to_body_poses(humanoid, torch.as_tensor(m.frames))
    torch.testing.assert_close(f.body_pos, pos, atol=1e-4, rtol=0)
    assert _close_rot(f.body_rot, rot, 1e-3)
    assert _close_rot(
        exp_map_to_quat(f.dof_pos[:, :3]), exp_map_to_quat(torch.as_tensor(m.frames[:, 6:9])), 1e-3
    )
    torch.testing.assert_close(f.dof_pos[:, 9], torch.as_tensor(m.frames[:, 15]), atol=1e-4, rtol=0)


def test_sampling_by_weight_and_uniform_times(humanoid):
    lib = MotionLib([_toy(0), _toy(1), _toy(0).replace(fps=20.0)], weights=[1.0, 0.0, 3.0], char=humanoid)
    g = torch.Generator().manual_seed(0)
    ids = lib.motion_ids_from_uniform(torch.rand(40000, generator=g, dtype=torch.float64))
    counts = torch.bincount(ids, minlength=3).tolist()
    assert counts[1] == 0
    assert counts[2] / 40000 == pytest.approx(0.75, abs=0.01)
    times = lib.sample_times(ids, generator=g)
    lengths = lib.motion_length(ids)
    assert bool((times >= 0).all()) and bool((times <= lengths).all())
    assert times[ids == 2].max().item() > 0.09  # 0.1 s clip, uniform
    short = lib.sample_times(ids, truncate_time=0.05, generator=g)
    assert bool((short <= lengths - 0.05 + 1e-7).all())


def test_nonfinite_clip_refused_unless_allowed(mk_motions, humanoid):
    walk = load_motion(mk_motions / "humanoid_walk.pkl")
    with pytest.raises(MotionFormatError) as exc:
        MotionLib([walk, _toy()], char=humanoid)
    msg = str(exc.value)
    assert "humanoid_walk.pkl" in msg and "neck (columns 9-11" in msg and "frames 0-124" in msg
    assert "mimic motion convert" in msg and "--fix-nonfinite" in msg and "\n" not in msg  # the CLI repair
    lib = MotionLib([walk, _toy()], char=humanoid, allow_nonfinite=True)
    f = _query(lib, [0.5, 0.05], ids=[0, 1])
    assert torch.isnan(f.dof_pos[0, 3:6]).all() and torch.isfinite(f.dof_pos[1]).all()


def test_without_character_and_shapes(humanoid):
    lib = MotionLib([_toy()], char=None)
    f = _query(lib, [0.05])
    assert f.body_pos is None and f.body_rot is None
    assert f.dof_pos[0, 9].item() == pytest.approx(0.5)
    lib = MotionLib([(_toy(), 2.0), (_toy(1), 1.0)], char=humanoid)
    assert lib.motion_weights.tolist() == pytest.approx([2 / 3, 1 / 3])
    f = _query(lib, [0.01, 0.3], ids=[0, 1])
    assert f.body_pos.shape == (2, humanoid.num_bodies, 3) and f.body_rot.shape == (2, humanoid.num_bodies, 4)
    assert f.dof_pos.shape == f.dof_vel.shape == (2, 28) and f.root_rot.dtype == torch.float32


def test_bad_inputs(humanoid):
    with pytest.raises(MotionFormatError, match="at least one"):
        MotionLib([], char=humanoid)
    with pytest.raises(MotionFormatError, match="2 clips but 1 weights"):
        MotionLib([_toy(), _toy()], weights=[1.0], char=humanoid)
    with pytest.raises(MotionFormatError, match="not all 0"):
        MotionLib([_toy()], weights=[0.0], char=humanoid)
    narrow = Motion(fps=30.0, loop_mode=0, frames=np.zeros((3, 33), np.float32), source="narrow.pkl")
    with pytest.raises(
        MotionFormatError, match="narrow.pkl: has 33 columns, character humanoid.xml expects 34"
    ):
        MotionLib([narrow], char=humanoid)


def test_from_path_dataset(mk_dir, humanoid):
    y = mk_dir / "data" / "datasets" / "dataset_humanoid_locomotion.yaml"
    with pytest.raises(MotionFormatError, match="humanoid_walk.pkl: non-finite values"):
        MotionLib.from_path(y, char=humanoid)
    lib = MotionLib.from_path(y, char=humanoid, allow_nonfinite=True)
    assert lib.num_motions == 56
    assert lib.motion_weights[0].item() == pytest.approx(3.0 / lib_weight_sum(y))
    assert lib.frame_body_pos.shape == (int(lib.motion_num_frames.sum()), humanoid.num_bodies, 3)


def lib_weight_sum(yaml_path) -> float:
    from mimictools.motion.formats.dataset_yaml import read_dataset_yaml

    return sum(w for _, w in read_dataset_yaml(yaml_path))


@pytest.mark.gpu
def test_cuda_matches_cpu(humanoid):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    motions = [_toy(0), _toy(1), _analytic_clip(60.0, 50)[0]]
    cpu = MotionLib(motions, char=humanoid)
    gpu = MotionLib(motions, char=humanoid, device="cuda")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 3, (1000,), generator=g)
    times = torch.rand(1000, generator=g) * 3.0 - 1.0
    a = cpu.calc_motion_frame(ids, times)
    b = gpu.calc_motion_frame(ids.cuda(), times.cuda())
    for name in ("root_pos", "root_vel", "root_ang_vel", "dof_pos", "dof_vel", "body_pos"):
        torch.testing.assert_close(getattr(b, name).cpu(), getattr(a, name), atol=1e-4, rtol=1e-4)
    assert _close_rot(b.body_rot.cpu(), a.body_rot, 1e-4)
    assert (
        gpu.motion_ids_from_uniform(torch.rand(10, device="cuda", dtype=torch.float64)).device.type == "cuda"
    )
