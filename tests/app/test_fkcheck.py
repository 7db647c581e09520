"""The fk-check library: bad frames, failing references, engine adapter, plots."""

from __future__ import annotations

import numpy as np
import pytest

from mimictools.app import fkcheck
from mimictools.character.mjcf import load_character
from mimictools.errors import CharacterError
from mimictools.paths import bundled_humanoid_xml


@pytest.fixture(scope="module")
def char():
    return load_character(bundled_humanoid_xml())


@pytest.fixture(scope="module")
def ref(char):
    return fkcheck.MujocoKinematicsReference(char)


def test_random_poses_pass(char, ref):
    r = fkcheck.check_frames(char, fkcheck.random_frames(char, 300, seed=3), ref)
    assert r.num_valid == 300 and r.bad_frames.size == 0
    assert r.max_pos_err_mm < 1e-6 and r.max_rot_err_deg < 1e-6 and r.max_roundtrip_deg < 1e-6
    assert r.passed(0.1, 0.01)
    assert [row["body"] for row in r.per_body()] == list(char.body_names)


def test_nan_frames_are_reported_not_fatal(char, ref):
    frames = fkcheck.random_frames(char, 20, seed=4)
    frames[[3, 7], 9] = np.nan
    frames[11, 0] = np.inf
    r = fkcheck.check_frames(char, frames, ref, source="x.pkl")
    assert list(r.bad_frames) == [3, 7, 11] and r.num_valid == 17
    assert r.passed(0.1, 0.01) and not r.passed(0.1, 0.01, strict=True)
    d = r.to_dict(0.1, 0.01)
    assert d["bad_frames"] == [3, 7, 11] and d["passed"] is True


def test_all_frames_bad(char, ref):
    frames = np.full((5, char.frame_width), np.nan)
    r = fkcheck.check_frames(char, frames, ref)
    assert r.num_valid == 0 and r.max_pos_err_mm == 0.0 and r.bad_frames.size == 5


def test_a_wrong_reference_fails(char, ref):
    def shifted(root_pos, root_rot, dof):
        pos, rot = ref(root_pos, root_rot, dof)
        pos[:, 5, 2] += 2e-4  # 0.2 mm on one body
        return pos, rot

    r = fkcheck.check_frames(char, fkcheck.random_frames(char, 10), shifted)
    assert r.max_pos_err_mm == pytest.approx(0.2, rel=1e-6)
    assert not r.passed(0.1, 0.01) and r.passed(0.3, 0.01)
    assert r.per_body()[5]["max_pos_err_mm"] == pytest.approx(0.2, rel=1e-6)

    def nan_ref(root_pos, root_rot, dof):
        pos, rot = ref(root_pos, root_rot, dof)
        pos[:, 2] = np.nan  # a body the reference never wrote (poisoned)
        return pos, rot

    r = fkcheck.check_frames(char, fkcheck.random_frames(char, 4), nan_ref)
    assert r.max_pos_err_mm == np.inf and not r.passed(0.1, 0.01)
    assert fkcheck.summarize([r], 0.1, 0.01)["max_pos_err_mm"] == "inf"


def test_width_mismatch_is_an_error(char, ref):
    with pytest.raises(CharacterError, match="needs \\(num_frames, 34\\)"):
        fkcheck.check_frames(char, np.zeros((3, 30)), ref, source="bad.pkl")


def test_reference_checks_model_agreement(tmp_path, char):
    other = tmp_path / "renamed.xml"
    other.write_text(bundled_humanoid_xml().read_text().replace('name="head"', 'name="skull"'))
    with pytest.raises(CharacterError, match="do not match"):
        fkcheck.MujocoKinematicsReference(char, str(other))


def test_engine_reference_mujoco(char):
    pytest.importorskip("mimictools.engines.mujoco")
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mujoco import MuJoCoEngine

    engine = MuJoCoEngine(char, EngineSpec(num_envs=7, ground=False, num_threads=1))
    try:
        r = fkcheck.check_frames(
            char, fkcheck.random_frames(char, 20, seed=5), fkcheck.EngineReference(engine)
        )
    finally:
        engine.close()
    # the engine hands out float32 poses: ~1e-7 relative over ~2 m -> ~1e-3 mm at most
    assert r.num_valid == 20 and r.max_pos_err_mm < 0.01 and r.max_rot_err_deg < 1e-3


def test_plot(char, ref):
    frames = fkcheck.random_frames(char, 30)
    frames[4] = np.nan
    results = [fkcheck.check_frames(char, frames, ref, source=f"c{i}") for i in range(2)]
    fig = fkcheck.plot_fk_errors(results, tol_mm=0.1)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) >= 4
