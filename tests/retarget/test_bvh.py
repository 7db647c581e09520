"""BVH parser, source forward kinematics, unit / up-axis / rest-frame detection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mimictools.errors import MotionFormatError
from mimictools.motion.retarget import bvh

# Root with 6 channels (ZYX rotation order), a child with XYZ order, an End Site; Y up, centimetres.
SMALL = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Chest
  {
    OFFSET 0 20 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 30 5
    }
  }
  JOINT Leg
  {
    OFFSET 10 -45 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -45 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0 0 0 0
1 91 2 30 -20 10 45 10 -5 5 60 -30
2 92 4 -170 80 5 -90 89 170 -120 15 40
"""


def _write(tmp_path, text, name="a.bvh"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _expected_fk(frame):
    """World positions of the 5 joints from scipy rotations (file units, file axes)."""
    v = np.asarray(frame, dtype=np.float64)
    r_root = Rotation.from_euler("ZYX", v[3:6], degrees=True)  # intrinsic, composed in listed order
    r_chest = r_root * Rotation.from_euler("XYZ", v[6:9], degrees=True)
    r_leg = r_root * Rotation.from_euler("ZXY", v[9:12], degrees=True)
    root = v[0:3]
    chest = root + r_root.apply([0, 20, 0])
    chest_end = chest + r_chest.apply([0, 30, 5])
    leg = root + r_root.apply([10, -45, 0])
    leg_end = leg + r_leg.apply([0, -45, 0])
    rots = [r_root, r_chest, r_chest, r_leg, r_leg]
    return np.stack([root, chest, chest_end, leg, leg_end]), rots


def test_parse_small_hierarchy(tmp_path):
    clip = bvh.load_bvh(_write(tmp_path, SMALL))
    sk = clip.skeleton
    assert sk.names == ("Hips", "Chest", "Chest_end", "Leg", "Leg_end")
    assert sk.parents == (-1, 0, 1, 0, 3)
    assert sk.is_end_site == (False, False, True, False, True)
    assert sk.num_channels == 12
    assert clip.num_frames == 3
    assert clip.fps == pytest.approx(30.0, rel=1e-5)
    np.testing.assert_allclose(sk.offsets[2], [0, 30, 5])


@pytest.mark.parametrize("frame", [0, 1, 2])
def test_fk_matches_scipy_for_any_channel_order(tmp_path, frame):
    clip = bvh.load_bvh(_write(tmp_path, SMALL))
    pos, rot = bvh.bvh_forward_kinematics(clip)
    exp_pos, exp_rot = _expected_fk(clip.channels[frame])
    np.testing.assert_allclose(pos[frame], exp_pos, atol=1e-9)
    for j, r in enumerate(exp_rot):
        q = rot[frame, j]
        got = Rotation.from_quat([q[1], q[2], q[3], q[0]])  # scipy is xyzw
        assert (got.inv() * r).magnitude() < 1e-9


def test_zup_metres_conversion(tmp_path):
    clip = bvh.load_bvh(_write(tmp_path, SMALL))
    pos, rot = bvh.bvh_forward_kinematics(clip)
    pz, rz = bvh.bvh_to_zup_metres(pos, rot, "y", 0.01)
    # (x, y, z)_file -> (x, -z, y) * 0.01
    np.testing.assert_allclose(pz[..., 0], pos[..., 0] * 0.01, atol=1e-12)
    np.testing.assert_allclose(pz[..., 1], -pos[..., 2] * 0.01, atol=1e-12)
    np.testing.assert_allclose(pz[..., 2], pos[..., 1] * 0.01, atol=1e-12)
    # converted world rotations still map the joint's own (file-frame) offsets onto its children
    import torch

    from mimictools.math.rotations import quat_rotate

    for f in range(3):
        off = torch.tensor([0.0, 30.0, 5.0], dtype=torch.float64) * 0.01
        a = quat_rotate(torch.as_tensor(rz[f, 1]), off)
        b = torch.as_tensor(pz[f, 2] - pz[f, 1])
        assert torch.allclose(a, b, atol=1e-12)


def test_detect_up_and_unit(tmp_path):
    clip = bvh.load_bvh(_write(tmp_path, SMALL))
    assert bvh.detect_up_axis(clip.skeleton) == "y"
    # hip height 90 file units: cm gives 0.9 m
    assert bvh.detect_unit(clip.skeleton, "y") == ("cm", 0.01)
    z_up = SMALL.replace("OFFSET 0 20 0", "OFFSET 0 0 20").replace("OFFSET 0 30 5", "OFFSET 0 5 30")
    z_up = z_up.replace("OFFSET 10 -45 0", "OFFSET 10 0 -45").replace("OFFSET 0 -45 0", "OFFSET 0 0 -45")
    assert bvh.detect_up_axis(bvh.load_bvh(_write(tmp_path, z_up, "z.bvh")).skeleton) == "z"
    metres = SMALL.replace("OFFSET 10 -45 0", "OFFSET 0.1 -0.45 0").replace(
        "OFFSET 0 -45 0", "OFFSET 0 -0.45 0"
    )
    assert bvh.detect_unit(bvh.load_bvh(_write(tmp_path, metres, "m.bvh")).skeleton, "y")[0] == "m"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.replace("Frames: 3", "Frames: 5"), "only 3 data rows"),
        (
            lambda s: s.replace("Yrotation Zrotation\n", "Yrotation Wrotation\n", 1),
            "unknown channel 'Wrotation'",
        ),
        (lambda s: s.replace("1 91 2 30", "1 91 30"), "frame 1 has 11 values"),
        (lambda s: s.replace("2 92 4 -170", "2 92 4 abc"), "non-number"),
        (lambda s: s.split("MOTION")[0], "no MOTION section"),
        (lambda s: s.replace("HIERARCHY", "HIERARCHIES"), "not a BVH file"),
        (lambda s: s.replace("OFFSET 0 20 0", "OFFSET 0 20"), "OFFSET needs 3 numbers"),
        (lambda s: s.replace("Frame Time: 0.0333333", "Frame Time: 0"), "Frame Time must be > 0"),
    ],
)
def test_malformed_files_raise_with_location(tmp_path, edit, match):
    p = _write(tmp_path, edit(SMALL))
    with pytest.raises(MotionFormatError, match=match) as info:
        bvh.load_bvh(p)
    assert str(p) in str(info.value)


