"""Fixtures of the viewer tests: the G1 robot, a clip made for it here (a sine on every joint), a tiny policy."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def g1_view(shared_dir):
    from mimictools.view.tracks import load_view_character

    return load_view_character(shared_dir / "robots" / "unitree_g1" / "g1.xml")


@pytest.fixture(scope="module")
def g1_clip(g1_view, tmp_path_factory):
    """A 30-frame, 30 fps MimicKit .pkl on the G1: pelvis at 0.79 m, every joint swinging 0.3 sin(2 pi t)
    clipped to its range, written with save_motion and read back with load_motion."""
    from mimictools.motion.io import load_motion, save_motion
    from mimictools.motion.motion import Motion

    char = g1_view.char
    n = 30
    t = np.arange(n) / 30.0
    frames = np.zeros((n, char.frame_width), dtype=np.float32)
    frames[:, 0] = 0.3 * t
    frames[:, 2] = 0.79
    lo = np.array([j.range_low[0] for j in char.joints])
    hi = np.array([j.range_high[0] for j in char.joints])
    frames[:, 6:] = np.clip(0.3 * np.sin(2 * np.pi * t)[:, None], lo + 1e-3, hi - 1e-3)
    path = tmp_path_factory.mktemp("g1") / "g1_sine.pkl"
    save_motion(Motion(fps=30.0, loop_mode=0, frames=frames), path)
    return load_motion(path, char=char)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_demo_run):
    """``RUN/latest.pt`` of the session's tiny demo run (`tests/conftest.py::tiny_demo_run`: what matters here is
    that the policy runs, not that it tracks). Read-only."""
    return tiny_demo_run / "latest.pt"
