"""The retargeting solver: whole-clip, batched Gauss-Newton in hinge-angle space, in torch.

Pipeline (``retarget``):

1. **Targets.** Each mapping entry follows a source point (a joint, or the mean of several). The
   source is brought to the target's size: the entry tree (each entry hangs off the entry of its
   nearest mapped ancestor body) is rebuilt from the root entry down, every segment keeping the
   source's *direction* and getting the target's *length* (``scale=None``, "auto"; the root
   trajectory is scaled by the leg-length ratio), or everything is scaled uniformly (``scale=X``).
   For BVH sources the feet are then put on z = 0 (``ground='auto'``).
2. **Orientation calibration.** The source and target rest poses (zero rotations) are aligned by a
   yaw (fitted on the mapped points); an entry's orientation target is then the source joint's
   rotation relative to its rest, applied to the target body's rest rotation.
3. **Contacts.** A foot point is in contact while its target is within ``contact_height_m`` of the
   ground and slower than ``contact_speed_mps``.
4. **Initial guess, per frame, analytic.** Root: rigid fit of the root's mapped points; then each
   joint, parent first, rotates its child points onto their targets (Kabsch / shortest arc, twist
   from the source orientation where one is mapped), decomposed into the joint's hinge angles and
   clamped to the limits.
5. **Gauss-Newton on all frames at once.** Variables: root position, root rotation (world-frame
   increments), every hinge angle (a 3-DoF hinge triple is three hinges), ball joints (body-frame
   increments). Residuals per frame: mapped positions and orientations, geoms not under the ground
   (the lowest few points per frame), feet soles on the ground while in contact, no sliding while in
   contact (second stage: each contact span is pinned to its mean position), temporal smoothness
   (second differences, Jacobi-style against the neighbours' previous iterate), and a weak pull to
   the initial guess. Each step solves the per-frame 34x34 (for the humanoid) normal equations
   (Cholesky, batched); a hinge at a limit whose gradient points outward is frozen for the step, and
   every step ends by clamping the hinge angles into their limits: **limits hold exactly** (with a
   margin of ``limit_margin_rad`` so float32 storage and the Euler decomposition of the exponential
   map cannot push them over).
6. **Output.** Hinge angles -> joint rotations -> MimicKit DoFs (exponential maps for 3-DoF joints).
   Finally any frame whose lowest geom is still below z = 0 is lifted (exact, from the geometry).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.character.model import Character
from mimictools.errors import ConfigError
from mimictools.math.rotations import (
    exp_map_to_quat,
    matrix_to_quat,
    quat_conj,
    quat_mul,
    quat_normalize,
    quat_rotate,
    quat_slerp,
    quat_to_euler_xyz,
    quat_to_exp_map,
)
from mimictools.motion.retarget.mapping import Mapping, ResolvedMapping, resolve_mapping
from mimictools.motion.retarget.source import SourceMotion, resample_source

__all__ = ["RetargetOptions", "RetargetResult", "retarget"]

_GROUND_MARGIN_M = 0.005
"""Geom points within this height of the ground keep their (zero-residual) ground row in the solve."""


@dataclass(frozen=True)
class RetargetOptions:
    """Solver settings. Weights are relative to a 1 m position error of a weight-1 entry."""

    scale: Optional[float] = None
    """None = auto (per-segment lengths of the target, root by the leg-length ratio); X = uniform scale."""
    fps: Optional[float] = None
    """Output frame rate; None keeps the source's."""
    ground: Optional[str] = None
    """'auto' (shift so the feet stand on z = 0), 'keep', or None (the mapping's, else auto for BVH)."""
    respect_limits: bool = True
    """Clamp hinge angles to the MJCF ranges (exactly). False only for diagnostics / round trips."""
    ground_constraint: bool = True
    """Keep every geom above z = 0 (penalty during the solve + an exact final lift)."""
    iterations: int = 6
    """Gauss-Newton iterations before the anti-sliding stage."""
    slide_iterations: int = 3
    """Gauss-Newton iterations with contact spans pinned."""
    smooth_weight: float = 0.05
    """Weight of the second-difference penalty per variable (rad or m) at 30 fps (scaled with fps)."""
    init_weight: float = 0.01
    """Weight of the pull towards the analytic initial guess (rad)."""
    ground_weight: float = 10.0
    contact_weight: float = 1.0
    """Pull of the lowest sole point to z = 0 while the foot is in contact."""
    slide_weight: float = 2.0
    contact_height_m: float = 0.04
    contact_speed_mps: float = 0.35
    limit_margin_rad: float = 2e-3
    damping: float = 1e-4
    """Levenberg-Marquardt damping added to the normal equations' diagonal."""
    max_step_rad: float = 0.5
    dtype: str = "float32"
    """'float32' or 'float64' for the solve."""


@dataclass(frozen=True, eq=False)
class RetargetResult:
    """A retargeted clip and what the report needs."""

    frames: np.ndarray
    """float32, Shape (num_frames, 6 + num_dofs): MimicKit frames for the target character."""
    fps: float
    loop_mode: int
    entry_names: Tuple[str, ...]
    """'<body>' or '<body>+offset' per mapping entry."""
    entry_body: Tuple[int, ...]
    target_pos: np.ndarray
    """Scaled source position of each entry (what the solver aimed at), Shape (num_frames, num_entries, 3)."""
    entry_weight: np.ndarray
    contact: np.ndarray
    """bool, Shape (num_frames, num_entries): entry in ground contact (False for non-foot entries)."""
    scale: float
    """Root trajectory scale (leg-length ratio in auto mode)."""
    ground_shift_m: float
    lift_m: np.ndarray
    """Height each frame was lifted by at the end to clear the ground, Shape (num_frames,)."""
    mapping: Mapping
    timings_s: Dict[str, float]
    notes: Tuple[str, ...] = ()
    source_fps: float = 0.0
    source_frames: int = 0
    solver_log: Tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------ small math


def _cross(a: Tensor, b: Tensor) -> Tensor:
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), dim=-1)


def _axis_quat(axis: Tensor, angle: Tensor) -> Tensor:
    """Quaternion of rotation ``angle`` (...) about unit ``axis`` (3,) or (..., 3)."""
    half = 0.5 * angle.unsqueeze(-1)
    return torch.cat([torch.cos(half), torch.sin(half) * axis.expand(half.shape[:-1] + (3,))], dim=-1)


def _shortest_arc(v: Tensor, u: Tensor) -> Tensor:
    """Minimal rotation taking direction v to direction u, (..., 3) each -> (..., 4)."""
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    d = (v * u).sum(-1, keepdim=True)
    c = _cross(v, u)
    q = torch.cat([1.0 + d, c], dim=-1)
    # opposite vectors: rotate pi about any axis perpendicular to v
    alt_axis = _cross(
        v, torch.where(v[..., :1].abs() < 0.9, v.new_tensor([1.0, 0.0, 0.0]), v.new_tensor([0.0, 1.0, 0.0]))
    )
    alt = torch.cat([torch.zeros_like(d), alt_axis], dim=-1)
    q = torch.where(d < -1.0 + 1e-9, alt, q)
    return quat_normalize(q)


def _kabsch_rot(v: Tensor, u: Tensor, w: Tensor) -> Tensor:
    """Rotation R (..., 3, 3) minimising sum w |R v - u|^2; v, u (..., n, 3), w (n,)."""
    cov = torch.einsum("...ni,...nj,n->...ij", u, v, w)
    uu, _, vh = torch.linalg.svd(cov)
    d = torch.det(uu @ vh)
    fix = torch.ones(d.shape + (3,), dtype=v.dtype, device=v.device)
    fix[..., 2] = torch.sign(d) + (d == 0).to(v.dtype)
    return (uu * fix.unsqueeze(-2)) @ vh