def test_rest_frame_detection(tmp_path):
    # frame 0 here is all zeros but so is the root -> the jump test decides; make frame 0 a whole-number
    # pose that jumps, then a smooth clip
    rows = ["0 90 0 0 0 0 0 0 0 -17 0 0"]
    for k in range(1, 40):
        a = 10.0 * math.sin(k / 10.0) + 0.123
        rows.append(f"{k * 0.1:.4f} 90 0 {a:.4f} {a / 2:.4f} 0.5 {a:.4f} 1.25 0.75 {a:.4f} 3.5 0.25")
    text = (
        SMALL.split("MOTION")[0]
        + f"MOTION\nFrames: {len(rows)}\nFrame Time: 0.0083333\n"
        + "\n".join(rows)
        + "\n"
    )
    clip = bvh.load_bvh(_write(tmp_path, text))
    assert bvh.detect_rest_frame(clip)
    clip2 = bvh.BvhClip(clip.skeleton, clip.frame_time_s, clip.channels[1:], clip.source)
    assert not bvh.detect_rest_frame(clip2)


def test_real_files_parse(shared_dir):
    mocap = shared_dir / "mocap"
    c = bvh.load_bvh(mocap / "cmu_bvh" / "01_01.bvh")
    assert c.num_frames == 2752 and c.skeleton.num_channels == 96
    assert sum(not e for e in c.skeleton.is_end_site) == 31 and sum(c.skeleton.is_end_site) == 7
    assert bvh.detect_up_axis(c.skeleton) == "y"
    assert bvh.detect_unit(c.skeleton, "y")[0] == "cmu"
    assert bvh.detect_rest_frame(c)  # DATA.md: CMU frame 0 is an inserted rest pose
    s = bvh.load_bvh(mocap / "sfu_bvh" / "0005_Walking001.bvh")
    assert s.num_frames == 270 and s.skeleton.num_channels == 78
    assert bvh.detect_unit(s.skeleton, "y")[0] == "inch"  # BvhToDeepMimic's settings: scale 0.0254
    assert not bvh.detect_rest_frame(s)
    c14 = bvh.load_bvh(mocap / "cmu_bvh" / "01_14.bvh")
    assert c14.num_frames == 2339 and bvh.detect_rest_frame(c14)
