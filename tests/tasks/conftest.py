"""Fixtures for the DeepMimic task tests: synthetic batched character states."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest
import torch

from mimictools.character.model import Character, Joint
from mimictools.math.rotations import axis_angle_to_quat, quat_mul, quat_normalize, quat_rotate
from mimictools.tasks.tracking import TrackState

NUM_BODIES = 15
NUM_DOFS = 28


def random_quat(*shape: int, gen: torch.Generator) -> torch.Tensor:
    return quat_normalize(torch.randn(*shape, 4, generator=gen, dtype=torch.float64))


def random_state(n: int, seed: int = 0, nb: int = NUM_BODIES, nd: int = NUM_DOFS) -> TrackState:
    g = torch.Generator().manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    root_pos = rn(n, 3) + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    body_pos = rn(n, nb, 3) * 0.3 + root_pos.unsqueeze(1)
    body_pos[:, 0] = root_pos
    root_rot = random_quat(n, gen=g)
    body_rot = random_quat(n, nb, gen=g)
    body_rot[:, 0] = root_rot
    return TrackState(
        root_pos=root_pos,
        root_rot=root_rot,
        root_vel=rn(n, 3),
        root_ang_vel=rn(n, 3),
        joint_rot=random_quat(n, nb - 1, gen=g),
        dof_vel=rn(n, nd),
        body_pos=body_pos,
        body_rot=body_rot,
    )


def rotate_scene_z(s: TrackState, angle: float, shift_xy=(0.0, 0.0)) -> TrackState:
    """Rotate a whole scene about the world z axis by ``angle`` then shift it in x, y."""
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=s.root_pos.dtype)
    q = axis_angle_to_quat(axis, torch.tensor(angle, dtype=s.root_pos.dtype))
    shift = torch.tensor([shift_xy[0], shift_xy[1], 0.0], dtype=s.root_pos.dtype)
    n, nb = s.body_pos.shape[:2]
    q1, q2 = q.expand(n, 4), q.expand(n, nb, 4)
    return TrackState(
        root_pos=quat_rotate(q1, s.root_pos) + shift,
        root_rot=quat_mul(q1, s.root_rot),
        root_vel=quat_rotate(q1, s.root_vel),
        root_ang_vel=quat_rotate(q1, s.root_ang_vel),
        joint_rot=s.joint_rot,
        dof_vel=s.dof_vel,
        body_pos=quat_rotate(q2, s.body_pos) + shift,
        body_rot=quat_mul(q2, s.body_rot),
    )


def _hinge(name, body, offset, axis, low, high):
    return Joint(
        name=name,
        body=body,
        kind="hinge",
        dof_offset=offset,
        dof_count=1,
        mjcf_joints=(name,),
        axes=np.array([axis], dtype=float),
        range_low=np.array([low]),
        range_high=np.array([high]),
        stiffness=np.array([100.0]),
        damping=np.array([10.0]),
        effort_limit=np.array([100.0]),
        armature=np.array([0.01]),
    )


def _triple(name, body, offset, lows, highs):
    return Joint(
        name=name,
        body=body,
        kind="spherical",
        dof_offset=offset,
        dof_count=3,
        mjcf_joints=(name + "_x", name + "_y", name + "_z"),
        axes=np.eye(3),
        range_low=np.array(lows, dtype=float),
        range_high=np.array(highs, dtype=float),
        stiffness=np.full(3, 100.0),
        damping=np.full(3, 10.0),
        effort_limit=np.full(3, 100.0),
        armature=np.full(3, 0.01),
    )


def _ball(name, body, offset, cone):
    return Joint(
        name=name,
        body=body,
        kind="spherical",
        dof_offset=offset,
        dof_count=3,
        mjcf_joints=(name,),
        axes=np.eye(3),
        range_low=np.array([0.0]),
        range_high=np.array([cone]),
        stiffness=np.full(1, 100.0),
        damping=np.full(1, 10.0),
        effort_limit=np.full(1, 100.0),
        armature=np.full(1, 0.01),
    )


def tiny_character() -> Character:
    """root -> a (hinge triple) -> b (hinge) -> c (welded) ; root -> d (ball). 5 bodies, 7 DoFs."""
    return Character(
        name="tiny",
        source="tiny.xml",
        body_names=("root", "a", "b", "c", "d"),
        parents=(-1, 0, 1, 2, 0),
        local_pos=np.array([[0, 0, 1.0], [0, 0, 0.2], [0, 0, 0.3], [0, 0, 0.3], [0, 0.2, 0]]),
        local_quat=np.tile(np.array([1.0, 0, 0, 0]), (5, 1)),
        joints=(
            _triple("a", 1, 0, [-1.0, -0.5, -2.0], [1.5, 0.5, 1.0]),
            _hinge("b", 2, 3, [0, 1, 0], 0.0, 2.0),
            _ball("d", 4, 4, 1.0),
        ),
    )


@pytest.fixture
def make_state() -> Callable[..., TrackState]:
    return random_state


@pytest.fixture
def rotate_scene() -> Callable[..., TrackState]:
    return rotate_scene_z


@pytest.fixture
def tiny_char() -> Character:
    return tiny_character()


HALF_PI = math.pi / 2
