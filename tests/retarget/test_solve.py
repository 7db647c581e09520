"""The retargeting solver on real data: round trips, exact joint limits, ground, every BVH, other targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mimictools.character.kinematics import dof_to_qpos, frames_to_body_poses, geom_lowest_z
from mimictools.character.mjcf import load_character, load_character_from_string
from mimictools.errors import ConfigError
from mimictools.math.rotations import exp_map_to_quat
from mimictools.motion.retarget.mapping import load_mapping, mapping_from_dict
from mimictools.motion.retarget.report import quality_report
from mimictools.motion.retarget.solve import RetargetOptions, retarget
from mimictools.motion.retarget.source import SourceMotion, load_source

OURS = "data/humanoid.xml"


@pytest.fixture(scope="module")
def ours(repo_dir):
    return load_character(repo_dir / OURS)


@pytest.fixture(scope="module")
def mk_xml(shared_dir):
    return shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml"


@pytest.fixture(scope="module")
def mk_char(mk_xml):
    return load_character(mk_xml)


def _body_pos(char, frames):
    bp, _ = frames_to_body_poses(char, torch.as_tensor(frames, dtype=torch.float64))
    return bp.numpy()


def _limit_excess(char, frames):
    """Largest amount (rad) by which any hinge of the saved frames is outside its MJCF range."""
    f = torch.as_tensor(frames, dtype=torch.float64)
    q = dof_to_qpos(char, f[:, :3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]).numpy()[:, 7:]
    lo = np.concatenate([j.range_low for j in char.joints])
    hi = np.concatenate([j.range_high for j in char.joints])
    return float(np.max(np.maximum(lo - q, 0.0) + np.maximum(q - hi, 0.0)))


def _lowest(char, frames):
    f = torch.as_tensor(frames, dtype=torch.float64)
    bp, br = frames_to_body_poses(char, f)
    return float(geom_lowest_z(char, bp, br).min())


# ---- round trips: MimicKit humanoid clips onto MimicKit's humanoid and onto ours --------------------------


@pytest.mark.parametrize("clip", ["run", "spinkick"])
@pytest.mark.parametrize("target", ["mimickit", "ours"])
def test_round_trip_mimickit_clips(shared_dir, mk_xml, mk_char, ours, clip, target):
    path = shared_dir / "mimickit" / "data" / "motions" / "humanoid" / f"humanoid_{clip}.pkl"
    src = load_source(path, src_char=mk_xml)
    char = mk_char if target == "mimickit" else ours
    mapping = load_mapping("humanoid_to_humanoid")
    # Defaults: limits kept, feet above the floor. MimicKit's clips dip up to 6.8 cm into the floor (run)
    # and spinkick's right hip goes 0.76 rad past its range, so only the mean can be ~exact here.
    res = retarget(src, char, mapping)
    rep = quality_report(res, char)
    assert res.scale == pytest.approx(1.0, abs=2e-3)  # same leg lengths (ours differs by < 1 mm)
    assert rep.pos_err_mean_cm <= 1.0
    assert rep.limit_violations == 0 and _limit_excess(char, res.frames) == 0.0
    assert _lowest(char, res.frames) >= 0.0
    err = np.linalg.norm(_body_pos(char, res.frames) - src.pos, axis=-1)
    assert err.mean() <= 0.01
    # Without the floor (and, for spinkick, without the limits the clip itself breaks) the round trip is
    # exact to well under 1 cm on every body in every frame.
    opts = RetargetOptions(ground_constraint=False, respect_limits=(clip == "run"), slide_iterations=0)
    res2 = retarget(src, char, mapping, opts)
    err2 = np.linalg.norm(_body_pos(char, res2.frames) - src.pos, axis=-1)
    assert err2.max() <= 0.01, f"max body error {err2.max() * 100:.2f} cm"
    assert err2.mean() <= 0.002


def test_deepmimic_txt_source_matches_pkl(shared_dir, mk_xml, ours):
    txt = load_source(shared_dir / "deepmimic" / "motions" / "humanoid3d_run.txt", src_char=mk_xml)
    pkl = load_source(
        shared_dir / "mimickit" / "data" / "motions" / "humanoid" / "humanoid_run.pkl", src_char=mk_xml
    )
    assert txt.num_frames == pkl.num_frames and txt.kind == "mimickit"
    assert np.abs(txt.pos - pkl.pos).max() < 1e-3  # DATA.md: the pkl is a conversion of this txt
    res = retarget(txt, ours, load_mapping("humanoid_to_humanoid"), RetargetOptions(ground_constraint=False))
    err = np.linalg.norm(_body_pos(ours, res.frames) - txt.pos, axis=-1)
    assert err.max() < 0.01


# ---- joint limits hold exactly ----------------------------------------------------------------------------


def test_limits_hold_exactly_for_poses_far_outside(ours):
    """A source doing things the target cannot (random joint angles up to 3 rad) still gives a clip
    whose every hinge is inside its MJCF range, through the library's own dof_to_qpos."""
    rng = np.random.default_rng(0)
    F = 60
    t = np.linspace(0.0, 2.0, F)[:, None]
    dof = 3.0 * np.sin(2.0 * np.pi * (0.3 * t + rng.uniform(size=(1, ours.num_dofs))))  # smooth, huge angles
    frames = np.concatenate([np.tile([0.0, 0.0, 1.0], (F, 1)), np.zeros((F, 3)), dof], axis=1)
    bp, br = frames_to_body_poses(ours, torch.as_tensor(frames))
    rest_p, rest_r = frames_to_body_poses(ours, torch.zeros(1, ours.frame_width, dtype=torch.float64))
    src = SourceMotion(
        names=ours.body_names,
        parents=ours.parents,
        pos=bp.numpy(),
        rot=br.numpy(),
        rest_pos=rest_p[0].numpy(),
        rest_rot=rest_r[0].numpy(),
        fps=30.0,
        loop_mode=0,
        kind="mimickit",
        path="<random>",
    )
    res = retarget(src, ours, load_mapping("humanoid_to_humanoid"))
    assert np.isfinite(res.frames).all()
    assert _limit_excess(ours, res.frames) == 0.0
    assert quality_report(res, ours).limit_violations == 0
    assert _lowest(ours, res.frames) >= 0.0
    # and with the limits off the same poses come back (the solver can reach them; the limits are what stops it)
    free = retarget(
        src,
        ours,
        load_mapping("humanoid_to_humanoid"),
        RetargetOptions(respect_limits=False, ground_constraint=False, slide_iterations=0),
    )
    err = np.linalg.norm(_body_pos(ours, free.frames) - src.pos, axis=-1)
    assert np.median(err) < 0.005


