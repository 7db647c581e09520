"""The narrow Engine protocol every physics backend implements (mujoco CPU, mjwarp GPU, isaacgym).

Tasks see only this protocol and torch tensors; they never import an engine module, and an engine
never imports a task. All conversions of conventions (quaternion order, body/DoF order, hinge angles
vs exponential maps) happen inside the engine adapter.

State conventions (same as the motion files and `mimictools.character.kinematics`):
- world frame, Z-up, metres, radians, seconds; quaternions (w, x, y, z);
- ``dof_pos`` is in *motion DoF space*: for a 3-DoF (spherical) joint the three values are an
  exponential map of the joint's local rotation, for a 1-DoF joint the hinge angle;
- ``dof_vel`` for a spherical joint is the joint's angular velocity expressed in the child body frame
  (rad/s), for a hinge the hinge rate — the same definition MotionLib uses for reference velocities;
- bodies are in the Character's depth-first order (body 0 = root).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.character.model import Character


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine. Frequencies in Hz; ``control_mode`` 'pos' = PD position targets."""

    num_envs: int
    """Number of parallel simulated characters."""
    control_freq: float = 30.0
    """Policy / action rate (Hz)."""
    sim_freq: float = 240.0
    """Physics rate (Hz); must be an integer multiple of ``control_freq``."""
    control_mode: str = "pos"
    """Only 'pos' (PD targets in motion DoF space) is supported."""
    device: str = "cpu"
    """torch device of the tensors the engine returns."""
    num_threads: int = 0
    """CPU engines: worker threads (0 = all cores)."""
    ground: bool = True
    """Add a ground plane at z = 0."""
    implicit_pd: bool = False
    """MuJoCo engines: stable (implicit) PD, the position error taken at the next physics step's angle, which
    adds ``kp / sim_freq`` of damping that ``implicitfast`` integrates implicitly (`mimictools.engines.mjcf_build`).
    False (default): explicit PD."""
    solver_iterations: int = 0
    """MuJoCo engines: cap on the constraint solver's iterations per physics step (``opt.iterations``);
    0 keeps the MJCF's value (MuJoCo's default 100). The Newton solver stops earlier once converged."""
    ls_iterations: int = 0
    """MuJoCo engines: cap on line-search iterations per solver iteration (``opt.ls_iterations``); 0 keeps
    the MJCF's value (MuJoCo's default 50)."""
    solver_tolerance: float = 0.0
    """MuJoCo engines: the Newton solver's stopping tolerance (``opt.tolerance``, on its scaled improvement and
    gradient); 0 keeps the MJCF's value (MuJoCo's default 1e-8). Larger stops earlier: fewer iterations."""

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return int(round(self.sim_freq / self.control_freq))


@dataclass
class SimState:
    """Batched root + DoF state. Shapes: (n, 3), (n, 4), (n, 3), (n, 3), (n, num_dofs), (n, num_dofs)."""

    root_pos: Tensor
    root_rot: Tensor
    root_vel: Tensor
    root_ang_vel: Tensor
    dof_pos: Tensor
    dof_vel: Tensor

    def index(self, ids: Tensor) -> SimState:
        """The sub-batch ``ids`` (a 1-D index tensor)."""
        return SimState(*(t[ids] for t in self.fields()))

    def fields(self) -> Sequence[Tensor]:
        return (self.root_pos, self.root_rot, self.root_vel, self.root_ang_vel, self.dof_pos, self.dof_vel)


