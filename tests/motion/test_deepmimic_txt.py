"""DeepMimic .txt -> MimicKit humanoid frames: against MimicKit's own converted clips, by FK."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from mimictools.errors import MotionFormatError, NotSupportedError
from mimictools.math.rotations import exp_map_to_quat, quat_diff_angle
from mimictools.motion import load_motion
from mimictools.motion.formats.deepmimic_txt import deepmimic_doc_to_motion, deepmimic_rows_to_frames

# MimicKit's clips of these names are conversions of the DeepMimic files (DATA.md: < 1e-4).
EXACT = ("spinkick", "run", "dance_a", "dance_b", "getup_faceup", "zombie_walk")
# (frames, fps, loop) from DATA.md's DeepMimic table
TABLE = {
    "crawl": (177, 60.0, 1),
    "dance_a": (98, 60.0, 1),
    "dance_b": (153, 60.0, 1),
    "dance_spin": (122, 120.0, 1),
    "getup_facedown": (183, 60.0, 0),
    "getup_faceup": (227, 60.0, 0),
    "jog": (26, 30.0, 1),
    "jump": (107, 60.0, 1),
    "kick": (47, 30.0, 0),
    "punch": (65, 30.0, 0),
    "roll": (121, 60.0, 1),
    "run": (25, 30.0, 1),
    "sideflip": (40, 16.0, 1),
    "spin": (107, 24.0, 1),
    "spinkick": (78, 60.0, 1),
    "stealthy_walk": (97, 24.0, 1),
    "walk": (39, 30.0, 1),
    "zombie_walk": (102, 60.0, 1),
}


def _load_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_motion(path)


def test_every_deepmimic_clip_converts(dm_motions, humanoid):
    files = sorted(dm_motions.glob("humanoid3d_*.txt"))
    assert len(files) >= 18
    for f in files:
        name = f.stem[len("humanoid3d_") :]
        m = _load_quiet(f)
        assert m.variant == "deepmimic-txt"
        assert m.frames.shape[1] == humanoid.frame_width == 34
        assert np.isfinite(m.frames).all(), f
        if name in TABLE:
            assert (m.num_frames, m.fps, m.loop_mode) == TABLE[name], name


@pytest.mark.parametrize("name", EXACT)
def test_matches_mimickit_frames_and_body_positions(name, dm_motions, mk_motions, humanoid):
    from mimictools.character.kinematics import frames_to_body_poses

    ours = _load_quiet(dm_motions / f"humanoid3d_{name}.txt")
    ref = load_motion(mk_motions / f"humanoid_{name}.pkl")
    assert (ours.num_frames, ours.fps, ours.loop_mode) == (ref.num_frames, ref.fps, ref.loop_mode)
    # raw columns: same exp-map branch as MimicKit's converter (DATA.md: agree to < 1e-4)
    assert np.abs(ours.frames - ref.frames).max() < 1e-4
    # body positions by FK on MimicKit's humanoid: <= 1 mm (seen: < 0.03 mm)
    a = torch.as_tensor(ours.frames, dtype=torch.float64)
    b = torch.as_tensor(ref.frames, dtype=torch.float64)
    pa, ra = frames_to_body_poses(humanoid, a)
    pb, rb = frames_to_body_poses(humanoid, b)
    assert (pa - pb).norm(dim=-1).max().item() <= 1e-3
    assert quat_diff_angle(ra, rb).max().item() < 1e-3


@pytest.mark.parametrize("name", ["jump", "dance_spin", "getup_facedown"])
def test_near_matches(name, dm_motions, mk_motions):
    """DATA.md: these agree to < 0.01 rad (MimicKit did not normalise the quaternions the same way)."""
    src = dm_motions / f"humanoid3d_{name}.txt"
    if not src.exists():
        pytest.skip(f"{src.name} is not in the reference data")
    ours = torch.as_tensor(_load_quiet(src).frames, dtype=torch.float64)
    ref = torch.as_tensor(load_motion(mk_motions / f"humanoid_{name}.pkl").frames, dtype=torch.float64)
    for c in (3, 6, 9, 12, 16, 20, 24, 27, 31):
        ang = quat_diff_angle(exp_map_to_quat(ours[:, c : c + 3]), exp_map_to_quat(ref[:, c : c + 3]))
        assert ang.max().item() < 0.01, c


def _row(**joints) -> list:
    """A DeepMimic row: identity rotations, root at (1, 2, 3), with overrides."""
    row = [1 / 30, 1.0, 2.0, 3.0] + [1.0, 0.0, 0.0, 0.0] * 3 + [1, 0, 0, 0, 0.0] + [1, 0, 0, 0] * 2 + [0.0]
    row += [1, 0, 0, 0, 0.0] + [1, 0, 0, 0] * 2 + [0.0]
    assert len(row) == 44
    offs = {"right_knee": 20, "right_elbow": 29, "left_knee": 34, "left_elbow": 43}
    quat_offs = {"chest": 8, "right_hip": 16, "right_shoulder": 25, "left_shoulder": 39}
    for k, v in joints.items():
        if k in offs:
            row[offs[k]] = v
        else:
            row[quat_offs[k] : quat_offs[k] + 4] = v
    return row


def test_mapping_by_hand():
    h = math.sqrt(0.5)
    rows = np.array(
        [
            _row(),
            # chest: +90 deg about DeepMimic's y (up) -> +90 deg about MimicKit's z (up)
            _row(chest=[h, 0, h, 0], right_knee=0.5, left_knee=0.25, right_elbow=0.7, left_elbow=0.3),
            # right shoulder -90 deg about x cancels the +90 deg T-pose offset
            _row(right_shoulder=[h, -h, 0, 0]),
        ]
    )
    f = deepmimic_rows_to_frames(rows)
    np.testing.assert_allclose(f[0, 0:3], [1.0, -3.0, 2.0])  # (x, -z, y)
    np.testing.assert_allclose(f[0, 3:6], 0.0, atol=1e-12)
    np.testing.assert_allclose(f[0, 12:15], [math.pi / 2, 0, 0], atol=1e-12)  # right shoulder T-pose offset
    np.testing.assert_allclose(f[0, 16:19], [-math.pi / 2, 0, 0], atol=1e-12)
    np.testing.assert_allclose(f[1, 6:9], [0, 0, math.pi / 2], atol=1e-12)
    assert f[1, 23] == -0.5 and f[1, 30] == -0.25  # knees negated
    assert f[1, 15] == pytest.approx(0.7) and f[1, 19] == pytest.approx(-0.3)  # left elbow negated only
    np.testing.assert_allclose(f[2, 12:15], 0.0, atol=1e-12)


def test_non_unit_quaternions_warn_per_joint(dm_motions):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = load_motion(dm_motions / "humanoid3d_kick.txt")
    msgs = [str(w.message) for w in rec]
    hip = [s for s in msgs if "right_hip quaternion" in s]
    assert len(hip) == 1  # worst per joint only
    assert "(worst |norm - 1| = 0.4166 for this joint); normalised" in hip[0]
    assert "frame " in hip[0]
    assert [n.kind for n in m.notes].count("non_unit_quaternion") == len(
        [s for s in msgs if "quaternion has norm" in s]
    )
    # normalised: the converted exp maps are those of the unit quaternion
    assert np.isfinite(m.frames).all()


def test_unit_clip_does_not_warn(dm_motions):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_motion(dm_motions / "humanoid3d_run.txt")


def test_irregular_dt_is_noted(dm_motions):
    m = _load_quiet(dm_motions / "humanoid3d_roll.txt")
    (note,) = [n for n in m.notes if n.kind == "irregular_dt"]
    assert "0.032666" in note.message
    assert m.fps == 60.0


def _doc(**kw):
    doc = {"Loop": "wrap", "Frames": [_row(), _row()]}
    doc.update(kw)
    return doc


@pytest.mark.parametrize(
    "doc, pattern",
    [
        (_doc(Frames=[_row(), _row()[:43]]), r"frame 1 has 43 numbers; a DeepMimic humanoid3d row has 44"),
        (_doc(Frames=[]), r"empty clip"),
        (_doc(Loop="bounce"), r"Loop is 'bounce'; valid values are 'wrap' and 'none'"),
        ({"Loop": "wrap"}, r"missing key 'Frames'"),
        ([1, 2], r"JSON object"),
        (_doc(Frames=[[0.0] + _row()[1:], _row()]), r"frame 0 has dt = 0.0"),
        (_doc(Frames=[_row(chest=[0, 0, 0, 0]), _row()]), r"chest quaternion is zero at frame 0"),
    ],
)
def test_malformed_docs(doc, pattern):
    with pytest.raises(MotionFormatError, match=pattern) as exc:
        deepmimic_doc_to_motion(doc, "clip.txt", warn=False)
    assert str(exc.value).startswith("clip.txt: ") and "\n" not in str(exc.value)


def test_truncated_json_file(tmp_path, dm_motions):
    text = (dm_motions / "humanoid3d_run.txt").read_text()
    p = tmp_path / "cut.txt"
    p.write_text(text[: len(text) // 2])
    with pytest.raises(MotionFormatError, match=r"cut.txt: truncated JSON"):
        load_motion(p)


def test_loop_none_and_other_character(tmp_path, humanoid):
    m = deepmimic_doc_to_motion(_doc(Loop="none"), "x.txt")
    assert m.loop_mode == 0 and m.fps == 30.0

    class Narrow:
        frame_width = 20
        source = "robot.xml"

    p = tmp_path / "x.txt"
    p.write_text(json.dumps(_doc()))
    with pytest.raises(NotSupportedError, match="robot.xml has 20"):
        load_motion(p, char=Narrow())
