"""inspect_motion on synthetic clips: each fault/warning is found where it was planted, and only there."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mimictools.motion import Motion
from mimictools.motion.checks import format_frames, inspect_motion

N, FPS = 60, 30.0


def _smooth(loop_mode: int = 0) -> np.ndarray:
    """A standing humanoid walking slowly along x, arms down, gentle knee motion."""
    t = np.arange(N) / FPS
    f = np.zeros((N, 34), dtype=np.float64)
    f[:, 0] = 0.5 * t
    f[:, 2] = 0.93
    f[:, 12] = 1.4  # right shoulder_x: arms down from the T-pose
    f[:, 16] = -1.4
    f[:, 23] = 0.3 + 0.2 * np.sin(2 * t)  # right knee
    f[:, 30] = 0.3 + 0.2 * np.cos(2 * t)
    return f


def _inspect(frames, humanoid, loop_mode=0):
    m = Motion(fps=FPS, loop_mode=loop_mode, frames=frames.astype(np.float32), source="synthetic.pkl")
    r = inspect_motion(m, humanoid)
    json.dumps(r, allow_nan=False)  # always valid JSON
    return r


def _kinds(items):
    return sorted({i["kind"] for i in items})


def test_clean_clip_has_no_faults(humanoid):
    r = _inspect(_smooth(), humanoid)
    assert r["faults"] == [] and _kinds(r["warnings"]) == []
    assert r["duration_s"] == pytest.approx((N - 1) / FPS)
    assert r["root"]["path_length_m"] == pytest.approx(0.5 * (N - 1) / FPS, rel=1e-5)
    assert r["root"]["height_min_m"] == pytest.approx(0.93) and r["root"][
        "heading_change_deg"
    ] == pytest.approx(0.0)
    knee = [j for j in r["joints"] if j["name"] == "right_knee"][0]
    assert knee["min"][0] == pytest.approx(0.3 + 0.2 * np.sin(2 * (N - 1) / FPS).min(), abs=0.02)
    assert knee["peak_ang_speed_rad_s"] == pytest.approx(0.4, abs=0.01)
    assert r["ground"]["frames_below"] == 0 and r["seam"] is None


def test_spike_is_a_jump_at_that_frame(humanoid):
    f = _smooth()
    f[30, 23] += 0.8  # one-frame pop of the right knee
    r = _inspect(f, humanoid)
    (jump,) = [x for x in r["faults"] if x["kind"] == "jump"]
    assert jump["joint"] == "right_knee" and jump["frames"] == [29, 30]


def test_root_teleport_is_a_jump(humanoid):
    f = _smooth()
    f[40:, 1] += 0.5
    r = _inspect(f, humanoid)
    (jump,) = [x for x in r["faults"] if x["kind"] == "jump"]
    assert jump["joint"] == "root_pos" and jump["frames"] == [39]


def test_exp_map_branch_flip_is_a_flip_not_a_jump(humanoid):
    f = _smooth()
    # yaw sweeping through pi: exp maps z = pi - 0.01 ... then -(pi - 0.01) (the same kind of rotation)
    yaw = math.pi - 0.05 + 0.002 * np.arange(N)
    f[:, 5] = np.where(yaw > math.pi, yaw - 2 * math.pi, yaw)
    r = _inspect(f, humanoid)
    assert _kinds(r["faults"]) == ["rotation_flip"]
    (flip,) = r["faults"]
    k = int(np.nonzero(yaw > math.pi)[0][0])
    assert flip["joint"] == "root_rot" and flip["frames"] == [k - 1]


def test_joint_limits_use_hinge_angles(humanoid):
    f = _smooth()
    f[10:20, 23] = -0.5  # right knee range is [0, 2.7925]
    f[5:8, 20] = 1.0  # right hip exp map about x -> right_hip_x = 1.0, range [-1.0472, 0.5236]
    r = _inspect(f, humanoid)
    by = {j["name"]: j for j in r["joints"]}
    knee = by["right_knee"]["limit_violations"]
    assert knee["frames"] == 10 and knee["worst_excess_deg"] == pytest.approx(math.degrees(0.5), abs=1e-3)
    hip = by["right_hip"]["limit_violations"]
    assert hip["frames"] == 3 and hip["worst_hinge"] == "right_hip_x"
    assert hip["worst_excess_deg"] == pytest.approx(math.degrees(1.0 - 0.5236), abs=0.01)
    assert by["left_knee"]["limit_violations"]["frames"] == 0
    assert _kinds(r["warnings"]) == ["joint_limit"]


def test_ground_penetration_and_seam(humanoid):
    f = _smooth()
    f[20:25, 2] = 0.80  # sink 13 cm
    r = _inspect(f, humanoid, loop_mode=1)
    assert r["ground"]["frames_below"] == 5 and r["ground"]["lowest_frame"] in range(20, 25)
    assert "below_ground" in _kinds(r["warnings"])
    seam = r["seam"]
    assert seam["root_advance_xy_m"] == pytest.approx(0.5 * (N - 1) / FPS, rel=1e-5)
    assert seam["max_joint"] in ("right_knee", "left_knee")


def test_nan_columns_do_not_hide_the_rest(humanoid):
    f = _smooth()
    f[:, 9:12] = np.nan
    f[7, 0] = np.inf
    r = _inspect(f, humanoid)
    nf = {x["joint"]: x for x in r["faults"] if x["kind"] == "nonfinite"}
    assert nf["neck"]["frames"] == list(range(N)) and nf["root_pos"]["frames"] == [7]
    assert nf["root_pos"]["kinds"] == ["inf"] and nf["neck"]["kinds"] == ["NaN"]
    knee = [j for j in r["joints"] if j["name"] == "right_knee"][0]
    assert knee["peak_ang_speed_rad_s"] == pytest.approx(0.4, abs=0.01)


def test_format_frames():
    assert format_frames([]) == "none"
    assert format_frames([0, 1, 2, 5, 9, 10]) == "0-2, 5, 9-10"
    assert format_frames(list(range(0, 20, 2)), limit=3) == "0, 2, 4 (+7 more)"
