"""Parse an MJCF (MuJoCo XML) character into a ``Character``, with ``xml.etree`` only (no MuJoCo needed).

What is supported, and how it maps to the DoF layout (see ``mimictools.character.model``):

- one root body under ``<worldbody>`` with a free joint (``<freejoint/>`` or ``<joint type="free"/>``);
- per non-root body: no joint (welded), one ``hinge`` (1 DoF), three ``hinge`` joints with orthonormal
  axes (a 3-DoF spherical joint, composed ``R(axis1, q1) R(axis2, q2) R(axis3, q3)`` as MuJoCo does),
  or one ``ball`` joint (3 DoF);
- body/geom orientation from ``quat``, ``euler`` (``<compiler eulerseq>``), ``axisangle``, ``xyaxes``,
  ``zaxis``; angles in ``<compiler angle="degree|radian">`` units (MuJoCo's default is degree);
- ``<default>`` classes (nested, ``class`` and ``childclass``); joint ``limited``/``range`` (converted to
  radians), ``stiffness``/``damping`` (read as PD gains), ``armature``, ``actuatorfrcrange`` (effort limit);
- geoms with ``fromto`` resolved to centre + orientation + half-length;
- ``<include file=...>`` (resolved relative to the including file, recursively; MuJoCo Menagerie's
  ``scene.xml``), see `_expand_includes`;
- PD gains and torque limits from ``<actuator>`` where the joints carry none (see `_actuator_gains`):
  ``<position kp kv|dampratio forcerange gear>`` (Menagerie), ``<general>`` with fixed gain and affine
  bias, ``<motor gear ctrlrange|forcerange>`` (a torque limit only). A joint's own ``stiffness`` > 0 wins
  (MimicKit's humanoid); its ``actuatorfrcrange`` wins over the actuator's limits.

Anything else that changes the kinematics (``<frame>``, slide joints, joint ``pos``/``ref``
offsets, two hinges on one body, ...) raises ``CharacterError`` naming the file, the body or joint and
what is supported. Elements that do not affect kinematics (sites, cameras, inertials, assets) are ignored.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from mimictools.character.model import Character, Geom, Joint
from mimictools.errors import CharacterError
from mimictools.io_util import read_input_text, short_repr

__all__ = ["load_character", "load_character_from_string"]

_ORIENT_ATTRS = ("quat", "axisangle", "euler", "xyaxes", "zaxis")
_REJECTED_ELEMENTS = {
    "frame": "<frame> is not supported: fold its pos/orientation into the child bodies",
    "replicate": "<replicate> is not supported: write the copies out explicitly",
    "attach": "<attach> is not supported: merge the attached model into one MJCF",
    "composite": "<composite> is not supported (soft bodies have no place in a character)",
    "flexcomp": "<flexcomp> is not supported (soft bodies have no place in a character)",
}
_ORTHO_TOL = 1e-6
MAX_BODY_DEPTH = 200
"""Deepest body (and default class) nesting accepted; real characters are < 30 deep."""
MAX_ABS_VALUE = 1e12
"""Largest magnitude of a numeric attribute; NaN/inf and larger values are refused."""
_MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class _Compiler:
    angle_scale: float
    """Multiply angle attributes by this to get radians (pi/180 for degree)."""
    eulerseq: str
    autolimits: bool


class _Ctx:
    """Parse context: source name, compiler settings, default classes."""

    def __init__(self, source: str, compiler: _Compiler, defaults: Dict[str, Dict[str, Dict[str, str]]]):
        self.source = source
        self.compiler = compiler
        self.defaults = defaults

    def error(self, msg: str) -> CharacterError:
        return CharacterError(f"{self.source}: {msg}")

    def lookup(self, elem: ET.Element, cls: str) -> Callable[[str], Optional[str]]:
        """Attribute getter: the element's own value, else its default class's value, else None."""
        own_cls = elem.get("class", cls)
        if own_cls not in self.defaults:
            raise self.error(
                f"<{elem.tag} name={elem.get('name', '')!r}> uses class {own_cls!r}, which is not defined; "
                f"defined classes: {', '.join(sorted(self.defaults))}"
            )
        dflt = self.defaults[own_cls].get(elem.tag, {})

        def get(attr: str) -> Optional[str]:
            value = elem.get(attr)
            return value if value is not None else dflt.get(attr)

        return get


# ---- public API ------------------------------------------------------------------------------------


def load_character(path: Union[str, Path]) -> Character:
    """Load an MJCF file as a ``Character`` (raises ``CharacterError`` for unsupported models)."""
    p = Path(path)
    if not p.exists():
        raise CharacterError(f"{p}: character file not found (expected an MJCF .xml)")
    text = read_input_text(p, CharacterError, what="XML")
    return load_character_from_string(text, source=str(p), default_name=p.stem, base_dir=p.parent)


def load_character_from_string(
    xml: str, source: str = "<string>", default_name: str = "character", base_dir: Optional[Path] = None
) -> Character:
    """Parse MJCF text; ``source`` names it in error messages and ``Character.source``.

    ``base_dir``: folder that ``<include file=...>`` paths are relative to (None: includes are an error).
    """
    root = _parse_xml(xml, source)
    _expand_includes(root, source, base_dir, depth=0, seen=(source,))
    for elem in root.iter():
        if elem.tag in _REJECTED_ELEMENTS:
            raise CharacterError(f"{source}: {_REJECTED_ELEMENTS[elem.tag]}")

    _check_mujoco_resources(root, source, base_dir)
    compiler = _parse_compiler(root, source)
    defaults: Dict[str, Dict[str, Dict[str, str]]] = {"main": {}}
    for d in root.findall("default"):
        _parse_default(d, "main", defaults, source, top=True)
    ctx = _Ctx(source, compiler, defaults)

    worldbody = root.findall("worldbody")
    bodies = [b for wb in worldbody for b in wb.findall("body")]
    if not bodies:
        raise ctx.error("<worldbody> has no <body>; a character needs one root body with a free joint")
    if len(bodies) > 1:
        names = ", ".join(repr(b.get("name", "")) for b in bodies)
        raise ctx.error(
            f"<worldbody> has {len(bodies)} root bodies ({names}); exactly one root body (the character) is supported"
        )

    builder = _Builder(ctx)
    builder.visit(bodies[0], parent=-1, cls="main")
    joints = _actuator_gains(ctx, root, builder.joints)
    name = root.get("model") or default_name
    return Character(
        name=name,
        source=source,
        body_names=tuple(builder.body_names),
        parents=tuple(builder.parents),
        local_pos=np.array(builder.local_pos, dtype=np.float64).reshape(-1, 3),
        local_quat=np.array(builder.local_quat, dtype=np.float64).reshape(-1, 4),
        joints=tuple(joints),
        geoms=tuple(builder.geoms),
    )


# ---- what MuJoCo would allocate or read (engines and fk-check compile the same file) ----------------------

MAX_ASSET_CELLS = 1 << 24
"""Largest texture (width x height, x6 for cube maps) or height field (nrow x ncol) accepted: 16 M."""
MAX_SIZE_MEMORY_BYTES = 1 << 30
"""Largest ``<size memory=...>`` accepted (1 GiB)."""
_MEMORY_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}


def _int_attr(elem: ET.Element, attr: str, source: str) -> int:
    raw = elem.get(attr)
    if raw is None:
        return 0
    try:
        return int(float(raw))
    except (ValueError, OverflowError):
        raise CharacterError(f"{source}: <{elem.tag} {attr}={short_repr(raw)}> is not a number") from None


def _check_mujoco_resources(root: ET.Element, source: str, base_dir: Optional[Path]) -> None:
    """Refuse what would make MuJoCo allocate gigabytes (huge textures, height fields, ``<size memory>``)
    or read forever (an asset ``file`` that is a FIFO or a device). ``CharacterError``, one line."""
    for elem in root.iter():
        if elem.tag == "texture":
            px = _int_attr(elem, "width", source) * _int_attr(elem, "height", source)
            if px * (6 if elem.get("type") == "cube" else 1) > MAX_ASSET_CELLS:
                raise CharacterError(
                    f"{source}: <texture name={short_repr(elem.get('name', ''))}> of {px:,} pixels; at most "
                    f"{MAX_ASSET_CELLS:,}"
                )
        elif elem.tag == "hfield":
            cells = _int_attr(elem, "nrow", source) * _int_attr(elem, "ncol", source)
            if cells > MAX_ASSET_CELLS:
                raise CharacterError(
                    f"{source}: <hfield name={short_repr(elem.get('name', ''))}> of {cells:,} cells; at most "
                    f"{MAX_ASSET_CELLS:,}"
                )
        elif elem.tag == "size" and elem.get("memory") is not None:
            raw = elem.get("memory", "").strip()
            unit = raw[-1:].upper() if raw[-1:].isalpha() else ""
            try:
                nbytes = int(float(raw[: len(raw) - len(unit)] or "x")) * _MEMORY_UNITS[unit]
            except (ValueError, KeyError, OverflowError):
                raise CharacterError(f"{source}: <size memory={short_repr(raw)}> is not a size") from None
            if nbytes > MAX_SIZE_MEMORY_BYTES:
                raise CharacterError(f"{source}: <size memory={short_repr(raw)}> is above 1G")
        elif elem.tag == "size":
            for attr in ("njmax", "nconmax", "nstack", "nuserdata", "nkey", "nuser_body", "nuser_jnt"):
                if _int_attr(elem, attr, source) > 10_000_000:
                    raise CharacterError(
                        f"{source}: <size {attr}={short_repr(elem.get(attr))}> is above 10 M"
                    )
        if base_dir is not None and elem.get("file"):
            _check_asset_file(elem, root, source, base_dir)


def _check_asset_file(elem: ET.Element, root: ET.Element, source: str, base_dir: Path) -> None:
    from mimictools.io_util import check_input_file

    name = str(elem.get("file"))
    dirs = [c.get(k) for c in root.findall("compiler") for k in ("meshdir", "texturedir", "assetdir")]
    for d in [x for x in dirs if x] + [""]:
        cand = base_dir / d / name
        try:
            if cand.exists():
                check_input_file(cand, CharacterError)
                return
        except OSError:
            continue


def _parse_xml(xml: str, source: str) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise CharacterError(f"{source}: not valid XML: {exc}") from None
    if root.tag != "mujoco":
        raise CharacterError(f"{source}: root element is <{root.tag}>, expected <mujoco> (an MJCF file)")
    return root


def _expand_includes(
    elem: ET.Element, source: str, base_dir: Optional[Path], depth: int, seen: Tuple[str, ...]
) -> None:
    """Replace every ``<include file=...>`` below ``elem`` by the children of the included file's
    ``<mujoco>`` root, in place (MuJoCo's semantics). Paths are relative to ``base_dir`` (the including
    file's folder); an included file's own includes are relative to MuJoCo's model folder, i.e. the
    same ``base_dir``. Cycles and nesting deeper than 16 are errors."""
    # ElementTree's iter() walks without recursion: deeply nested bodies cannot exhaust the stack here
    includes = [(parent, child) for parent in elem.iter() for child in list(parent) if child.tag == "include"]
    for parent, child in includes:
        fname = child.get("file")
        if not fname:
            raise CharacterError(f"{source}: <include> has no file attribute")
        if base_dir is None:
            raise CharacterError(
                f"{source}: <include file={fname!r}> needs the file's folder; load the MJCF with load_character(path)"
            )
        path = (base_dir / fname).resolve()
        if str(path) in seen:
            raise CharacterError(f"{source}: <include file={fname!r}> includes itself (cycle through {path})")
        if depth >= _MAX_INCLUDE_DEPTH:
            raise CharacterError(f"{source}: <include> nested deeper than {_MAX_INCLUDE_DEPTH} files")
        if not path.exists():
            raise CharacterError(f"{source}: <include file={fname!r}>: {path} not found")
        inc_root = _parse_xml(read_input_text(path, CharacterError, what="XML"), str(path))
        _expand_includes(inc_root, str(path), base_dir, depth + 1, seen + (str(path),))
        pos = list(parent).index(child)
        parent.remove(child)
        for k, inc_child in enumerate(list(inc_root)):
            parent.insert(pos + k, inc_child)


# ---- compiler and defaults ----------------------------------------------------------------------------


def _parse_compiler(root: ET.Element, source: str) -> _Compiler:
    angle, eulerseq, autolimits = "degree", "xyz", "true"
    for c in root.findall("compiler"):
        angle = c.get("angle", angle)
        eulerseq = c.get("eulerseq", eulerseq)
        autolimits = c.get("autolimits", autolimits)
        if c.get("coordinate", "local") != "local":
            raise CharacterError(
                f"{source}: <compiler coordinate={c.get('coordinate')!r}> is not supported; use 'local'"
            )
    if angle not in ("degree", "radian"):
        raise CharacterError(f"{source}: <compiler angle={angle!r}> is invalid; use 'degree' or 'radian'")
    if len(eulerseq) != 3 or any(ch not in "xyzXYZ" for ch in eulerseq):
        raise CharacterError(
            f"{source}: <compiler eulerseq={eulerseq!r}> is invalid; use 3 of x y z X Y Z (e.g. 'xyz')"
        )
    return _Compiler(
        angle_scale=math.pi / 180.0 if angle == "degree" else 1.0,
        eulerseq=eulerseq,
        autolimits=autolimits == "true",
    )


def _parse_default(
    elem: ET.Element,
    parent: str,
    out: Dict[str, Dict[str, Dict[str, str]]],
    source: str,
    top: bool = False,
    depth: int = 0,
) -> None:
    if depth > MAX_BODY_DEPTH:
        raise CharacterError(f"{source}: <default> classes are nested more than {MAX_BODY_DEPTH} levels deep")
    name = elem.get("class", "main" if top else None)
    if name is None:
        raise CharacterError(f"{source}: a nested <default> has no class attribute")
    if name in out and not (top and name == "main"):
        raise CharacterError(f"{source}: default class {name!r} is defined twice")
    inherited = out.get(parent, {}) if not (top and name == "main") else out.get("main", {})
    merged = {tag: dict(attrs) for tag, attrs in inherited.items()}
    for child in elem:
        if child.tag == "default":
            continue
        merged.setdefault(child.tag, {}).update(child.attrib)
    out[name] = merged
    for child in elem.findall("default"):
        _parse_default(child, name, out, source, depth=depth + 1)


# ---- attribute helpers ----------------------------------------------------------------------------------


def _floats(ctx: _Ctx, value: Optional[str], n: Optional[int], what: str) -> Optional[np.ndarray]:
    """Parse a whitespace-separated number list (``n`` of them if given); None stays None."""
    return None if value is None else _parse(ctx, value, n, what)


def _parse(ctx: _Ctx, value: str, n: Optional[int], what: str) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value.split()], dtype=np.float64)
    except ValueError:
        raise ctx.error(f"{what}: cannot parse {short_repr(value)} as numbers") from None
    if not np.all(np.abs(arr) <= MAX_ABS_VALUE):  # also catches NaN
        raise ctx.error(
            f"{what}: {short_repr(value)} must be finite numbers of magnitude <= {MAX_ABS_VALUE:g}"
        )
    if n is not None and arr.size != n:
        raise ctx.error(f"{what}: expected {n} numbers, got {arr.size} ({value!r})")
    return arr


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def _axis_angle_quat(axis: np.ndarray, angle: float) -> np.ndarray:
    return np.concatenate([[math.cos(0.5 * angle)], axis * math.sin(0.5 * angle)])


def _mat_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> unit quaternion wxyz with w >= 0."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(1.0 + tr)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def _z_to_quat(ctx: _Ctx, vec: np.ndarray, what: str) -> np.ndarray:
    """Shortest rotation taking +z onto ``vec`` (MuJoCo's zaxis / fromto convention)."""
    n = np.linalg.norm(vec)
    if n < 1e-12:
        raise ctx.error(f"{what}: zero-length direction")
    v = vec / n
    axis = np.cross([0.0, 0.0, 1.0], v)
    s = np.linalg.norm(axis)
    if s < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0]) if v[2] > 0 else np.array([0.0, 1.0, 0.0, 0.0])
    return _axis_angle_quat(axis / s, math.atan2(s, v[2]))


