"""What the viewer plays: `Track`s of body poses per frame, computed with MuJoCo's own kinematics.

A `ViewCharacter` is a character's MJCF compiled by MuJoCo (the geometry the browser draws) plus the index
tables from our Character layout to MuJoCo's (``engines.mjcf_build.map_character``). A `Track` is one
playable thing: body poses per frame of the character, optionally of a ghost (the reference a policy tracks),
a skeleton (a retargeting source), per-frame fault marks and captions. Clips, policy episodes, ``mimic eval``
recordings and retargeting comparisons all become Tracks; one player (``view.server``) plays them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from mimictools.view.faults import FaultMarks

__all__ = ["Skeleton", "Track", "ViewCharacter", "clip_track", "load_view_character"]


@dataclass(frozen=True, eq=False)
class ViewCharacter:
    """A character as the viewer needs it."""

    char: Any
    """The `Character` (our kinematic model)."""
    model: Any
    """``mujoco.MjModel`` compiled from ``char.source``."""
    body_ids: np.ndarray
    """MuJoCo body id per Character body, Shape (num_bodies,)."""
    qpos_adr: np.ndarray
    """MuJoCo qpos address per Character-layout qpos entry, Shape (num_qpos,)."""
    meshes: Tuple[Any, ...]
    """`geometry.GeomMesh` per drawable geom."""

    def body_poses(self, qpos: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """World body positions (m) and orientations (wxyz) from Character-layout ``qpos`` (T, num_qpos), by
        ``mj_kinematics``: Shapes (T, model.nbody, 3) and (T, model.nbody, 4). Non-finite qpos entries are
        drawn as 0 (a NaN joint shows its zero pose; the fault marks say where)."""
        import mujoco

        qpos = np.asarray(qpos, dtype=np.float64)
        data = mujoco.MjData(self.model)
        n = qpos.shape[0]
        pos = np.zeros((n, self.model.nbody, 3))
        quat = np.zeros((n, self.model.nbody, 4))
        full = np.array(self.model.qpos0, dtype=np.float64)
        qpos = np.where(np.isfinite(qpos), qpos, 0.0)
        norm = np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
        qpos[:, 3:7] = np.where(norm > 0, qpos[:, 3:7] / np.maximum(norm, 1e-12), [1.0, 0.0, 0.0, 0.0])
        for t in range(n):
            full[self.qpos_adr] = qpos[t]
            data.qpos[:] = full
            mujoco.mj_kinematics(self.model, data)
            pos[t] = data.xpos
            quat[t] = data.xquat
        return pos, quat


def load_view_character(path: Path) -> ViewCharacter:
    """Parse and compile the MJCF at ``path`` (raises ``CharacterError`` for a bad file)."""
    import mujoco

    from mimictools.character.mjcf import load_character
    from mimictools.engines.mjcf_build import map_character
    from mimictools.errors import CharacterError, EngineError
    from mimictools.view.geometry import character_meshes

    char = load_character(path)
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except ValueError as exc:
        raise CharacterError(f"{path}: MuJoCo cannot compile it: {str(exc).splitlines()[0]}") from None
    try:
        body_ids, qpos_adr, _ = map_character(model, char)
    except EngineError as exc:
        raise CharacterError(str(exc)) from None
    return ViewCharacter(char, model, body_ids, qpos_adr, tuple(character_meshes(model)))


@dataclass(frozen=True, eq=False)
class Skeleton:
    """Joint positions of a stick figure (a retargeting source), drawn as segments."""

    pos: np.ndarray
    """World joint positions (m), Shape (T, J, 3)."""
    parents: Tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Track:
    """One playable sequence (see module docstring). ``T`` frames, ``dt_s`` apart."""

    name: str
    dt_s: float
    body_pos: np.ndarray
    """Character bodies, MuJoCo body order (m), Shape (T, nbody, 3)."""
    body_quat: np.ndarray
    """Shape (T, nbody, 4), wxyz."""
    ghost_pos: Optional[np.ndarray] = None
    """The reference character's bodies, same layout, or None."""
    ghost_quat: Optional[np.ndarray] = None
    skeleton: Optional[Skeleton] = None
    faults: Optional[FaultMarks] = None
    captions: Optional[List[str]] = None
    """One line per frame shown under the timeline (tracking error, ...), or None."""
    info: List[str] = field(default_factory=list)
    """Lines describing the whole track (source, fps, faults found)."""

    @property
    def num_frames(self) -> int:
        return int(self.body_pos.shape[0])


def clip_track(vc: ViewCharacter, motion: Any, name: Optional[str] = None) -> Track:
    """A clip as a Track: its frames through ``dof_to_qpos`` and MuJoCo's kinematics, with its faults."""
    import torch

    from mimictools.character.kinematics import dof_to_qpos
    from mimictools.math.rotations import exp_map_to_quat
    from mimictools.motion.io import check_frame_width
    from mimictools.view.faults import clip_faults

    check_frame_width(motion, vc.char)
    f = torch.as_tensor(np.asarray(motion.frames, dtype=np.float64))
    with torch.no_grad():
        qpos = dof_to_qpos(vc.char, f[:, 0:3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]).numpy()
    pos, quat = vc.body_poses(qpos)
    marks = clip_faults(vc, motion, qpos)
    label = name or (Path(motion.source).name if motion.source else "clip")
    info = [
        f"{label}: {motion.num_frames} frames at {motion.fps:g} fps ({motion.length_s:.3f} s), loop {motion.loop_name}"
    ]
    info += marks.summary()
    return Track(label, 1.0 / float(motion.fps), pos, quat, faults=marks, info=info)
