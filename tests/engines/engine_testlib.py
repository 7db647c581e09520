"""Helpers shared by the engine tests (reference states); imported as a plain module from tests/engines."""

from __future__ import annotations

import math
from typing import List

import torch

from mimictools.character.model import Character
from mimictools.engines.base import SimState
from mimictools.math.rotations import exp_map_to_quat

# MimicKit's deepmimic_humanoid_env.yaml init_pose: standing, arms down (root pos, root exp map, 28 dofs).
HUMANOID_INIT_POSE = [0, 0, 0.882416, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.5708, 0, 0, 0, -1.5708, 0, 0, 0]
HUMANOID_INIT_POSE += [0] * (34 - len(HUMANOID_INIT_POSE))


def standing_init_state(char: Character, n: int) -> SimState:
    """MimicKit's init pose (arms down) with the root height set so the lowest geom touches z = 0."""
    from mimictools.character import kinematics

    state = pose_state(HUMANOID_INIT_POSE, n)
    local_rot = kinematics.dof_to_local_rot(char, state.dof_pos)
    body_pos, body_rot = kinematics.forward_kinematics(char, state.root_pos, state.root_rot, local_rot)
    lowest = kinematics.geom_lowest_z(char, body_pos, body_rot)
    state.root_pos[:, 2] -= lowest.min(dim=-1).values
    return state


def pose_state(frame: List[float], n: int, dtype: torch.dtype = torch.float64) -> SimState:
    """n copies of a MimicKit frame ``[root_pos, root expmap, dofs]`` at rest."""
    f = torch.tensor(frame, dtype=dtype)
    nd = f.shape[0] - 6
    return SimState(
        root_pos=f[0:3].repeat(n, 1),
        root_rot=exp_map_to_quat(f[3:6]).repeat(n, 1),
        root_vel=torch.zeros(n, 3, dtype=dtype),
        root_ang_vel=torch.zeros(n, 3, dtype=dtype),
        dof_pos=f[6:].repeat(n, 1),
        dof_vel=torch.zeros(n, nd, dtype=dtype),
    )


def random_state(char: Character, n: int, seed: int = 0, height: float = 1.5) -> SimState:
    """Random poses inside the joint limits (spherical exp maps of angle < 2.5 rad), random velocities."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    dof = torch.zeros(n, char.num_dofs, dtype=torch.float64)
    for j in char.joints:
        if j.kind == "hinge":
            lo, hi = max(float(j.range_low[0]), -2.5), min(float(j.range_high[0]), 2.5)
            dof[:, j.dof_offset] = lo + (hi - lo) * r(n)
        else:
            axis = torch.nn.functional.normalize(r(n, 3) - 0.5, dim=-1)
            dof[:, j.dof_offset : j.dof_offset + 3] = axis * (0.05 + 1.2 * r(n, 1))
    axis = torch.nn.functional.normalize(r(n, 3) - 0.5, dim=-1)
    root_rot = exp_map_to_quat(axis * (math.pi * 0.9 * r(n, 1)))
    root_pos = torch.cat([4.0 * r(n, 2) - 2.0, height + 0.2 * r(n, 1)], dim=-1)
    return SimState(
        root_pos=root_pos,
        root_rot=root_rot,
        root_vel=2.0 * r(n, 3) - 1.0,
        root_ang_vel=2.0 * r(n, 3) - 1.0,
        dof_pos=dof,
        dof_vel=2.0 * r(n, char.num_dofs) - 1.0,
    )


def step(eng, dof_targets: torch.Tensor) -> None:
    """One control step of an engine: ``set_targets`` then ``step_physics``."""
    eng.set_targets(dof_targets)
    eng.step_physics()
