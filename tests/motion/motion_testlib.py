"""Helpers shared by the motion tests (imported as a top-level module, like engine_testlib)."""

from __future__ import annotations

import enum
import pickle
import sys
import types

import numpy as np


def _install_fake_anim():
    """Stand-ins for MimicKit's ``anim.motion`` module, so pickle writes the real class paths."""
    anim = types.ModuleType("anim")
    mod = types.ModuleType("anim.motion")

    class LoopMode(enum.Enum):
        CLAMP = 0
        WRAP = 1

    class Motion:
        def __init__(self, loop_mode, fps, frames):
            self.loop_mode = loop_mode
            self.fps = fps
            self.frames = frames

    for cls in (LoopMode, Motion):
        cls.__module__ = "anim.motion"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    anim.motion = mod
    return anim, mod


def legacy_motion_bytes(frames: np.ndarray, fps: float, loop: int, protocol: int) -> bytes:
    anim, mod = _install_fake_anim()
    saved = {k: sys.modules.get(k) for k in ("anim", "anim.motion")}
    sys.modules["anim"], sys.modules["anim.motion"] = anim, mod
    try:
        return pickle.dumps(mod.Motion(mod.LoopMode(loop), fps, frames), protocol=protocol)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
