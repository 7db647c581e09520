"""Load and save motion clips, dispatching on extension and content.

- ``load_motion(path)``: one clip (MimicKit ``.pkl`` any variant, DeepMimic ``.txt``) -> ``Motion``;
- ``save_motion(motion, path)``: MimicKit's current ``.pkl`` format, atomically;
- ``load_motion_set(path)``: a clip, a folder (recursive ``*.pkl``/``*.txt``) or a dataset ``.yaml``
  -> ``[(Motion, weight), ...]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from mimictools.errors import MotionFormatError
from mimictools.motion.motion import Motion

PathLike = Union[str, Path]

CLIP_SUFFIXES = (".pkl", ".pickle", ".txt", ".json")
DATASET_SUFFIXES = (".yaml", ".yml")


def sniff_format(path: PathLike) -> str:
    """'mimickit-pkl', 'deepmimic-txt' or 'dataset-yaml', from the extension, else the first bytes."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in DATASET_SUFFIXES:
        return "dataset-yaml"
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


def load_motion(path: PathLike, char: Optional[Any] = None, warn: bool = True) -> Motion:
    """Read one clip. With ``char`` the column count is checked against ``char.frame_width``.

    Raises ``MotionFormatError`` (``UnsafePickleError`` for a pickle that tries to load code).
    """
    fmt = sniff_format(path)
    if fmt == "mimickit-pkl":
        from mimictools.motion.formats.mimickit_pkl import read_mimickit_pkl

        motion = read_mimickit_pkl(path)
    elif fmt == "deepmimic-txt":
        from mimictools.motion.formats.deepmimic_txt import read_deepmimic_txt

        motion = read_deepmimic_txt(path, char=char, warn=warn)
    else:
        raise MotionFormatError(f"{path}: is a dataset list; use load_motion_set() (or pass one clip)")
    if char is not None:
        check_frame_width(motion, char)
    return motion


def save_motion(motion: Motion, path: PathLike) -> None:
    """Write ``motion`` as a MimicKit ``.pkl`` (current format: dict, ``frames.tolist()``), atomically."""
    from mimictools.motion.formats.mimickit_pkl import write_mimickit_pkl

    write_mimickit_pkl(motion, path)


def _looks_like_clip(path: Path) -> bool:
    """In a folder walk: every ``*.pkl``, and ``*.txt`` files that start with '{' (DeepMimic JSON; skips
    READMEs, LICENSE.txt, logs)."""
    suffix = path.suffix.lower()
    if suffix == ".pkl":
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
            raise MotionFormatError(f"{path}: folder has no .pkl or .txt motion files")
        return [(f, 1.0) for f in files]
    if not p.exists():
        raise MotionFormatError(f"{path}: no such file or folder")
    if sniff_format(p) == "dataset-yaml":
        from mimictools.motion.formats.dataset_yaml import read_dataset_yaml

        return read_dataset_yaml(p)
    return [(p, 1.0)]


def load_motion_set(
    path: PathLike, char: Optional[Any] = None, warn: bool = True
) -> List[Tuple[Motion, float]]:
    """``[(Motion, weight), ...]`` for a clip, a folder or a dataset yaml (see ``expand_motion_paths``).

    The first unreadable clip raises ``MotionFormatError`` naming it (and, for a dataset, the yaml).
    """
    entries = expand_motion_paths(path)
    out = []
    for clip, weight in entries:
        if not clip.exists():
            raise MotionFormatError(f"{path}: lists {clip}, which does not exist")
        out.append((load_motion(clip, char=char, warn=warn), weight))
    return out
