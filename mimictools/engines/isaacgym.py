"""Isaac Gym Preview 4 (PhysX) behind the Engine protocol, through Isaac Gym's tensor API.

NOT RUN: Isaac Gym cannot be installed on the machines this was written on (it exists for Python 3.6-3.8
only and is not on any package index). What was checked is listed in docs/isaacgym.md: this module
type-checks against the ``isaacgym-stubs`` package (mypy), parses as Python 3.8, imports without isaacgym,
and its pure conversion functions (below the class) are unit-tested. The contract suite
(tests/engines/test_contract.py) runs on it where ``isaacgym`` imports.

How it maps the protocol onto Isaac Gym:

- **Asset**: the Character's MJCF (``Character.source``) through ``gym.load_asset``. One actor per env,
  self-collisions on (MimicKit's Isaac Gym setting), envs on a grid ``env_spacing_m`` apart. The grid
  offset of each env is measured after ``prepare_sim`` (root position minus start pose) and removed from
  every position the engine returns, so positions are per-env world coordinates like the other engines'.
- **PD control**: every DoF in ``DOF_MODE_POS`` with stiffness/damping = the MJCF joints' ``stiffness`` /
  ``damping`` (MimicKit's convention: those attributes are PD gains; Menagerie's ``<position kp kv|dampratio>``
  actuators otherwise, a ``dampratio`` turned into kd by `mimictools.engines.pd_gains` exactly as for the
  MuJoCo engines), ``effort`` = ``actuatorfrcrange``,
  ``armature`` and limits from the Character (radians, whatever the MJCF's ``compiler angle`` says).
  PhysX applies the drives implicitly inside each physics step.
- **State tensors**: actor root state (n, 13), DoF state (n * dofs, 2), rigid body state (n * bodies, 13)
  and net contact forces (n * bodies, 3), wrapped once with ``gymtorch.wrap_tensor`` and ``refresh_*``-ed
  after the physics steps of every control step (contacts after every physics step, to average them).
  Teleports write into the wrapped tensors and are pushed with ONE ``set_actor_root_state_tensor_indexed`` /
  ``set_dof_state_tensor_indexed`` call per step (in Isaac Gym's GPU pipeline only the last indexed call
  before ``simulate`` takes effect, so several ``set_state`` calls are merged).
- **Conventions converted here only**: quaternions xyzw <-> wxyz; bodies and DoFs mapped by name
  (``get_asset_rigid_body_names`` / ``get_asset_dof_names``) to the Character's order.
- **Three-hinge bodies**: Isaac Gym's MJCF importer turns the three hinges of one body into one D6 joint
  whose three coordinates are PhysX's spherical-joint coordinates, i.e. the exponential map of the joint
  rotation projected on the hinge axes — the motion DoF space itself (this is why MimicKit/AMP/ASE write
  exp maps straight into Isaac Gym's DoF state). So ``spherical_coords="exp_map"`` (default) passes the
  DoFs through. ``spherical_coords="hinge"`` instead treats the three coordinates as sequential hinge
  angles and converts with ``mimictools.character.kinematics`` exactly as the MuJoCo engine does. Which one
  PhysX really reports has NOT been verified here: ``mimic fk-check --engine isaacgym`` and the contract
  suite's "body poses after a step" tests decide it on a machine with Isaac Gym (docs/isaacgym.md).
- **Body poses right after ``set_state``**: Isaac Gym only updates rigid-body states inside ``simulate``,
  so until the next ``step`` the poses of teleported envs come from our FK
  (``kinematics.forward_kinematics``), and their contact forces are zero.
- **Ground contact forces**: Isaac Gym's net contact force per body includes body-body contacts; as in
  MimicKit, a body whose origin is above ``ground_contact_height_m`` reports zero. Averaged over the
  physics steps of the control step, world frame, newtons.

Python 3.8 syntax: this module runs where Isaac Gym does. isaacgym is imported lazily, inside the
constructor; it must already be imported before torch (the CLI does that for ``--engine isaacgym``, see
``mimictools.engines.isaacgym_preload``).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import warnings
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.character import kinematics
from mimictools.character.model import Character
from mimictools.engines.base import (
    EngineSpec,
    SimState,
    check_state_shapes,
    check_targets_shape,
)
from mimictools.errors import EngineError, NotSupportedError
from mimictools.math.rotations import wxyz_to_xyzw, xyzw_to_wxyz

if TYPE_CHECKING:  # pragma: no cover - type-checked against the isaacgym-stubs package (docs/isaacgym.md)
    from isaacgym import gymapi

__all__ = [
    "IsaacGymEngine",
    "DofConverter",
    "index_map",
    "root_state_from_gym",
    "root_state_to_gym",
    "dof_properties",
    "import_isaacgym",
]

INSTALL_DOC = "docs/isaacgym.md"
SPHERICAL_COORDS = ("exp_map", "hinge")
_F32 = torch.float32
_EFFORT_UNLIMITED = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------------------------------------
# Importing Isaac Gym
# ---------------------------------------------------------------------------------------------------------
def import_isaacgym() -> None:
    """Import ``isaacgym.gymapi`` and ``isaacgym.gymtorch`` or raise an EngineError that says what to do.

    gymtorch is JIT-compiled on its first import (C++ compiler, ninja, Python headers needed): its build
    errors are reported with the ``mimic doctor --engine isaacgym --build-test`` hint.
    """
    from mimictools.engines.isaacgym_preload import preload_error

    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        spec = importlib.util.find_spec("isaacgym")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        extra = "" if sys.version_info[:2] <= (3, 8) else f" (and it cannot be installed on Python {py})"
        raise EngineError(
            f"engine 'isaacgym' is unavailable: isaacgym is not importable{extra}. Isaac Gym Preview 4 exists for "
            f"Python 3.6-3.8 and is not on PyPI: install it as {INSTALL_DOC} says, then run "
            "`mimic doctor --engine isaacgym`"
        )
    try:
        importlib.import_module("isaacgym.gymapi")
    except Exception as exc:
        first = preload_error()
        msg = first if first is not None else f"{type(exc).__name__}: {exc}"
        hint = "run `mimic doctor --engine isaacgym` for the fix"
        if "imported before isaacgym" in msg.lower():
            hint = (
                "isaacgym must be imported before torch: use the `mimic` CLI with --engine isaacgym (it imports "
                "isaacgym first), or put `import isaacgym` above `import torch` in your script"
            )
        raise EngineError(
            f"engine 'isaacgym' is unavailable: importing isaacgym failed ({msg}); {hint}"
        ) from None
    try:
        importlib.import_module("isaacgym.gymtorch")
    except Exception as exc:
        raise EngineError(
            f"engine 'isaacgym' is unavailable: isaacgym.gymtorch failed to build/import ({type(exc).__name__}: "
            f"{_last_line(str(exc))}); run `mimic doctor --engine isaacgym --build-test` for the fix"
        ) from None


def _last_line(text: str) -> str:
    rows = [r for r in text.splitlines() if r.strip()]
    return rows[-1] if rows else text


# ---------------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------------
class IsaacGymEngine:
    """The ``Engine`` protocol on Isaac Gym Preview 4 (see the module docstring)."""

    name = "isaacgym"

    def __init__(
        self,
        character: Character,
        spec: EngineSpec,
        spherical_coords: str = "exp_map",
        ground_contact_height_m: float = 0.3,
        env_spacing_m: float = 5.0,
    ):
        if spherical_coords not in SPHERICAL_COORDS:
            raise EngineError(f"spherical_coords must be one of {SPHERICAL_COORDS}, got {spherical_coords!r}")
        if spec.control_mode != "pos":
            raise NotSupportedError(
                f"control_mode {spec.control_mode!r}: the isaacgym engine supports only 'pos'"
            )
        ratio = spec.sim_freq / spec.control_freq
        if spec.num_envs < 1 or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise EngineError(
                f"need num_envs >= 1 and sim_freq a multiple of control_freq; got num_envs={spec.num_envs}, "
                f"sim_freq={spec.sim_freq}, control_freq={spec.control_freq}"
            )
        try:
            device = torch.device(spec.device)
        except RuntimeError as exc:
            raise EngineError(f"invalid device {spec.device!r}: {exc}") from None
        if device.type not in ("cpu", "cuda"):
            raise EngineError(f"the isaacgym engine runs on 'cpu' or 'cuda[:N]', not {spec.device!r}")
        if not os.path.isfile(character.source):
            raise EngineError(
                f"{character.source}: the character's MJCF file is needed by Isaac Gym and is missing"
            )
        import_isaacgym()
        from isaacgym import gymapi, gymtorch

        self.character = character
        self.spec = spec
        self.num_envs = spec.num_envs
        self.device = device
        self.dtype = _F32
        self.control_dt = 1.0 / spec.control_freq
        self.sim_dt = 1.0 / spec.sim_freq
        self.substeps = spec.substeps
        self.ground_contact_height_m = float(ground_contact_height_m)
        self._closed = False
        self._gpu = device.type == "cuda"
        n = self.num_envs

        self._gym = gymapi.acquire_gym()
        self._sim = self._create_sim()
        if spec.ground:
            plane = gymapi.PlaneParams()
            plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
            plane.static_friction = 1.0
            plane.dynamic_friction = 1.0
            plane.restitution = 0.0
            self._gym.add_ground(self._sim, plane)

        asset = self._load_asset()
        gym_bodies = list(self._gym.get_asset_rigid_body_names(asset))
        gym_dofs = list(self._gym.get_asset_dof_names(asset))
        self._body_src = torch.as_tensor(
            index_map(gym_bodies, character.body_names, "rigid body"), dtype=torch.long, device=device
        )
        self._dofs = DofConverter(character, gym_dofs, spherical_coords)
        self._num_gym_bodies = len(gym_bodies)
        self._num_gym_dofs = len(gym_dofs)

        start = gymapi.Transform()
        p0 = character.local_pos[0]
        start.p = gymapi.Vec3(float(p0[0]), float(p0[1]), float(p0[2]))
        start.r = gymapi.Quat(0.0, 0.0, 0.0, 1.0)
        half = 0.5 * float(env_spacing_m)
        lower, upper = gymapi.Vec3(-half, -half, 0.0), gymapi.Vec3(half, half, half)
        per_row = max(1, int(math.sqrt(n)))
        props = dof_properties(character, gym_dofs)
        self._envs: List[gymapi.Env] = []
        actor_ids: List[int] = []
        for i in range(n):
            env = self._gym.create_env(self._sim, lower, upper, per_row)
            actor = self._gym.create_actor(env, asset, start, "character", i, 0, 0)
            dp = self._gym.get_actor_dof_properties(env, actor)
            for key, values in props.items():
                dp[key] = values
            dp["driveMode"] = gymapi.DOF_MODE_POS
            self._gym.set_actor_dof_properties(env, actor, dp)
            self._envs.append(env)
            actor_ids.append(self._gym.get_actor_index(env, actor, gymapi.DOMAIN_SIM))
        self._actor_ids = torch.tensor(actor_ids, dtype=torch.int32, device=device)

        if not self._gym.prepare_sim(self._sim):
            raise EngineError("Isaac Gym: prepare_sim failed (see Isaac Gym's log above)")
        self._root_raw = gymtorch.wrap_tensor(self._gym.acquire_actor_root_state_tensor(self._sim))
        self._dof_raw = gymtorch.wrap_tensor(self._gym.acquire_dof_state_tensor(self._sim))
        self._body_raw = gymtorch.wrap_tensor(self._gym.acquire_rigid_body_state_tensor(self._sim))
        self._contact_raw = gymtorch.wrap_tensor(self._gym.acquire_net_contact_force_tensor(self._sim))
        if self._root_raw.shape[0] != n:
            raise EngineError(f"Isaac Gym reports {self._root_raw.shape[0]} actors for {n} envs")
        self._root = self._root_raw.view(n, 13)
        self._dof_state = self._dof_raw.view(n, self._num_gym_dofs, 2)
        self._body_state = self._body_raw.view(n, self._num_gym_bodies, 13)
        self._contact_now = self._contact_raw.view(n, self._num_gym_bodies, 3)
        self._targets = torch.zeros(n, self._num_gym_dofs, dtype=_F32, device=device)
        self._contact_sum = torch.zeros(n, self._num_gym_bodies, 3, dtype=_F32, device=device)
        self._pending = torch.zeros(n, dtype=torch.bool, device=device)

        self._refresh_state()
        start_pos = torch.tensor([float(p0[0]), float(p0[1]), float(p0[2])], dtype=_F32, device=device)
        self._env_origin = (self._root[:, 0:3] - start_pos).clone()
        """Where Isaac Gym put each env's frame (its grid offset), Shape (n, 3); subtracted from outputs."""
        nb = character.num_bodies
        self._body_pos = torch.zeros(n, nb, 3, dtype=_F32, device=device)
        self._body_rot = torch.zeros(n, nb, 4, dtype=_F32, device=device)
        self._contact = torch.zeros(n, nb, 3, dtype=_F32, device=device)
        self._read_bodies(torch.arange(n, device=device))

    # ---- protocol -------------------------------------------------------------------------------------
    def set_state_where(self, mask: Tensor, state: SimState) -> None:
        """Teleport the envs where ``mask`` (num_envs,) bool is True to the same rows of ``state`` (num_envs rows),
        applied to PhysX at the next ``step_physics`` (one indexed write per tensor); body poses via our FK.
        Selects the rows with ``nonzero`` (a host sync: Isaac Gym's steps are not captured into graphs)."""
        self._check_open()
        n = self.num_envs
        if tuple(mask.shape) != (n,):
            raise EngineError(f"set_state_where: mask has shape {tuple(mask.shape)}, expected ({n},)")
        check_state_shapes(state, n, self.character.num_dofs)
        ids = torch.nonzero(mask.to(self.device), as_tuple=False).flatten()
        if ids.numel() == 0:
            return
        state = state.index(ids.to(state.root_pos.device))
        names = ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel")
        fields = []
        for name, t in zip(names, state.fields()):
            if not bool(torch.isfinite(t).all()):
                raise EngineError(f"set_state: {name} has NaN or inf values")
            fields.append(t.detach().to(device=self.device))
        root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel = fields
        root_rot = root_rot / root_rot.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        self._root[ids] = root_state_to_gym(
            root_pos + self._env_origin[ids], root_rot, root_vel, root_ang_vel
        ).to(_F32)
        pos_g, vel_g = self._dofs.to_gym(root_pos, root_rot, dof_pos, root_vel, root_ang_vel, dof_vel)
        self._dof_state[ids, :, 0] = pos_g.to(_F32)
        self._dof_state[ids, :, 1] = vel_g.to(_F32)
        self._pending[ids] = True
        local_rot = kinematics.dof_to_local_rot(self.character, dof_pos)
        body_pos, body_rot = kinematics.forward_kinematics(self.character, root_pos, root_rot, local_rot)
        self._body_pos[ids] = body_pos.to(_F32)
        self._body_rot[ids] = body_rot.to(_F32)
        self._contact[ids] = 0.0

    def get_state(self) -> SimState:
        """Root and DoF state of all envs (float32 copies on ``device``)."""
        self._check_open()
        root_pos, root_rot, root_vel, root_ang_vel = root_state_from_gym(self._root)
        root_pos = root_pos - self._env_origin
        dof_pos, dof_vel = self._dofs.from_gym(
            root_pos, root_rot, self._dof_state[..., 0], self._dof_state[..., 1]
        )
        out = (root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel)
        return SimState(*(t.to(_F32).clone() for t in out))

    def body_pos(self) -> Tensor:
        """World body origins, Shape (num_envs, num_bodies, 3), metres."""
        self._check_open()
        return self._body_pos.clone()

    def body_rot(self) -> Tensor:
        """World body orientations, Shape (num_envs, num_bodies, 4), wxyz."""
        self._check_open()
        return self._body_rot.clone()

    def contact_forces(self) -> Tensor:
        """Ground-contact force per body averaged over the last control step, Shape (num_envs, num_bodies, 3), N."""
        self._check_open()
        return self._contact.clone()

    def set_targets(self, dof_targets: Tensor) -> None:
        """PD targets for the next ``step_physics`` (num_envs, num_dofs, motion DoF space), in Isaac Gym's DoF layout."""
        self._check_open()
        check_targets_shape(dof_targets, self.num_envs, self.character.num_dofs)
        if not bool(torch.isfinite(dof_targets).all()):  # a host sync: Isaac Gym's steps are not graphed
            raise EngineError("set_targets: dof_targets has NaN or inf values")
        self._targets.copy_(self._dofs.targets_to_gym(dof_targets.detach().to(self.device)).to(_F32))

    def step_physics(self) -> None:
        """One control step towards the targets last set: pending teleports, then ``substeps`` simulates."""
        self._check_open()
        from isaacgym import gymtorch

        self._apply_pending_resets()
        gym, sim = self._gym, self._sim
        gym.set_dof_position_target_tensor(sim, gymtorch.unwrap_tensor(self._targets))
        self._contact_sum.zero_()
        for _ in range(self.substeps):
            gym.simulate(sim)
            if not self._gpu:
                gym.fetch_results(sim, True)
            gym.refresh_net_contact_force_tensor(sim)
            self._contact_sum += self._contact_now
        self._refresh_state()
        self._read_bodies(None)

    def close(self) -> None:
        """Destroy the Isaac Gym sim. Explicit only: no ``__del__``, since destroying a sim while the
        interpreter shuts down can crash inside Isaac Gym."""
        if self._closed:
            return
        self._closed = True
        self._gym.destroy_sim(self._sim)
        self._envs = []

    # ---- internals ------------------------------------------------------------------------------------
    def _create_sim(self) -> gymapi.Sim:
        from isaacgym import gymapi

        p = gymapi.SimParams()
        p.dt = self.sim_dt
        p.substeps = 1  # our own loop runs `substeps` simulate() calls per control step
        p.up_axis = gymapi.UP_AXIS_Z
        p.gravity = gymapi.Vec3(0.0, 0.0, -9.81)
        p.num_client_threads = 0
        # MimicKit's PhysX settings (mimickit/engines/isaac_gym_engine.py).
        p.physx.solver_type = 1
        p.physx.num_position_iterations = 4
        p.physx.num_velocity_iterations = 0
        p.physx.contact_offset = 0.02
        p.physx.rest_offset = 0.0
        p.physx.bounce_threshold_velocity = 0.2
        p.physx.max_depenetration_velocity = 10.0
        p.physx.default_buffer_size_multiplier = 10.0
        p.physx.max_gpu_contact_pairs = 8 * 1024 * 1024
        p.physx.num_threads = self.spec.num_threads if self.spec.num_threads > 0 else 4
        p.physx.use_gpu = self._gpu
        p.use_gpu_pipeline = self._gpu
        compute = (self.device.index or 0) if self._gpu else 0
        sim = self._gym.create_sim(compute, -1, gymapi.SIM_PHYSX, p)
        if sim is None:
            raise EngineError(
                f"Isaac Gym could not create a PhysX sim on {self.device} (see its log above; "
                "`mimic doctor --engine isaacgym` checks the driver and CUDA_VISIBLE_DEVICES)"
            )
        return sim

    def _load_asset(self) -> gymapi.Asset:
        from isaacgym import gymapi

        opts = gymapi.AssetOptions()
        opts.angular_damping = 0.01
        opts.max_linear_velocity = 1000.0
        opts.max_angular_velocity = 1000.0
        opts.fix_base_link = False
        path = os.path.abspath(self.character.source)
        asset = self._gym.load_asset(self._sim, os.path.dirname(path), os.path.basename(path), opts)
        if asset is None:
            raise EngineError(f"{path}: Isaac Gym could not load this MJCF (see its log above)")
        return asset

    def _refresh_state(self) -> None:
        gym, sim = self._gym, self._sim
        gym.refresh_actor_root_state_tensor(sim)
        gym.refresh_dof_state_tensor(sim)
        gym.refresh_rigid_body_state_tensor(sim)

    def _read_bodies(self, ids: Optional[Tensor]) -> None:
        """Body pose and contact caches (Character order, env frame, wxyz) from the refreshed tensors."""
        rb = self._body_state.index_select(1, self._body_src)
        pos = rb[..., 0:3] - self._env_origin.unsqueeze(1)
        rot = xyzw_to_wxyz(rb[..., 3:7])
        contact = (self._contact_sum / float(self.substeps)).index_select(1, self._body_src)
        contact = torch.where(
            (pos[..., 2:3] > self.ground_contact_height_m), torch.zeros_like(contact), contact
        )
        if ids is None:
            self._body_pos.copy_(pos)
            self._body_rot.copy_(rot)
            self._contact.copy_(contact)
        else:
            self._body_pos[ids] = pos[ids]
            self._body_rot[ids] = rot[ids]
            self._contact[ids] = 0.0

    def _apply_pending_resets(self) -> None:
        """Push all teleports since the last step with one indexed call per tensor (GPU-pipeline rule)."""
        if not bool(self._pending.any()):
            return
        from isaacgym import gymtorch

        ids = self._actor_ids[self._pending].contiguous()
        k = int(ids.numel())
        gym, sim = self._gym, self._sim
        ok = gym.set_actor_root_state_tensor_indexed(
            sim, gymtorch.unwrap_tensor(self._root_raw), gymtorch.unwrap_tensor(ids), k
        )
        ok = (
            gym.set_dof_state_tensor_indexed(
                sim, gymtorch.unwrap_tensor(self._dof_raw), gymtorch.unwrap_tensor(ids), k
            )
            and ok
        )
        if not ok:
            raise EngineError(
                "Isaac Gym rejected the state of the reset envs (set_*_tensor_indexed returned False)"
            )
        self._pending.zero_()

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the Isaac Gym engine was closed")


