"""SteppedEngineReference (used for Isaac Gym, whose body poses refresh only inside simulate()):
checked here on the MuJoCo CPU engine, and shown to catch a broken adapter."""

from __future__ import annotations

import numpy as np

from mimictools.app import fkcheck
from mimictools.character.mjcf import load_character
from mimictools.engines.base import EngineSpec
from mimictools.engines.mujoco import MuJoCoEngine
from mimictools.paths import bundled_humanoid_xml


def _engine(char, n=8):
    return MuJoCoEngine(char, EngineSpec(num_envs=n, ground=False, num_threads=1))


def test_stepped_reference_agrees_with_fk_on_the_mujoco_engine():
    char = load_character(bundled_humanoid_xml())
    frames = fkcheck.random_frames(char, 20, seed=1)
    eng = _engine(char)
    try:
        res = fkcheck.check_frames(char, frames, fkcheck.SteppedEngineReference(eng, "mujoco"))
    finally:
        eng.close()
    # float32 engine read-back: well under 0.01 mm / 0.01 deg
    assert res.pos_err_mm.max() < 1e-2 and res.rot_err_deg.max() < 1e-2


class _SwappedBodies:
    """An adapter bug: two bodies' poses reported in each other's slots."""

    def __init__(self, eng):
        self._eng = eng

    def __getattr__(self, name):
        return getattr(self._eng, name)

    def body_pos(self):
        p = self._eng.body_pos().clone()
        p[:, [3, 6]] = p[:, [6, 3]]
        return p


def test_stepped_reference_catches_a_body_order_bug():
    char = load_character(bundled_humanoid_xml())
    frames = fkcheck.random_frames(char, 10, seed=2)
    eng = _engine(char)
    try:
        res = fkcheck.check_frames(
            char, frames, fkcheck.SteppedEngineReference(_SwappedBodies(eng), "broken")
        )
    finally:
        eng.close()
    assert res.pos_err_mm.max() > 10.0
    assert np.isfinite(res.pos_err_mm).all()
