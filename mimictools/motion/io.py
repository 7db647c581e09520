"""Load and save motion clips, dispatching on extension and content.

- ``load_motion(path)``: one clip (MimicKit ``.pkl`` any variant, DeepMimic ``.txt``, robot clips: GMR ``.pkl``,
  Unitree/LAFAN1 ``.csv`` (needs ``fps``), mjlab ``.npz``) -> ``Motion``;
- ``save_motion(motion, path)``: MimicKit's current ``.pkl`` format, atomically; ``.npz`` (mjlab, needs the
  character), ``.csv`` (Unitree) by extension;
- ``load_motion_set(path)``: a clip, a folder (recursive ``*.pkl``/``*.txt``) or a dataset ``.yaml``
  -> ``[(Motion, weight), ...]``;
- ``resolve_clip_fps(path, fps)``: the one place a clip path and a ``--fps`` become the frame rate a command
  (and a run's ``run.json``) uses for clips whose files store none (robot ``.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from mimictools.errors import MotionFormatError
from mimictools.motion.motion import Motion

PathLike = Union[str, Path]

CLIP_SUFFIXES = (".pkl", ".pickle", ".txt", ".json", ".csv", ".npz")
DATASET_SUFFIXES = (".yaml", ".yml")


def sniff_format(path: PathLike) -> str:
    """'mimickit-pkl' (any pickle, GMR's too), 'deepmimic-txt', 'dataset-yaml', 'robot-csv' or 'mjlab-npz',
    from the extension, else the first bytes."""
    from mimictools.io_util import check_input_file

    p = Path(path)
    check_input_file(p, MotionFormatError)  # a FIFO or device would block or read forever
    suffix = p.suffix.lower()
    if suffix in DATASET_SUFFIXES:
        return "dataset-yaml"
    if suffix == ".csv":
        return "robot-csv"
    if suffix == ".npz":
        return "mjlab-npz"
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise MotionFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head[:1] == b"\x80":
        return "mimickit-pkl"
    stripped = head.lstrip()
    if stripped[:1] == b"{":
        return "deepmimic-txt"
    if suffix in (".pkl", ".pickle"):
        return "mimickit-pkl"  # protocol 0/1 or a broken file: the pickle reader says which
    if suffix in (".txt", ".json"):
        return "deepmimic-txt"
    if stripped.startswith(b"motions"):
        return "dataset-yaml"
    if suffix == ".bvh" or stripped.startswith(b"HIERARCHY"):  # mocap on its own skeleton: retarget it first
        raise MotionFormatError(
            f"{path}: a BVH mocap file, not a clip of a character: retarget it onto one with "
            f"`mimic motion retarget {path} -o clip.pkl` (then inspect, convert or train on clip.pkl)"
        )
    raise MotionFormatError(
        f"{path}: unknown motion format (expected a MimicKit .pkl, a DeepMimic .txt or a dataset .yaml)"
    )


def check_frame_width(motion: Motion, char: Any) -> None:
    """Raise ``MotionFormatError`` unless the clip's columns match ``char.frame_width``."""
    if motion.frame_width != char.frame_width:
        name = Path(getattr(char, "source", "") or getattr(char, "name", "character")).name
        raise MotionFormatError(
            f"{motion.source or '<motion>'}: has {motion.frame_width} columns, character {name} expects "
            f"{char.frame_width} (3 root pos + 3 root rot + {char.num_dofs} DoFs)"
        )


def load_motion(
    path: PathLike, char: Optional[Any] = None, warn: bool = True, fps: Optional[float] = None
) -> Motion:
    """Read one clip. With ``char`` the column count is checked against ``char.frame_width`` (robot clips:
    the joint count against the character's joints, and an mjlab .npz's body order).

    ``fps``: frame rate of a clip whose file has none (robot CSV); ignored for the other formats.
    Raises ``MotionFormatError`` (``UnsafePickleError`` for a pickle that tries to load code).
    """
    fmt = sniff_format(path)
    if fmt == "mimickit-pkl":
        motion = _read_pickle(path, char)
    elif fmt == "robot-csv":
        from mimictools.motion.formats.robot_csv import read_robot_csv

        motion = read_robot_csv(path, fps, char=char)
    elif fmt == "mjlab-npz":
        from mimictools.motion.formats.mjlab_npz import read_mjlab_npz

        motion = read_mjlab_npz(path, char=char)
    elif fmt == "deepmimic-txt":
        from mimictools.motion.formats.deepmimic_txt import read_deepmimic_txt

        motion = read_deepmimic_txt(path, char=char, warn=warn)
    else:
        raise MotionFormatError(f"{path}: is a dataset list; use load_motion_set() (or pass one clip)")
    if char is not None:
        check_frame_width(motion, char)
    return motion


def _read_pickle(path: PathLike, char: Optional[Any]) -> Motion:
    """A MimicKit clip pickle or a GMR one (told apart by their keys), through the safe unpickler."""
    from mimictools.motion.formats.gmr_pkl import is_gmr_dict, motion_from_gmr
    from mimictools.motion.formats.mimickit_pkl import motion_from_pickled
    from mimictools.motion.formats.safe_pickle import pickle_protocol, safe_loads

    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MotionFormatError(f"{source}: cannot read ({exc.strerror or exc})") from None
    obj = safe_loads(data, source)
    if is_gmr_dict(obj):
        return motion_from_gmr(obj, source, char=char)
    return motion_from_pickled(obj, source, pickle_protocol(data))


SAVE_FORMATS = ("mimickit", "gmr")


def save_motion(motion: Motion, path: PathLike, char: Optional[Any] = None, fmt: str = "mimickit") -> None:
    """Write ``motion`` atomically, by extension: ``.npz`` mjlab (needs ``char``), ``.csv`` robot CSV,
    anything else a ``.pkl``: MimicKit's current format (dict, ``frames.tolist()``), or GMR's with
    ``fmt='gmr'``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        from mimictools.motion.formats.mjlab_npz import write_mjlab_npz

        write_mjlab_npz(motion, path, char)
    elif suffix == ".csv":
        from mimictools.motion.formats.robot_csv import write_robot_csv

        write_robot_csv(motion, path, char)
    elif fmt == "gmr":
        from mimictools.motion.formats.gmr_pkl import write_gmr_pkl

        write_gmr_pkl(motion, path, char)
    elif fmt == "mimickit":
        from mimictools.motion.formats.mimickit_pkl import write_mimickit_pkl

        write_mimickit_pkl(motion, path)
    else:
        raise MotionFormatError(f"{path}: unknown output format {fmt!r}; valid: {', '.join(SAVE_FORMATS)}")


def _looks_like_clip(path: Path) -> bool:
    """In a folder walk: every ``*.pkl``, ``*.npz`` and ``*.csv`` (robot clips), and ``*.txt`` files that start with '{' (DeepMimic JSON; skips
    READMEs, LICENSE.txt, logs)."""
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".npz", ".csv"):
        return True
    if suffix != ".txt":
        return False
    try:
        with open(path, "rb") as f:
            return f.read(256).lstrip()[:1] == b"{"
    except OSError:
        return True  # let the reader report it


def expand_motion_paths(path: PathLike) -> List[Tuple[Path, float]]:
    """The clip files ``path`` stands for, with weights: a clip -> itself (1.0); a folder -> its
    ``*.pkl``/``*.txt`` files, recursively, sorted (1.0 each); a dataset yaml -> its entries."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and _looks_like_clip(f))
        if not files:
            raise MotionFormatError(f"{path}: folder has no .pkl, .txt, .npz or .csv motion files")
        return [(f, 1.0) for f in files]
    if not p.exists():
        raise MotionFormatError(f"{path}: no such file or folder")
    if sniff_format(p) == "dataset-yaml":
        from mimictools.motion.formats.dataset_yaml import read_dataset_yaml

        return read_dataset_yaml(p)
    return [(p, 1.0)]


def load_motion_set(
    path: PathLike, char: Optional[Any] = None, warn: bool = True, fps: Optional[float] = None
) -> List[Tuple[Motion, float]]:
    """``[(Motion, weight), ...]`` for a clip, a folder or a dataset yaml (see ``expand_motion_paths``).

    ``fps``: frame rate of the clips whose files store none (robot CSV; `resolve_clip_fps`).
    The first unreadable clip raises ``MotionFormatError`` naming it (and, for a dataset, the yaml).
    """
    entries = expand_motion_paths(path)
    out = []
    for clip, weight in entries:
        if not clip.exists():
            raise MotionFormatError(f"{path}: lists {clip}, which does not exist")
        out.append((load_motion(clip, char=char, warn=warn, fps=fps), weight))
    return out


def clips_without_fps(path: PathLike) -> List[Path]:
    """The clips of ``path`` (a clip, folder or dataset yaml) whose files store no frame rate (robot .csv)."""
    return [clip for clip, _ in expand_motion_paths(path) if clip.suffix.lower() == ".csv"]


def resolve_clips_fps(
    paths: Sequence[PathLike], fps: Optional[float], required: bool = True
) -> List[Optional[float]]:
    """`resolve_clip_fps` for several paths given together (``mimic fk-check a b``, ``mimic view a b``): per path,
    the frame rate for its clips that store none (None where there are none). A given ``fps`` that no path needs
    is the same error; without ``required``, a .csv without ``fps`` gets None instead of the error (for
    per-frame checks, which do not depend on the frame rate)."""
    out = [resolve_clip_fps(p, fps, given=False) if fps is not None or required else None for p in paths]
    if fps is not None and paths and not any(out):
        resolve_clip_fps(paths[0], fps)  # raises: --fps given where no clip needs it
    return out


def resolve_clip_fps(path: PathLike, fps: Optional[float], given: bool = True) -> Optional[float]:
    """The frame rate to use (and record) for ``path``'s clips that store none: ``fps`` when ``path`` holds such
    a clip (robot .csv), else None. ``given``: ``fps`` is the user's ``--fps`` (not a run's recorded value).

    Raises ``MotionFormatError`` (one line): ``fps`` missing while a clip needs it (naming the first such
    clip); ``fps`` not a finite number in (0, MAX_FPS]; a given ``--fps`` where no clip needs one (it would be
    silently ignored: it does not resample).
    """
    import math

    from mimictools.motion.motion import MAX_FPS

    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise MotionFormatError(f"--fps {fps}: must be a number > 0 and at most {MAX_FPS:g}")
    need = clips_without_fps(path)
    if not need:
        if fps is not None and given:
            raise MotionFormatError(
                f"--fps {fps:g}: {path} stores its own frame rate; --fps is for robot .csv clips, which store "
                "none (to resample a clip: mimic motion convert CLIP --fps N -o out.pkl)"
            )
        return None
    if fps is None:
        from mimictools.motion.formats.robot_csv import missing_fps_message

        raise MotionFormatError(missing_fps_message(str(need[0])))
    return float(fps)
