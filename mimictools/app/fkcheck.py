"""The library side of ``mimic fk-check``: our torch FK against a physics engine's own kinematics.

For every frame of a clip (or a batch of random poses) it compares, per body:

- world position (mm) and orientation (deg) from ``kinematics.frames_to_body_poses`` (float64) with the
  poses a *reference* computes from the same frame: by default MuJoCo's ``mj_kinematics`` on the
  character's MJCF (qpos from ``kinematics.dof_to_qpos``; ``xpos``/``xquat`` poisoned with NaN before each
  call so a stale value can never pass), or any ``Engine`` (``set_state`` then ``body_pos()/body_rot()``);
- two self-consistency round trips: DoF -> joint rotation -> DoF -> joint rotation (deg), and MuJoCo hinge
  angles -> DoF -> hinge angles (deg, wrapped).

Frames with non-finite values are *bad frames*: reported (indices), excluded from the errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.character import kinematics
from mimictools.character.model import Character
from mimictools.errors import CharacterError, MimicToolsError
from mimictools.math.rotations import exp_map_to_quat, quat_diff_angle

__all__ = [
    "ClipCheck",
    "EngineReference",
    "MujocoKinematicsReference",
    "PoseReference",
    "check_frames",
    "plot_fk_errors",
    "random_frames",
    "summarize",
]

_F64 = torch.float64

PoseReference = Callable[[Tensor, Tensor, Tensor], Tuple[np.ndarray, np.ndarray]]
"""(root_pos (F, 3), root_rot (F, 4) wxyz, dof (F, num_dofs), float64) -> (body_pos (F, nb, 3) m, body_rot (F, nb, 4))."""


# ---- references -----------------------------------------------------------------------------------------


class MujocoKinematicsReference:
    """MuJoCo's ``mj_kinematics`` on the character's own MJCF (``Character.source`` or ``xml_path``)."""

    name = "mj_kinematics"

    def __init__(self, char: Character, xml_path: Optional[str] = None):
        import mujoco

        self._mujoco = mujoco
        self.char = char
        path = xml_path or char.source
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except (ValueError, FileNotFoundError) as exc:
            raise CharacterError(f"{path}: MuJoCo cannot load it: {exc}") from None
        self.data = mujoco.MjData(self.model)
        m = self.model
        mj_bodies = [m.body(i).name for i in range(1, m.nbody)]
        if len(mj_bodies) != char.num_bodies or any(a and a != b for a, b in zip(mj_bodies, char.body_names)):
            raise CharacterError(
                f"{path}: MuJoCo's bodies {mj_bodies} do not match the parsed ones {list(char.body_names)}"
            )
        if m.nq != char.num_qpos:
            raise CharacterError(f"{path}: MuJoCo has nq={m.nq}, the parsed character {char.num_qpos}")
        ours = [None] + [n for j in char.joints for n in j.mjcf_joints]
        theirs = [m.joint(i).name for i in range(m.njnt)]
        if len(ours) != len(theirs) or any(t and o and t != o for o, t in zip(ours[1:], theirs[1:])):
            raise CharacterError(
                f"{path}: MuJoCo's joints {theirs[1:]} do not match the parsed ones {ours[1:]}"
            )

    def __call__(self, root_pos: Tensor, root_rot: Tensor, dof: Tensor) -> Tuple[np.ndarray, np.ndarray]:
        mujoco, m, d = self._mujoco, self.model, self.data
        qpos = kinematics.dof_to_qpos(self.char, root_pos, root_rot, dof).detach().cpu().numpy()
        n = qpos.shape[0]
        out_pos = np.empty((n, m.nbody - 1, 3))
        out_rot = np.empty((n, m.nbody - 1, 4))
        for i in range(n):
            d.qpos[:] = qpos[i]
            d.xpos[:] = np.nan  # poison: a body mj_kinematics skipped can never look right
            d.xquat[:] = np.nan
            mujoco.mj_kinematics(m, d)
            out_pos[i] = d.xpos[1:]
            out_rot[i] = d.xquat[1:]
        return out_pos, out_rot


class EngineReference:
    """Body poses from any ``Engine`` (``mimictools.engines.base``): ``set_state`` then ``body_pos/body_rot``.

    Velocities are set to zero; batches larger than ``engine.num_envs`` go through in chunks.
    """

    def __init__(self, engine: Any, name: str = "engine"):
        self.engine = engine
        self.name = name

    def __call__(self, root_pos: Tensor, root_rot: Tensor, dof: Tensor) -> Tuple[np.ndarray, np.ndarray]:
        from mimictools.engines.base import SimState, set_state

        eng = self.engine
        n, cap = int(root_pos.shape[0]), int(eng.num_envs)
        nb = eng.character.num_bodies
        out_pos = np.empty((n, nb, 3))
        out_rot = np.empty((n, nb, 4))
        dev = eng.device
        for lo in range(0, n, cap):
            hi = min(n, lo + cap)
            k = hi - lo
            z3 = torch.zeros(k, 3, dtype=torch.float32, device=dev)
            state = SimState(
                root_pos[lo:hi].to(dev, torch.float32),
                root_rot[lo:hi].to(dev, torch.float32),
                z3,
                z3.clone(),
                dof[lo:hi].to(dev, torch.float32),
                torch.zeros(k, dof.shape[-1], dtype=torch.float32, device=dev),
            )
            ids = torch.arange(k, device=dev)
            set_state(eng, ids, state)
            out_pos[lo:hi] = eng.body_pos()[:k].detach().to("cpu", _F64).numpy()
            out_rot[lo:hi] = eng.body_rot()[:k].detach().to("cpu", _F64).numpy()
        return out_pos, out_rot


class SteppedEngineReference(EngineReference):
    """For engines that refresh body poses only inside the physics step (Isaac Gym): ``set_state``, one
    control step holding the pose (PD targets = the frame's DoFs), then the engine's body poses are compared
    with our FK of the state the engine *reports* after that step (``get_state``). This checks the adapter's
    body/DoF order and quaternion conventions on every frame even though the pose moved a little.
    """

    def __call__(self, root_pos: Tensor, root_rot: Tensor, dof: Tensor):  # type: ignore[override]
        eng = self.engine
        n, cap = int(root_pos.shape[0]), int(eng.num_envs)
        nb = eng.character.num_bodies
        out_pos, out_rot = np.empty((n, nb, 3)), np.empty((n, nb, 4))
        reached = [np.empty((n, 3)), np.empty((n, 4)), np.empty((n, dof.shape[-1]))]
        for lo in range(0, n, cap):
            hi = min(n, lo + cap)
            k = hi - lo
            # set_state of the first k envs (EngineReference); the others keep their last pose
            super().__call__(root_pos[lo:hi], root_rot[lo:hi], dof[lo:hi])
            targets = eng.get_state().dof_pos.clone()
            targets[:k] = dof[lo:hi].to(targets.device, targets.dtype)
            eng.set_targets(targets)
            eng.step_physics()
            st = eng.get_state()
            out_pos[lo:hi] = eng.body_pos()[:k].detach().to("cpu", _F64).numpy()
            out_rot[lo:hi] = eng.body_rot()[:k].detach().to("cpu", _F64).numpy()
            for arr, t in zip(reached, (st.root_pos, st.root_rot, st.dof_pos)):
                arr[lo:hi] = t[:k].detach().to("cpu", _F64).numpy()
        return out_pos, out_rot, tuple(reached)


def make_reference(character: Character, engine: Optional[str]) -> Tuple[Any, str, Any]:
    """The body-pose reference fk-check compares our FK with: MuJoCo's ``mj_kinematics`` (``engine`` None) or an
    engine built through the registry. Returns ``(reference, description, engine or None)``; close the engine.

    Isaac Gym refreshes body poses only inside ``simulate()``: each pose is held for one control step and the
    engine's body poses are compared with our FK of the state it reports (`SteppedEngineReference`).
    """
    import torch

    from mimictools.engines.base import EngineSpec
    from mimictools.engines.registry import canonical_engine_name, make_engine

    if engine is None:
        return MujocoKinematicsReference(character), "MuJoCo mj_kinematics", None
    name = canonical_engine_name(engine)
    if name == "mujoco":
        eng = make_engine(name, character, EngineSpec(num_envs=256, ground=False, num_threads=1))
        return EngineReference(eng, name), "MuJoCo CPU engine (Engine protocol)", eng
    if name == "mjwarp":
        dev = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: MuJoCo Warp on Warp's CPU device
        n = 1024 if dev == "cuda" else 256
        eng = make_engine(name, character, EngineSpec(num_envs=n, ground=False, device=dev))
        return EngineReference(eng, name), f"MuJoCo Warp engine on {dev} (Engine protocol)", eng
    eng = make_engine(name, character, EngineSpec(num_envs=256, device="cuda"))  # unknown names raise here
    return SteppedEngineReference(eng, name), "Isaac Gym engine, one held step (Engine protocol)", eng


# ---- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipCheck:
    """FK errors of one clip (or one batch of random poses). Arrays cover the valid frames only."""

    source: str
    num_frames: int
    bad_frames: np.ndarray
    """Indices of frames with NaN/inf values (skipped), Shape (num_bad,)."""
    frame_ids: np.ndarray
    """Indices of the checked frames, Shape (num_valid,)."""
    pos_err_mm: np.ndarray
    """Body position error (mm), Shape (num_valid, num_bodies); inf where the reference gave NaN."""
    rot_err_deg: np.ndarray
    """Body orientation error (deg), Shape (num_valid, num_bodies)."""
    dof_roundtrip_deg: np.ndarray
    """Max over bodies of the DoF -> rotation -> DoF -> rotation error (deg), Shape (num_valid,)."""
    hinge_roundtrip_deg: np.ndarray
    """Max over hinges of the hinge angles -> DoF -> hinge angles error (deg), Shape (num_valid,)."""
    body_names: Tuple[str, ...] = field(default=())

    @property
    def num_valid(self) -> int:
        return int(self.frame_ids.shape[0])

    def _max(self, a: np.ndarray) -> float:
        return float(a.max()) if a.size else 0.0

    @property
    def max_pos_err_mm(self) -> float:
        return self._max(self.pos_err_mm)

    @property
    def mean_pos_err_mm(self) -> float:
        return float(self.pos_err_mm.mean()) if self.pos_err_mm.size else 0.0

    @property
    def max_rot_err_deg(self) -> float:
        return self._max(self.rot_err_deg)

    @property
    def mean_rot_err_deg(self) -> float:
        return float(self.rot_err_deg.mean()) if self.rot_err_deg.size else 0.0

    @property
    def max_roundtrip_deg(self) -> float:
        return max(self._max(self.dof_roundtrip_deg), self._max(self.hinge_roundtrip_deg))

    def passed(self, tol_mm: float, tol_deg: float, strict: bool = False) -> bool:
        """Within tolerance on every valid frame (and, with ``strict``, no bad frames)."""
        if strict and self.bad_frames.size:
            return False
        return (
            self.max_pos_err_mm <= tol_mm
            and self.max_rot_err_deg <= tol_deg
            and self.max_roundtrip_deg <= tol_deg
        )

    def per_body(self) -> List[Dict[str, Any]]:
        """Per-body max/mean position (mm) and rotation (deg) errors."""
        rows = []
        for b, name in enumerate(self.body_names):
            p, r = self.pos_err_mm[:, b], self.rot_err_deg[:, b]
            rows.append(
                {
                    "body": name,
                    "max_pos_err_mm": float(p.max()) if p.size else 0.0,
                    "mean_pos_err_mm": float(p.mean()) if p.size else 0.0,
                    "max_rot_err_deg": float(r.max()) if r.size else 0.0,
                    "mean_rot_err_deg": float(r.mean()) if r.size else 0.0,
                }
            )
        return rows

    def to_dict(self, tol_mm: float, tol_deg: float, strict: bool = False) -> Dict[str, Any]:
        return {
            "source": self.source,
            "num_frames": self.num_frames,
            "num_checked": self.num_valid,
            "bad_frames": [int(i) for i in self.bad_frames],
            "max_pos_err_mm": _finite(self.max_pos_err_mm),
            "mean_pos_err_mm": _finite(self.mean_pos_err_mm),
            "max_rot_err_deg": _finite(self.max_rot_err_deg),
            "mean_rot_err_deg": _finite(self.mean_rot_err_deg),
            "max_dof_roundtrip_deg": _finite(self._max(self.dof_roundtrip_deg)),
            "max_hinge_roundtrip_deg": _finite(self._max(self.hinge_roundtrip_deg)),
            "passed": self.passed(tol_mm, tol_deg, strict),
            "bodies": [{k: _finite(v) for k, v in row.items()} for row in self.per_body()],
        }


def _finite(x: Any) -> Any:
    """JSON has no inf/NaN: write them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# ---- the check ---------------------------------------------------------------------------------------------


def check_frames(
    char: Character, frames: np.ndarray, reference: PoseReference, source: str = "<frames>", chunk: int = 4096
) -> ClipCheck:
    """Check MimicKit frames (F, 6 + num_dofs) against ``reference``. Raises CharacterError on a width mismatch."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != char.frame_width:
        raise CharacterError(
            f"{source}: frames have shape {frames.shape}; character {char.name!r} ({char.source}) needs "
            f"(num_frames, {char.frame_width}) = 3 root pos + 3 root rot + {char.num_dofs} DoFs"
        )
    finite = np.isfinite(frames).all(axis=1)
    bad = np.nonzero(~finite)[0]
    ids = np.nonzero(finite)[0]
    nb = char.num_bodies
    pos_err = np.zeros((ids.size, nb))
    rot_err = np.zeros((ids.size, nb))
    dof_rt = np.zeros(ids.size)
    hinge_rt = np.zeros(ids.size)
    hinge_cols = torch.tensor(char.hinge_qpos_cols, dtype=torch.long)
    for lo in range(0, ids.size, chunk):
        sel = ids[lo : lo + chunk]
        f = torch.from_numpy(frames[sel])
        root_pos, root_rot, dof = f[:, 0:3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]
        body_pos, body_rot = kinematics.frames_to_body_poses(char, f)
        result = reference(root_pos, root_rot, dof)
        ref_pos, ref_rot = result[0], result[1]
        if len(result) == 3:  # the reference moved the pose (SteppedEngineReference): FK of where it went
            rp, rr, rd = (torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in result[2])
            body_pos, body_rot = kinematics.forward_kinematics(
                char, rp, rr, kinematics.dof_to_local_rot(char, rd)
            )
        ref_pos_t = torch.from_numpy(np.asarray(ref_pos, dtype=np.float64))
        ref_rot_t = torch.from_numpy(np.asarray(ref_rot, dtype=np.float64))
        pe = (body_pos - ref_pos_t).norm(dim=-1) * 1000.0
        re = torch.rad2deg(quat_diff_angle(body_rot, ref_rot_t))
        pos_err[lo : lo + sel.size] = np.nan_to_num(pe.numpy(), nan=np.inf)
        rot_err[lo : lo + sel.size] = np.nan_to_num(re.numpy(), nan=np.inf)
        # DoF -> rotation -> DoF -> rotation
        lr = kinematics.dof_to_local_rot(char, dof)
        lr2 = kinematics.dof_to_local_rot(char, kinematics.local_rot_to_dof(char, lr))
        dof_rt[lo : lo + sel.size] = torch.rad2deg(quat_diff_angle(lr, lr2)).amax(dim=-1).numpy()
        # hinge angles -> DoF -> hinge angles
        qpos = kinematics.dof_to_qpos(char, root_pos, root_rot, dof)
        qpos2 = kinematics.dof_to_qpos(char, *kinematics.qpos_to_dof(char, qpos))
        if hinge_cols.numel():
            d = torch.remainder(qpos2[:, hinge_cols] - qpos[:, hinge_cols] + math.pi, 2 * math.pi) - math.pi
            hinge_rt[lo : lo + sel.size] = torch.rad2deg(d.abs()).amax(dim=-1).numpy()
    return ClipCheck(
        source=source,
        num_frames=int(frames.shape[0]),
        bad_frames=bad,
        frame_ids=ids,
        pos_err_mm=pos_err,
        rot_err_deg=rot_err,
        dof_roundtrip_deg=dof_rt,
        hinge_roundtrip_deg=hinge_rt,
        body_names=tuple(char.body_names),
    )


def random_frames(char: Character, num: int, seed: int = 0, near_pi: float = 0.25) -> np.ndarray:
    """Random frames (num, frame_width), float64, reproducible from ``seed``.

    Hinges uniform in their limits (+-pi if unlimited); spherical joints random exp maps with angle up to
    pi, a fraction ``near_pi`` of them within 1e-3 rad of pi (where exp maps are least stable); root
    anywhere in a 2 m box, any orientation.
    """
    if num < 1:
        raise CharacterError(f"number of random poses must be >= 1, got {num}")
    rng = np.random.default_rng(seed)
    out = np.zeros((num, char.frame_width))
    out[:, 0:3] = rng.uniform(-1.0, 1.0, (num, 3))
    out[:, 3:6] = _random_exp_maps(rng, num, near_pi)
    for j in char.joints:
        o = 6 + j.dof_offset
        if j.kind == "hinge":
            lo = j.range_low[0] if math.isfinite(j.range_low[0]) else -math.pi
            hi = j.range_high[0] if math.isfinite(j.range_high[0]) else math.pi
            out[:, o] = rng.uniform(lo, hi, num)
        else:
            out[:, o : o + 3] = _random_exp_maps(rng, num, near_pi)
    return out


def _random_exp_maps(rng: np.random.Generator, num: int, near_pi: float) -> np.ndarray:
    axis = rng.normal(size=(num, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.uniform(0.0, math.pi, num)
    near = rng.uniform(size=num) < near_pi
    angle[near] = math.pi - rng.uniform(0.0, 1e-3, int(near.sum()))
    return axis * angle[:, None]


# ---- reporting -------------------------------------------------------------------------------------------


def summarize(
    results: Sequence[ClipCheck], tol_mm: float, tol_deg: float, strict: bool = False
) -> Dict[str, Any]:
    """Overall numbers over many clips (JSON-ready)."""
    checked = [r for r in results if r.num_valid]
    return {
        "num_clips": len(results),
        "num_frames": int(sum(r.num_frames for r in results)),
        "num_checked": int(sum(r.num_valid for r in results)),
        "num_bad_frames": int(sum(r.bad_frames.size for r in results)),
        "max_pos_err_mm": _finite(max((r.max_pos_err_mm for r in checked), default=0.0)),
        "max_rot_err_deg": _finite(max((r.max_rot_err_deg for r in checked), default=0.0)),
        "max_roundtrip_deg": _finite(max((r.max_roundtrip_deg for r in checked), default=0.0)),
        "num_failed": sum(not r.passed(tol_mm, tol_deg, strict) for r in results),
        "num_skipped_clips": sum(r.num_valid == 0 for r in results),
        # nothing checked is no pass: every frame of every clip was skipped (NaN/inf)
        "passed": bool(checked) and all(r.passed(tol_mm, tol_deg, strict) for r in results),
    }


def plot_fk_errors(results: Sequence[ClipCheck], tol_mm: Optional[float] = None):
    """Figure: per-frame max body position error (mm, log scale), clips laid end to end."""
    from matplotlib.figure import Figure

    if not results:
        raise MimicToolsError("nothing to plot: no clips were checked")
    fig = Figure(figsize=(10, 4), constrained_layout=True)
    ax = fig.add_subplot(1, 1, 1)
    offset = 0
    floor = 1e-12  # log axis: exact zeros are drawn at the floor
    for r in results:
        err = r.pos_err_mm.max(axis=1) if r.num_valid else np.zeros(0)
        x = offset + r.frame_ids
        label = r.source if len(results) <= 8 else None
        ax.semilogy(x, np.maximum(err, floor), lw=0.8, label=label)
        if r.bad_frames.size:
            ax.plot(offset + r.bad_frames, np.full(r.bad_frames.size, floor), "rx", ms=3)
        offset += r.num_frames
        if len(results) > 1:
            ax.axvline(offset, color="0.85", lw=0.5)
    if tol_mm is not None:
        ax.axhline(tol_mm, color="r", ls="--", lw=1.0, label=f"tolerance {tol_mm:g} mm")
    ax.set_xlabel("frame (clips end to end)" if len(results) > 1 else "frame")
    ax.set_ylabel("max body position error (mm)")
    ax.set_title("FK check: ours vs reference (red x = bad frames)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right")
    return fig