class Engine(Protocol):
    """What a task needs from physics: the three calls of a control step and masked state writes.

    One step is ``set_targets`` -> ``step_physics`` -> reads (``get_state``, ``body_pos``, ...). Every call is
    free of host syncs and keeps fixed shapes on a GPU engine, so a caller can capture its own work around
    ``step_physics`` into CUDA graphs (`mimictools.rl.step`); a GPU engine replays its physics as its own graph.
    All tensors live on ``device``; shapes name ``num_envs`` = n.
    """

    character: Character
    num_envs: int
    device: torch.device
    control_dt: float
    """Seconds per control step (1 / control_freq)."""
    sim_dt: float
    """Seconds per physics step."""

    def set_targets(self, dof_targets: Tensor) -> None:
        """PD targets for the next ``step_physics``, Shape (n, num_dofs), motion DoF space."""
        ...

    def step_physics(self) -> None:
        """Advance every env one control step (``substeps`` physics steps) towards the targets last set."""
        ...

    def set_state_where(self, mask: Tensor, state: SimState) -> None:
        """Teleport the envs where ``mask`` (n,) bool is True to the same rows of ``state`` (n rows; the other rows
        are ignored and those envs untouched). Their solver state is reset and contact forces read zero until
        the next step; ``body_pos``/``body_rot`` read afterwards show the new poses."""
        ...

    def get_state(self) -> SimState:
        """Root and DoF state of all envs."""
        ...

    def body_pos(self) -> Tensor:
        """World body origins. Shape (n, num_bodies, 3), metres."""
        ...

    def body_rot(self) -> Tensor:
        """World body orientations. Shape (n, num_bodies, 4), wxyz."""
        ...

    def contact_forces(self) -> Tensor:
        """Net ground-contact force on each body averaged over the last control step. Shape (n, num_bodies, 3), newtons."""
        ...

    def close(self) -> None:
        """Release native resources."""
        ...


def set_state(engine: Engine, env_ids: Optional[Tensor], state: SimState) -> None:
    """Teleport envs ``env_ids`` (Shape (k,) long; None = all) to ``state`` (k rows): a thin wrapper that scatters
    the rows into the engine's current state and calls ``set_state_where`` (not for hot paths: it reads the
    state of every env).

    Raises:
        EngineError: ids out of range, or a state of the wrong shapes.
    """
    from mimictools.errors import EngineError

    n = int(engine.num_envs)
    dev = torch.device(engine.device)
    ids = check_env_ids(env_ids, n, dev)
    k = int(ids.numel())
    check_state_shapes(state, k, engine.character.num_dofs)
    if k == 0:
        return
    if int(ids.min()) < 0 or int(ids.max()) >= n:
        raise EngineError(f"env_ids must lie in [0, {n}), got min {int(ids.min())} max {int(ids.max())}")
    current = engine.get_state()
    full = SimState(
        *(
            cur.to(dtype=new.dtype).clone().index_copy_(0, ids, new.detach().to(device=dev))
            for cur, new in zip(current.fields(), state.fields())
        )
    )
    mask = torch.zeros(n, dtype=torch.bool, device=dev).index_fill_(0, ids, True)
    engine.set_state_where(mask, full)


def check_env_ids(env_ids: Optional[Tensor], num_envs: int, device: torch.device) -> Tensor:
    """Validate/normalise an env-id index: None means all envs. Returns a 1-D long tensor on ``device``."""
    if env_ids is None:
        return torch.arange(num_envs, device=device)
    if env_ids.dim() != 1:
        raise ValueError(f"env_ids must be 1-D, got shape {tuple(env_ids.shape)}")
    return env_ids.to(device=device, dtype=torch.long)


def check_state_shapes(state: SimState, num_ids: int, num_dofs: int) -> None:
    """Raise EngineError unless every field of ``state`` has the batch ``num_ids`` and the right width."""
    from mimictools.errors import EngineError

    k, nd = num_ids, num_dofs
    want = ((k, 3), (k, 4), (k, 3), (k, 3), (k, nd), (k, nd))
    names = ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel")
    for name, shape, t in zip(names, want, state.fields()):
        if tuple(t.shape) != shape:
            raise EngineError(
                f"set_state: {name} has shape {tuple(t.shape)}, expected {shape} for {k} env ids"
            )


def check_targets_shape(dof_targets: Tensor, num_envs: int, num_dofs: int) -> None:
    """Raise EngineError unless ``dof_targets`` is Shape (num_envs, num_dofs)."""
    from mimictools.errors import EngineError

    if tuple(dof_targets.shape) != (num_envs, num_dofs):
        raise EngineError(
            f"step: dof_targets has shape {tuple(dof_targets.shape)}, expected ({num_envs}, {num_dofs})"
        )