def _orientation(ctx: _Ctx, get: Callable[[str], Optional[str]], what: str) -> np.ndarray:
    """Unit quaternion (wxyz) from whichever single orientation attribute is present (identity if none)."""
    present = [a for a in _ORIENT_ATTRS if get(a) is not None]
    if len(present) > 1:
        raise ctx.error(f"{what}: has {' and '.join(present)}; MJCF allows only one orientation attribute")
    if not present:
        return np.array([1.0, 0.0, 0.0, 0.0])
    attr = present[0]
    raw = str(get(attr))
    scale = ctx.compiler.angle_scale
    if attr == "quat":
        q = _parse(ctx, raw, 4, f"{what} quat")
        n = np.linalg.norm(q)
        if n < 1e-12:
            raise ctx.error(f"{what}: quat is zero")
        return q / n
    if attr == "axisangle":
        aa = _parse(ctx, raw, 4, f"{what} axisangle")
        n = np.linalg.norm(aa[:3])
        if n < 1e-12:
            raise ctx.error(f"{what}: axisangle has a zero axis")
        return _axis_angle_quat(aa[:3] / n, aa[3] * scale)
    if attr == "euler":
        angles = _parse(ctx, raw, 3, f"{what} euler") * scale
        q = np.array([1.0, 0.0, 0.0, 0.0])
        for ch, ang in zip(ctx.compiler.eulerseq, angles):
            axis = np.zeros(3)
            axis["xyz".index(ch.lower())] = 1.0
            r = _axis_angle_quat(axis, ang)
            # lower case: axes move with the frame (post-multiply); upper case: fixed axes (pre-multiply)
            q = _quat_mul(q, r) if ch.islower() else _quat_mul(r, q)
        return q / np.linalg.norm(q)
    if attr == "xyaxes":
        xy = _parse(ctx, raw, 6, f"{what} xyaxes")
        x = xy[:3] / max(np.linalg.norm(xy[:3]), 1e-12)
        y = xy[3:] - x * np.dot(x, xy[3:])
        ny = np.linalg.norm(y)
        if ny < 1e-12:
            raise ctx.error(f"{what}: xyaxes x and y are parallel")
        y = y / ny
        return _mat_to_quat(np.stack([x, y, np.cross(x, y)], axis=1))
    return _z_to_quat(ctx, _parse(ctx, raw, 3, f"{what} zaxis"), f"{what} zaxis")


