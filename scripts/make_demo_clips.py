"""Make the project's own demo clips in `data/motions/` (procedural, no mocap involved).

    python scripts/make_demo_clips.py            # writes data/motions/demo_squat.pkl, demo_wave.pkl

How they are made (documented in data/README.md):
- ``demo_squat``: a 2 s squat cycle at 30 fps. Knee = 2a, hip_y = -a, ankle_y = -a with
  a(t) = a_max (1 - cos(2 pi t / T)) / 2, so thighs and shins rotate by equal and opposite angles and
  the feet stay flat; the torso leans forward by 0.35 a and the arms reach forward by 0.6 a to keep the
  balance. Root height is chosen per frame by our FK so that the lowest foot point touches z = 0.
- ``demo_wave``: a 2 s standing cycle: both arms wave sideways, the torso twists gently about z,
  the head follows; same foot-on-floor root height rule.
Both are WRAP clips whose last frame equals the first (seamless loop), in MimicKit's current format.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mimictools.character import kinematics  # noqa: E402
from mimictools.character.mjcf import load_character  # noqa: E402
from mimictools.math.rotations import axis_angle_to_quat, quat_mul, quat_to_exp_map  # noqa: E402
from mimictools.motion.io import save_motion  # noqa: E402
from mimictools.motion.motion import Motion  # noqa: E402

FPS = 30.0
PERIOD_S = 2.0


def _axis(i: int) -> torch.Tensor:
    a = torch.zeros(3, dtype=torch.float64)
    a[i] = 1.0
    return a


def _rot(axis: int, angle: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_quat(_axis(axis).expand(angle.shape + (3,)), angle)


def _expmap(q: torch.Tensor) -> torch.Tensor:
    return quat_to_exp_map(q)


def _set(dof: torch.Tensor, char, joint_name: str, value: torch.Tensor) -> None:
    """Write a joint's DoFs (angle for hinges, exp map for spherical joints) into ``dof`` (T, num_dofs)."""
    for j in char.joints:
        if j.name == joint_name or joint_name in j.mjcf_joints:
            dof[:, j.dof_offset : j.dof_offset + j.dof_count] = value.reshape(dof.shape[0], j.dof_count)
            return
    raise KeyError(joint_name)


def _spherical_name(char, hinge: str) -> str:
    for j in char.joints:
        if hinge in j.mjcf_joints:
            return j.name
    raise KeyError(hinge)


def _frames(char, dof: torch.Tensor) -> np.ndarray:
    """Root at the origin facing +x, height so that the lowest point of the feet is at z = 0."""
    t = dof.shape[0]
    root_rot = torch.zeros(t, 3, dtype=torch.float64)
    root_pos = torch.zeros(t, 3, dtype=torch.float64)
    frames = torch.cat([root_pos, root_rot, dof], dim=-1)
    body_pos, body_rot = kinematics.frames_to_body_poses(char, frames)
    feet = [i for i, g in enumerate(char.geoms) if char.body_names[g.body] in ("right_foot", "left_foot")]
    lowest = kinematics.geom_lowest_z(char, body_pos, body_rot)[:, feet].amin(dim=-1)
    if not torch.isfinite(lowest).all():
        raise RuntimeError("no foot geoms found on the character")
    frames[:, 2] = -lowest
    return frames.float().numpy()


def _arms_down(t: int) -> torch.Tensor:
    """Shoulder rotations (T, 4) right, left: arms hanging down from the T-pose."""
    half_pi = torch.full((t,), math.pi / 2, dtype=torch.float64)
    return _rot(0, half_pi), _rot(0, -half_pi)


def make_squat(char) -> Motion:
    n = int(round(PERIOD_S * FPS)) + 1
    time = torch.arange(n, dtype=torch.float64) / FPS
    a = 0.75 * 0.5 * (1.0 - torch.cos(2.0 * math.pi * time / PERIOD_S))
    dof = torch.zeros(n, char.num_dofs, dtype=torch.float64)
    for side in ("right", "left"):
        hip = _spherical_name(char, f"{side}_hip_y")
        ankle = _spherical_name(char, f"{side}_ankle_y")
        _set(dof, char, hip, _expmap(_rot(1, -a)))
        _set(dof, char, f"{side}_knee", 2.0 * a)
        _set(dof, char, ankle, _expmap(_rot(1, -a)))
    _set(dof, char, _spherical_name(char, "abdomen_y"), _expmap(_rot(1, 0.35 * a)))
    r_down, l_down = _arms_down(n)
    reach = _rot(1, -0.6 * a)  # about the world-aligned y axis: arms swing forward
    _set(dof, char, _spherical_name(char, "right_shoulder_y"), _expmap(quat_mul(reach, r_down)))
    _set(dof, char, _spherical_name(char, "left_shoulder_y"), _expmap(quat_mul(reach, l_down)))
    return Motion(fps=FPS, loop_mode=1, frames=_frames(char, dof), source="demo_squat", variant="generated")


def make_wave(char) -> Motion:
    n = int(round(PERIOD_S * FPS)) + 1
    time = torch.arange(n, dtype=torch.float64) / FPS
    phase = 2.0 * math.pi * time / PERIOD_S
    dof = torch.zeros(n, char.num_dofs, dtype=torch.float64)
    _set(dof, char, _spherical_name(char, "abdomen_z"), _expmap(_rot(2, 0.25 * torch.sin(phase))))
    _set(dof, char, _spherical_name(char, "neck_z"), _expmap(_rot(2, 0.3 * torch.sin(phase))))
    r_down, l_down = _arms_down(n)
    lift = 0.5 * (1.0 - torch.cos(phase))  # 0 -> 1 -> 0
    r = quat_mul(_rot(0, -1.2 * lift), r_down)  # right arm raised sideways
    l = quat_mul(_rot(0, 1.2 * lift), l_down)
    _set(dof, char, _spherical_name(char, "right_shoulder_x"), _expmap(r))
    _set(dof, char, _spherical_name(char, "left_shoulder_x"), _expmap(l))
    _set(dof, char, "right_elbow", 0.6 * lift)
    _set(dof, char, "left_elbow", -0.6 * lift)
    return Motion(fps=FPS, loop_mode=1, frames=_frames(char, dof), source="demo_wave", variant="generated")


def main() -> None:
    char = load_character(REPO / "data" / "humanoid.xml")
    out = REPO / "data" / "motions"
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("demo_squat", make_squat), ("demo_wave", make_wave)):
        motion = make(char)
        save_motion(motion, out / f"{name}.pkl")
        print(f"wrote {out / (name + '.pkl')}: {motion.frames.shape[0]} frames at {motion.fps} fps")


if __name__ == "__main__":
    main()
