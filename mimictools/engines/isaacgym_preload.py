"""Import Isaac Gym before torch, when (and only when) the user asked for it.

Isaac Gym Preview 4 refuses to load once torch is imported ("PyTorch was imported before isaacgym modules").
Nothing in `mimic`'s import path imports torch at module level, so the CLI entry point can call
:func:`preload_isaacgym_if_requested` with ``sys.argv`` first thing, before the command (which imports
torch) runs. Scripts do the same with ``import isaacgym`` above ``import torch``.

Stdlib only; never raises: a failed import is remembered (:func:`preload_error`) and reported by the engine
constructor, with the real reason, instead of the misleading "imported before torch" that a second
attempt after torch would give.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Dict, Optional, Sequence

_state: Dict[str, Optional[str]] = {"error": None}


def isaacgym_requested(argv: Sequence[str]) -> bool:
    """True when ``argv`` selects the isaacgym engine: ``--engine isaacgym`` or ``--engine=isaacgym``."""
    args = list(argv)
    for i, a in enumerate(args):
        if a == "--engine" and i + 1 < len(args) and args[i + 1].lower() == "isaacgym":
            return True
        if a.lower() == "--engine=isaacgym":
            return True
    return False


def preload_isaacgym() -> bool:
    """Import ``isaacgym.gymapi`` now if the package is installed. True when it is (now) imported."""
    if "isaacgym.gymapi" in sys.modules:
        return True
    try:
        if importlib.util.find_spec("isaacgym") is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.import_module("isaacgym.gymapi")
    except Exception as exc:  # ImportError, OSError from the binding's shared libraries, ...
        _state["error"] = f"{type(exc).__name__}: {exc}"
        return False
    return True


def preload_isaacgym_if_requested(argv: Sequence[str]) -> bool:
    """Call from the CLI entry point before any command runs: preloads Isaac Gym iff ``argv`` asks for it."""
    if not isaacgym_requested(argv):
        return False
    return preload_isaacgym()


def preload_error() -> Optional[str]:
    """The error of the last failed preload ('ExcType: message'), or None."""
    return _state["error"]
