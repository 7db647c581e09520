"""Fixtures for the DeepMimic task tests: synthetic batched character states."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest
import torch

from mimictools.character.kinematics import dof_to_local_rot, forward_kinematics
from mimictools.character.model import Character, Joint
from mimictools.engines.base import SimState
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


class KinematicEngine:
    """Engine protocol stand-in: DoFs jump to the PD targets, the root stays put, bodies by FK."""

    def __init__(self, char, num_envs: int, control_dt: float = 1.0 / 30.0, device="cpu"):
        self.character = char
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.control_dt = control_dt
        self.sim_dt = control_dt / 8
        n, nd = num_envs, char.num_dofs

        def z(*shape):
            return torch.zeros(*shape, device=self.device)

        root_rot = z(n, 4)
        root_rot[:, 0] = 1.0
        root_pos = z(n, 3)
        root_pos[:, 2] = 0.9
        self.state = SimState(root_pos, root_rot, z(n, 3), z(n, 3), z(n, nd), z(n, nd))
        self.forces = z(n, char.num_bodies, 3)
        self.targets = None
        self.set_state_calls = []

    def set_state_where(self, mask, state):
        self.set_state_calls.append(mask.nonzero().flatten())
        for dst, src in zip(self.state.fields(), state.fields()):
            dst.copy_(torch.where(mask.reshape((-1,) + (1,) * (dst.dim() - 1)), src, dst))

    def get_state(self):
        return SimState(*(t.clone() for t in self.state.fields()))

    def _fk(self):
        local = dof_to_local_rot(self.character, self.state.dof_pos)
        return forward_kinematics(self.character, self.state.root_pos, self.state.root_rot, local)

    def body_pos(self):
        return self._fk()[0]

    def body_rot(self):
        return self._fk()[1]

    def contact_forces(self):
        return self.forces

    def set_targets(self, dof_targets):
        self.targets = dof_targets.clone()

    def step_physics(self):
        self.state.dof_pos[:] = self.targets

    def close(self):
        pass


@pytest.fixture
def kinematic_engine():
    """The `KinematicEngine` class (an Engine-protocol stand-in without physics)."""
    return KinematicEngine


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
