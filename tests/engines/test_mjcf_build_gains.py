"""PD gains from actuators in the simulation model: MuJoCo's own actuator forces agree with ours (G1)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from mimictools.character.mjcf import load_character, load_character_from_string
from mimictools.engines.base import EngineSpec
from mimictools.engines.mjcf_build import build_sim_model
from mimictools.errors import EngineError

SPEC = EngineSpec(num_envs=1, control_freq=30, sim_freq=240, control_mode="pos", device="cpu", num_threads=1)


@pytest.mark.parametrize("name", ["g1.xml", "scene_mjx.xml"])
def test_g1_pd_torques_match_menagerie_actuators(shared_dir: Path, name: str):
    """Our rebuilt PD actuators and the Menagerie file's own <position> actuators (kp, dampratio/kv,
    joint actuatorfrcrange clamp) give the same joint torques for random states and targets, including
    clamped ones. Tolerance 1e-9 N m: both are the same double-precision formula."""
    path = shared_dir / "robots" / "unitree_g1" / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    sim = build_sim_model(load_character(path), SPEC)
    ref = mujoco.MjModel.from_xml_path(str(path))
    d_sim, d_ref = mujoco.MjData(sim.model), mujoco.MjData(ref)
    rng = np.random.default_rng(0)
    low, high = ref.jnt_range[1:, 0], ref.jnt_range[1:, 1]
    clamped = 0
    for _ in range(20):
        q = rng.uniform(low, high)
        qd = rng.normal(0.0, 3.0, size=q.shape)
        target = rng.uniform(low, high)
        for m, d in ((sim.model, d_sim), (ref, d_ref)):
            d.qpos[:] = m.qpos0
            d.qpos[7:] = q
            d.qvel[:] = 0.0
            d.qvel[6:] = qd
            d.ctrl[:] = target
            d.qfrc_actuator[:] = np.nan  # poisoned: mj_forward must write it
            mujoco.mj_forward(m, d)
        np.testing.assert_allclose(d_sim.qfrc_actuator[6:], d_ref.qfrc_actuator[6:], atol=1e-9, rtol=0)
        expected = np.clip(sim.kp * (target - q) - sim.kd * qd, -sim.effort_limit, sim.effort_limit)
        np.testing.assert_allclose(d_sim.qfrc_actuator[6:], expected, atol=1e-9, rtol=0)
        clamped += int(np.sum(np.abs(expected) >= sim.effort_limit))
    assert clamped > 0  # the torque limits were exercised
    assert np.all(sim.kd > 0)  # g1.xml: dampratio resolved by MuJoCo's compiler, not left at 0


def test_joint_without_gains_is_an_error(tmp_path: Path):
    xml = tmp_path / "limp.xml"
    xml.write_text(
        """<mujoco><worldbody><body name="root"><freejoint/><geom size="0.1"/>
        <body name="arm"><joint name="elbow" axis="0 1 0"/><geom size="0.05"/></body></body></worldbody>
        <actuator><motor joint="elbow" gear="5"/></actuator></mujoco>"""
    )
    with pytest.raises(EngineError, match="no PD gains for 1 joint.*elbow"):
        build_sim_model(load_character(xml), SPEC)
    assert load_character_from_string(xml.read_text()).joints[0].gain_source == ("none",)


def test_g1_mjx_alone_cannot_touch_the_ground_and_says_so(shared_dir: Path):
    """Menagerie's g1_mjx.xml has contype=0 everywhere (contacts only via scene_mjx.xml's pairs); built
    alone the robot would fall through the floor. scene_mjx.xml's pairs are retargeted to our ground."""
    d = shared_dir / "robots" / "unitree_g1"
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    with pytest.raises(
        EngineError, match="no geom of the character can collide with the ground.*scene_mjx.xml"
    ):
        build_sim_model(load_character(d / "g1_mjx.xml"), SPEC)
    sim = build_sim_model(load_character(d / "scene_mjx.xml"), SPEC)
    ground_pairs = [
        p
        for p in range(sim.model.npair)
        if sim.ground_geom in (sim.model.pair_geom1[p], sim.model.pair_geom2[p])
    ]
    assert len(ground_pairs) > 0
    assert mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_GEOM, "floor") == -1  # the scene's floor is gone
