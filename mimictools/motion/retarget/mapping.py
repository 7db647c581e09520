"""Mapping files: which source joints drive which target bodies (YAML), presets, and validation.

A mapping file (see ``docs/retargeting.md``)::

    name: cmu_bvh_to_humanoid
    description: CMU 31-joint BVH -> mimictools humanoid
    source: bvh                      # optional: bvh | mimickit (what kind of source it was written for)
    feet: [right_foot, left_foot]    # target bodies kept on the ground (contacts, leg length for scale)
    ground: auto                     # optional: auto (BVH: put the feet on z = 0) | keep
    bodies:
      pelvis:                        # a target body: one target point ...
        source: [LeftUpLeg, RightUpLeg]   # a source joint, or several (their mean position)
        rot_source: Hips             # optional: the source joint whose rotation drives this body
        rot_weight: 0.1              # optional: weight of the orientation term (default 0: position only)
      right_foot:                    # ... or a list of target points on the same body
        - source: RightFoot
        - {source: RightToeBase, offset: [0.13, 0.0, -0.023], weight: 0.5}

``offset`` is a point in the target body's frame (metres; default its origin), ``weight`` the weight of
its position term (default 1). Source names are BVH joint names (End Sites are ``<joint>_end``) or, for
a MimicKit/DeepMimic source, body names of the source character.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mimictools.errors import ConfigError
from mimictools.io_util import short_repr

__all__ = [
    "PRESET_DIR",
    "MapEntry",
    "Mapping",
    "ResolvedMapping",
    "list_presets",
    "load_mapping",
    "mapping_from_dict",
    "resolve_mapping",
    "select_preset",
]

PRESET_DIR = Path(__file__).resolve().parent / "presets"
"""Bundled mapping presets (``<name>.yaml``)."""

_TOP_KEYS = ("name", "description", "source", "feet", "ground", "bodies")
_ENTRY_KEYS = ("source", "offset", "weight", "rot_weight", "rot_source")
_SOURCE_KINDS = ("bvh", "mimickit")
_GROUND_MODES = ("auto", "keep")


@dataclass(frozen=True)
class MapEntry:
    """One target point: a point on a target body that follows a source joint (or the mean of several)."""

    body: str
    """Target body name."""
    source: Tuple[str, ...]
    """Source joint/body names; the target point follows their mean position."""
    offset: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The point in the target body's frame (m); (0, 0, 0) is the body origin (its joint)."""
    weight: float = 1.0
    """Weight of the position term."""
    rot_weight: float = 0.0
    """Weight of the orientation term (0: positions only)."""
    rot_source: Optional[str] = None
    """Source joint whose world rotation drives the body's (default: ``source`` if it is one name)."""

    @property
    def orientation_source(self) -> Optional[str]:
        if self.rot_source is not None:
            return self.rot_source
        return self.source[0] if len(self.source) == 1 else None


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file."""

    name: str
    entries: Tuple[MapEntry, ...]
    feet: Tuple[str, ...] = ()
    """Target bodies that touch the ground (contact detection, ground constraint, leg length)."""
    source_kind: Optional[str] = None
    """'bvh' or 'mimickit' if the file says which kind of source it was written for."""
    ground: Optional[str] = None
    """'auto' (shift the source so the feet stand on z = 0), 'keep', or None (auto for BVH, keep otherwise)."""
    description: str = ""
    path: str = ""


@dataclass(frozen=True, eq=False)
class ResolvedMapping:
    """A mapping checked against one source and one target: names turned into indices."""

    mapping: Mapping
    entry_body: Tuple[int, ...]
    """Target body index per entry."""
    entry_sources: Tuple[Tuple[int, ...], ...]
    """Source joint indices per entry."""
    entry_rot_source: Tuple[int, ...]
    """Source joint index for the orientation term per entry, -1 if none."""
    feet: Tuple[int, ...]
    """Target body indices of the feet."""


def _nearest(word: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(valid), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _check_keys(where: str, got: Dict[str, Any], valid: Sequence[str]) -> None:
    for k in got:
        if k not in valid:
            raise ConfigError(
                f"{where}: unknown key {short_repr(k)}{_nearest(str(k)[:100], valid)}; valid keys: {', '.join(valid)}"
            )


def _number(where: str, value: Any, what: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"{where}: {what} must be a number, got {short_repr(value)}")
    if float(value) < minimum:
        raise ConfigError(f"{where}: {what} must be >= {minimum}, got {short_repr(value)}")
    return float(value)


def _names(where: str, value: Any, what: str) -> Tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(
        f"{where}: {what} must be a joint name or a non-empty list of names, got {short_repr(value)}"
    )


def _entry(where: str, body: str, raw: Any) -> MapEntry:
    if isinstance(raw, str) or isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        raw = {"source": raw}  # shorthand: `head: Head`
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: expected a mapping with 'source' (and optional {', '.join(_ENTRY_KEYS[1:])}), got {short_repr(raw)}"
        )
    _check_keys(where, raw, _ENTRY_KEYS)
    if "source" not in raw:
        raise ConfigError(f"{where}: missing 'source' (the source joint name(s) this point follows)")
    offset = raw.get("offset", (0.0, 0.0, 0.0))
    if not isinstance(offset, (list, tuple)) or len(offset) != 3:
        raise ConfigError(
            f"{where}: offset must be 3 numbers [x, y, z] in the body frame (m), got {short_repr(offset)}"
        )
    off = tuple(_number(where, v, "offset", -math.inf) for v in offset)
    rot_source = raw.get("rot_source")
    if rot_source is not None and not (isinstance(rot_source, str) and rot_source):
        raise ConfigError(f"{where}: rot_source must be one joint name, got {short_repr(rot_source)}")
    return MapEntry(
        body=body,
        source=_names(where, raw["source"], "source"),
        offset=(off[0], off[1], off[2]),
        weight=_number(where, raw.get("weight", 1.0), "weight"),
        rot_weight=_number(where, raw.get("rot_weight", 0.0), "rot_weight"),
        rot_source=rot_source,
    )


def mapping_from_dict(doc: Any, path: str = "<mapping>") -> Mapping:
    """Build a Mapping from parsed YAML. ConfigError naming the file and key for anything invalid."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a mapping file is a YAML mapping with keys {', '.join(_TOP_KEYS)}")
    _check_keys(path, doc, _TOP_KEYS)
    bodies = doc.get("bodies")
    if not isinstance(bodies, dict) or not bodies:
        raise ConfigError(
            f"{path}: 'bodies' must map target body names to source joints (see docs/retargeting.md)"
        )
    entries: List[MapEntry] = []
    for body, raw in bodies.items():
        if not isinstance(body, str):
            raise ConfigError(f"{path}: body names must be strings, got {short_repr(body)}")
        items = raw if isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw) else [raw]
        for k, item in enumerate(items):
            where = f"{path}: bodies.{body}" + (f"[{k}]" if len(items) > 1 else "")
            entries.append(_entry(where, body, item))
    feet_raw = doc.get("feet", [])
    if isinstance(feet_raw, str):
        feet_raw = [feet_raw]
    if not isinstance(feet_raw, list) or not all(isinstance(f, str) for f in feet_raw):
        raise ConfigError(f"{path}: feet must be a list of target body names, got {short_repr(feet_raw)}")
    mapped = {e.body for e in entries}
    for foot in feet_raw:
        if foot not in mapped:
            raise ConfigError(
                f"{path}: foot {short_repr(foot)} has no entry under 'bodies' (mapped: {', '.join(sorted(mapped))})"
            )
    kind = doc.get("source")
    if kind is not None and kind not in _SOURCE_KINDS:
        raise ConfigError(f"{path}: source must be one of {', '.join(_SOURCE_KINDS)}, got {short_repr(kind)}")
    ground = doc.get("ground")
    if ground is not None and ground not in _GROUND_MODES:
        raise ConfigError(
            f"{path}: ground must be one of {', '.join(_GROUND_MODES)}, got {short_repr(ground)}"
        )
    if not any(e.weight > 0.0 for e in entries):
        raise ConfigError(f"{path}: every entry has weight 0; at least one position term is needed")
    name = doc.get("name", Path(path).stem)
    return Mapping(
        name=str(name),
        entries=tuple(entries),
        feet=tuple(feet_raw),
        source_kind=kind,
        ground=ground,
        description=str(doc.get("description", "")),
        path=path,
    )


