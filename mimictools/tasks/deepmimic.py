"""The DeepMimic motion-tracking env: one class composing the pure obs/reward/done functions.

Semantics follow xbpeng/MimicKit ``mimickit/envs/deepmimic_env.py``, ``char_env.py`` and
``sim_env.py`` (commit 15af0bf); the term definitions live in `observations`, `rewards`,
`terminations`, `tracking` and `actions` (each documents what it checked).

One control step (MimicKit's ``SimEnv.step``) is the four calls of the env contract
(`mimictools.tasks.env_api`), the same on every engine and device::

    apply_actions: clip actions to the action bounds -> engine.set_targets (PD targets)
    step_physics:  engine.step_physics (``substeps`` physics steps)
    observe:       time += control_dt -> reference frame at motion time = time + reset offset
                   -> observation, tracking errors (info), reward, done flags
    reset_where:   reference-state initialisation of the done envs (the runner calls it)

Reference frames: every step needs the reference now and ``tar_obs_steps`` control steps ahead
(MotionLib interpolation + FK per frame). All but the farthest were evaluated by the previous step,
so the env keeps the frames of its current time (``_frames``, one slot per query offset) and, after
a plain one-step advance, shifts them and evaluates only the new ones. Frame times are
``offset + (timestep + k) * control_dt`` with integer ``timestep + k``, so a shifted frame is bitwise
the frame a full evaluation gives. Resets evaluate all frames of the reset envs (they always did) and
store them. Only ``reset_where`` and ``observe`` change an env's clip or time, and each keeps the
frames in step; the cache is updated in place, with fixed shapes and no host syncs.

Reset (MimicKit's ``_reset_ref_motion`` + ``_ref_state_init``): for each env being reset, a clip is
drawn by weight, a start time uniformly in [0, clip length] (``rand_reset``) or 0, and the simulated
character is teleported to the reference state there (reference state initialisation). MimicKit's
DeepMimic env does not use ``init_pose`` in resets (it only places the character when the scene is
built), and neither does this one. As in MimicKit, test mode does not change ``rand_reset``; pass
``test_rand_reset=False`` to start test episodes at t = 0 (deterministic evaluation).

``observe`` does not reset done envs: the runner calls ``reset_where(done != NULL, obs)``. Everything runs on
``device`` with no Python loop over envs or bodies, under ``torch.no_grad`` (nothing the env returns
needs gradients). On a CPU shared with the MuJoCo engine's worker threads, run torch with one
intra-op thread (``torch.set_num_threads(1)``): torch's threads otherwise compete with the engine's
and the task's small tensor ops slow down by an order of magnitude.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from mimictools.character.kinematics import dof_to_local_rot, forward_kinematics
from mimictools.engines.base import SimState, check_env_ids
from mimictools.errors import CharacterError, ConfigError, NotSupportedError
from mimictools.tasks.actions import action_bounds
from mimictools.tasks.env_api import DoneFlag
from mimictools.tasks.observations import ObsConfig, compute_deepmimic_obs, deepmimic_obs_size, motion_phase
from mimictools.tasks.physics_check import unstable_envs
from mimictools.tasks.rewards import (
    RewardWeights,
    compute_deepmimic_reward,
    dof_err_weights,
    joint_err_weights,
)
from mimictools.tasks.terminations import compute_done, fall_contact, pose_fail
from mimictools.tasks.tracking import TrackState, compute_tracking_error

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.config.schema import EngineConfig, EnvConfig
    from mimictools.engines.base import Engine
    from mimictools.motion.library import MotionLib

__all__ = ["DeepMimicEnv", "build_env"]

_LOOP_WRAP = 1
_STATE_FIELDS = (
    "root_pos",
    "root_rot",
    "root_vel",
    "root_ang_vel",
    "joint_rot",
    "dof_vel",
    "body_pos",
    "body_rot",
)


def _body_ids(char, names, key: str, device) -> Tensor:
    ids = []
    for name in names:
        try:
            ids.append(char.body_index(name))
        except CharacterError as e:
            raise ConfigError(f"{key}: {e}") from None
    return torch.tensor(ids, dtype=torch.long, device=device)


def _track_parts(s: TrackState) -> Tuple[Tensor, ...]:
    """The fields of ``s`` in ``_STATE_FIELDS`` order."""
    return tuple(getattr(s, name) for name in _STATE_FIELDS)


class _Rows:
    """The env rows a reset writes, one API for two implementations with the same results:

    - blend (``ids`` None): every env's values are computed and ``torch.where``-blended in by ``mask``: no host
      sync and fixed shapes, so the reset can run inside a captured CUDA graph (GPU);
    - index: only the ``ids`` = ``mask.nonzero()`` rows are computed and written (CPU, where computing every
      env's reset at each step would cost more than the sync).
    """

    def __init__(self, mask: Tensor, ids: Optional[Tensor] = None) -> None:
        self.mask = mask
        """Shape (n,) bool."""
        self.ids = ids
        """Shape (k,) long, or None (blend)."""

    def take(self, x: Tensor) -> Tensor:
        """The rows of a per-env tensor Shape (n, ...) that this reset computes."""
        return x if self.ids is None else x.index_select(0, self.ids)

    def put_(self, dst: Tensor, src: Tensor) -> None:
        """In place: the reset rows of ``dst`` (n, ...) = ``src`` (computed rows)."""
        if self.ids is None:
            dst.copy_(torch.where(self.mask.reshape((-1,) + (1,) * (dst.dim() - 1)), src, dst))
        else:
            dst.index_copy_(0, self.ids, src)

    def merge(self, full: Tensor, src: Tensor) -> Tensor:
        """A new tensor: ``full`` (n, ...) with its reset rows = ``src``."""
        if self.ids is None:
            return torch.where(self.mask.reshape((-1,) + (1,) * (full.dim() - 1)), src, full)
        return full.index_copy(0, self.ids, src)


def _pack(parts, lead: Tuple[int, ...]) -> Tensor:
    """The tensors ``parts`` (each Shape lead + (...)) side by side in one tensor Shape lead + (F,): one cat."""
    return torch.cat([x.reshape(lead + (-1,)) for x in parts], dim=-1)


def _packed(parts, lead: Tuple[int, ...]) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """``parts`` packed (`_pack`) and a view of the packed tensor per part, with the part's shape."""
    data = _pack(parts, lead)
    return data, _unpack(data, tuple(tuple(x.shape[len(lead) :]) for x in parts))


def _unpack(data: Tensor, shapes: Tuple[Tuple[int, ...], ...]) -> Tuple[Tensor, ...]:
    """Views of ``data`` (..., F)'s consecutive column blocks, block i unflattened to ``shapes[i]``."""
    views, col = [], 0
    for shape in shapes:
        width = 1
        for d in shape:
            width *= d
        views.append(data[..., col : col + width].unflatten(-1, shape))
        col += width
    if col != data.shape[-1]:
        raise ValueError(f"packed tensor has {data.shape[-1]} columns, the layout {col}")
    return tuple(views)


class _RefFrames:
    """Reference frames of a batch of envs at several query times, packed in one float32 tensor ``data``
    Shape (k, s, F): each field below is a view of its columns, so a shift, a frame write or a masked reset of
    all nine fields is one tensor op (each op is a GPU kernel, issue 18)."""

    _FIELDS = (
        "root_pos",
        "root_rot",
        "root_vel",
        "root_ang_vel",
        "dof_pos",
        "dof_vel",
        "local_rot",
        "body_pos",
        "body_rot",
    )

    def __init__(self, data: Tensor, num_bodies: int, num_dofs: int) -> None:
        self.data = data
        """Shape (k, s, F) float32: the fields' columns side by side, in ``_FIELDS`` order."""
        nb, nd = num_bodies, num_dofs
        shapes = ((3,), (4,), (3,), (3,), (nd,), (nd,), (nb, 4), (nb, 3), (nb, 4))
        for name, view in zip(self._FIELDS, _unpack(data, shapes)):
            setattr(self, name, view)
        # field views (k, s, ...): root_pos (3) m, root_rot (4) wxyz, root_vel (3) m/s, root_ang_vel (3) rad/s,
        # dof_pos (nd) motion DoF space, dof_vel (nd), local_rot (nb, 4) local body rotations (root first),
        # body_pos (nb, 3) m, body_rot (nb, 4)

    @classmethod
    def pack(cls, k: int, m: int, parts: Tuple[Tensor, ...], num_bodies: int, num_dofs: int) -> _RefFrames:
        """Frames from the fields ``parts`` (``_FIELDS`` order, each Shape (k * m, ...), float32): one cat."""
        return cls(_pack(parts, (k * m,)).reshape(k, m, -1), num_bodies, num_dofs)

    def fields(self) -> Tuple[Tensor, ...]:
        """The nine field views, in ``_FIELDS`` order."""
        return tuple(getattr(self, name) for name in self._FIELDS)

    def put_rows_(self, rows: _Rows, new: _RefFrames) -> None:
        """In place: the env rows ``rows`` = ``new`` (the rows' batch)."""
        rows.put_(self.data, new.data)

    def shift_(self, dst_frames: Tensor, src_frames: Tensor) -> None:
        """In place: frames ``dst_frames`` = frames ``src_frames`` (the selection is copied first)."""
        self.data.index_copy_(1, dst_frames, self.data.index_select(1, src_frames))

    def put_frames_(self, frame_ids: Tensor, new: _RefFrames) -> None:
        """In place: frames ``frame_ids`` of every row = ``new`` (k, len(frame_ids), ...)."""
        self.data.index_copy_(1, frame_ids, new.data)

    def split(self, key_body_ids: Tensor) -> Tuple[TrackState, Tensor, Optional[Tuple[Tensor, ...]]]:
        """(TrackState now (k,), dof_pos now (k, nd), targets or None): frame 0 is now, the others
        targets = (root_pos (k, s-1, 3), root_rot (k, s-1, 4), joint_rot (k, s-1, nb-1, 4),
        key_pos (k, s-1, nk, 3))."""
        now = TrackState(
            root_pos=self.root_pos[:, 0],
            root_rot=self.root_rot[:, 0],
            root_vel=self.root_vel[:, 0],
            root_ang_vel=self.root_ang_vel[:, 0],
            joint_rot=self.local_rot[:, 0, 1:],
            dof_vel=self.dof_vel[:, 0],
            body_pos=self.body_pos[:, 0],
            body_rot=self.body_rot[:, 0],
        )
        tar = None
        if self.root_pos.shape[1] > 1:
            tar = (
                self.root_pos[:, 1:],
                self.root_rot[:, 1:],
                self.local_rot[:, 1:, 1:],
                self.body_pos[:, 1:].index_select(-2, key_body_ids),
            )
        return now, self.dof_pos[:, 0], tar


class DeepMimicEnv:
    """DeepMimic tracking of reference motions; implements `mimictools.tasks.env_api.VecEnv`.

    Args:
        config: env config (MimicKit's ``deepmimic_*_env.yaml`` keys).
        engine: a built engine (any backend) whose ``character`` the clips are for.
        motion_lib: the reference clips, built with the same character (body poses needed).
        device: where all tensors live (default: the engine's device).
        ground_contact_height: if set, ground contacts of bodies whose origin is higher than this
            (m) are ignored by the early-termination test (MimicKit's Isaac Gym rule; its other
            engines do not apply it). `build_env` passes the engine config's value for Isaac Gym.
        test_rand_reset: ``rand_reset`` to use in test mode; None keeps the config's (MimicKit).
        generator: torch generator for clip/start-time sampling (default: torch's global RNG).
        tracking_errors_in_training: whether ``step`` computes the tracking errors (``info``) in
            training mode too; test mode always does. See the attribute.
    """

    def __init__(
        self,
        config: EnvConfig,
        engine: Engine,
        motion_lib: MotionLib,
        device: Union[str, torch.device, None] = None,
        *,
        ground_contact_height: Optional[float] = None,
        test_rand_reset: Optional[bool] = None,
        generator: Optional[torch.Generator] = None,
        tracking_errors_in_training: bool = True,
    ) -> None:
        if config.env_name != "deepmimic":
            raise NotSupportedError(
                f"env_name {config.env_name!r} is not supported yet: only 'deepmimic' is built"
            )
        char = engine.character
        if motion_lib.frame_body_pos is None:
            raise ConfigError("DeepMimicEnv needs a MotionLib built with the character (body poses)")
        lib_char = motion_lib.char
        if lib_char is not None and lib_char.num_dofs != char.num_dofs:
            raise ConfigError(
                f"the motions are for a character with {lib_char.num_dofs} DoFs ({lib_char.source}) but the "
                f"engine simulates {char.source} with {char.num_dofs}"
            )
        self.config = config
        self.engine = engine
        self.motion_lib = motion_lib
        self.character = char
        self.device = torch.device(device) if device is not None else torch.device(engine.device)
        self.dtype = torch.float32
        self.num_envs = int(engine.num_envs)
        self.control_dt = float(engine.control_dt)
        self.generator = generator
        self.ground_contact_height = ground_contact_height
        self.test_rand_reset = test_rand_reset
        self.tracking_errors_in_training = bool(tracking_errors_in_training)
        """Compute MimicKit's tracking errors into ``step``'s ``info`` in training mode too (test mode
        always does: test episodes, ``mimic eval``). `mimictools.rl.runner.Runner` turns it off, as its training
        rollouts discard ``info``; ``info`` then holds ``Nonfinite_Frac`` only."""
        self._test = False
        dev = self.device

        self.obs_cfg = ObsConfig.from_env_config(config)
        if self.obs_cfg.enable_tar_obs and len(self.obs_cfg.tar_obs_steps) == 0:
            raise ConfigError("tar_obs_steps is empty while enable_tar_obs is True; list at least one step")
        self.key_body_ids = _body_ids(char, config.key_bodies, "key_bodies", dev)
        self.contact_body_ids = _body_ids(char, config.contact_bodies, "contact_bodies", dev)
        self.reward_weights = RewardWeights.from_env_config(config)
        self.joint_err_w = joint_err_weights(char, config.joint_err_w, device=dev)
        self.dof_err_w = dof_err_weights(char, self.joint_err_w)
        # MimicKit: the global root is tracked (reward, pose termination) only with global target obs.
        self.track_root = bool(config.enable_tar_obs and config.global_obs)
        self.track_root_h = bool(config.root_height_obs)

        low, high = action_bounds(char, zero_center_action=config.zero_center_action)
        self.action_low = torch.as_tensor(low, device=dev)
        self.action_high = torch.as_tensor(high, device=dev)
        self.action_dim = char.num_dofs
        self.obs_dim = deepmimic_obs_size(
            self.obs_cfg, char.num_bodies, char.num_dofs, len(config.key_bodies)
        )

        # Reference query offsets (control steps): now, then each target step ahead.
        steps = self.obs_cfg.tar_obs_steps if self.obs_cfg.enable_tar_obs else ()
        offsets = [0] + [int(s) for s in steps]
        self._ref_steps = torch.tensor(offsets, dtype=torch.long, device=dev)
        # After a one-step advance, frame j (offset o) is the previous step's frame at offset o + 1
        # when there was one; the others are evaluated anew.
        reuse = [(j, offsets.index(o + 1)) for j, o in enumerate(offsets) if o + 1 in offsets]
        fresh = [j for j, o in enumerate(offsets) if o + 1 not in offsets]
        self._reuse_dst = torch.tensor([d for d, _ in reuse], dtype=torch.long, device=dev)
        self._reuse_src = torch.tensor([s for _, s in reuse], dtype=torch.long, device=dev)
        self._fresh = torch.tensor(fresh, dtype=torch.long, device=dev)
        self._fresh_steps = self._ref_steps.index_select(0, self._fresh)  # their offsets (control steps)
        # action_ref_offset: the reference one control step ahead (the frame the PD targets aim at) when the
        # frames hold it, else the current one.
        self._action_ref_frame = offsets.index(1) if 1 in offsets else 0

        n = self.num_envs
        self.timestep = torch.zeros(n, dtype=torch.long, device=dev)
        """Control steps since each env's reset. Shape (n,)."""
        self._unstable_speed_steps = torch.zeros((), dtype=torch.long, device=dev)  # unstable_speed_steps()
        self.time_s = torch.zeros(n, dtype=torch.float64, device=dev)
        """Episode time (s) = timestep * control_dt. Shape (n,)."""
        self.motion_ids = torch.zeros(n, dtype=torch.long, device=dev)
        """Clip each env tracks. Shape (n,)."""
        self.motion_time_offset = torch.zeros(n, dtype=torch.float64, device=dev)
        """Clip time (s) at the last reset. Shape (n,)."""
        # Persistent per-env state lives in packed tensors with field views, so that writing a whole state (the
        # observe copy, a masked reset) is one tensor op, not one per field (each op is a GPU kernel, issue 18).
        empty = self._empty_state(n)
        self._sim_data, views = _packed(_track_parts(empty), (n,))
        self.sim_state = TrackState(**dict(zip(_STATE_FIELDS, views)))
        """Simulated state after the last observe()/reset_where() (views of one packed tensor)."""
        self._reset_data, views = _packed(self._ref_sim_state(empty, empty.dof_vel).fields(), (n,))
        self._reset_state = SimState(*views)
        """The state ``reset_where`` hands to the engine (n rows; only the reset rows are read)."""
        self.reset_by_blend = self.device.type == "cuda"
        """How ``reset_where`` writes the reset rows (same results and draws either way): True = compute every
        env and blend (no host sync: the GPU path, captured into CUDA graphs), False = index the reset envs
        (the CPU path: only they are computed)."""
        self._frames = self._ref_frames(
            self.motion_ids, self.motion_time_offset, self.timestep, self._ref_steps
        )
        self.ref_state = self._frames.split(self.key_body_ids)[0]
        """Reference state at the current time, updated by observe() and reset_where(): views of frame 0 of
        ``_frames`` (the reference frames)."""
        """Reference frames of each env's current time at the query offsets ``_ref_steps``
        (`_RefFrames`, Shape (n, len(_ref_steps), ...)); kept in step by reset/reset_where/observe."""

    # ------------------------------------------------------------------------------ VecEnv API
    @property
    def motion_time_s(self) -> Tensor:
        """Current clip time (s) of each env. Shape (n,), float64."""
        return self.time_s + self.motion_time_offset

    @property
    def rand_reset(self) -> bool:
        """Whether resets start at a random clip time now (depends on the mode, see ``test_rand_reset``)."""
        if self._test and self.test_rand_reset is not None:
            return bool(self.test_rand_reset)
        return bool(self.config.rand_reset)

    def set_mode(self, test: bool) -> None:
        """Training (False) or test (True) mode. Only affects resets when ``test_rand_reset`` is set."""
        self._test = bool(test)

    @torch.no_grad()
    def reset_where(
        self,
        mask: Tensor,
        obs: Tensor,
        *,
        motion_ids: Optional[Tensor] = None,
        start_time_s: Optional[Tensor] = None,
    ) -> Tensor:
        """Reference-state-initialise the envs where ``mask`` (n,) bool is True; returns ``obs`` (n, obs_dim) with
        their rows replaced by the reset observations.

        The draws are the same whichever envs are reset: one clip id (by weight, inverse CDF) and one start
        time per env, for all n envs. ``motion_ids`` / ``start_time_s`` (n,) replace them (evaluation of given
        clips). ``reset_by_blend`` picks how the rows are written (same results): blended, with no host sync
        (GPU, inside CUDA graphs), or indexed (CPU: only the reset envs are computed).
        """
        n, dev, lib = self.num_envs, self.device, self.motion_lib
        if tuple(mask.shape) != (n,) or tuple(obs.shape) != (n, self.obs_dim):
            raise ValueError(
                f"reset_where: mask must have Shape ({n},) and obs ({n}, {self.obs_dim}), got "
                f"{tuple(mask.shape)} and {tuple(obs.shape)}"
            )
        if motion_ids is None:
            u = torch.rand(n, device=dev, dtype=torch.float64, generator=self.generator)
            motion_ids = lib.motion_ids_from_uniform(u)
        motion_ids = torch.as_tensor(motion_ids, dtype=torch.long, device=dev).reshape(n)
        if start_time_s is not None:
            start = torch.as_tensor(start_time_s, dtype=torch.float64, device=dev).reshape(n)
        elif self.rand_reset:
            start = lib.sample_times(motion_ids, generator=self.generator).to(torch.float64)
        else:
            start = torch.zeros(n, dtype=torch.float64, device=dev)
        m = mask.to(device=dev, dtype=torch.bool)
        if self.reset_by_blend:
            rows = _Rows(m)
        else:
            ids = torch.nonzero(m, as_tuple=False).flatten()
            if ids.numel() == 0:
                return obs
            rows = _Rows(m, ids)
        motion_ids, start = rows.take(motion_ids), rows.take(start)
        rows.put_(self.motion_ids, motion_ids)
        rows.put_(self.motion_time_offset, start)
        self.timestep.masked_fill_(m, 0)
        self.time_s.masked_fill_(m, 0.0)

        frames = self._ref_frames(motion_ids, start, torch.zeros_like(motion_ids), self._ref_steps)
        self._frames.put_rows_(rows, frames)
        ref, dof_pos, tar = frames.split(self.key_body_ids)
        k = (int(motion_ids.shape[0]),)
        rows.put_(self._reset_data, _pack(self._ref_sim_state(ref, dof_pos).fields(), k))
        self.engine.set_state_where(m, self._reset_state)
        # The character now is exactly in the reference state (engines set it as given), so the reset
        # observation is computed from it without reading the engine back (as MimicKit, whose engines'
        # state buffers hold the values just set).
        # (ref_state views the frames, just written)
        rows.put_(self._sim_data, _pack(_track_parts(ref), k))
        return rows.merge(obs, self._obs(ref, tar, start, motion_ids))

    def reset(
        self,
        env_ids: Optional[Tensor] = None,
        *,
        motion_ids: Optional[Tensor] = None,
        start_time_s: Optional[Tensor] = None,
    ) -> Tensor:
        """``reset_where`` by index: envs ``env_ids`` (Shape (k,) long; all when None), optionally with given clips
        ``motion_ids`` (k,) and start times ``start_time_s`` (k,). Returns their obs, Shape (k, obs_dim)."""
        if env_ids is not None and env_ids.dtype == torch.bool:
            raise ValueError(
                "reset(env_ids) takes env indices (long), not a bool mask: use reset_where(mask, obs)"
            )
        n, dev = self.num_envs, self.device
        ids = check_env_ids(env_ids, n, dev)
        k = int(ids.shape[0])
        mask = torch.zeros(n, dtype=torch.bool, device=dev).index_fill_(0, ids, True)

        def spread(values: Optional[Tensor], dtype: torch.dtype) -> Optional[Tensor]:
            if values is None:
                return None
            v = torch.as_tensor(values, dtype=dtype, device=dev).reshape(k)
            return torch.zeros(n, dtype=dtype, device=dev).index_copy_(0, ids, v)

        zeros = torch.zeros(n, self.obs_dim, dtype=self.dtype, device=dev)
        obs = self.reset_where(
            mask,
            zeros,
            motion_ids=spread(motion_ids, torch.long),
            start_time_s=spread(start_time_s, torch.float64),
        )
        return obs.index_select(0, ids)

    @torch.no_grad()
    def step(self, actions: Tensor) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """One control step of all envs: ``apply_actions`` -> ``step_physics`` -> ``observe`` (done envs are not
        reset: ``reset_where`` does that). Returns ``observe``'s (obs, reward, done, info)."""
        self.apply_actions(actions)
        self.step_physics()
        return self.observe()

    def apply_actions(self, actions: Tensor) -> None:
        """Act: PD targets in motion DoF space, Shape (n, action_dim), clipped to ``[action_low, action_high]``
        (as MimicKit; NaN becomes 0: a diverged policy is reported by the runner from its own
        record of the actions), written to the engine for the next ``step_physics``. With
        ``action_ref_offset`` the clipped actions are offsets added to the reference DoF positions one
        control step ahead (the current ones when ``tar_obs_steps`` holds no 1)."""
        targets = self._clip_actions(actions)
        if self.config.action_ref_offset:
            targets = targets + self._frames.dof_pos[:, self._action_ref_frame].to(self.dtype)
        self.engine.set_targets(targets)

    def step_physics(self) -> None:
        """Physics: the engine's ``substeps`` physics steps of one control step."""
        self.engine.step_physics()

    def _clip_actions(self, actions: Tensor) -> Tensor:
        """Actions (n, action_dim) clipped to the action bounds; ValueError on another shape."""
        if actions.shape != (self.num_envs, self.action_dim):
            raise ValueError(
                f"actions must have Shape ({self.num_envs}, {self.action_dim}), got {tuple(actions.shape)}"
            )
        a = actions.to(self.dtype)
        a = torch.nan_to_num(a, nan=0.0)  # +-inf -> +-max float, clipped below
        return torch.maximum(torch.minimum(a, self.action_high), self.action_low)

    @torch.no_grad()
    def observe(self) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """Second half of ``step``, after the physics: advance time, read the state, compute the
        observation, reward, done flags and tracking errors (``step``'s return values). In-place
        updates of the env's persistent tensors only (graph capture reads them at fixed addresses)."""
        self.timestep += 1
        self.time_s.copy_(self.timestep.to(torch.float64) * self.control_dt)
        motion_time = self.motion_time_s
        ref, _, tar = self._advance_reference()
        sim = self.read_sim_state()
        self._sim_data.copy_(_pack(_track_parts(sim), (self.num_envs,)))  # (ref_state views the frames)

        obs = self._obs(sim, tar, motion_time, self.motion_ids)
        track = self._test or self.tracking_errors_in_training
        info = compute_tracking_error(sim, ref) if track else {}
        reward = compute_deepmimic_reward(
            sim,
            ref,
            key_body_ids=self.key_body_ids,
            joint_w=self.joint_err_w,
            dof_w=self.dof_err_w,
            weights=self.reward_weights,
            track_root=self.track_root,
            track_root_h=self.track_root_h,
        )
        done = self._done(sim, ref, motion_time)
        self._unstable_speed_steps.add_(unstable_envs(sim.dof_vel, sim.root_ang_vel).sum())
        # One world whose physics blew up (NaN/inf, e.g. a deep ground contact right after a reset)
        # must not stop the training of thousands: it ends as FAIL with zero reward and a zero
        # observation, and the runner resets it. torch.where keeps this free of host syncs.
        bad = ~torch.isfinite(obs).all(dim=-1)
        obs = torch.where(bad.unsqueeze(-1), torch.zeros_like(obs), obs)
        reward = torch.where(bad, torch.zeros_like(reward), reward)
        done = torch.where(bad, torch.full_like(done, int(DoneFlag.FAIL)), done)
        info = {k: torch.where(bad, torch.zeros_like(v), v) for k, v in info.items()}
        info["Nonfinite_Frac"] = bad.to(reward.dtype)
        return obs, reward, done, info

    def unstable_speed_steps(self, reset: bool = False) -> int:
        """Env-steps since the last ``reset`` whose joint/root speeds exceeded
        `mimictools.tasks.physics_check.SPEED_LIMIT_RAD_S` or were NaN/inf, counted on the device inside
        ``observe`` (no host sync there); reading it is one (call it between iterations)."""
        n = int(self._unstable_speed_steps)
        if reset:
            self._unstable_speed_steps.zero_()
        return n

    def close(self) -> None:
        """Release the engine."""
        self.engine.close()

    # ------------------------------------------------------------------------------ internals
    def _empty_state(self, n: int) -> TrackState:
        nb, nd, dev, dt = self.character.num_bodies, self.character.num_dofs, self.device, self.dtype
        quat = torch.zeros(n, 4, dtype=dt, device=dev)
        quat[:, 0] = 1.0
        return TrackState(
            root_pos=torch.zeros(n, 3, dtype=dt, device=dev),
            root_rot=quat,
            root_vel=torch.zeros(n, 3, dtype=dt, device=dev),
            root_ang_vel=torch.zeros(n, 3, dtype=dt, device=dev),
            joint_rot=quat.unsqueeze(1).repeat(1, nb - 1, 1),
            dof_vel=torch.zeros(n, nd, dtype=dt, device=dev),
            body_pos=torch.zeros(n, nb, 3, dtype=dt, device=dev),
            body_rot=quat.unsqueeze(1).repeat(1, nb, 1),
        )

    @staticmethod
    def _ref_sim_state(ref: TrackState, dof_pos: Tensor) -> SimState:
        return SimState(
            root_pos=ref.root_pos,
            root_rot=ref.root_rot,
            root_vel=ref.root_vel,
            root_ang_vel=ref.root_ang_vel,
            dof_pos=dof_pos,
            dof_vel=ref.dof_vel,
        )

    def read_sim_state(self) -> TrackState:
        """Read the simulated state of all envs from the engine (float32, ``device``)."""
        e, dt = self.engine, self.dtype
        s = e.get_state()
        dof_pos = s.dof_pos.to(dt)
        return TrackState(
            root_pos=s.root_pos.to(dt),
            root_rot=s.root_rot.to(dt),
            root_vel=s.root_vel.to(dt),
            root_ang_vel=s.root_ang_vel.to(dt),
            joint_rot=dof_to_local_rot(self.character, dof_pos)[..., 1:, :],
            dof_vel=s.dof_vel.to(dt),
            body_pos=e.body_pos().to(dt),
            body_rot=e.body_rot().to(dt),
        )

    def _ref_frames(
        self, motion_ids: Tensor, offset_s: Tensor, timestep: Tensor, steps: Tensor
    ) -> _RefFrames:
        """Reference frames of envs with clips ``motion_ids`` (k,), reset offsets ``offset_s`` (k,) and
        ``timestep`` (k,) at ``steps`` (s,) control steps ahead: one MotionLib query of k * s frames.

        Frame time = ``offset_s + (timestep + step) * control_dt``: the step count is summed as an
        integer, so the same frame queried from another timestep has bitwise the same time.
        """
        k, m = motion_ids.shape[0], steps.shape[0]
        ids = motion_ids.unsqueeze(-1).expand(k, m).reshape(-1)
        count = (timestep.unsqueeze(-1) + steps).to(torch.float64)
        times = (offset_s.unsqueeze(-1) + count * self.control_dt).reshape(-1)
        f = self.motion_lib.calc_motion_frame(ids, times, bodies=False)  # FK below, of the blended DoFs
        dt = self.dtype
        # Body poses by FK of the interpolated pose, as MimicKit (not MotionLib's interpolated FK),
        # so that a character set to the reference state has exactly the reference body poses.
        local_rot = dof_to_local_rot(self.character, f.dof_pos.to(dt))
        body_pos, body_rot = forward_kinematics(
            self.character, f.root_pos.to(dt), f.root_rot.to(dt), local_rot
        )

        parts = (
            f.root_pos,
            f.root_rot,
            f.root_vel,
            f.root_ang_vel,
            f.dof_pos,
            f.dof_vel,
            local_rot,
            body_pos,
            body_rot,
        )
        c = self.character
        return _RefFrames.pack(k, m, tuple(x.to(dt) for x in parts), c.num_bodies, c.num_dofs)

    def _advance_reference(self):
        """The reference of all envs after ``timestep += 1`` (now and at the target steps): the frames the previous time already had
        are shifted in ``_frames``, only the others are evaluated. In place, fixed shapes, no syncs."""
        frames = self._frames
        if self._reuse_dst.numel():
            frames.shift_(self._reuse_dst, self._reuse_src)
        new = self._ref_frames(self.motion_ids, self.motion_time_offset, self.timestep, self._fresh_steps)
        frames.put_frames_(self._fresh, new)
        return frames.split(self.key_body_ids)

    def _obs(self, sim: TrackState, tar, motion_time: Tensor, motion_ids: Tensor) -> Tensor:
        phase = None
        if self.obs_cfg.enable_phase_obs:
            lib = self.motion_lib
            wrap = lib.loop_mode(motion_ids) == _LOOP_WRAP
            phase = motion_phase(
                motion_time.to(self.dtype), lib.motion_length(motion_ids).to(self.dtype), wrap
            )
        tar_root_pos, tar_root_rot, tar_joint_rot, tar_key_pos = tar if tar is not None else (None,) * 4
        return compute_deepmimic_obs(
            self.obs_cfg,
            sim.root_pos,
            sim.root_rot,
            sim.root_vel,
            sim.root_ang_vel,
            sim.joint_rot,
            sim.dof_vel,
            sim.body_pos.index_select(-2, self.key_body_ids),
            phase=phase,
            tar_root_pos=tar_root_pos,
            tar_root_rot=tar_root_rot,
            tar_joint_rot=tar_joint_rot,
            tar_key_pos=tar_key_pos,
        )

    def _done(self, sim: TrackState, ref: TrackState, motion_time: Tensor) -> Tensor:
        cfg, lib = self.config, self.motion_lib
        failed = None
        if cfg.enable_early_termination:
            failed = fall_contact(
                self.engine.contact_forces(),
                sim.body_pos,
                self.contact_body_ids,
                ground_contact_height=self.ground_contact_height,
            )
            if cfg.pose_termination:
                failed = failed | pose_fail(
                    sim.body_pos,
                    ref.body_pos,
                    sim.root_rot,
                    ref.root_rot,
                    dist_m=cfg.pose_termination_dist,
                    global_obs=cfg.global_obs,
                    track_root=self.track_root,
                )
        return compute_done(
            time_s=self.time_s,
            episode_length_s=cfg.episode_length,
            motion_time_s=motion_time,
            motion_length_s=lib.motion_length(self.motion_ids).to(torch.float64),
            clamp_clip=lib.loop_mode(self.motion_ids) != _LOOP_WRAP,
            failed=failed,
        )


def build_env(
    env_cfg: EnvConfig,
    engine_cfg: EngineConfig,
    num_envs: int,
    motion_path: Union[str, Path],
    char_path: Union[str, Path],
    device: Union[str, torch.device] = "cpu",
    num_threads: int = 0,
    motion_fps: Optional[float] = None,
    **env_kwargs,
) -> DeepMimicEnv:
    """Load the character and clips, build the engine and the env.

    ``motion_path``/``char_path`` are the files actually used (resolving the config's relative
    ``motion_file``/``char_file`` is `mimictools.app.run.resolve_run`'s job). ``motion_fps``: frame rate of
    clips whose files store none (robot .csv; `mimictools.motion.io.resolve_clip_fps`). ``num_threads``: CPU
    engine worker threads (0 = all cores). ``env_kwargs`` go to `DeepMimicEnv` (e.g. ``test_rand_reset``,
    ``generator``).
    """
    from mimictools.character.gains import apply_joint_gains
    from mimictools.character.mjcf import load_character
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.registry import canonical_engine_name, make_engine
    from mimictools.motion.library import MotionLib

    char = apply_joint_gains(load_character(Path(char_path)), env_cfg.joint_gains)
    lib = MotionLib.from_path(Path(motion_path), char=char, device=device, fps=motion_fps)
    engine_name = canonical_engine_name(engine_cfg.engine_name)
    spec = EngineSpec(
        num_envs=int(num_envs),
        control_freq=float(engine_cfg.control_freq),
        sim_freq=float(engine_cfg.sim_freq),
        control_mode=engine_cfg.control_mode,
        device=str(device),
        num_threads=int(num_threads),
        implicit_pd=bool(engine_cfg.implicit_pd),
        solver_iterations=int(engine_cfg.solver_iterations),
        ls_iterations=int(engine_cfg.ls_iterations),
        solver_tolerance=float(engine_cfg.solver_tolerance),
    )
    engine = make_engine(engine_name, char, spec)
    if engine_name == "isaacgym":
        # Isaac Gym reports net contact forces (self-collisions included); MimicKit masks them by
        # height. MuJoCo / MJWarp report ground contacts only, like MimicKit's newton engine.
        env_kwargs.setdefault("ground_contact_height", engine_cfg.ground_contact_height)
    return DeepMimicEnv(env_cfg, engine, lib, device=device, **env_kwargs)