# ---- every BVH in the reference data retargets to our humanoid --------------------------------------------


@pytest.mark.parametrize("name", ["cmu_bvh/01_01.bvh", "cmu_bvh/01_14.bvh", "sfu_bvh/0005_Walking001.bvh"])
def test_every_bvh_retargets_to_our_humanoid(shared_dir, ours, name):
    src = load_source(shared_dir / "mocap" / name)
    from mimictools.motion.retarget.mapping import select_preset

    mapping = select_preset(src.names, ours.body_names, src.kind)
    assert mapping.name == ("sfu_bvh_to_humanoid" if name.startswith("sfu") else "cmu_bvh_to_humanoid")
    res = retarget(src, ours, mapping, RetargetOptions(fps=30.0))
    rep = quality_report(res, ours)
    length = (src.num_frames - 1) / src.fps
    assert res.frames.shape == (int(math.floor(length * 30.0 + 1e-6)) + 1, ours.frame_width)
    assert rep.finite and rep.limit_violations == 0 and _limit_excess(ours, res.frames) == 0.0
    assert rep.penetration_frames == 0 and _lowest(ours, res.frames) >= 0.0
    assert rep.pos_err_mean_cm < 2.5
    assert rep.contact_frames > 0
    assert rep.foot_slide_cm_s < rep.source_foot_slide_cm_s
    if name.startswith("cmu"):
        assert any("frame 0 dropped" in n for n in res.notes)
    # the feet are on the floor while in contact: the lower foot's sole is within 1 cm of z = 0
    f = torch.as_tensor(res.frames, dtype=torch.float64)
    bp, br = frames_to_body_poses(ours, f)
    low = geom_lowest_z(ours, bp, br)
    feet = [
        k
        for k, g in enumerate(ours.geoms)
        if g.body in (ours.body_index("left_foot"), ours.body_index("right_foot"))
    ]
    in_contact = res.contact.any(axis=1)
    foot_low = low[:, feet].min(dim=1).values.numpy()
    assert np.median(foot_low[in_contact]) < 0.01


