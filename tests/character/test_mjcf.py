"""MJCF parsing: the MimicKit humanoids and ours, MuJoCo parity of what we parse, unsupported constructs."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest

from mimictools.character.mjcf import load_character, load_character_from_string
from mimictools.errors import CharacterError
from mimictools.paths import bundled_humanoid_xml

OURS = bundled_humanoid_xml()


@pytest.fixture(scope="module")
def mk_xmls(shared_dir: Path):
    d = shared_dir / "mimickit" / "data" / "assets" / "humanoid"
    return d / "humanoid.xml", d / "humanoid_degrees_f3b3186.xml"


def _xml(body: str, compiler: str = "", default: str = "") -> str:
    """A model with a free root body 'root' whose children are ``body``."""
    return f"""<mujoco>{compiler}<default>{default}</default><worldbody>
      <body name="root"><freejoint/><geom size="0.1"/>{body}</body></worldbody></mujoco>"""


def _geom_capsule_endpoints(g):
    axis = np.array(
        [
            2 * (g.quat[1] * g.quat[3] + g.quat[0] * g.quat[2]),
            2 * (g.quat[2] * g.quat[3] - g.quat[0] * g.quat[1]),
            1 - 2 * (g.quat[1] ** 2 + g.quat[2] ** 2),
        ]
    )
    a, b = g.pos - g.size[1] * axis, g.pos + g.size[1] * axis
    return sorted([tuple(np.round(a, 9)), tuple(np.round(b, 9))])


# ---- the real humanoids ------------------------------------------------------------------------------------------


def test_radian_and_degree_mimickit_files_give_the_same_model(mk_xmls):
    a, b = (load_character(p) for p in mk_xmls)
    assert a.body_names == b.body_names and a.parents == b.parents
    np.testing.assert_array_equal(a.local_pos, b.local_pos)
    np.testing.assert_array_equal(a.local_quat, b.local_quat)
    assert a.dof_names == b.dof_names and a.num_dofs == b.num_dofs == 28 and a.num_qpos == 35
    for ja, jb in zip(a.joints, b.joints):
        assert (ja.name, ja.body, ja.kind, ja.dof_offset, ja.mjcf_joints) == (
            jb.name,
            jb.body,
            jb.kind,
            jb.dof_offset,
            jb.mjcf_joints,
        )
        np.testing.assert_array_equal(ja.axes, jb.axes)
        # the radian file rounds to 4 decimals: |60 deg - 1.0472| = 2.4e-5 rad
        np.testing.assert_allclose(ja.range_low, jb.range_low, atol=5e-5)
        np.testing.assert_allclose(ja.range_high, jb.range_high, atol=5e-5)
        for f in ("stiffness", "damping", "effort_limit", "armature"):
            np.testing.assert_array_equal(getattr(ja, f), getattr(jb, f))
    assert [g.name for g in a.geoms] == [g.name for g in b.geoms]
    for ga, gb in zip(a.geoms, b.geoms):
        assert ga.type == gb.type and ga.body == gb.body
        np.testing.assert_allclose(ga.size, gb.size)
        if ga.type == "capsule":  # the degree file lists two right-arm fromto endpoints the other way round
            assert _geom_capsule_endpoints(ga) == _geom_capsule_endpoints(gb)
        else:
            np.testing.assert_allclose(ga.pos, gb.pos)


def test_mimickit_humanoid_layout_matches_data_md(mk_xmls):
    c = load_character(mk_xmls[0])
    assert c.body_names[0] == "pelvis" and c.parents[0] == -1
    starts = {j.name: 6 + j.dof_offset for j in c.joints}
    # DATA.md: 6-8 abdomen, 9-11 neck, 12-14 right_shoulder, 15 right_elbow, ..., 31-33 left_ankle
    assert starts["torso"] == 6 and starts["head"] == 9 and starts["right_upper_arm"] == 12
    assert starts["right_elbow"] == 15 and starts["left_knee"] == 30 and starts["left_foot"] == 31
    assert c.frame_width == 34
    knee = c.joints[[j.name for j in c.joints].index("right_knee")]
    assert knee.kind == "hinge" and knee.range_low[0] == 0.0 and knee.range_high[0] == pytest.approx(2.7925)
    assert (
        knee.stiffness[0] == 500
        and knee.damping[0] == 50
        and knee.effort_limit[0] == 150
        and knee.armature[0] == 0.02
    )


def test_our_humanoid_has_mimickits_joint_tree(mk_xmls):
    ours, mk = load_character(OURS), load_character(mk_xmls[0])
    assert ours.body_names == mk.body_names and ours.parents == mk.parents
    assert ours.dof_names == mk.dof_names
    for jo, jm in zip(ours.joints, mk.joints):
        assert (jo.name, jo.kind, jo.dof_offset, jo.mjcf_joints) == (
            jm.name,
            jm.kind,
            jm.dof_offset,
            jm.mjcf_joints,
        )
        np.testing.assert_array_equal(jo.axes, jm.axes)
        assert np.all(jo.stiffness > 0) and np.all(jo.damping > 0) and np.all(np.isfinite(jo.effort_limit))
        assert np.all(np.isfinite(jo.range_low)) and np.all(jo.range_low < jo.range_high)
    # body offsets within 3 % (or 2 mm) of MimicKit's, so clips look right
    for b in range(1, ours.num_bodies):
        d = np.linalg.norm(ours.local_pos[b] - mk.local_pos[b])
        assert d <= max(0.002, 0.03 * np.linalg.norm(mk.local_pos[b])), ours.body_names[b]


def test_our_humanoid_masses_are_comparable(mk_xmls):
    ours = mujoco.MjModel.from_xml_path(str(OURS))
    mk = mujoco.MjModel.from_xml_path(str(mk_xmls[0]))
    np.testing.assert_allclose(ours.body_mass[1:], mk.body_mass[1:], rtol=0.05)
    assert ours.ngeom == sum(1 for _ in load_character(OURS).geoms)
    assert not any(ours.geom(i).type == mujoco.mjtGeom.mjGEOM_PLANE for i in range(ours.ngeom)), (
        "no floor: the engine adds it"
    )


@pytest.mark.parametrize("which", ["mk_rad", "mk_deg", "ours"])
def test_parsed_values_match_mujocos_compiled_model(which, mk_xmls):
    path = {"mk_rad": mk_xmls[0], "mk_deg": mk_xmls[1], "ours": OURS}[which]
    c = load_character(path)
    m = mujoco.MjModel.from_xml_path(str(path))
    assert [m.body(i).name for i in range(1, m.nbody)] == list(c.body_names)
    assert list(m.body_parentid[1:] - 1) == [max(p, -1) for p in c.parents]
    np.testing.assert_allclose(m.body_pos[2:], c.local_pos[1:], atol=1e-12)
    np.testing.assert_allclose(m.body_quat[2:], c.local_quat[1:], atol=1e-12)
    names = [n for j in c.joints for n in j.mjcf_joints]
    assert [m.joint(i).name for i in range(1, m.njnt)] == names
    flat = lambda f: np.concatenate([getattr(j, f) for j in c.joints])  # noqa: E731
    np.testing.assert_allclose(m.jnt_range[1:, 0], flat("range_low"), atol=1e-12)
    np.testing.assert_allclose(m.jnt_range[1:, 1], flat("range_high"), atol=1e-12)
    np.testing.assert_allclose(m.jnt_stiffness[1:], flat("stiffness"))
    np.testing.assert_allclose(m.dof_damping[6:], flat("damping"))
    np.testing.assert_allclose(m.dof_armature[6:], flat("armature"))
    np.testing.assert_allclose(m.jnt_actfrcrange[1:, 1], flat("effort_limit"))
    np.testing.assert_allclose(m.jnt_axis[1:], np.concatenate([j.axes for j in c.joints]), atol=1e-12)
    assert m.ngeom == len(c.geoms)
    for i, g in enumerate(c.geoms):
        assert m.geom_bodyid[i] - 1 == g.body
        np.testing.assert_allclose(m.geom_pos[i], g.pos, atol=1e-9)
        # MuJoCo may pick a different but equivalent frame for symmetric shapes: compare the z axes
        z_ours = _zaxis(g.quat)
        z_mj = _zaxis(m.geom_quat[i])
        if g.type in ("sphere",):
            pass
        elif g.type in ("capsule", "cylinder"):
            assert min(np.abs(z_ours - z_mj).max(), np.abs(z_ours + z_mj).max()) < 1e-9
        else:
            assert min(np.abs(m.geom_quat[i] - g.quat).max(), np.abs(m.geom_quat[i] + g.quat).max()) < 1e-9
        np.testing.assert_allclose(m.geom_size[i][: g.size.size], g.size, atol=1e-12)


def _zaxis(q):
    w, x, y, z = q
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


# ---- orientation attributes, compiler and defaults: parity with MuJoCo ----------------------------------------------


ORIENTATIONS = [
    ('quat="0.5 0.5 -0.5 0.5"', ""),
    ('euler="30 -45 60"', ""),
    ('euler="30 -45 60"', '<compiler eulerseq="XYZ"/>'),
    ('euler="30 -45 60"', '<compiler eulerseq="zyx"/>'),
    ('euler="30 -45 60"', '<compiler eulerseq="zXy"/>'),
    ('euler="0.5 -0.7 1.2"', '<compiler angle="radian"/>'),
    ('axisangle="1 2 3 75"', ""),
    ('axisangle="1 2 3 1.3"', '<compiler angle="radian"/>'),
    ('xyaxes="0 1 0 -1 0.2 0"', ""),
    ('zaxis="1 1 0"', ""),
    ('zaxis="0 0 -1"', ""),
]


@pytest.mark.parametrize("orient, compiler", ORIENTATIONS)
def test_body_orientation_matches_mujoco(orient, compiler):
    xml = _xml(
        f'<body name="b" pos="0.1 0.2 0.3" {orient}><joint type="hinge" axis="0 1 0"/><geom size="0.1"/></body>',
        compiler,
    )
    c = load_character_from_string(xml)
    m = mujoco.MjModel.from_xml_string(xml)
    q_mj = m.body_quat[2]
    assert min(np.abs(c.local_quat[1] - q_mj).max(), np.abs(c.local_quat[1] + q_mj).max()) < 1e-9


def test_defaults_classes_childclass_and_degree_default():
    xml = """<mujoco><default>
        <joint damping="1" armature="0.5"/>
        <default class="a"><joint stiffness="10" range="-90 90" actuatorfrcrange="-5 7"/>
          <default class="b"><joint damping="3"/></default></default>
      </default><worldbody><body name="root"><freejoint/><geom size="0.1"/>
        <body name="u" childclass="a"><joint name="h1" axis="1 0 0"/><geom size="0.1"/>
          <body name="v"><joint name="h2" class="b"/><joint name="h3" class="b" axis="1 0 0"/><joint name="h4" class="main" axis="0 1 0" range="-30 30"/>
            <geom size="0.1"/></body></body></body></worldbody></mujoco>"""
    c = load_character_from_string(xml)
    m = mujoco.MjModel.from_xml_string(xml)
    h1, v = c.joints
    assert h1.kind == "hinge" and v.kind == "spherical" and v.mjcf_joints == ("h2", "h3", "h4")
    assert h1.stiffness[0] == 10 and h1.damping[0] == 1 and h1.armature[0] == 0.5 and h1.effort_limit[0] == 7
    np.testing.assert_allclose([h1.range_low[0], h1.range_high[0]], [-math.pi / 2, math.pi / 2])
    np.testing.assert_array_equal(v.damping, [3, 3, 1])
    np.testing.assert_array_equal(v.stiffness, [10, 10, 0])
    np.testing.assert_allclose(v.range_high, [math.pi / 2, math.pi / 2, math.radians(30)])
    assert v.effort_limit[2] == math.inf
    np.testing.assert_allclose(
        m.jnt_range[1:],
        np.stack(
            [np.concatenate([h1.range_low, v.range_low]), np.concatenate([h1.range_high, v.range_high])], 1
        ),
    )


def test_limited_false_and_autolimits():
    xml = _xml(
        '<body name="b"><joint limited="false" range="-1 1"/><body name="c"><joint/></body></body>',
        '<compiler angle="radian"/>',
    )
    c = load_character_from_string(xml)
    assert all(math.isinf(j.range_low[0]) and math.isinf(j.range_high[0]) for j in c.joints)
    xml = _xml('<body name="b"><joint range="-1 1"/></body>', '<compiler angle="radian" autolimits="false"/>')
    assert math.isinf(load_character_from_string(xml).joints[0].range_high[0])


def test_ball_joint_and_general_triples():
    xml = _xml(
        '<body name="ball"><joint name="bj" type="ball" range="0 90"/>'
        '<body name="tri" quat="0.9 0.1 0.3 0.2"><joint name="t1" axis="0 0 1"/><joint name="t2" axis="1 0 0"/><joint name="t3" axis="0 1 0"/></body>'
        '<body name="left"><joint name="l1" axis="1 0 0"/><joint name="l2" axis="0 1 0"/><joint name="l3" axis="0 0 -1"/></body></body>'
    )
    c = load_character_from_string(xml)
    ball, tri, left = c.joints
    assert (
        ball.is_ball
        and ball.qpos_count == 4
        and ball.range_high[0] == pytest.approx(math.pi / 2)
        and ball.range_low[0] == 0
    )
    assert not tri.is_ball and tri.name == "tri" and tri.qpos_count == 3
    assert c.num_qpos == 7 + 4 + 3 + 3 and c.num_dofs == 9
    assert c.dof_names[:3] == ("bj_x", "bj_y", "bj_z")
    np.testing.assert_allclose(left.axes[2], [0, 0, -1])


# ---- unsupported constructs --------------------------------------------------------------------------------------


BAD = [
    ('<body name="b"><joint type="slide"/></body>', "slide joints are not supported"),
    ('<body name="b"><joint axis="1 0 0"/><joint axis="0 1 0"/></body>', "2 hinge joints"),
    ('<body name="b"><joint/><joint/><joint/><joint/></body>', "4 hinge joints"),
    (
        '<body name="b"><joint axis="1 0 0"/><joint axis="1 1 0"/><joint axis="0 0 1"/></body>',
        "not orthogonal",
    ),
    ('<body name="b"><joint name="off" pos="0 0 0.1"/></body>', "joint pos="),
    ('<body name="b"><joint name="r" ref="10"/></body>', "ref="),
    ('<body name="b"><joint type="ball"/><joint/></body>', "ball joint must be the only joint"),
    ('<body name="b"><freejoint/></body>', "only supported on the root"),
    ('<frame pos="1 0 0"><body name="b"/></frame>', "<frame> is not supported"),
    ('<body name="b" quat="1 0 0 0" euler="0 0 1"/>', "only one orientation attribute"),
    ('<body name="b"><joint class="nope"/></body>', "class 'nope', which is not defined"),
    ('<body name="b"><joint range="1 -1"/></body>', "lower bound"),
]


@pytest.mark.parametrize("body, message", BAD, ids=[m for _, m in BAD])
def test_unsupported_constructs_raise_clear_errors(body, message):
    with pytest.raises(CharacterError, match="tiny.xml") as exc:
        load_character_from_string(_xml(body), source="tiny.xml")
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "xml, message",
    [
        (
            '<mujoco><worldbody><body name="a"><joint/></body></worldbody></mujoco>',
            "root body must have exactly one free joint",
        ),
        ('<mujoco><worldbody><body name="a"/></worldbody></mujoco>', "has no joint"),
        (
            '<mujoco><worldbody><body name="a"><freejoint/></body><body name="b"><freejoint/></body></worldbody></mujoco>',
            "2 root bodies",
        ),
        ("<mujoco><worldbody/></mujoco>", "has no <body>"),
        ('<mujoco><include file="x.xml"/><worldbody/></mujoco>', "load the MJCF with load_character(path)"),
        ('<robot name="urdf"/>', "expected <mujoco>"),
        ("<mujoco><worldbody>", "not valid XML"),
        ('<mujoco><compiler angle="grad"/><worldbody/></mujoco>', "angle='grad'"),
    ],
)
def test_bad_roots_and_files(xml, message):
    with pytest.raises(CharacterError, match="m.xml") as exc:
        load_character_from_string(xml, source="m.xml")
    assert message in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(CharacterError, match="not found"):
        load_character(tmp_path / "nope.xml")