def _limits(
    ctx: _Ctx,
    get: Callable[[str], Optional[str]],
    limited_attr: str,
    range_attr: str,
    what: str,
    angular: bool,
) -> Optional[np.ndarray]:
    """(low, high) if limited (angles converted to radians), else None. MuJoCo's 'auto' rule applies."""
    rng = _floats(ctx, get(range_attr), 2, f"{what} {range_attr}")
    limited = get(limited_attr) or "auto"
    if limited not in ("true", "false", "auto"):
        raise ctx.error(f"{what}: {limited_attr}={limited!r} is invalid; use true, false or auto")
    on = limited == "true" or (limited == "auto" and ctx.compiler.autolimits and rng is not None)
    if not on:
        return None
    if rng is None:
        raise ctx.error(f"{what}: {limited_attr}='true' but no {range_attr} is given")
    if rng[0] > rng[1]:
        raise ctx.error(f"{what}: {range_attr} lower bound {rng[0]} is above the upper bound {rng[1]}")
    return rng * ctx.compiler.angle_scale if angular else rng


def _gain(ctx: _Ctx, get: Callable[[str], Optional[str]], attr: str, where: str) -> float:
    """A joint's ``stiffness`` / ``damping`` / ``armature``: one number >= 0 (0 when absent)."""
    v = _floats(ctx, get(attr), 1, f"{where} {attr}")
    if v is None:
        return 0.0
    if v[0] < 0:
        raise ctx.error(f"{where}: {attr}={get(attr)!r} must be >= 0")
    return float(v[0])


