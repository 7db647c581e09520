"""Mapping files: presets, validation errors that name what is wrong, preset selection."""

from __future__ import annotations

import pytest
import yaml

from mimictools.errors import ConfigError
from mimictools.motion.retarget.mapping import (
    list_presets,
    load_mapping,
    mapping_from_dict,
    resolve_mapping,
    select_preset,
)

HUMANOID_BODIES = (
    "pelvis torso head right_upper_arm right_lower_arm right_hand left_upper_arm left_lower_arm left_hand "
    "right_thigh right_shin right_foot left_thigh left_shin left_foot"
).split()
CMU_JOINTS = (
    "Hips LHipJoint LeftUpLeg LeftLeg LeftFoot LeftToeBase LeftToeBase_end RHipJoint RightUpLeg RightLeg RightFoot "
    "RightToeBase RightToeBase_end LowerBack Spine Spine1 Neck Neck1 Head Head_end LeftShoulder LeftArm LeftForeArm "
    "LeftHand LeftFingerBase LFingers LFingers_end LThumb LThumb_end RightShoulder RightArm RightForeArm RightHand "
    "RightFingerBase RFingers RFingers_end RThumb RThumb_end"
).split()
SFU_JOINTS = (
    "Hips LeftUpLeg LeftLeg LeftFoot LeftToeBase LeftToeBase_end RightUpLeg RightLeg RightFoot RightToeBase "
    "RightToeBase_end Spine Spine1 Neck Head Head_end LeftShoulder LeftArm LeftForeArm LeftHand LeftHandThumb "
    "LeftHandThumb_end L_Wrist_End RightShoulder RightArm RightForeArm RightHand RightHandThumb RightHandThumb_end "
    "R_Wrist_End"
).split()


def test_presets_load_and_fit_their_skeletons():
    assert set(list_presets()) >= {"cmu_bvh_to_humanoid", "sfu_bvh_to_humanoid", "humanoid_to_humanoid"}
    for name, joints in (
        ("cmu_bvh_to_humanoid", CMU_JOINTS),
        ("sfu_bvh_to_humanoid", SFU_JOINTS),
        ("humanoid_to_humanoid", HUMANOID_BODIES),
    ):
        m = load_mapping(name)
        r = resolve_mapping(m, joints, HUMANOID_BODIES, "src", "tgt")
        assert set(m.feet) == {"left_foot", "right_foot"}
        assert {e.body for e in m.entries} == set(HUMANOID_BODIES)  # every body is driven
        assert len(r.entry_body) == len(m.entries)


def test_select_preset_picks_the_specific_one():
    # the SFU preset's names all exist in a CMU file too: the more specific CMU preset must win
    assert select_preset(CMU_JOINTS, HUMANOID_BODIES, "bvh").name == "cmu_bvh_to_humanoid"
    assert select_preset(SFU_JOINTS, HUMANOID_BODIES, "bvh").name == "sfu_bvh_to_humanoid"
    assert select_preset(HUMANOID_BODIES, HUMANOID_BODIES, "mimickit").name == "humanoid_to_humanoid"
    with pytest.raises(ConfigError, match="no bundled mapping fits") as info:
        select_preset(["root", "spine", "lhand"], HUMANOID_BODIES, "bvh")
    assert "docs/retargeting.md" in str(info.value)


def _doc(**changes):
    doc = {
        "name": "t",
        "feet": ["left_foot"],
        "bodies": {
            "pelvis": {"source": "Hips"},
            "left_foot": [
                {"source": "LeftFoot"},
                {"source": "LeftToeBase", "offset": [0.1, 0, 0], "weight": 0.5},
            ],
            "head": "Head",
        },
    }
    doc.update(changes)
    return doc


def test_parse_shorthand_lists_and_offsets():
    m = mapping_from_dict(_doc())
    assert [(e.body, e.source) for e in m.entries] == [
        ("pelvis", ("Hips",)),
        ("left_foot", ("LeftFoot",)),
        ("left_foot", ("LeftToeBase",)),
        ("head", ("Head",)),
    ]
    assert m.entries[2].offset == (0.1, 0.0, 0.0) and m.entries[2].weight == 0.5
    assert m.entries[0].rot_weight == 0.0


@pytest.mark.parametrize(
    "doc, match",
    [
        (_doc(bodys={}), "unknown key 'bodys' \\(did you mean 'bodies'"),
        (_doc(bodies={"pelvis": {"sorce": "Hips"}}, feet=[]), "unknown key 'sorce' \\(did you mean 'source'"),
        (_doc(bodies={"pelvis": {"weight": 1}}, feet=[]), "missing 'source'"),
        (_doc(bodies={"pelvis": {"source": "Hips", "offset": [1, 2]}}, feet=[]), "offset must be 3 numbers"),
        (_doc(bodies={"pelvis": {"source": "Hips", "weight": -1}}, feet=[]), "weight must be >= 0"),
        (_doc(feet=["right_foot"]), "foot 'right_foot' has no entry"),
        (_doc(source="fbx"), "source must be one of bvh, mimickit"),
        (_doc(bodies={"pelvis": {"source": "Hips", "weight": 0}}, feet=[]), "weight 0"),
        ("just a string", "a mapping file is a YAML mapping"),
    ],
)
def test_invalid_mapping_files(doc, match):
    with pytest.raises(ConfigError, match=match):
        mapping_from_dict(doc, "my_map.yaml")


def test_resolve_names_the_missing_joint_and_body():
    m = mapping_from_dict(_doc(), "my_map.yaml")
    with pytest.raises(ConfigError) as info:
        resolve_mapping(
            m, ["Hips", "LeftFoot", "LeftToe", "Head"], ["pelvis", "left_foot", "head"], "a.bvh", "b.xml"
        )
    msg = str(info.value)
    assert (
        "my_map.yaml" in msg and "a.bvh" in msg and "'LeftToeBase'" in msg and "did you mean 'LeftToe'" in msg
    )
    with pytest.raises(ConfigError) as info:
        resolve_mapping(
            m, ["Hips", "LeftFoot", "LeftToeBase", "Head"], ["pelvis", "l_foot", "head"], "a.bvh", "b.xml"
        )
    assert "b.xml has no body 'left_foot'" in str(info.value) and "l_foot" in str(info.value)


def test_load_mapping_file_and_errors(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(_doc()))
    assert load_mapping(p).name == "t"
    bad = tmp_path / "bad.yaml"
    bad.write_text("bodies: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_mapping(bad)
    with pytest.raises(ConfigError, match="not a preset; presets: .*cmu_bvh_to_humanoid"):
        load_mapping("no_such_preset")
