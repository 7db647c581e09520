"""The one home of engine names: which engines exist, MimicKit's names for them, what each needs, and the lazy
import of their classes (only the chosen engine's module, and its package, loads).

Each engine module exposes one class built as ``cls(character, spec)``; adding an engine is one entry in
``_ENGINES``. Everything else that needs engine names (configs, the CLI, doctor) asks this module.
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING, Dict, NamedTuple, Tuple

from mimictools.errors import EngineError, NotSupportedError

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.character.model import Character
    from mimictools.engines.base import Engine, EngineSpec


class _EngineEntry(NamedTuple):
    module: str
    cls: str
    packages: Tuple[str, ...]
    """Top-level third-party packages the module imports (an ImportError naming one -> install hint)."""
    install_hint: str
    gpu: bool
    """Built for thousands of envs on a GPU (default env count 4096 instead of 32)."""
    mujoco_family: bool
    """MuJoCo physics (CPU or Warp): the CPU stability probe speaks for it."""


#: MimicKit's engine names -> ours. MimicKit's Newton engine is MuJoCo Warp underneath.
ENGINE_ALIASES: Dict[str, str] = {"isaac_gym": "isaacgym", "newton": "mjwarp"}

_ENGINES: Dict[str, _EngineEntry] = {
    "mujoco": _EngineEntry(
        "mimictools.engines.mujoco",
        "MuJoCoEngine",
        ("mujoco",),
        "pip install 'mujoco>=3.2' (a core dependency of mimictools)",
        gpu=False,
        mujoco_family=True,
    ),
    "mjwarp": _EngineEntry(
        "mimictools.engines.mjwarp",
        "MjWarpEngine",
        ("mujoco_warp", "warp", "mujoco"),
        "pip install 'mimictools[gpu]' (mujoco-warp and warp-lang; needs a CUDA GPU)",
        gpu=True,
        mujoco_family=True,
    ),
    "isaacgym": _EngineEntry(
        "mimictools.engines.isaacgym",
        "IsaacGymEngine",
        ("isaacgym",),
        "Isaac Gym Preview 4 is not on PyPI: install it yourself into a Python 3.8 env (see docs/isaacgym.md)",
        gpu=True,
        mujoco_family=False,
    ),
}


def engine_names() -> Tuple[str, ...]:
    """Valid engine names, in preference order."""
    return tuple(_ENGINES)


def canonical_engine_name(name: str) -> str:
    """Our name for ``name`` (MimicKit's aliases mapped: 'newton' -> 'mjwarp', 'isaac_gym' -> 'isaacgym');
    unknown names are returned unchanged (validation reports them with the valid ones)."""
    return ENGINE_ALIASES.get(name, name)


def _entry(name: str) -> _EngineEntry:
    entry = _ENGINES.get(canonical_engine_name(name))
    if entry is None:
        raise EngineError(f"unknown engine {name!r}; valid engines: {', '.join(_ENGINES)}")
    return entry


def is_gpu_engine(name: str) -> bool:
    """True for engines built for thousands of envs on a GPU (mjwarp, isaacgym)."""
    return _entry(name).gpu


def is_mujoco_family(name: str) -> bool:
    """True for the MuJoCo engines (mujoco on the CPU, mjwarp)."""
    return _entry(name).mujoco_family


def install_hint(name: str) -> str:
    """How to install what engine ``name`` needs."""
    return _entry(name).install_hint


def engine_class(name: str) -> type:
    """Import and return the engine class for ``name``.

    Raises ``EngineError`` for an unknown name (listing the valid ones) and, with the install hint, when the
    engine's package is missing; ``NotSupportedError`` when the engine module is not part of this build.
    """
    entry = _entry(name)
    name = canonical_engine_name(name)
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        if missing in entry.packages:
            raise EngineError(
                f"engine {name!r} is unavailable: Python package {missing!r} cannot be imported ({exc}). "
                f"Install: {entry.install_hint}"
            ) from None
        if getattr(exc, "name", None) == entry.module:
            raise NotSupportedError(
                f"engine {name!r} is not built yet in this version of mimictools"
            ) from None
        raise
    return getattr(module, entry.cls)


def make_engine(name: str, character: Character, spec: EngineSpec) -> Engine:
    """Build engine ``name`` ("mujoco", "mjwarp", "isaacgym") for ``character`` with ``spec``."""
    return engine_class(name)(character, spec)  # type: ignore[no-any-return]


def is_available(name: str) -> bool:
    """True when engine ``name`` imports (its package is installed and the module exists)."""
    try:
        engine_class(name)
    except (EngineError, NotSupportedError):
        return False
    return True


SOLVER_TOLERANCE_RULE = "finite, >= 0 (0 = the MJCF's value, MuJoCo's default 1e-8) and < 1"
"""What ``EngineSpec.solver_tolerance`` (``engine.solver_tolerance``, ``mimic bench --solver-tolerance``) may be;
here, beside the engine names, because the config layer checks it too and may import only this module."""


def solver_tolerance_ok(value: float) -> bool:
    """Whether ``value`` satisfies `SOLVER_TOLERANCE_RULE` (one rule for the config, the bench and the build)."""
    return math.isfinite(value) and 0 <= value < 1