def load_mapping(path_or_preset: str | Path) -> Mapping:
    """Load a mapping YAML file, or a bundled preset by name (``list_presets()``)."""
    import yaml

    p = Path(path_or_preset)
    if not p.exists() and not p.suffix:
        preset = PRESET_DIR / f"{p.name}.yaml"
        if preset.exists():
            p = preset
        else:
            raise ConfigError(
                f"mapping {str(path_or_preset)!r}: no such file, and not a preset; presets: {', '.join(list_presets())}"
            )
    from mimictools.io_util import read_input_text

    text = read_input_text(p, ConfigError, what="YAML")
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{p}: not valid YAML: {short_repr(first, 200)}") from None
    return mapping_from_dict(doc, str(p))


def list_presets() -> List[str]:
    """Names of the bundled presets."""
    return sorted(f.stem for f in PRESET_DIR.glob("*.yaml"))


def _source_names(m: Mapping) -> List[str]:
    names: List[str] = []
    for e in m.entries:
        names.extend(e.source)
        if e.rot_source:
            names.append(e.rot_source)
    return names


def resolve_mapping(
    mapping: Mapping,
    source_names: Sequence[str],
    target_names: Sequence[str],
    source_desc: str,
    target_desc: str,
) -> ResolvedMapping:
    """Check every name against the source joints and the target bodies; ConfigError naming what is missing."""
    src_index = {n: i for i, n in enumerate(source_names)}
    tgt_index = {n: i for i, n in enumerate(target_names)}
    where = mapping.path or mapping.name
    missing_t = sorted(
        {e.body for e in mapping.entries if e.body not in tgt_index}
        | {f for f in mapping.feet if f not in tgt_index}
    )
    if missing_t:
        hint = "; ".join(f"{n!r}{_nearest(n, target_names)}" for n in missing_t)
        raise ConfigError(
            f"mapping {where}: target {target_desc} has no body {hint}; its bodies are: {', '.join(target_names)}"
        )
    missing_s = [n for n in dict.fromkeys(_source_names(mapping)) if n not in src_index]
    if missing_s:
        hint = "; ".join(f"{n!r}{_nearest(n, source_names)}" for n in missing_s)
        raise ConfigError(
            f"mapping {where}: source {source_desc} has no joint {hint}; its joints are: {', '.join(source_names)}"
        )
    rot_src = []
    for e in mapping.entries:
        name = e.orientation_source
        rot_src.append(src_index[name] if (name is not None and e.rot_weight > 0.0) else -1)
    return ResolvedMapping(
        mapping=mapping,
        entry_body=tuple(tgt_index[e.body] for e in mapping.entries),
        entry_sources=tuple(tuple(src_index[n] for n in e.source) for e in mapping.entries),
        entry_rot_source=tuple(rot_src),
        feet=tuple(tgt_index[f] for f in mapping.feet),
    )


def select_preset(source_names: Sequence[str], target_names: Sequence[str], source_kind: str) -> Mapping:
    """The bundled preset whose every name exists in this source and target (ConfigError if none does).

    When several fit, the one naming the most distinct source joints (the most specific) is chosen.
    """
    src, tgt = set(source_names), set(target_names)
    fits = []
    tried = []
    for name in list_presets():
        m = load_mapping(name)
        if m.source_kind is not None and m.source_kind != source_kind:
            continue
        miss_s = [n for n in _source_names(m) if n not in src]
        miss_t = [e.body for e in m.entries if e.body not in tgt]
        if not miss_s and not miss_t:
            fits.append(m)
        else:
            tried.append(f"{name} (missing {', '.join((miss_s + miss_t)[:3])})")
    if not fits:
        raise ConfigError(
            "no bundled mapping fits this source and target; write one (docs/retargeting.md) and pass --map. "
            f"Presets tried: {'; '.join(tried) or 'none for this source kind'}. Source joints: {', '.join(source_names)}"
        )
    # several fit (a CMU file also has every joint an SFU preset names): the most specific one wins
    fits.sort(key=lambda m: (-len(set(_source_names(m))), m.name))
    return fits[0]
