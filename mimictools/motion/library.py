"""``MotionLib``: all clips of a motion set as flat torch tensors, sampled and interpolated in batches.

This is what training reads every control step, so everything here is batched and lives on ``device``;
nothing loops over environments. At construction the frames of every clip are concatenated
(per-clip ``start`` offsets) and per-frame quantities are precomputed once (in float64, then cast):

- root position (m), root rotation (quaternion wxyz), DoF positions and joint local rotations
  (``kinematics.dof_to_local_rot``);
- velocities by forward finite differences: root linear velocity (world, m/s), root angular velocity
  (world, rad/s, from ``q1 q0^-1``), DoF velocity (hinge: angle rate; spherical: angular velocity in the
  child frame from ``q0^-1 q1``, rad/s). A clip's last frame repeats the previous frame's velocity;
- body positions/rotations by forward kinematics when a ``Character`` is given.

``calc_motion_frame(ids, times)`` turns times into a frame index and blend (clamp: time clamped to
[0, length]; wrap: time modulo length, and the root/body positions advanced in xy by the number of whole
cycles times the clip's (last - first) root displacement, as MimicKit does), then lerps positions and
velocities and slerps rotations (the root's and every joint's), and runs FK on the blended pose for the body
positions/rotations, as MimicKit's environment does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mimictools.errors import MotionFormatError
from mimictools.math.rotations import (
    exp_map_to_quat,
    quat_conj,
    quat_mul,
    quat_slerp,
    quat_to_exp_map,
)
from mimictools.motion.motion import LOOP_WRAP, Motion

__all__ = ["MotionFrame", "MotionLib"]


@dataclass(frozen=True)
class MotionFrame:
    """Reference state for a batch of (motion id, time) queries. N = number of queries."""

    root_pos: Tensor
    """Shape (N, 3), m, world (wrap clips include the whole-cycle offset)."""
    root_rot: Tensor
    """Shape (N, 4), wxyz, world."""
    root_vel: Tensor
    """Shape (N, 3), m/s, world."""
    root_ang_vel: Tensor
    """Shape (N, 3), rad/s, world."""
    dof_pos: Tensor
    """Shape (N, num_dofs): hinge angles (rad) and spherical exp maps."""
    dof_vel: Tensor
    """Shape (N, num_dofs), rad/s (spherical: angular velocity in the child body frame)."""
    body_pos: Optional[Tensor]
    """Shape (N, num_bodies, 3), m, world; None without a Character."""
    body_rot: Optional[Tensor]
    """Shape (N, num_bodies, 4), wxyz, world; None without a Character."""


def _as_motion_list(motions: Any) -> Tuple[List[Motion], Optional[List[float]]]:
    """Accept ``[Motion]``, ``[(Motion, weight)]`` (what ``load_motion_set`` returns) or one Motion."""
    if isinstance(motions, Motion):
        return [motions], None
    items = list(motions)
    if items and isinstance(items[0], tuple):
        return [m for m, _ in items], [float(w) for _, w in items]
    return items, None


class MotionLib:
    """Batched sampling and interpolation over a set of clips (see module docstring).

    ``motions``: a list of ``Motion`` (or ``(Motion, weight)`` pairs as ``load_motion_set`` returns);
    ``weights``: sampling weights (default: the pairs' weights, else uniform); ``char``: the
    ``Character`` (needed for spherical-joint interpolation, DoF velocities and body poses; without
    it DoFs are lerped as plain numbers and ``body_pos``/``body_rot`` are None);
    ``allow_nonfinite``: load clips with NaN/inf values instead of refusing them.
    """

    def __init__(
        self,
        motions: Any,
        weights: Optional[Sequence[float]] = None,
        char: Optional[Any] = None,
        device: Union[str, torch.device] = "cpu",
        allow_nonfinite: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        motion_list, pair_weights = _as_motion_list(motions)
        if not motion_list:
            raise MotionFormatError("MotionLib needs at least one motion clip")
        if weights is None:
            weights = pair_weights if pair_weights is not None else [1.0] * len(motion_list)
        weights = [float(w) for w in weights]
        if len(weights) != len(motion_list):
            raise MotionFormatError(f"MotionLib got {len(motion_list)} clips but {len(weights)} weights")
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise MotionFormatError(f"MotionLib weights must be finite, >= 0 and not all 0; got {weights}")

        self.device = torch.device(device)
        self.dtype = dtype
        self.char = char
        self.motions = tuple(motion_list)
        width = motion_list[0].frame_width if char is None else char.frame_width
        for m in motion_list:
            if char is not None:
                from mimictools.motion.io import check_frame_width

                check_frame_width(m, char)
            elif m.frame_width != width:
                raise MotionFormatError(
                    f"{m.source or '<motion>'}: has {m.frame_width} columns, the first clip has {width}"
                )
            if not allow_nonfinite:
                self._refuse_nonfinite(m)
        self._build(motion_list, weights)

    # ---- construction ---------------------------------------------------------------------------------
    def _refuse_nonfinite(self, m: Motion) -> None:
        if np.isfinite(m.frames).all():
            return
        from mimictools.motion.checks import describe_nonfinite

        issues = describe_nonfinite(m.frames, self.char)
        parts = "; ".join(i["message"] for i in issues[:3])
        more = f"; and {len(issues) - 3} more" if len(issues) > 3 else ""
        raise MotionFormatError(
            f"{m.source or '<motion>'}: non-finite values: {parts}{more}. MotionLib refuses such clips "
            f"(repair it: mimic motion convert {m.source or 'CLIP'} -o fixed.pkl --fix-nonfinite; or drop it "
            "from the dataset)"
        )

    def _build(self, motions: List[Motion], weights: List[float]) -> None:
        f64 = torch.float64
        nums = [m.num_frames for m in motions]
        fps = [float(m.fps) for m in motions]
        frames = torch.as_tensor(np.concatenate([m.frames for m in motions], axis=0), dtype=f64)
        total = frames.shape[0]
        num_frames = torch.tensor(nums, dtype=torch.long)
        start = torch.zeros_like(num_frames)
        start[1:] = torch.cumsum(num_frames, 0)[:-1]
        end = start + num_frames - 1
        fps_t = torch.tensor(fps, dtype=f64)
        frame_fps = torch.repeat_interleave(fps_t, num_frames).unsqueeze(-1)  # (F, 1)

        root_pos = frames[:, 0:3]
        root_rot = exp_map_to_quat(frames[:, 3:6])
        dof = frames[:, 6:]

        # forward differences, then each clip's last frame repeats the one before (0 for 1-frame clips)
        def fwd_diff(x: Tensor) -> Tensor:
            v = torch.zeros_like(x)
            if total > 1:
                v[:-1] = x[1:] - x[:-1]
            return v

        def fix_last(v: Tensor) -> Tensor:
            v = v * frame_fps.reshape((-1,) + (1,) * (v.dim() - 1))
            multi = num_frames > 1
            v[end[multi]] = v[end[multi] - 1]
            v[end[~multi]] = 0.0
            return v

        root_vel = fix_last(fwd_diff(root_pos))
        drot = torch.zeros_like(root_pos)
        if total > 1:
            drot[:-1] = quat_to_exp_map(quat_mul(root_rot[1:], quat_conj(root_rot[:-1])))
        root_ang_vel = fix_last(drot)
        dof_vel = fwd_diff(dof)

        self._sph_body = None  # type: Optional[Tensor]
        self._sph_cols = None  # type: Optional[Tensor]
        local_rot = body_pos = body_rot = None
        if self.char is not None:
            from mimictools.character.kinematics import dof_to_local_rot, forward_kinematics

            char = self.char
            local_rot = dof_to_local_rot(char, dof)
            sph = [j for j in char.joints if j.kind == "spherical"]
            if sph:
                sb = torch.tensor([j.body for j in sph], dtype=torch.long)
                sc = torch.tensor([[j.dof_offset + k for k in range(3)] for j in sph], dtype=torch.long)
                q = local_rot[:, sb]  # (F, S, 4)
                w = torch.zeros(total, len(sph), 3, dtype=f64)
                if total > 1:
                    w[:-1] = quat_to_exp_map(quat_mul(quat_conj(q[:-1]), q[1:]))  # child-frame rotation
                dof_vel[:, sc.reshape(-1)] = w.reshape(total, -1)
                self._sph_body = sb.to(self.device)
                self._sph_cols = sc.reshape(-1).to(self.device)
            body_pos, body_rot = forward_kinematics(char, root_pos, root_rot, local_rot)
        dof_vel = fix_last(dof_vel)

        wrap_delta = root_pos[end] - root_pos[start]
        wrap_delta[:, 2] = 0.0
        loop = torch.tensor([m.loop_mode for m in motions], dtype=torch.long)
        wrap_delta[loop != LOOP_WRAP] = 0.0

        dev, dt = self.device, self.dtype
        nd = dof.shape[1]
        nb = 0 if local_rot is None else local_rot.shape[1]
        # Two packed per-frame tables, so a query is 2 x 2 row gathers (index_select is much faster than
        # many advanced-indexing gathers on CPU): linear quantities (lerped) and quaternions (slerped).
        lin = torch.cat([root_pos, root_vel, root_ang_vel, dof, dof_vel], dim=1)
        quat = (
            root_rot.unsqueeze(1)
            if local_rot is None
            else torch.cat([root_rot.unsqueeze(1), local_rot], dim=1)
        )
        self._lin = lin.to(device=dev, dtype=dt).contiguous()
        """Shape (F, 9 + 2 num_dofs): root_pos, root_vel, root_ang_vel, dof_pos, dof_vel."""
        self._quat = quat.to(device=dev, dtype=dt).contiguous()
        """Shape (F, 1 + num_bodies, 4): root_rot, then the joint (local) rotation of every body."""
        self._nd, self._nb = nd, nb

        # Per-frame views (documented attributes; the packed tables are what queries read).
        self.frame_root_pos = self._lin[:, 0:3]
        """Shape (F, 3), m: every frame of every clip, concatenated."""
        self.frame_root_vel = self._lin[:, 3:6]
        self.frame_root_ang_vel = self._lin[:, 6:9]
        self.frame_dof_pos = self._lin[:, 9 : 9 + nd]
        self.frame_dof_vel = self._lin[:, 9 + nd : 9 + 2 * nd]
        self.frame_root_rot = self._quat[:, 0]
        self.frame_local_rot = None if local_rot is None else self._quat[:, 1:]
        """Shape (F, num_bodies, 4): joint rotation per body (identity for root/welded bodies)."""
        self.frame_body_pos = None if body_pos is None else body_pos.to(device=dev, dtype=dt)
        """Shape (F, num_bodies, 3), m: FK of each frame (queries recompute FK for the blended pose)."""
        self.frame_body_rot = None if body_rot is None else body_rot.to(device=dev, dtype=dt)

        self.motion_start = start.to(dev)
        """Shape (M,), long: index of each clip's first frame in the flat tensors."""
        self.motion_num_frames = num_frames.to(dev)
        self.motion_fps = fps_t.to(device=dev, dtype=dt)
        self.motion_lengths = ((num_frames - 1).to(f64) / fps_t).to(device=dev, dtype=dt)
        """Shape (M,), s: (num_frames - 1) / fps."""
        self.motion_loop_modes = loop.to(dev)
        self.motion_wrap_delta = wrap_delta.to(device=dev, dtype=dt)
        """Shape (M, 3), m: root xy advance per cycle for wrap clips (0 for clamp clips)."""
        # What a frame query needs of each clip, packed so that it gathers all of it with two index_selects
        # (`calc_frame_blend`; each op is a GPU kernel in the training step): float (length, fps, length or 1
        # when 0) and long (wraps: loop mode wrap and length > 0, last frame clamped to >= 0, last frame, start).
        length = self.motion_lengths
        safe_len = torch.where(length > 0, length, torch.ones_like(length))
        self._clip_f = torch.stack([length, self.motion_fps, safe_len], 1)
        n_dev = self.motion_num_frames
        wraps = ((self.motion_loop_modes == LOOP_WRAP) & (length > 0)).long()
        self._clip_i = torch.stack([wraps, (n_dev - 1).clamp_min(0), n_dev - 1, self.motion_start], 1)
        w = torch.tensor(weights, dtype=f64)
        self.motion_weights = (w / w.sum()).to(device=dev, dtype=dt)
        cdf = torch.cumsum(w / w.sum(), 0)
        cdf[-1] = 1.0
        self._weight_cdf = cdf.to(device=dev, dtype=torch.float64)
        """Shape (M,): cumulative weights, last = 1 (inverse-CDF sampling, `motion_ids_from_uniform`)."""
        self.motion_files = tuple(m.source for m in motions)

    @classmethod
    def from_path(
        cls,
        path: Union[str, Path],
        char: Optional[Any] = None,
        device: Union[str, torch.device] = "cpu",
        allow_nonfinite: bool = False,
        fps: Optional[float] = None,
    ) -> MotionLib:
        """Load a clip, a folder or a dataset yaml (``load_motion_set``) into a ``MotionLib``; ``fps``: frame
        rate of clips whose files store none (robot .csv)."""
        from mimictools.motion.io import load_motion_set

        pairs = load_motion_set(path, char=char, fps=fps)
        return cls(pairs, char=char, device=device, allow_nonfinite=allow_nonfinite)

    # ---- queries ---------------------------------------------------------------------------------------
    @property
    def num_motions(self) -> int:
        return int(self.motion_num_frames.shape[0])

    @property
    def total_length(self) -> float:
        """Sum of clip lengths (s)."""
        return float(self.motion_lengths.sum().item())

    def motion_length(self, ids: Tensor) -> Tensor:
        """Clip lengths (s) for motion ids (N,) -> (N,)."""
        return self.motion_lengths[ids]

    def loop_mode(self, ids: Tensor) -> Tensor:
        """Loop modes (0 clamp, 1 wrap) for motion ids (N,) -> (N,) long."""
        return self.motion_loop_modes[ids]

    def motion_ids_from_uniform(self, u: Tensor) -> Tensor:
        """Motion ids drawn by weight from uniform samples ``u`` in [0, 1) (inverse CDF). Shape like ``u``, long.

        Draws clips by weight with no host sync and a fixed number of random numbers per call (usable
        inside a captured CUDA graph).
        """
        ids = torch.searchsorted(self._weight_cdf, u.to(torch.float64).contiguous(), right=True)
        return ids.clamp_max(self.num_motions - 1)

    def sample_times(
        self, ids: Tensor, truncate_time: float = 0.0, generator: Optional[torch.Generator] = None
    ) -> Tensor:
        """Uniform times in [0, length - truncate_time] (s) per id. Shape (N,)."""
        u = torch.rand(ids.shape, device=self.device, dtype=self.dtype, generator=generator)
        return u * (self.motion_lengths[ids] - truncate_time).clamp_min(0.0)

    def calc_frame_blend(self, ids: Tensor, times: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(idx0, idx1, blend, cycles)``: flat frame indices (N,), blend in [0, 1] (N,) and the whole
        number of wrap cycles (N,) (0 for clamp clips) for times (s)."""
        clip_f, clip_i = self._clip_f.index_select(0, ids), self._clip_i.index_select(0, ids)
        length, fps, safe_len = clip_f[:, 0], clip_f[:, 1], clip_f[:, 2]
        wrap, last_clamped, last, start = clip_i[:, 0] > 0, clip_i[:, 1], clip_i[:, 2], clip_i[:, 3]
        times = times.to(dtype=self.dtype)
        cycles = torch.where(wrap, torch.floor(times / safe_len), torch.zeros_like(times))
        t = times - cycles * length
        t = torch.minimum(t.clamp_min(0.0), length)
        pos = t * fps
        i0 = torch.minimum(pos.floor().long(), last_clamped)
        i1 = torch.minimum(i0 + 1, last)
        blend = (pos - i0.to(pos.dtype)).clamp(0.0, 1.0)
        return start + i0, start + i1, blend, cycles

    def calc_motion_frame(self, ids: Tensor, times: Tensor, bodies: bool = True) -> MotionFrame:
        """Interpolated reference state for motion ids (N,) at times (N,) seconds.

        ``bodies=False`` skips FK (``body_pos``/``body_rot`` are None), e.g. for resets that only need
        the root and DoFs.
        """
        g0, g1, blend, cycles = self.calc_frame_blend(ids, times)
        n = g0.shape[0]
        nd = self._nd
        b = blend.unsqueeze(-1)
        lin0 = self._lin.index_select(0, g0)
        lin = lin0 + b * (self._lin.index_select(0, g1) - lin0)
        quat = quat_slerp(self._quat.index_select(0, g0), self._quat.index_select(0, g1), b.unsqueeze(-1))

        offset = cycles.unsqueeze(-1) * self.motion_wrap_delta.index_select(0, ids)  # (N, 3)
        root_pos = lin[:, 0:3] + offset
        root_rot = quat[:, 0]
        dof_pos = lin[:, 9 : 9 + nd]
        body_pos = body_rot = None
        if self._nb:
            local_rot = quat[:, 1:]
            if self._sph_body is not None:
                exp = quat_to_exp_map(local_rot.index_select(1, self._sph_body)).reshape(n, -1)
                dof_pos = dof_pos.index_copy(-1, self._sph_cols, exp)
            from mimictools.character.kinematics import forward_kinematics

            # FK of the blended pose (as MimicKit's env does): lerping per-frame body positions instead
            # would cut arcs short by up to 16 cm on the 16 fps backflip.
            if bodies:
                body_pos, body_rot = forward_kinematics(self.char, root_pos, root_rot, local_rot)
        return MotionFrame(
            root_pos=root_pos,
            root_rot=root_rot,
            root_vel=lin[:, 3:6],
            root_ang_vel=lin[:, 6:9],
            dof_pos=dof_pos,
            dof_vel=lin[:, 9 + nd : 9 + 2 * nd],
            body_pos=body_pos,
            body_rot=body_rot,
        )