# ---- the body tree ---------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, ctx: _Ctx):
        self.ctx = ctx
        self.body_names: List[str] = []
        self.parents: List[int] = []
        self.local_pos: List[np.ndarray] = []
        self.local_quat: List[np.ndarray] = []
        self.joints: List[Joint] = []
        self.geoms: List[Geom] = []
        self.dof_offset = 0

    def visit(self, body: ET.Element, parent: int, cls: str, depth: int = 0) -> None:
        ctx = self.ctx
        if depth > MAX_BODY_DEPTH:
            raise ctx.error(
                f"bodies are nested more than {MAX_BODY_DEPTH} levels deep; a character is a shallow tree"
            )
        index = len(self.body_names)
        name = body.get("name") or f"body{index}"
        if name in self.body_names:
            raise ctx.error(f"body name {name!r} is used twice")
        cls = body.get("childclass", cls)
        if cls not in ctx.defaults:
            raise ctx.error(f"body {name!r}: childclass {cls!r} is not defined")
        where = f"body {name!r}"
        pos = _floats(ctx, body.get("pos"), 3, f"{where} pos")
        self.body_names.append(name)
        self.parents.append(parent)
        self.local_pos.append(pos if pos is not None else np.zeros(3))
        self.local_quat.append(_orientation(ctx, body.get, where))

        joint_elems = [e for e in body if e.tag in ("joint", "freejoint")]
        if parent < 0:
            self._root_joint(joint_elems, name, cls)
        else:
            self._body_joints(joint_elems, index, name, cls)
        for k, g in enumerate(e for e in body if e.tag == "geom"):
            self.geoms.append(self._geom(g, index, name, k, cls))
        for child in body.findall("body"):
            self.visit(child, index, cls, depth + 1)

    # root: exactly one free joint
    def _root_joint(self, elems: List[ET.Element], body_name: str, cls: str) -> None:
        ctx = self.ctx
        kinds = []
        for e in elems:
            kinds.append("free" if e.tag == "freejoint" else (ctx.lookup(e, cls)("type") or "hinge"))
        if kinds != ["free"]:
            got = ", ".join(kinds) if kinds else "no joint"
            raise ctx.error(
                f"root body {body_name!r} has {got}; the root body must have exactly one free joint "
                "(<freejoint/>): fixed-base or partially actuated roots are not supported"
            )
        e = elems[0]
        if e.tag == "joint":
            jpos = _floats(ctx, ctx.lookup(e, cls)("pos"), 3, f"root joint of {body_name!r} pos")
            if jpos is not None and np.any(jpos != 0):
                raise ctx.error(
                    f"root free joint of body {body_name!r} has pos={e.get('pos')!r}; only pos='0 0 0' is supported"
                )

    def _body_joints(self, elems: List[ET.Element], body: int, body_name: str, cls: str) -> None:
        ctx = self.ctx
        if not elems:
            return  # welded to the parent
        parsed = []
        for k, e in enumerate(elems):
            get = ctx.lookup(e, cls) if e.tag == "joint" else (lambda attr, e=e: e.get(attr))
            jtype = "free" if e.tag == "freejoint" else (get("type") or "hinge")
            jname = e.get("name") or f"{body_name}_joint{k}"
            where = f"joint {jname!r} (body {body_name!r})"
            if jtype == "free":
                raise ctx.error(f"{where}: a free joint is only supported on the root body")
            if jtype == "slide":
                raise ctx.error(
                    f"{where}: slide joints are not supported; joints must be hinge (1 or 3 per body) or ball"
                )
            if jtype not in ("hinge", "ball"):
                raise ctx.error(
                    f"{where}: unknown joint type {jtype!r}; supported: hinge, ball (and free on the root)"
                )
            jpos = _floats(ctx, get("pos"), 3, f"{where} pos")
            if jpos is not None and np.any(jpos != 0):
                raise ctx.error(
                    f"{where}: joint pos={get('pos')!r} is not supported; joints must sit at the body origin "
                    "(move the offset into the body pos)"
                )
            ref = _floats(ctx, get("ref"), 1, f"{where} ref")
            if ref is not None and ref[0] != 0.0:
                raise ctx.error(f"{where}: ref={get('ref')!r} is not supported; only ref=0")
            axis = _floats(ctx, get("axis"), 3, f"{where} axis")
            axis = np.array([0.0, 0.0, 1.0]) if axis is None else axis
            n = np.linalg.norm(axis)
            if n < 1e-12:
                raise ctx.error(f"{where}: axis is zero")
            if jtype == "hinge":
                lim = _limits(ctx, get, "limited", "range", where, angular=True)
            else:
                lim = _limits(ctx, get, "limited", "range", where, angular=True)
                if lim is not None:
                    lim = np.array([0.0, lim[1]])
            frc = _limits(ctx, get, "actuatorfrclimited", "actuatorfrcrange", where, angular=False)
            parsed.append(
                dict(
                    name=jname,
                    type=jtype,
                    axis=axis / n,
                    low=-math.inf if lim is None else lim[0],
                    high=math.inf if lim is None else lim[1],
                    stiffness=_gain(ctx, get, "stiffness", where),
                    damping=_gain(ctx, get, "damping", where),
                    armature=_gain(ctx, get, "armature", where),
                    effort=math.inf if frc is None else float(max(abs(frc[0]), abs(frc[1]))),
                )
            )
        types = [p["type"] for p in parsed]
        names = [p["name"] for p in parsed]
        if "ball" in types:
            if len(parsed) != 1:
                raise ctx.error(
                    f"body {body_name!r} has joints {names} ({', '.join(types)}); a ball joint must be the only joint "
                    "on its body"
                )
            kind, axes = "spherical", np.eye(3)
        elif len(parsed) == 1:
            kind, axes = "hinge", parsed[0]["axis"][None, :]
        elif len(parsed) == 3:
            kind = "spherical"
            axes = np.stack([p["axis"] for p in parsed])
            gram = axes @ axes.T
            if np.max(np.abs(gram - np.eye(3))) > _ORTHO_TOL:
                raise ctx.error(
                    f"body {body_name!r}: hinge axes of {names} are not orthogonal ({axes.round(6).tolist()}); "
                    "three hinges on one body must have orthonormal axes"
                )
        else:
            raise ctx.error(
                f"body {body_name!r} has {len(parsed)} hinge joints {names}; supported per body: none (welded), "
                "1 hinge, 3 hinges with orthonormal axes, or 1 ball joint"
            )
        is_triple = len(parsed) == 3
        joint_name = body_name if is_triple else parsed[0]["name"]
        count = 3 if kind == "spherical" else 1
        self.joints.append(
            Joint(
                name=joint_name,
                body=body,
                kind=kind,
                dof_offset=self.dof_offset,
                dof_count=count,
                mjcf_joints=tuple(names),
                axes=axes,
                range_low=np.array([p["low"] for p in parsed]),
                range_high=np.array([p["high"] for p in parsed]),
                stiffness=np.array([p["stiffness"] for p in parsed]),
                damping=np.array([p["damping"] for p in parsed]),
                effort_limit=np.array([p["effort"] for p in parsed]),
                armature=np.array([p["armature"] for p in parsed]),
            )
        )
        self.dof_offset += count

    def _geom(self, g: ET.Element, body: int, body_name: str, k: int, cls: str) -> Geom:
        ctx = self.ctx
        get = ctx.lookup(g, cls)
        gname = g.get("name") or f"{body_name}_geom{k}"
        where = f"geom {gname!r} (body {body_name!r})"
        gtype = get("type") or "sphere"
        size = _floats(ctx, get("size"), None, f"{where} size")
        size = np.zeros(0) if size is None else size
        fromto = _floats(ctx, get("fromto"), 6, f"{where} fromto")
        if fromto is not None and gtype in ("capsule", "cylinder", "box", "ellipsoid"):
            a, b = fromto[:3], fromto[3:]
            half = 0.5 * float(np.linalg.norm(b - a))
            pos = 0.5 * (a + b)
            quat = _z_to_quat(ctx, b - a, f"{where} fromto")
            if gtype in ("capsule", "cylinder"):
                if size.size < 1:
                    raise ctx.error(f"{where}: {gtype} with fromto needs size='radius'")
                size = np.array([size[0], half])
            else:
                if size.size < 2:
                    raise ctx.error(f"{where}: {gtype} with fromto needs two sizes")
                size = np.array([size[0], size[1], half])
        else:
            pos = _floats(ctx, get("pos"), 3, f"{where} pos")
            pos = np.zeros(3) if pos is None else pos
            quat = _orientation(ctx, get, where)
        return Geom(name=gname, body=body, type=gtype, size=size, pos=pos, quat=quat)