def _rank_ok(v: Tensor, w: Tensor) -> bool:
    """True if weighted points (n, 3) (vectors from a centre) span at least 2 directions."""
    if v.shape[0] < 2:
        return False
    s = torch.linalg.svdvals((v * w.unsqueeze(-1)).to(torch.float64))
    return bool(s[1] > 1e-3 * max(float(s[0]), 1e-12))


def _wrap(x: Tensor) -> Tensor:
    """Angles to [-pi, pi)."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


_BRANCH_CLOSE = 0.02
"""Euler branches whose clamped rotations are this close (1 - |q.q'|, ~0.4 rad) are chosen by continuity."""
_BRANCH_CONTINUITY = 0.01
"""Cost per radian of hinge-angle change from the previous frame when choosing between close branches."""


def _continuous_choice(
    c0: Tensor, c1: Tensor, e0: Tensor, e1: Tensor, use_alt: Tensor, close: Tensor
) -> Tensor:
    """Per frame pick c0 or c1 (F, 3); where their errors e0, e1 (F,) are close, trade the error against
    the change from the previous frame's pick (greedy, in time order) so branches do not flip back and forth."""
    a0 = c0.detach().cpu().numpy()
    a1 = c1.detach().cpu().numpy()
    err0 = e0.detach().cpu().numpy()
    err1 = e1.detach().cpu().numpy()
    alt = use_alt.detach().cpu().numpy().copy()
    near = close.detach().cpu().numpy()
    prev = a1[0] if alt[0] else a0[0]
    for t in range(1, a0.shape[0]):
        if near[t]:
            d0 = np.abs(np.remainder(a0[t] - prev + np.pi, 2 * np.pi) - np.pi).sum()
            d1 = np.abs(np.remainder(a1[t] - prev + np.pi, 2 * np.pi) - np.pi).sum()
            alt[t] = err1[t] + _BRANCH_CONTINUITY * d1 < err0[t] + _BRANCH_CONTINUITY * d0
        prev = a1[t] if alt[t] else a0[t]
    return torch.as_tensor(alt, device=use_alt.device)


def _unwrap_unlimited(ang: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Remove 2 pi jumps over time (F, k) for hinges whose range is wider than 2 pi (or unlimited)."""
    wide = (hi - lo) > 2.0 * math.pi
    if not bool(wide.any()) or ang.shape[0] < 2:
        return ang
    d = _wrap(ang[1:] - ang[:-1])
    un = torch.cat([ang[:1], ang[:1] + torch.cumsum(d, dim=0)], dim=0)
    return torch.where(wide, un, ang)


# ------------------------------------------------------------------------------------------ target model


class _Model:
    """The target character in solver form: hinge-angle parametrisation and Jacobian bookkeeping."""

    def __init__(self, char: Character, dtype: torch.dtype, margin: float, respect_limits: bool):
        def t(x) -> Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)

        self.char = char
        self.dtype = dtype
        nb = char.num_bodies
        self.nb = nb
        self.parents = char.parents
        self.local_pos = t(char.local_pos)
        self.local_quat = t(char.local_quat)
        self.children: List[List[int]] = [[] for _ in range(nb)]
        for b in range(1, nb):
            self.children[char.parents[b]].append(b)
        # joints per body
        self.body_kind = ["none"] * nb  # none | hinge | triple | ball
        self.body_theta: List[List[int]] = [[] for _ in range(nb)]  # indices into theta
        self.body_ball = [-1] * nb
        self.body_axes: List[Optional[Tensor]] = [None] * nb
        axes: List[np.ndarray] = []
        lo: List[float] = []
        hi: List[float] = []
        theta_body: List[int] = []
        cone: List[float] = []
        hinge_names: List[str] = []
        ball_bodies: List[int] = []
        for j in char.joints:
            b = j.body
            if j.is_ball:
                self.body_kind[b] = "ball"
                self.body_ball[b] = len(ball_bodies)
                ball_bodies.append(b)
                cone.append(
                    float(j.range_high[0])
                    if np.isfinite(j.range_high[0]) and j.range_high[0] > 0
                    else math.inf
                )
                continue
            self.body_kind[b] = "hinge" if j.kind == "hinge" else "triple"
            self.body_axes[b] = t(j.axes)
            for k in range(len(j.mjcf_joints)):
                self.body_theta[b].append(len(axes))
                axes.append(np.asarray(j.axes[k], dtype=np.float64))
                low, high = float(j.range_low[k]), float(j.range_high[k])
                if respect_limits and np.isfinite(low) and np.isfinite(high) and high - low > 2 * margin:
                    low, high = low + margin, high - margin
                elif not respect_limits:
                    low, high = -math.inf, math.inf
                lo.append(low)
                hi.append(high)
                theta_body.append(b)
                hinge_names.append(j.mjcf_joints[k])
        self.nh = len(axes)
        self.nball = len(ball_bodies)
        self.hinge_names = hinge_names
        self.hinge_axis = t(np.asarray(axes).reshape(-1, 3))
        self.theta_lo = t(lo) if lo else t(np.zeros(0))
        self.theta_hi = t(hi) if hi else t(np.zeros(0))
        self.ball_bodies = ball_bodies
        self.ball_cone = cone if respect_limits else [math.inf] * len(cone)
        # columns: [root pos 3 | root rot 3 | hinges nh | balls 3*nball]; "rotational" = all but the first 3
        self.ncol = 6 + self.nh + 3 * self.nball
        col_body = [0, 0, 0, 0, 0, 0] + theta_body + [b for b in ball_bodies for _ in range(3)]
        # desc[c, b]: column c moves body b (c's body is b or an ancestor of b)
        anc = np.zeros((nb, nb), dtype=bool)  # anc[a, b]: a is b or an ancestor of b
        for b in range(nb):
            a = b
            while a >= 0:
                anc[a, b] = True
                a = char.parents[a]
        desc = anc[np.asarray(col_body)]
        self.desc_rot = torch.as_tensor(desc[3:], dtype=dtype)  # (ncol-3, nb)
        self.col_body = col_body
        # ground points: (body, point in body frame, radius)
        gb, gp, gr = [], [], []
        for g in char.geoms:
            size = np.asarray(g.size, dtype=np.float64)
            local: List[np.ndarray] = []
            radius = 0.0
            if g.type == "sphere":
                local, radius = [np.zeros(3)], float(size[0])
            elif g.type in ("capsule", "cylinder"):
                local, radius = (
                    [np.array([0.0, 0.0, size[1]]), np.array([0.0, 0.0, -size[1]])],
                    float(size[0]),
                )
            elif g.type == "box":
                local = [
                    np.array([sx * size[0], sy * size[1], sz * size[2]])
                    for sx in (-1, 1)
                    for sy in (-1, 1)
                    for sz in (-1, 1)
                ]
            elif g.type == "ellipsoid":
                local, radius = [np.zeros(3)], float(size[:3].min())
            q = torch.as_tensor(g.quat, dtype=torch.float64)
            for pt in local:
                gb.append(g.body)
                gp.append(np.asarray(g.pos, dtype=np.float64) + quat_rotate(q, torch.as_tensor(pt)).numpy())
                gr.append(radius)
        self.ground_body = torch.as_tensor(np.asarray(gb, dtype=np.int64))
        self.ground_local = t(np.asarray(gp).reshape(-1, 3))
        self.ground_radius = t(np.asarray(gr))

    # -------------------------------------------------------------------------------- kinematics

    def fk(self, root_pos: Tensor, root_quat: Tensor, theta: Tensor, ball: Tensor):
        """Body poses and per rotational column its world axis and anchor.

        Returns body_pos (F, nb, 3), body_rot (F, nb, 4), axes (F, ncol-3, 3), anchors (F, ncol-3, 3).
        """
        F = root_pos.shape[0]
        # every slot is overwritten below (bodies in parent-first order, every column once)
        pos: List[Tensor] = [root_pos] * self.nb
        rot: List[Tensor] = [root_quat] * self.nb
        eye = torch.eye(3, dtype=self.dtype)
        axes: List[Tensor] = [root_pos] * (self.ncol - 3)
        anchors: List[Tensor] = [root_pos] * (self.ncol - 3)
        pos[0], rot[0] = root_pos, root_quat
        for k in range(3):
            axes[k] = eye[k].expand(F, 3)
            anchors[k] = root_pos
        for b in range(1, self.nb):
            p = self.parents[b]
            pp, pr = pos[p], rot[p]
            pb = pp + quat_rotate(pr, self.local_pos[b].expand(F, 3))
            r = quat_mul(pr, self.local_quat[b].expand(F, 4))
            kind = self.body_kind[b]
            if kind in ("hinge", "triple"):
                for h in self.body_theta[b]:
                    a = self.hinge_axis[h]
                    axes[3 + h] = quat_rotate(r, a.expand(F, 3))
                    anchors[3 + h] = pb
                    r = quat_mul(r, _axis_quat(a, theta[:, h]))
            elif kind == "ball":
                k = self.body_ball[b]
                r = quat_mul(r, ball[:, k])
                for i in range(3):
                    c = 3 + self.nh + 3 * k + i
                    axes[c] = quat_rotate(r, eye[i].expand(F, 3))
                    anchors[c] = pb
            pos[b], rot[b] = pb, r
        return torch.stack(pos, 1), torch.stack(rot, 1), torch.stack(axes, 1), torch.stack(anchors, 1)

    def point_jacobian(
        self, points: Tensor, weight_mask: Tensor, axes: Tensor, moments: Tensor, weight: Tensor
    ) -> Tensor:
        """Weighted d point / d columns. points (F, P, 3); weight_mask (P, R) = weight * (column moves the
        point's body); axes, moments (F, R, 3) (moment = axis x anchor); weight (P,). Returns (F, 3P, ncol).

        Column c of a point p: ``a_c x (p - o_c) = -(p x a_c + a_c x o_c)``; translation columns: identity.
        All of it is one batched matmul ``[skew(p) | I] @ [[0, a_c], [-I, m_c]]`` times the (negated) mask.
        """
        F, P = points.shape[0], points.shape[1]
        dt = self.dtype
        x, y, z = points.unbind(-1)
        k = torch.zeros(F, P, 3, 6, dtype=dt)
        k[..., 0, 1] = -z
        k[..., 0, 2] = y
        k[..., 1, 0] = z
        k[..., 1, 2] = -x
        k[..., 2, 0] = -y
        k[..., 2, 1] = x
        k[..., 0, 3] = 1.0
        k[..., 1, 4] = 1.0
        k[..., 2, 5] = 1.0
        b = self._jac_rhs(axes, moments)  # (F, 6, ncol)
        j = torch.bmm(k.view(F, 3 * P, 6), b).view(F, P, 3, self.ncol)
        m = torch.cat([weight.view(P, 1).expand(P, 3), weight_mask], dim=1)  # (P, ncol)
        return (j * (-m).unsqueeze(1)).view(F, 3 * P, self.ncol)

    def _jac_rhs(self, axes: Tensor, moments: Tensor) -> Tensor:
        F = axes.shape[0]
        b = torch.zeros(F, 6, self.ncol, dtype=self.dtype)
        b[:, 3, 0] = -1.0
        b[:, 4, 1] = -1.0
        b[:, 5, 2] = -1.0
        b[:, 0:3, 3:] = axes.transpose(1, 2)
        b[:, 3:6, 3:] = moments.transpose(1, 2)
        return b

    def point_jacobian_z(self, points: Tensor, mask: Tensor, axes: Tensor, moments: Tensor) -> Tensor:
        """z rows only: points (F, k, 3), mask (F, k, R) or (k, R). Returns (F, k, ncol)."""
        F, k = points.shape[0], points.shape[1]
        px, py = points[..., 0:1], points[..., 1:2]
        ax, ay = axes[:, None, :, 0], axes[:, None, :, 1]
        jz = -(px * ay - py * ax) - moments[:, None, :, 2]
        jz = jz * mask
        dt = self.dtype
        return torch.cat([torch.zeros(F, k, 2, dtype=dt), torch.ones(F, k, 1, dtype=dt), jz], dim=-1)

    def local_rotations(self, theta: Tensor, ball: Tensor) -> Tensor:
        """Joint rotation per body (F, nb, 4) from hinge angles and ball quaternions."""
        F = theta.shape[0]
        out = torch.zeros(F, self.nb, 4, dtype=self.dtype)
        out[..., 0] = 1.0
        for b in range(1, self.nb):
            kind = self.body_kind[b]
            if kind in ("hinge", "triple"):
                q = out[:, b]
                for h in self.body_theta[b]:
                    q = quat_mul(q, _axis_quat(self.hinge_axis[h], theta[:, h]))
                out[:, b] = q
            elif kind == "ball":
                out[:, b] = ball[:, self.body_ball[b]]
        return out

    # -------------------------------------------------------------------------------- projections

    def clamp_theta(self, theta: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(theta, self.theta_hi), self.theta_lo)

    def clamp_ball(self, ball: Tensor) -> Tensor:
        if not self.nball:
            return ball
        out = []
        for k in range(self.nball):
            q = quat_normalize(ball[:, k])
            cone = self.ball_cone[k]
            if math.isfinite(cone):
                e = quat_to_exp_map(q)
                n = e.norm(dim=-1, keepdim=True)
                e = torch.where(n > cone, e * (cone / n.clamp_min(1e-12)), e)
                q = exp_map_to_quat(e)
            out.append(q)
        return torch.stack(out, 1)

    def joint_angles_from_quat(self, b: int, q: Tensor) -> Tensor:
        """Hinge angles (F, k) of body b's joint that best reproduce joint rotation q (F, 4), clamped."""
        idx = self.body_theta[b]
        lo, hi = self.theta_lo[idx], self.theta_hi[idx]
        if self.body_kind[b] == "hinge":
            a = self.hinge_axis[idx[0]]
            twist = (q[:, 1:] * a).sum(-1)
            ang = 2.0 * torch.atan2(twist, q[:, 0])
            ang = torch.remainder(ang + math.pi, 2 * math.pi) - math.pi
            ang = torch.maximum(torch.minimum(ang, hi[0]), lo[0]).unsqueeze(-1)
            return _unwrap_unlimited(ang, lo, hi)
        ax = self.body_axes[b]  # (3, 3) rows = axes
        if ax is None:
            raise ConfigError(f"body {self.char.body_names[b]!r} has no hinge triple")
        det = float(torch.det(ax))
        sign = 1.0 if det > 0 else -1.0
        m = torch.stack([ax[0], ax[1], sign * ax[2]], dim=1)
        qa = matrix_to_quat(m).expand(q.shape)
        qe = quat_mul(quat_mul(quat_conj(qa), q), qa)
        raw = quat_to_euler_xyz(qe)
        alt = torch.stack([raw[:, 0] + math.pi, math.pi - raw[:, 1], raw[:, 2] + math.pi], dim=-1)
        sgn = raw.new_tensor([1.0, 1.0, sign])
        cands = []
        for c in (raw, alt):
            c = torch.remainder(c * sgn + math.pi, 2 * math.pi) - math.pi
            cands.append(torch.maximum(torch.minimum(c, hi), lo))
        # keep the candidate whose clamped rotation is nearest to q; where both are as good (both inside
        # the limits), the one nearest the previous frame's, so the hinge trajectories stay continuous
        errs = []
        for c in cands:
            qc = _axis_quat(self.hinge_axis[idx[0]], c[:, 0])
            qc = quat_mul(qc, _axis_quat(self.hinge_axis[idx[1]], c[:, 1]))
            qc = quat_mul(qc, _axis_quat(self.hinge_axis[idx[2]], c[:, 2]))
            errs.append(1.0 - (qc * q).sum(-1).abs())
        use_alt = errs[1] < errs[0] - 1e-6
        close = (errs[1] - errs[0]).abs() <= _BRANCH_CLOSE
        if bool(close.any()) and q.shape[0] > 1:
            use_alt = _continuous_choice(cands[0], cands[1], errs[0], errs[1], use_alt, close)
        out = torch.where(use_alt.unsqueeze(-1), cands[1], cands[0])
        return _unwrap_unlimited(out, lo, hi)


# ------------------------------------------------------------------------------------------ calibration


@dataclass
class _Setup:
    entry_body: Tensor  # (E,) long
    entry_offset: Tensor  # (E, 3)
    entry_weight: Tensor  # (E,)
    entry_parent: List[int]
    target_pos: Tensor  # (F, E, 3)
    rot_entries: List[int]
    rot_weight: Tensor  # (Er,)
    rot_target: Tensor  # (F, Er, 4)
    body_rot_target: Dict[int, Tensor]  # body -> (F, 4) calibrated source orientation (for the init)
    scale: float
    ground_shift: float
    contact: Tensor  # (F, E) bool
    foot_entries: List[int]
    notes: List[str]


def _target_rest(model: _Model, offsets: Tensor, bodies: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Target rest pose: entry points (E, 3), body positions (nb, 3), body rotations (nb, 4)."""
    F = 1
    root_pos = torch.zeros(F, 3, dtype=model.dtype)
    root_quat = torch.zeros(F, 4, dtype=model.dtype)
    root_quat[:, 0] = 1.0
    theta = torch.zeros(F, model.nh, dtype=model.dtype)
    ball = torch.zeros(F, model.nball, 4, dtype=model.dtype)
    ball[..., 0] = 1.0
    bp, br, _, _ = model.fk(root_pos, root_quat, theta, ball)
    pts = bp[0, bodies] + quat_rotate(br[0, bodies], offsets)
    return pts, bp[0], br[0]


def _entry_parents(model: _Model, entries: Sequence, bodies: Sequence[int]) -> List[int]:
    """For each entry, the entry it hangs off in the scaling tree (-1 for roots)."""
    first_zero: Dict[int, int] = {}
    first_any: Dict[int, int] = {}
    for i, (e, b) in enumerate(zip(entries, bodies)):
        first_any.setdefault(b, i)
        if not any(e.offset):
            first_zero.setdefault(b, i)
    parents = []
    for i, (e, b) in enumerate(zip(entries, bodies)):
        if any(e.offset) and first_zero.get(b, i) != i:
            parents.append(first_zero[b])
            continue
        a = model.parents[b]
        found = -1
        while a >= 0:
            if a in first_any:
                found = first_zero.get(a, first_any[a])
                break
            a = model.parents[a]
        parents.append(found)
    return parents


def _contact_flags(pos: Tensor, height: Tensor, fps: float, h_thresh: float, v_thresh: float) -> Tensor:
    """Contact per frame for points (F, n, 3) whose ground-level height is ``height`` (n,)."""
    F = pos.shape[0]
    above = pos[..., 2] - height
    if F > 1:
        vel = torch.zeros_like(pos[..., :2])
        vel[1:-1] = (pos[2:, :, :2] - pos[:-2, :, :2]) * (0.5 * fps)
        vel[0] = (pos[1, :, :2] - pos[0, :, :2]) * fps
        vel[-1] = (pos[-1, :, :2] - pos[-2, :, :2]) * fps
        speed = vel.norm(dim=-1)
    else:
        speed = torch.zeros_like(above)
    c = (above < h_thresh) & (speed < v_thresh)
    # drop 1-2 frame blips (on and off)
    if F >= 3:
        c_f = c.to(torch.float64)
        for _ in range(2):
            mid = (c_f[:-2] + c_f[2:]) / 2.0
            c_f[1:-1] = torch.where(
                mid == 1.0, torch.ones_like(mid), torch.where(mid == 0.0, torch.zeros_like(mid), c_f[1:-1])
            )
        c = c_f > 0.5
    return c


def _setup(
    model: _Model, src: SourceMotion, rmap: ResolvedMapping, opts: RetargetOptions, notes: List[str]
) -> _Setup:
    dt = model.dtype
    m = rmap.mapping
    entries = m.entries
    E = len(entries)
    bodies = list(rmap.entry_body)
    entry_body = torch.as_tensor(bodies, dtype=torch.long)
    offsets = torch.as_tensor([e.offset for e in entries], dtype=dt).reshape(E, 3)
    weights = torch.as_tensor([e.weight for e in entries], dtype=dt)
    spos = torch.as_tensor(src.pos, dtype=dt)
    F = spos.shape[0]
    # source point per entry (mean of its joints), per frame and at rest
    src_pts = torch.stack([spos[:, list(ix)].mean(1) for ix in rmap.entry_sources], 1)  # (F, E, 3)
    srest = torch.as_tensor(src.rest_pos, dtype=dt)
    src_rest = torch.stack([srest[list(ix)].mean(0) for ix in rmap.entry_sources], 0)  # (E, 3)
    tgt_rest, tgt_rest_body_pos, tgt_rest_body_rot = _target_rest(model, offsets, entry_body)
    parents = _entry_parents(model, entries, bodies)

    def seg(i: int, pts: Tensor) -> float:
        return float((pts[i] - pts[parents[i]]).norm())

    # ---- scale: leg-length ratio (feet chains), else mapped-point extent ratio
    ratios = []
    for foot in rmap.feet:
        chain = [i for i in range(E) if bodies[i] == foot and not any(entries[i].offset)] or [
            i for i in range(E) if bodies[i] == foot
        ]
        i = chain[0]
        lt = ls = 0.0
        links = []
        while parents[i] >= 0:
            links.append(i)
            i = parents[i]
        if len(links) > 1:
            links = links[:-1]  # the link into the root entry is the hip width, not the leg
        for k in links:
            lt += seg(k, tgt_rest)
            ls += seg(k, src_rest)
        if ls > 1e-6 and lt > 1e-6:
            ratios.append(lt / ls)
    if ratios:
        auto_scale = float(np.mean(ratios))
        how = "leg-length ratio"
    else:
        ext_t = float(tgt_rest[:, 2].max() - tgt_rest[:, 2].min())
        ext_s = float(src_rest[:, 2].max() - src_rest[:, 2].min())
        auto_scale = ext_t / ext_s if ext_s > 1e-6 else 1.0
        how = "height ratio of the mapped points"
    # ---- targets
    if opts.scale is None:
        scale = auto_scale
        target = torch.zeros_like(src_pts)
        done = [False] * E  # entries may come in any order: build parents first, recursively

        def build(i: int) -> None:
            if done[i]:
                return
            p = parents[i]
            if p < 0:
                target[:, i] = src_pts[:, i] * scale
            else:
                build(p)
                ls = seg(i, src_rest)
                k = seg(i, tgt_rest) / ls if ls > 1e-6 else scale
                target[:, i] = target[:, p] + k * (src_pts[:, i] - src_pts[:, p])
            done[i] = True

        for i in range(E):
            build(i)
        notes.append(f"scale auto: root x{scale:.4f} ({how}), segments to the target's lengths")
    else:
        scale = float(opts.scale)
        if not scale > 0.0:
            raise ConfigError(f"--scale must be > 0 or 'auto', got {opts.scale}")
        target = src_pts * scale
        notes.append(f"scale x{scale:g} (uniform)")

    # ---- heights above the ground of foot entries in the target rest pose
    from mimictools.character.kinematics import geom_lowest_z

    foot_entries = [i for i in range(E) if bodies[i] in rmap.feet]
    if model.char.geoms:
        rest_low = float(
            geom_lowest_z(model.char, tgt_rest_body_pos.unsqueeze(0), tgt_rest_body_rot.unsqueeze(0)).min()
        )
        if not math.isfinite(rest_low):
            rest_low = float(tgt_rest[:, 2].min())
    else:
        rest_low = float(tgt_rest[:, 2].min())
    foot_h = tgt_rest[foot_entries, 2] - rest_low if foot_entries else tgt_rest.new_zeros(0)
    ground = opts.ground or m.ground or ("auto" if src.kind == "bvh" else "keep")
    shift = 0.0
    if ground == "auto" and foot_entries:
        d = (target[:, foot_entries, 2] - foot_h).min(dim=1).values
        shift = -float(torch.quantile(d, 0.05)) if F > 1 else -float(d[0])
        target[..., 2] += shift
        notes.append(f"ground auto: source shifted {shift * 100:+.1f} cm so the feet stand on z = 0")
    elif ground not in ("auto", "keep"):
        raise ConfigError(f"ground must be 'auto' or 'keep', got {ground!r}")
    # ---- contacts
    contact = torch.zeros(F, E, dtype=torch.bool)
    if foot_entries:
        fps = src.fps
        contact[:, foot_entries] = _contact_flags(
            target[:, foot_entries], foot_h, fps, opts.contact_height_m, opts.contact_speed_mps
        )
    # ---- orientation calibration: yaw aligning source rest to target rest (mapped points)
    cs = src_rest - src_rest.mean(0)
    ct = tgt_rest - tgt_rest.mean(0)
    w = weights
    dot = (w * (cs[:, 0] * ct[:, 0] + cs[:, 1] * ct[:, 1])).sum()
    crs = (w * (cs[:, 0] * ct[:, 1] - cs[:, 1] * ct[:, 0])).sum()
    yaw = float(torch.atan2(crs, dot))  # rotation taking source rest facing to target rest facing
    a_inv = _axis_quat(torch.tensor([0.0, 0.0, 1.0], dtype=dt), torch.tensor(-yaw, dtype=dt))
    srot = torch.as_tensor(src.rot, dtype=dt)
    srest_rot = torch.as_tensor(src.rest_rot, dtype=dt)
    rot_entries = [i for i in range(E) if rmap.entry_rot_source[i] >= 0]
    rot_targets = []
    body_rot_target: Dict[int, Tensor] = {}
    for i in range(E):
        j = rmap.entry_rot_source[i]
        name = entries[i].orientation_source
        if j < 0 and name is not None and name in src.names:
            j = src.names.index(name)  # not weighted, but still useful for the initial guess
        if j < 0:
            continue
        off = quat_mul(quat_mul(quat_conj(srest_rot[j]), a_inv), tgt_rest_body_rot[bodies[i]])
        q = quat_normalize(quat_mul(srot[:, j], off.expand(F, 4)))
        body_rot_target.setdefault(bodies[i], q)
        if i in rot_entries:
            rot_targets.append(q)
    rot_target = torch.stack(rot_targets, 1) if rot_targets else torch.zeros(F, 0, 4, dtype=dt)
    rot_weight = torch.as_tensor([entries[i].rot_weight for i in rot_entries], dtype=dt)
    return _Setup(
        entry_body=entry_body,
        entry_offset=offsets,
        entry_weight=weights,
        entry_parent=parents,
        target_pos=target,
        rot_entries=rot_entries,
        rot_weight=rot_weight,
        rot_target=rot_target,
        body_rot_target=body_rot_target,
        scale=scale,
        ground_shift=shift,
        contact=contact,
        foot_entries=foot_entries,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------ initial guess


def _plane_aims(model: _Model, s: _Setup) -> Dict[int, Tuple[int, int, int, Tensor, Tensor]]:
    """For a body b whose child c is a single hinge (knee, elbow) with a mapped point q beyond it:
    ``{b: (entry at c, entry at q, entry at b or -1, axis in b's frame (sign: the bend direction), hinge)}``.

    The bend plane of (b, c, q) then fixes b's twist: c's hinge axis must be its normal. Only used when
    the rest pose is straight at c (the segments b->c and c->q parallel), as for knees and elbows.
    """
    out: Dict[int, Tuple[int, int, int, Tensor, Tensor]] = {}
    bodies = s.entry_body.tolist()
    zero = [float(s.entry_offset[i].norm()) < 1e-9 for i in range(len(bodies))]
    origin_entry: Dict[int, int] = {}
    for i, b in enumerate(bodies):
        if zero[i]:
            origin_entry.setdefault(b, i)
    for c in range(1, model.nb):
        if model.body_kind[c] != "hinge" or c not in origin_entry:
            continue
        b = model.parents[c]
        if model.body_kind[b] == "none" and b != 0:
            continue
        q_entry, vq = -1, None
        for d in model.children[c]:
            if d in origin_entry:
                q_entry, vq = origin_entry[d], model.local_pos[d]
                break
        if q_entry < 0:
            for i, bb in enumerate(bodies):
                if bb == c and not zero[i]:
                    q_entry, vq = i, s.entry_offset[i]
                    break
        if q_entry < 0 or vq is None:
            continue
        h = model.body_theta[c][0]
        lo, hi = float(model.theta_lo[h]), float(model.theta_hi[h])
        mid = 0.5 * (lo + hi) if math.isfinite(lo) and math.isfinite(hi) else 0.0
        if abs(mid) < 1e-3:
            continue  # bends both ways: the plane does not say which side
        lq = model.local_quat[c]
        vb = model.local_pos[c]
        vq_b = quat_rotate(lq, vq)
        par = _cross(vb / vb.norm().clamp_min(1e-9), vq_b / vq_b.norm().clamp_min(1e-9)).norm()
        if float(par) > 0.1:
            continue
        axis_b = quat_rotate(lq, model.hinge_axis[h]) * (1.0 if mid > 0 else -1.0)
        out[b] = (origin_entry[c], q_entry, origin_entry.get(b, -1), axis_b, torch.tensor(h))
    return out


def _twist_to_plane(q: Tensor, main_u: Tensor, axis_b: Tensor, normal: Tensor, strength: Tensor) -> Tensor:
    """Rotate q (F, 4) about main_u (F, 3) so that q * axis_b lines up with ``normal`` (F, 3) in the
    plane perpendicular to main_u; ``strength`` (F,) in [0, 1] scales the correction."""
    u = main_u / main_u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a = quat_rotate(q, axis_b.expand(q.shape[:-1] + (3,)))
    a = a - (a * u).sum(-1, keepdim=True) * u
    n = normal - (normal * u).sum(-1, keepdim=True) * u
    ang = torch.atan2((_cross(a, n) * u).sum(-1), (a * n).sum(-1))
    return quat_mul(_axis_quat(u, ang * strength), q)


def _initial_guess(model: _Model, s: _Setup) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-frame analytic pose: the root by a rigid fit of its points; then each joint, parents first,
    points its child points at their targets (Kabsch on unit vectors, or shortest arc for one point),
    takes its twist from the bend plane of a hinge child (knee, elbow) or the source orientation, and
    is decomposed into its hinge angles and clamped to the limits."""
    dt = model.dtype
    F = s.target_pos.shape[0]
    E = s.entry_body.shape[0]
    bodies = s.entry_body.tolist()
    w_all = s.entry_weight.clamp_min(1e-3)
    # aim points per body, in its frame at zero joint rotation: offset entries on it, origins of children
    aims: List[List[Tuple[int, Tensor]]] = [[] for _ in range(model.nb)]
    for i in range(E):
        b = bodies[i]
        off = s.entry_offset[i]
        if float(off.norm()) > 1e-9:
            aims[b].append((i, off))
        elif model.parents[b] >= 0:
            aims[model.parents[b]].append((i, model.local_pos[b]))
    planes = _plane_aims(model, s)
    root_pos = torch.zeros(F, 3, dtype=dt)
    root_quat = torch.zeros(F, 4, dtype=dt)
    root_quat[:, 0] = 1.0
    theta = torch.zeros(F, model.nh, dtype=dt)
    ball = torch.zeros(F, model.nball, 4, dtype=dt)
    ball[..., 0] = 1.0
    # ---- root: rigid fit of its points (root origin entries + aims)
    root_pts = [
        (i, torch.zeros(3, dtype=dt))
        for i in range(E)
        if bodies[i] == 0 and float(s.entry_offset[i].norm()) < 1e-9
    ]
    pts = root_pts + aims[0]
    idx = [i for i, _ in pts]
    v = torch.stack([o for _, o in pts], 0) if pts else torch.zeros(0, 3, dtype=dt)
    w = w_all[idx] if idx else torch.zeros(0, dtype=dt)
    if len(pts) >= 3 and _rank_ok(v - (v * w[:, None]).sum(0) / w.sum(), w):
        u = s.target_pos[:, idx]  # (F, n, 3)
        vc = (v * w[:, None]).sum(0) / w.sum()
        uc = (u * w[None, :, None]).sum(1) / w.sum()
        r = _kabsch_rot((v - vc).expand(F, -1, -1), u - uc.unsqueeze(1), w)
        root_quat = matrix_to_quat(r)
        root_pos = uc - quat_rotate(root_quat, vc.expand(F, 3))
    else:
        if 0 in s.body_rot_target:
            root_quat = s.body_rot_target[0]
        if idx:
            root_pos = s.target_pos[:, idx].mean(1) - quat_rotate(root_quat, v.mean(0).expand(F, 3))
    # ---- joints, parents first
    pos: List[Tensor] = [root_pos] * model.nb  # overwritten parent-first below
    rot: List[Tensor] = [root_quat] * model.nb
    pos[0], rot[0] = root_pos, root_quat
    for b in range(1, model.nb):
        p = model.parents[b]
        pb = pos[p] + quat_rotate(rot[p], model.local_pos[b].expand(F, 3))
        r0 = quat_mul(rot[p], model.local_quat[b].expand(F, 4))
        kind = model.body_kind[b]
        q_joint = None
        if kind != "none":
            r0_inv = quat_conj(r0)
            src_q = quat_mul(r0_inv, s.body_rot_target[b]) if b in s.body_rot_target else None
            pts = aims[b]
            if pts:
                idx = [i for i, _ in pts]
                v = torch.stack([o for _, o in pts], 0)
                v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                w = w_all[idx]
                u = quat_rotate(
                    r0_inv.unsqueeze(1).expand(F, len(idx), 4), s.target_pos[:, idx] - pb.unsqueeze(1)
                )
                u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                if len(pts) >= 2 and _rank_ok(v, w):
                    q_joint = matrix_to_quat(_kabsch_rot(v.expand(F, -1, -1), u, w))
                else:
                    k = int(torch.argmax(w))
                    vk = v[k].expand(F, 3)
                    if src_q is not None:
                        q_joint = quat_mul(_shortest_arc(quat_rotate(src_q, vk), u[:, k]), src_q)
                    else:
                        q_joint = _shortest_arc(vk, u[:, k])
                    if b in planes:
                        ec, eq, _, axis_b, _ = planes[b]
                        d1 = s.target_pos[:, ec] - pb
                        d2 = s.target_pos[:, eq] - s.target_pos[:, ec]
                        n = _cross(d1, d2)
                        sin_bend = n.norm(dim=-1) / (d1.norm(dim=-1) * d2.norm(dim=-1)).clamp_min(1e-12)
                        strength = torch.clamp((sin_bend - 0.05) / 0.15, 0.0, 1.0)
                        q_joint = _twist_to_plane(q_joint, u[:, k], axis_b, quat_rotate(r0_inv, n), strength)
            elif src_q is not None:
                q_joint = src_q
        if q_joint is not None:
            if kind in ("hinge", "triple"):
                ang = model.joint_angles_from_quat(b, q_joint)
                theta[:, model.body_theta[b]] = ang
                qj = torch.zeros(F, 4, dtype=dt)
                qj[:, 0] = 1.0
                for h in model.body_theta[b]:
                    qj = quat_mul(qj, _axis_quat(model.hinge_axis[h], theta[:, h]))
                q_joint = qj
            elif kind == "ball":
                k = model.body_ball[b]
                ball[:, k] = quat_normalize(q_joint)
                ball = model.clamp_ball(ball)
                q_joint = ball[:, k]
            r = quat_mul(r0, q_joint)
        else:
            r = r0
        pos[b], rot[b] = pb, r
    theta = model.clamp_theta(theta)
    return root_pos, root_quat, theta, ball


# ------------------------------------------------------------------------------------------ Gauss-Newton


def _neighbour_mean(x: Tensor) -> Tensor:
    m = x.clone()
    if x.shape[0] >= 3:
        m[1:-1] = 0.5 * (x[:-2] + x[2:])
    return m


def _smooth_mask(F: int, dt: torch.dtype) -> Tensor:
    w = torch.ones(F, dtype=dt)
    if F >= 3:
        w[0] = w[-1] = 0.0
    else:
        w[:] = 0.0
    return w


def _gn_step(
    model: _Model,
    s: _Setup,
    opts: RetargetOptions,
    state: Tuple[Tensor, Tensor, Tensor, Tensor],
    init: Tuple[Tensor, Tensor, Tensor, Tensor],
    anchors_xy: Optional[Tensor],
    smooth_w: float,
) -> Tuple[Tuple[Tensor, Tensor, Tensor, Tensor], float]:
    """One Gauss-Newton step on every frame at once. Returns the new state and the cost before the step."""
    root_pos, root_quat, theta, ball = state
    dt = model.dtype
    F = root_pos.shape[0]
    n = model.ncol
    bp, br, axes, anch = model.fk(root_pos, root_quat, theta, ball)
    moments = _cross(axes, anch)
    rows_j: List[Tensor] = []
    rows_r: List[Tensor] = []
    # ---- mapped positions
    eb = s.entry_body
    pts = bp[:, eb] + quat_rotate(br[:, eb], s.entry_offset.expand(F, -1, -1))
    w = s.entry_weight
    wmask = model.desc_rot[:, eb].transpose(0, 1) * w.unsqueeze(-1)  # (E, R)
    rows_j.append(model.point_jacobian(pts, wmask, axes, moments, w))
    res_pos = (pts - s.target_pos) * w.view(1, -1, 1)
    rows_r.append(res_pos.reshape(F, -1))
    cost = float(res_pos.pow(2).sum())
    # ---- orientations: world-frame rotation error, d/d column = the column's world axis
    if s.rot_entries:
        rb = eb[s.rot_entries]
        err = quat_to_exp_map(quat_mul(br[:, rb], quat_conj(s.rot_target)))  # (F, Er, 3)
        wr = s.rot_weight
        m = model.desc_rot[:, rb].transpose(0, 1) * wr.unsqueeze(-1)  # (Er, R)
        jr = axes.transpose(1, 2).unsqueeze(1) * m.unsqueeze(1)  # (F, Er, 3, R)
        jr = torch.cat([torch.zeros(F, len(s.rot_entries), 3, 3, dtype=dt), jr], dim=-1)
        rows_j.append(jr.reshape(F, -1, n))
        res_rot = err * wr.view(1, -1, 1)
        rows_r.append(res_rot.reshape(F, -1))
        cost += float(res_rot.pow(2).sum())
    # ---- ground: the lowest few geom points per frame must stay >= 0
    if opts.ground_constraint and model.ground_body.numel():
        gb = model.ground_body
        gp = bp[:, gb] + quat_rotate(br[:, gb], model.ground_local.expand(F, -1, -1))
        low = gp[..., 2] - model.ground_radius
        k = min(4, low.shape[1])
        lv, li = torch.topk(low, k, dim=1, largest=False)
        sel_pts = torch.gather(gp, 1, li.unsqueeze(-1).expand(F, k, 3))
        mask = model.desc_rot[:, gb[li]].permute(1, 2, 0)  # (F, k, R)
        # rows stay in the system a little above the ground (residual 0 there): without them a point
        # pushed up to z = 0 drops out, the position terms pull it back under, and GN oscillates
        wg = opts.ground_weight * (lv < _GROUND_MARGIN_M).to(dt)
        lv_neg = torch.clamp(lv, max=0.0) * wg
        rows_j.append(model.point_jacobian_z(sel_pts, mask, axes, moments) * wg.unsqueeze(-1))
        rows_r.append(lv_neg)
        cost += float(lv_neg.pow(2).sum())
        # ---- contact: the lowest sole point of a foot in contact goes to z = 0
        if s.foot_entries and opts.contact_weight > 0.0:
            ar = torch.arange(F)
            for e in s.foot_entries:
                fb = int(s.entry_body[e])
                sel = (gb == fb).nonzero().flatten()
                if sel.numel() == 0:
                    continue
                v_min, i_min = low[:, sel].min(dim=1)
                fpts = gp[ar, sel[i_min]].unsqueeze(1)
                wc = opts.contact_weight * s.contact[:, e].to(dt).unsqueeze(-1)  # (F, 1)
                jz = model.point_jacobian_z(fpts, model.desc_rot[:, fb].view(1, 1, -1), axes, moments)
                rows_j.append(jz * wc.unsqueeze(-1))
                rows_r.append(v_min.unsqueeze(-1) * wc)
                cost += float((v_min.unsqueeze(-1) * wc).pow(2).sum())
    # ---- anti-sliding: contact spans pinned to their anchors
    if anchors_xy is not None and s.foot_entries:
        fe = s.foot_entries
        c = s.contact[:, fe].to(dt) * opts.slide_weight  # (F, nf)
        res = (pts[:, fe, :2] - anchors_xy) * c.unsqueeze(-1)
        ones = torch.ones(len(fe), dtype=dt)
        jf = model.point_jacobian(pts[:, fe], model.desc_rot[:, eb[fe]].transpose(0, 1), axes, moments, ones)
        jf = jf.view(F, len(fe), 3, n)[:, :, :2] * c.view(F, -1, 1, 1)
        rows_j.append(jf.reshape(F, -1, n))
        rows_r.append(res.reshape(F, -1))
        cost += float(res.pow(2).sum())
    J = torch.cat(rows_j, dim=1)
    r = torch.cat(rows_r, dim=1)
    Jt = J.transpose(1, 2)
    H = torch.bmm(Jt, J)
    g = torch.bmm(Jt, r.unsqueeze(-1)).squeeze(-1)
    # ---- temporal smoothness (Jacobi: neighbours at their current values) and pull to the init
    diag = torch.full((F, n), opts.damping, dtype=dt)
    if smooth_w > 0.0 and F >= 3:
        sm = (_smooth_mask(F, dt) * smooth_w**2).unsqueeze(-1)
        gs = torch.zeros(F, n, dtype=dt)
        gs[:, 0:3] = root_pos - _neighbour_mean(root_pos)
        half = torch.full((F,), 0.5, dtype=dt)
        prev = torch.cat([root_quat[:1], root_quat[:-2], root_quat[-1:]])
        nxt = torch.cat([root_quat[:1], root_quat[2:], root_quat[-1:]])
        gs[:, 3:6] = quat_to_exp_map(quat_mul(root_quat, quat_conj(quat_slerp(prev, nxt, half))))
        gs[:, 6 : 6 + model.nh] = _wrap(theta - _neighbour_mean(theta))
        for k in range(model.nball):
            qb = ball[:, k]
            qm = quat_slerp(torch.cat([qb[:1], qb[:-2], qb[-1:]]), torch.cat([qb[:1], qb[2:], qb[-1:]]), half)
            gs[:, 6 + model.nh + 3 * k : 9 + model.nh + 3 * k] = quat_to_exp_map(quat_mul(quat_conj(qm), qb))
        g = g + sm * gs
        diag = diag + sm
        cost += float((sm * gs * gs).sum())
    if opts.init_weight > 0.0 and model.nh:
        wi = opts.init_weight**2
        g[:, 6 : 6 + model.nh] += wi * (theta - init[2])
        diag[:, 6 : 6 + model.nh] += wi
    H.diagonal(dim1=1, dim2=2).add_(diag)
    # ---- limits: freeze hinges at a bound whose descent direction points outward
    if model.nh:
        gh = g[:, 6 : 6 + model.nh]
        tol = 1e-6
        frozen = ((theta <= model.theta_lo + tol) & (gh > 0)) | ((theta >= model.theta_hi - tol) & (gh < 0))
        if bool(frozen.any()):
            fz = torch.zeros(F, n, dtype=torch.bool)
            fz[:, 6 : 6 + model.nh] = frozen
            keep = (~fz).to(dt)
            H = H * keep.unsqueeze(-1) * keep.unsqueeze(-2)
            H.diagonal(dim1=1, dim2=2).add_(fz.to(dt))
            g = g * keep
    L, info = torch.linalg.cholesky_ex(H)
    if bool((info != 0).any()):
        H.diagonal(dim1=1, dim2=2).add_(1e-3)
        L, _ = torch.linalg.cholesky_ex(H)
    step = -torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
    # trust region on rotations
    big = step[:, 3:].abs().amax(dim=1, keepdim=True)
    step = step * torch.clamp(opts.max_step_rad / big.clamp_min(1e-12), max=1.0)
    root_pos = root_pos + step[:, 0:3]
    root_quat = quat_normalize(quat_mul(exp_map_to_quat(step[:, 3:6]), root_quat))
    theta = model.clamp_theta(theta + step[:, 6 : 6 + model.nh])
    if model.nball:
        inc = exp_map_to_quat(step[:, 6 + model.nh :].reshape(F, model.nball, 3))
        ball = model.clamp_ball(quat_mul(ball, inc))
    return (root_pos, root_quat, theta, ball), cost


def _contact_anchors(pts_xy: Tensor, contact: Tensor) -> Tensor:
    """Mean xy of each contiguous contact span, per point: (F, n, 2) with the span's mean in its frames."""
    F, n = contact.shape
    out = pts_xy.clone()
    c = contact.numpy()
    for k in range(n):
        t = 0
        while t < F:
            if not c[t, k]:
                t += 1
                continue
            t1 = t
            while t1 < F and c[t1, k]:
                t1 += 1
            out[t:t1, k] = pts_xy[t:t1, k].mean(0)
            t = t1
    return out


def _continuous_exp_maps(e: np.ndarray) -> np.ndarray:
    """Exp maps (F, k, 3) made continuous over time: where the angle crosses pi the canonical map jumps
    to the other side (|delta| ~ 2 pi, same rotation); pick ``e (1 + 2 pi m / |e|)`` nearest the previous,
    with angles up to 1.5 pi (a joint swinging around pi keeps one branch; a root spinning round and
    round still flips once per turn, as MimicKit's own clips do)."""
    if e.shape[0] < 2:
        return e
    step = np.linalg.norm(np.diff(e, axis=0), axis=-1)
    if not (step > 2.0).any():
        return e
    out = e.copy()
    ang = np.linalg.norm(e, axis=-1, keepdims=True)  # (F, k, 1)
    unit = np.where(ang > 1e-9, e / np.maximum(ang, 1e-12), 0.0)
    ms = np.arange(-2, 3, dtype=np.float64).reshape(-1, 1, 1)  # (5, 1, 1)
    for t in range(1, e.shape[0]):
        cands = e[t][None] + 2.0 * np.pi * ms * unit[t][None]  # (5, k, 3)
        d = np.linalg.norm(cands - out[t - 1][None], axis=-1)  # (5, k)
        # beyond 1.5 pi the map is badly conditioned (singular at 2 pi): a spinning root flips there instead
        d = np.where(np.linalg.norm(cands, axis=-1) > 1.5 * np.pi, np.inf, d)
        best = d.argmin(axis=0)
        out[t] = cands[best, np.arange(e.shape[1])]
    return out


# ------------------------------------------------------------------------------------------ entry point


def retarget(
    source: SourceMotion,
    char: Character,
    mapping: Mapping,
    options: Optional[RetargetOptions] = None,
) -> RetargetResult:
    """Retarget ``source`` onto ``char`` with ``mapping``. Raises ConfigError for a mapping that does not fit."""
    from mimictools.character.kinematics import frames_to_body_poses, geom_lowest_z, local_rot_to_dof

    opts = options or RetargetOptions()
    if opts.dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype must be float32 or float64, got {opts.dtype!r}")
    dt = torch.float32 if opts.dtype == "float32" else torch.float64
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    notes: List[str] = list(source.notes)
    rmap = resolve_mapping(
        mapping, source.names, char.body_names, source_desc=source.path, target_desc=char.source or char.name
    )
    src_frames = source.num_frames
    src_fps = source.fps
    if opts.fps is not None and abs(float(opts.fps) - source.fps) > 1e-9:
        source = resample_source(source, float(opts.fps))
        notes.append(source.notes[-1])
    F = source.num_frames
    model = _Model(char, dt, opts.limit_margin_rad, opts.respect_limits)
    s = _setup(model, source, rmap, opts, notes)
    timings["setup"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    state = _initial_guess(model, s)
    init = state
    timings["init"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    smooth_w = opts.smooth_weight * (source.fps / 30.0)
    log: List[str] = []
    for it in range(opts.iterations):
        state, cost = _gn_step(model, s, opts, state, init, None, smooth_w)
        log.append(f"gn {it}: cost {cost:.6g}")
    if opts.slide_iterations > 0 and s.foot_entries and bool(s.contact.any()):
        bp, br, _, _ = model.fk(*state)
        eb = s.entry_body[s.foot_entries]
        pts = bp[:, eb] + quat_rotate(br[:, eb], s.entry_offset[s.foot_entries].expand(F, -1, -1))
        anchors = _contact_anchors(pts[..., :2], s.contact[:, s.foot_entries])
        for it in range(opts.slide_iterations):
            state, cost = _gn_step(model, s, opts, state, init, anchors, smooth_w)
            log.append(f"slide {it}: cost {cost:.6g}")
    timings["solve"] = time.perf_counter() - t2
    # ---- output frames
    t3 = time.perf_counter()
    root_pos, root_quat, theta, ball = state
    local = model.local_rotations(theta, ball)
    dof = local_rot_to_dof(char, local)
    frames = torch.cat([root_pos, quat_to_exp_map(root_quat), dof], dim=-1).to(torch.float64)
    # exp maps continuous over time (no 2 pi branch jumps where a rotation angle crosses pi)
    sph_cols = [3] + [6 + j.dof_offset for j in char.joints if j.kind == "spherical"]
    cols = torch.as_tensor([c + k for c in sph_cols for k in range(3)])
    e = frames[:, cols].numpy().reshape(F, -1, 3)
    frames[:, cols] = torch.as_tensor(_continuous_exp_maps(e).reshape(F, -1))
    lift = torch.zeros(F, dtype=torch.float64)
    if opts.ground_constraint and char.geoms:
        f32 = frames.to(torch.float32).to(torch.float64)
        bp, br = frames_to_body_poses(char, f32)
        low = geom_lowest_z(char, bp, br).min(dim=-1).values
        low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
        lift = torch.clamp(-low, min=0.0)
        lift = torch.where(lift > 0.0, lift + 1e-5, lift)  # float32 storage: clear it by 10 microns
        frames[:, 2] += lift
    out = frames.to(torch.float32).numpy()
    timings["output"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    names = []
    for ent in mapping.entries:
        off = ent.offset
        names.append(ent.body if not any(off) else f"{ent.body}+[{off[0]:g},{off[1]:g},{off[2]:g}]")
    return RetargetResult(
        frames=out,
        fps=float(source.fps),
        loop_mode=int(source.loop_mode),
        entry_names=tuple(names),
        entry_body=tuple(rmap.entry_body),
        target_pos=s.target_pos.to(torch.float64).numpy(),
        entry_weight=s.entry_weight.to(torch.float64).numpy(),
        contact=s.contact.numpy(),
        scale=s.scale,
        ground_shift_m=s.ground_shift,
        lift_m=lift.numpy(),
        mapping=mapping,
        timings_s=timings,
        notes=tuple(notes),
        source_fps=float(src_fps),
        source_frames=int(src_frames),
        solver_log=tuple(log),
    )
