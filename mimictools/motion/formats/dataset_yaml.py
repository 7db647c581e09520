"""MimicKit dataset ``.yaml``: a weighted list of clips (``motions: [{file: ..., weight: ...}]``).

Paths in the list are relative to MimicKit's working directory, i.e. the folder that *contains*
``data/`` (``data/motions/humanoid/humanoid_run.pkl``). ``resolve_dataset_entry`` finds that folder by
walking up from the yaml; absolute paths and paths relative to the yaml's own folder work too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Tuple, Union

from mimictools.errors import MotionFormatError
from mimictools.io_util import read_input_text, short_repr


def _candidate_roots(yaml_path: Path) -> List[Path]:
    roots = []
    for parent in yaml_path.resolve().parents:
        if (parent / "data").is_dir():
            roots.append(parent)
    return roots


def resolve_dataset_entry(yaml_path: Path, entry: str) -> Path:
    """Resolve one ``file:`` entry of a dataset yaml to an existing path (or the best guess)."""
    p = Path(entry).expanduser()
    if p.is_absolute():
        return p
    candidates = [root / p for root in _candidate_roots(yaml_path)]
    candidates.append(yaml_path.resolve().parent / p)
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def read_dataset_yaml(path: Union[str, Path]) -> List[Tuple[Path, float]]:
    """``[(clip path, weight), ...]`` from a MimicKit dataset yaml. Missing clips are reported by the caller."""
    import yaml

    source = str(path)
    yaml_path = Path(path)
    text = read_input_text(yaml_path, MotionFormatError, what="YAML")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = short_repr(str(exc).splitlines()[0], 120) if str(exc) else type(exc).__name__
        raise MotionFormatError(f"{source}: invalid YAML ({first})") from None
    except RecursionError:
        raise MotionFormatError(f"{source}: YAML nested too deeply") from None
    except ValueError as exc:  # PyYAML's int() of a > 4300-digit literal
        raise MotionFormatError(f"{source}: invalid YAML ({short_repr(str(exc), 120)})") from None
    if not isinstance(doc, dict) or "motions" not in doc:
        raise MotionFormatError(
            f"{source}: a dataset yaml needs a top-level 'motions' list of {{file, weight}}"
        )
    entries = doc["motions"]
    if not isinstance(entries, list) or not entries:
        raise MotionFormatError(f"{source}: 'motions' must be a non-empty list of {{file, weight}}")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "file" not in entry:
            raise MotionFormatError(f"{source}: motions[{i}] needs a 'file' key (and an optional 'weight')")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
            raise MotionFormatError(f"{source}: motions[{i}] weight {short_repr(weight)} is not a number")
        try:
            w = float(weight)
        except (TypeError, ValueError, OverflowError):
            raise MotionFormatError(
                f"{source}: motions[{i}] weight {short_repr(weight)} is not a number"
            ) from None
        if not isinstance(entry["file"], str) or not entry["file"] or "\0" in entry["file"]:
            raise MotionFormatError(
                f"{source}: motions[{i}] file {short_repr(entry['file'])} is not a file path"
            )
        if not math.isfinite(w) or w < 0:
            raise MotionFormatError(f"{source}: motions[{i}] weight is {w}; it must be finite and >= 0")
        try:
            out.append((resolve_dataset_entry(yaml_path, entry["file"]), w))
        except (OSError, RuntimeError, ValueError) as exc:
            raise MotionFormatError(
                f"{source}: motions[{i}] file {short_repr(entry['file'])}: {exc}"
            ) from None
    if sum(w for _, w in out) <= 0:
        raise MotionFormatError(f"{source}: all weights are 0")
    return out