# ---- PD gains and torque limits from <actuator> -----------------------------------------------------------

_PD_ACTUATORS = ("position", "general", "motor")


def _actuator_gains(ctx: _Ctx, root: ET.Element, joints: List[Joint]) -> List[Joint]:
    """Fill PD gains / torque limits of hinge joints that carry none from the actuators driving them.

    Per MJCF hinge joint (gear ``g`` = the first ``gear`` value, default 1; joint torque = g * actuator force):

    - ``<position kp kv dampratio>``: kp_joint = kp g^2, kd_joint = kv g^2; ``dampratio`` is kept as
      ``Joint.damping_ratio`` (MuJoCo turns it into kv from the reflected inertia at compile time, which
      needs MuJoCo: the engines resolve it, see ``engines.mjcf_build``). Defaults kp = 1, kv = 0.
    - ``<general gaintype="fixed" biastype="affine">`` whose bias is ``[0, -kp, -kv]``: the same gains.
    - ``<motor>``: no gains (a torque actuator), only a torque limit.
    - torque limit: ``forcerange`` x |g| (``ctrlrange`` x |g| for a motor), used when the joint has no
      ``actuatorfrcrange``.

    Joints with ``stiffness`` > 0 keep their own gains (MimicKit's convention). Ball joints keep theirs.
    """
    by_name: Dict[str, Tuple[int, int]] = {}
    for ji, j in enumerate(joints):
        if j.is_ball:
            continue
        for k, n in enumerate(j.mjcf_joints):
            by_name[n] = (ji, k)
    kp = [j.stiffness.copy() for j in joints]
    kd = [j.damping.copy() for j in joints]
    ratio = [np.zeros_like(j.stiffness) for j in joints]
    effort = [j.effort_limit.copy() for j in joints]
    source = [["joint" if s > 0 else "none" for s in j.stiffness] for j in joints]
    for section in root.findall("actuator"):
        for act in section:
            if act.tag not in _PD_ACTUATORS:
                continue
            get = ctx.lookup(act, "main")
            target = get("joint")
            if target is None or target not in by_name:
                continue  # tendon/site transmission, or a ball/unknown joint (MuJoCo reports the latter)
            ji, k = by_name[target]
            where = f"<{act.tag} name={act.get('name', '')!r}> (joint {target!r})"
            gear_v = _floats(ctx, get("gear"), None, f"{where} gear")
            gear = 1.0 if gear_v is None or gear_v.size == 0 else float(gear_v[0])
            a_kp, a_kv, a_ratio = _pd_of_actuator(ctx, act.tag, get, where)
            if a_kp > 0 and source[ji][k] == "none":
                kp[ji][k] = a_kp * gear * gear
                kd[ji][k] = a_kv * gear * gear
                ratio[ji][k] = a_ratio
                source[ji][k] = f"{act.tag} actuator"
            frc = _limits(ctx, get, "forcelimited", "forcerange", where, angular=False)
            limit = math.inf if frc is None else float(max(abs(frc[0]), abs(frc[1]))) * abs(gear)
            if act.tag == "motor":
                ctrl = _limits(ctx, get, "ctrllimited", "ctrlrange", where, angular=False)
                if ctrl is not None:
                    limit = min(limit, float(max(abs(ctrl[0]), abs(ctrl[1]))) * abs(gear))
            if not math.isfinite(effort[ji][k]) and math.isfinite(limit):
                effort[ji][k] = limit
    return [
        replace(
            j,
            stiffness=kp[i],
            damping=kd[i],
            damping_ratio=ratio[i],
            effort_limit=effort[i],
            gain_source=tuple(source[i]),
        )
        for i, j in enumerate(joints)
    ]


