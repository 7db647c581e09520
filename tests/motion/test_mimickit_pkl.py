"""MimicKit .pkl: every reference clip, every variant, the writer, and validation errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from motion_testlib import legacy_motion_bytes

from mimictools.errors import MotionFormatError
from mimictools.motion import Motion, load_motion, save_motion
from mimictools.motion.checks import describe_nonfinite
from mimictools.motion.formats.mimickit_pkl import PICKLE_PROTOCOL
from mimictools.motion.io import check_frame_width


def _all_pkls(mk_dir: Path):
    return sorted(mk_dir.rglob("*.pkl"))


def test_every_reference_clip_loads(mk_dir, humanoid):
    clips = _all_pkls(mk_dir)
    assert len(clips) >= 80  # 22 top-level + long/ + sie/ + the format variant
    for clip in clips:
        m = load_motion(clip, char=humanoid)
        assert m.frames.dtype == np.float32 and m.frames.shape[1] == 34, clip
        assert m.fps in (16.0, 24.0, 30.0, 60.0, 120.0), clip
        assert m.loop_mode in (0, 1)
        assert m.variant in ("mimickit-dict-list", "mimickit-dict-ndarray"), clip
        finite = np.isfinite(m.frames).all()
        assert finite == (clip.name != "humanoid_walk.pkl"), clip


def test_data_md_facts(mk_motions):
    spin = load_motion(mk_motions / "humanoid_spinkick.pkl")
    assert (spin.num_frames, spin.fps, spin.loop_mode) == (78, 60.0, 1)
    assert spin.length_s == pytest.approx(77 / 60)
    assert "fps: float" in spin.details and "frames: list of lists" in spin.details
    back = load_motion(mk_motions / "humanoid_backflip.pkl")
    assert (back.num_frames, back.fps) == (29, 16.0) and "fps: int" in back.details
    combo = load_motion(mk_motions / "humanoid_kick_combo.pkl")
    assert "pickle protocol 4" in combo.details
    climb = load_motion(mk_motions / "humanoid_climbing_up_down.pkl")
    assert (climb.num_frames, climb.loop_mode) == (300, 0)
    sie = load_motion(mk_motions / "sie" / "humanoid_sie_run_left01.pkl")
    assert sie.variant == "mimickit-dict-ndarray" and sie.num_frames == 416


def test_walk_nan_neck_is_reported(mk_motions, humanoid):
    walk = load_motion(mk_motions / "humanoid_walk.pkl", char=humanoid)
    issues = describe_nonfinite(walk.frames, humanoid)
    assert len(issues) == 1
    (neck,) = issues
    assert neck["joint"] == "neck"
    assert neck["columns"] == [9, 10, 11]
    assert neck["frames"] == list(range(125))
    assert "neck (columns 9-11: neck_x, neck_y, neck_z) NaN at frames 0-124 (125 of 125)" == neck["message"]
    # everything else in the clip is finite
    rest = np.delete(walk.frames, [9, 10, 11], axis=1)
    assert np.isfinite(rest).all()


def test_variants_are_equal(tmp_path, mk_dir, mk_motions):
    torch = pytest.importorskip("torch")
    main = load_motion(mk_motions / "humanoid_spinkick.pkl")
    nd = load_motion(mk_dir / "format_variants" / "ndarray_float32" / "humanoid_spinkick.pkl")
    assert nd.variant == "mimickit-dict-ndarray" and "frames: numpy float32" in nd.details

    tensor_fps = tmp_path / "tensor_fps.pkl"
    raw = pickle.loads((mk_motions / "humanoid_spinkick.pkl").read_bytes())  # trusted reference file
    raw["fps"] = torch.tensor(float(raw["fps"]))
    tensor_fps.write_bytes(pickle.dumps(raw, protocol=3))
    tf = load_motion(tensor_fps)
    assert "fps: 0-d torch tensor (float)" in tf.details

    legacy = tmp_path / "legacy.pkl"
    legacy.write_bytes(legacy_motion_bytes(main.frames.copy(), 60.0, 1, protocol=3))
    lg = load_motion(legacy)
    assert lg.variant == "mimickit-legacy-object"

    for other in (nd, tf, lg):
        assert other.fps == main.fps and other.loop_mode == main.loop_mode
        np.testing.assert_array_equal(other.frames, main.frames)


def test_save_writes_mimickit_current_format(tmp_path, mk_dir):
    src = load_motion(mk_dir / "format_variants" / "ndarray_float32" / "humanoid_spinkick.pkl")
    out = tmp_path / "sub" / "out.pkl"
    save_motion(src, out)
    raw = out.read_bytes()
    assert raw[:2] == bytes([0x80, PICKLE_PROTOCOL])
    d = pickle.loads(raw)  # what upstream's loader does (our own file, so plain pickle is fine here)
    assert set(d) == {"loop_mode", "fps", "frames"}
    assert type(d["loop_mode"]) is int and d["loop_mode"] == 1
    assert type(d["fps"]) is int and d["fps"] == 60
    assert type(d["frames"]) is list and type(d["frames"][0]) is list and type(d["frames"][0][0]) is float
    np.testing.assert_array_equal(np.array(d["frames"], dtype=np.float32), src.frames)
    back = load_motion(out)
    assert back.variant == "mimickit-dict-list"
    np.testing.assert_array_equal(back.frames, src.frames)
    assert sorted(os.listdir(out.parent)) == ["out.pkl"]  # no temp file left behind
    # non-integral fps stays a float
    save_motion(src.replace(fps=29.97), out)
    assert pickle.loads(out.read_bytes())["fps"] == 29.97


def _write(tmp_path: Path, obj, name: str = "bad.pkl") -> Path:
    p = tmp_path / name
    p.write_bytes(pickle.dumps(obj, protocol=3))
    return p


GOOD = {"loop_mode": 1, "fps": 30, "frames": [[0.0] * 34, [0.1] * 34]}


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"fps": 0}, r"fps is 0.0; it must be a finite number > 0"),
        ({"fps": -30}, r"fps is -30.0"),
        ({"fps": float("nan")}, r"fps is nan"),
        ({"fps": float("inf")}, r"fps is inf"),
        ({"fps": "30"}, r"fps must be a number|fps is 30"),
        ({"loop_mode": 2}, r"loop_mode is 2; valid values are 0 \(clamp\) and 1 \(wrap\)"),
        ({"loop_mode": 1.0}, r"loop_mode must be 0 \(clamp\) or 1 \(wrap\)"),
        ({"frames": []}, r"empty clip"),
        ({"frames": np.zeros((0, 34), np.float32)}, r"empty clip"),
        ({"frames": [[0.0] * 34, [0.0] * 33]}, r"frame 1 has 33 columns, frame 0 has 34"),
        ({"frames": [[0.0] * 3]}, r"3 columns; a frame needs at least 6"),
        ({"frames": [["a"] * 34]}, r"not numbers"),
    ],
)
def test_validation_errors_are_one_line(tmp_path, change, pattern):
    obj = dict(GOOD)
    obj.update(change)
    p = _write(tmp_path, obj)
    with pytest.raises(MotionFormatError, match=pattern) as exc:
        load_motion(p)
    msg = str(exc.value)
    assert msg.startswith(str(p)) and "\n" not in msg


def test_missing_key_and_not_a_dict(tmp_path):
    p = _write(tmp_path, {"loop_mode": 1, "frames": GOOD["frames"]})
    with pytest.raises(
        MotionFormatError, match=r"missing key 'fps' in the motion dict \(has: frames, loop_mode"
    ):
        load_motion(p)
    p = _write(tmp_path, [1, 2, 3])
    with pytest.raises(MotionFormatError, match=r"holds a dict .* this one holds a list"):
        load_motion(p)


def test_wrong_column_count_names_both_counts(tmp_path, humanoid):
    p = _write(tmp_path, {"loop_mode": 0, "fps": 30, "frames": [[0.0] * 33] * 3})
    with pytest.raises(MotionFormatError) as exc:
        load_motion(p, char=humanoid)
    assert str(exc.value) == (
        f"{p}: has 33 columns, character humanoid.xml expects 34 (3 root pos + 3 root rot + 28 DoFs)"
    )
    m = load_motion(p)  # without a character the layout is not checked
    with pytest.raises(MotionFormatError, match="has 33 columns"):
        check_frame_width(m, humanoid)


def test_truncated_reference_clip(tmp_path, mk_motions):
    data = (mk_motions / "humanoid_run.pkl").read_bytes()
    p = tmp_path / "run_cut.pkl"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MotionFormatError, match=r"truncated pickle"):
        load_motion(p)


def test_motion_record_basics():
    m = Motion(fps=30.0, loop_mode=0, frames=np.zeros((31, 34), np.float32))
    assert m.length_s == pytest.approx(1.0) and m.loop_name == "clamp" and m.frame_width == 34
    assert m.replace(loop_mode=1).loop_name == "wrap"