def test_uniform_scale_and_fps_keep(shared_dir, ours):
    src = load_source(shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh")
    res = retarget(src, ours, load_mapping("sfu_bvh_to_humanoid"), RetargetOptions(scale=1.0, ground="keep"))
    assert res.frames.shape[0] == src.num_frames and res.fps == pytest.approx(src.fps)
    # uniform scale 1 and no ground shift: the targets are the source points themselves
    m = load_mapping("sfu_bvh_to_humanoid")
    i = [e.body for e in m.entries].index("left_hand")
    np.testing.assert_allclose(res.target_pos[:, i], src.pos[:, src.names.index("LeftHand")], atol=1e-5)


def test_wrong_mapping_names_the_missing_joint(shared_dir, ours):
    src = load_source(shared_dir / "mocap" / "sfu_bvh" / "0005_Walking001.bvh")
    with pytest.raises(ConfigError, match="has no joint 'Neck1'"):
        retarget(src, ours, load_mapping("cmu_bvh_to_humanoid"))


# ---- any MJCF: a small character with ball joints ---------------------------------------------------------

BALL_XML = """
<mujoco model="stick">
  <compiler angle="radian"/>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size="0.1"/>
      <body name="upper" pos="0 0 -0.1">
        <joint name="hip" type="ball" range="0 1.2"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.4" size="0.04"/>
        <body name="lower" pos="0 0 -0.45">
          <joint name="knee" type="hinge" axis="0 1 0" range="0 2.5"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.4" size="0.04"/>
          <body name="tip" pos="0 0 -0.45">
            <joint name="ankle" type="ball"/>
            <geom type="box" size="0.08 0.04 0.02" pos="0.04 0 -0.02"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_ball_joint_character_round_trip():
    char = load_character_from_string(BALL_XML, "stick.xml")
    assert [j.kind for j in char.joints] == ["spherical", "hinge", "spherical"]
    F = 40
    t = np.linspace(0.0, 1.0, F)
    hip = np.stack([0.5 * np.sin(3 * t), 0.4 * np.cos(2 * t), 0.3 * t], axis=1)  # angle < 1.2
    knee = 1.0 + 0.5 * np.sin(4 * t)
    ankle = np.stack([0.2 * np.sin(5 * t), 0.1 * t, 0.0 * t], axis=1)
    frames = np.concatenate(
        [np.stack([0.3 * t, 0 * t, 1.0 + 0 * t], 1), np.zeros((F, 3)), hip, knee[:, None], ankle], 1
    )
    bp, br = frames_to_body_poses(char, torch.as_tensor(frames))
    rp, rr = frames_to_body_poses(char, torch.zeros(1, char.frame_width, dtype=torch.float64))
    src = SourceMotion(
        char.body_names,
        char.parents,
        bp.numpy(),
        br.numpy(),
        rp[0].numpy(),
        rr[0].numpy(),
        30.0,
        0,
        "mimickit",
        "<stick>",
    )
    doc = {
        "feet": ["tip"],
        "ground": "keep",
        "bodies": {
            "base": {"source": "base", "rot_weight": 0.3},
            "lower": {"source": "lower"},
            "tip": [{"source": "tip", "rot_weight": 0.3}],
        },
    }
    res = retarget(
        src,
        char,
        mapping_from_dict(doc, "stick_map"),
        RetargetOptions(ground_constraint=False, slide_iterations=0),
    )
    err = np.linalg.norm(_body_pos(char, res.frames) - src.pos, axis=-1)
    assert err.max() < 0.005
    # cone limit respected: the hip's rotation angle stays <= 1.2 rad
    hip_angle = np.linalg.norm(res.frames[:, 6:9], axis=1)
    assert hip_angle.max() <= 1.2 + 1e-6
    # a source beyond the cone is clamped onto it
    src2 = SourceMotion(
        char.body_names,
        char.parents,
        bp.numpy(),
        br.numpy(),
        rp[0].numpy(),
        rr[0].numpy(),
        30.0,
        0,
        "mimickit",
        "<stick>",
    )
    frames_far = frames.copy()
    frames_far[:, 6:9] = [[0.0, 2.0, 0.0]]
    bp2, br2 = frames_to_body_poses(char, torch.as_tensor(frames_far))
    src2 = SourceMotion(
        char.body_names,
        char.parents,
        bp2.numpy(),
        br2.numpy(),
        rp[0].numpy(),
        rr[0].numpy(),
        30.0,
        0,
        "mimickit",
        "<stick>",
    )
    res2 = retarget(src2, char, mapping_from_dict(doc, "stick_map"), RetargetOptions(ground_constraint=False))
    assert np.linalg.norm(res2.frames[:, 6:9], axis=1).max() <= 1.2 + 1e-6