def _pd_of_actuator(
    ctx: _Ctx, tag: str, get: Callable[[str], Optional[str]], where: str
) -> Tuple[float, float, float]:
    """(kp, kv, dampratio) in actuator units; (0, 0, 0) for actuators that are not position servos."""
    if tag == "position":
        a_kp = float(_parse(ctx, get("kp") or "1", 1, f"{where} kp")[0])
        a_kv = float(_parse(ctx, get("kv") or "0", 1, f"{where} kv")[0])
        a_ratio = float(_parse(ctx, get("dampratio") or "0", 1, f"{where} dampratio")[0])
        if a_kp < 0 or a_kv < 0 or a_ratio < 0:
            raise ctx.error(f"{where}: kp, kv and dampratio must be >= 0")
        return a_kp, a_kv, a_ratio
    if tag == "general" and (get("gaintype") or "fixed") == "fixed" and get("biastype") == "affine":
        gain = _floats(ctx, get("gainprm"), None, f"{where} gainprm")
        bias = _floats(ctx, get("biasprm"), None, f"{where} biasprm")
        g0 = 1.0 if gain is None or gain.size == 0 else float(gain[0])
        b = np.zeros(3) if bias is None else np.concatenate([bias, np.zeros(3)])[:3]
        if g0 > 0 and abs(b[0]) < 1e-12 and abs(b[1] + g0) <= 1e-9 * max(1.0, g0) and b[2] <= 0:
            return g0, float(-b[2]), 0.0
    return 0.0, 0.0, 0.0