# ---------------------------------------------------------------------------------------------------------
# Pure conversions (no isaacgym needed; unit-tested in tests/engines/test_isaacgym_static.py)
# ---------------------------------------------------------------------------------------------------------
def index_map(src_names: Sequence[str], dst_names: Sequence[str], what: str) -> List[int]:
    """For each name in ``dst_names`` (our order), its index in ``src_names`` (Isaac Gym's order).

    EngineError naming the missing names when a ``dst`` name is not in ``src``.
    """
    pos: Dict[str, int] = {}
    for i, name in enumerate(src_names):
        pos.setdefault(name, i)
    missing = [n for n in dst_names if n not in pos]
    if missing:
        raise EngineError(
            f"Isaac Gym's asset has no {what} named {', '.join(repr(m) for m in missing)}; "
            f"its {what} names are: {', '.join(src_names)}"
        )
    return [pos[n] for n in dst_names]


def root_state_from_gym(root: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Isaac Gym actor root states (..., 13) ``[pos, quat xyzw, lin vel, ang vel]`` (world frame) ->
    (pos (..., 3), rot wxyz (..., 4), lin vel (..., 3), ang vel (..., 3))."""
    return root[..., 0:3], xyzw_to_wxyz(root[..., 3:7]), root[..., 7:10], root[..., 10:13]


def root_state_to_gym(pos: Tensor, rot_wxyz: Tensor, vel: Tensor, ang_vel: Tensor) -> Tensor:
    """Inverse of ``root_state_from_gym``: (..., 13) with the quaternion xyzw."""
    return torch.cat([pos, wxyz_to_xyzw(rot_wxyz), vel, ang_vel], dim=-1)


class DofConverter:
    """Motion DoF space (Character order) <-> Isaac Gym's DoF vector (its order and coordinates).

    ``spherical_coords='exp_map'``: a three-hinge body's D6 coordinates are the motion's exp map (pass-through).
    ``spherical_coords='hinge'``: they are sequential hinge angles (converted via ``kinematics``, as MuJoCo).
    DoFs are matched by name (Character.dof_names vs ``gym.get_asset_dof_names``); if the names differ but
    the counts agree, Isaac Gym's order is assumed to be the Character's and a warning says so.
    """

    def __init__(self, character: Character, gym_dof_names: Sequence[str], spherical_coords: str = "exp_map"):
        if spherical_coords not in SPHERICAL_COORDS:
            raise EngineError(f"spherical_coords must be one of {SPHERICAL_COORDS}, got {spherical_coords!r}")
        names = list(character.dof_names)
        gym_names = list(gym_dof_names)
        if len(gym_names) != len(names):
            raise EngineError(
                f"{character.source}: Isaac Gym made {len(gym_names)} DoFs ({', '.join(gym_names)}) where the "
                f"character has {len(names)} ({', '.join(names)})"
            )
        if set(gym_names) == set(names):
            gym_from_char = index_map(names, gym_names, "DoF")  # gym DoF k = character DoF gym_from_char[k]
        else:
            odd = sorted(set(gym_names) ^ set(names))
            warnings.warn(
                f"Isaac Gym's DoF names differ from the character's ({', '.join(odd)}); assuming the same order",
                stacklevel=2,
            )
            gym_from_char = list(range(len(names)))
        char_from_gym = [0] * len(names)
        for k, c in enumerate(gym_from_char):
            char_from_gym[c] = k
        if spherical_coords == "hinge" and character.num_qpos != 7 + character.num_dofs:
            balls = [j.name for j in character.joints if j.is_ball]
            raise NotSupportedError(
                f"spherical_coords='hinge' needs hinge joints only; {character.source} has ball joints {balls}"
            )
        self.character = character
        self.mode = spherical_coords
        self.gym_from_char = torch.tensor(gym_from_char, dtype=torch.long)
        self.char_from_gym = torch.tensor(char_from_gym, dtype=torch.long)

    def _idx(self, t: Tensor, which: Tensor) -> Tensor:
        return t.index_select(-1, which.to(t.device))

    def to_gym(
        self,
        root_pos: Tensor,
        root_rot: Tensor,
        dof_pos: Tensor,
        root_vel: Tensor,
        root_ang_vel: Tensor,
        dof_vel: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Motion-space DoF pos/vel (..., num_dofs) -> Isaac Gym DoF pos/vel (..., num_dofs), Isaac Gym order."""
        if self.mode == "hinge":
            c = self.character
            qpos = kinematics.dof_to_qpos(c, root_pos, root_rot, dof_pos)
            qvel = kinematics.dof_vel_to_qvel(c, root_rot, dof_pos, root_vel, root_ang_vel, dof_vel)
            dof_pos, dof_vel = qpos[..., 7:], qvel[..., 6:]
        return self._idx(dof_pos, self.gym_from_char), self._idx(dof_vel, self.gym_from_char)

    def from_gym(
        self, root_pos: Tensor, root_rot: Tensor, gym_pos: Tensor, gym_vel: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """Isaac Gym DoF pos/vel (..., num_dofs) -> motion-space DoF pos/vel, Character order."""
        pos = self._idx(gym_pos, self.char_from_gym)
        vel = self._idx(gym_vel, self.char_from_gym)
        if self.mode == "hinge":
            c = self.character
            qpos = torch.cat([root_pos, root_rot, pos], dim=-1)
            qvel = torch.cat([torch.zeros_like(root_pos), torch.zeros_like(root_pos), vel], dim=-1)
            _, _, pos = kinematics.qpos_to_dof(c, qpos)
            _, _, vel = kinematics.qvel_to_dof_vel(c, qpos, qvel)
        return pos, vel

    def targets_to_gym(self, dof_targets: Tensor) -> Tensor:
        """PD targets (..., num_dofs) in motion DoF space -> Isaac Gym position targets, Isaac Gym order."""
        t = dof_targets
        if self.mode == "hinge":
            lead = t.shape[:-1]
            zero = t.new_zeros(lead + (3,))
            ident = t.new_zeros(lead + (4,))
            ident[..., 0] = 1.0
            t = kinematics.dof_to_qpos(self.character, zero, ident, t)[..., 7:]
        return self._idx(t, self.gym_from_char)


def dof_properties(character: Character, gym_dof_names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Isaac Gym DoF property columns in Isaac Gym's DoF order, from the Character (MimicKit's PD convention).

    Keys: 'stiffness' (N m/rad), 'damping' (N m s/rad), 'effort' (N m; float32 max where unlimited),
    'armature' (kg m^2), 'hasLimits', 'lower', 'upper' (rad; a ball joint: +-its cone angle per axis).
    """
    from mimictools.engines.pd_gains import resolve_damping_ratios

    character = resolve_damping_ratios(character)  # <position dampratio>: kd as MuJoCo defines it
    names = list(character.dof_names)
    cols: Dict[str, List[float]] = {
        k: [] for k in ("stiffness", "damping", "effort", "armature", "lower", "upper")
    }
    limited: List[bool] = []
    for j in character.joints:
        per = 3 if j.is_ball else 1
        for k in range(len(j.mjcf_joints)):
            for _ in range(per):
                cols["stiffness"].append(float(j.stiffness[k]))
                cols["damping"].append(float(j.damping[k]))
                eff = float(j.effort_limit[k])
                cols["effort"].append(eff if math.isfinite(eff) else _EFFORT_UNLIMITED)
                cols["armature"].append(float(j.armature[k]))
                lo, hi = float(j.range_low[k]), float(j.range_high[k])
                if j.is_ball:
                    lo = -hi
                ok = math.isfinite(lo) and math.isfinite(hi)
                limited.append(ok)
                cols["lower"].append(lo if ok else 0.0)
                cols["upper"].append(hi if ok else 0.0)
    if len(limited) != len(names):  # pragma: no cover - guards a Character inconsistency
        raise EngineError(f"{character.source}: {len(limited)} DoF properties for {len(names)} DoFs")
    src = (
        index_map(names, list(gym_dof_names), "DoF")
        if set(gym_dof_names) == set(names)
        else list(range(len(names)))
    )
    out: Dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float32)[src] for k, v in cols.items()}
    out["hasLimits"] = np.asarray(limited, dtype=bool)[src]
    return out
