"""Robot clip formats: Unitree/LAFAN1 CSV, mjlab NPZ, GMR pkl — on the shared G1 data and synthetic faults."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from mimictools.character.mjcf import load_character
from mimictools.errors import MotionFormatError, UnsafePickleError
from mimictools.motion.formats.mjlab_npz import body_order_error_m, breadth_first_order
from mimictools.motion.io import load_motion, save_motion


@pytest.fixture(scope="module")
def g1(robots: Path):
    return load_character(robots / "unitree_g1" / "g1.xml")


def _csv_rows(robots: Path, n: int = 40) -> np.ndarray:
    return np.loadtxt(robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv", delimiter=",")[:n]


def test_npz_body_pos_matches_our_fk_of_its_joint_data(robots: Path, g1):
    """Every g1-moves NPZ: our FK of (root of body 0, joint_pos) reproduces the file's body_pos_w <= 0.1 mm."""
    for npz in sorted((robots / "motions" / "g1_moves").glob("*/*.npz")):
        m = load_motion(npz, char=g1)
        with np.load(npz) as z:
            err = body_order_error_m(g1, m, z["body_pos_w"].astype(np.float64))
        assert err.max() <= 1e-4, (npz.name, float(err.max()))


def test_csv_and_npz_of_one_clip_agree(robots: Path, g1):
    """The NPZ is the CSV at 60 fps minus the last row (ROBOTS.md)."""
    d = robots / "motions/g1_moves/M_ShortMove14"
    csv = load_motion(d / "M_ShortMove14.csv", char=g1, fps=60)
    npz = load_motion(d / "M_ShortMove14.npz", char=g1)
    assert npz.fps == 60.0 and csv.num_frames == npz.num_frames + 1
    np.testing.assert_allclose(npz.frames, csv.frames[:-1], atol=2e-5)  # NPZ is float32


def test_csv_pkl_npz_pkl_round_trip(robots: Path, g1, tmp_path: Path):
    src = robots / "motions/lafan1_g1_csv/dance1_subject2_rev.csv"
    a = load_motion(src, char=g1, fps=30)
    assert a.frame_width == 35 and a.num_frames == 7001 and a.variant == "robot-csv"
    save_motion(a, tmp_path / "a.pkl")
    save_motion(load_motion(tmp_path / "a.pkl"), tmp_path / "a.npz", char=g1)
    save_motion(load_motion(tmp_path / "a.npz", char=g1), tmp_path / "b.pkl")
    b = load_motion(tmp_path / "b.pkl")
    assert b.fps == 30.0 and b.num_frames == a.num_frames
    # positions and joint angles are copied float32 -> float32 (exact); the root exp map goes through a
    # float32 quaternion in the NPZ: 1 float32 ulp (1.2e-7 rad)
    np.testing.assert_array_equal(b.frames[:, :3], a.frames[:, :3])
    np.testing.assert_array_equal(b.frames[:, 6:], a.frames[:, 6:])
    np.testing.assert_allclose(b.frames[:, 3:6], a.frames[:, 3:6], atol=2.5e-7, rtol=0)
    # and back to CSV: the same rotations (q and -q are one rotation), the same numbers elsewhere
    save_motion(b, tmp_path / "c.csv", char=g1)
    x, y = np.loadtxt(tmp_path / "c.csv", delimiter=","), np.loadtxt(src, delimiter=",")
    sign = np.sign(np.sum(x[:, 3:7] * y[:, 3:7], axis=1, keepdims=True))
    np.testing.assert_allclose(x[:, 3:7] * sign, y[:, 3:7], atol=1e-6)
    np.testing.assert_allclose(
        x[:, [0, 1, 2] + list(range(7, 36))], y[:, [0, 1, 2] + list(range(7, 36))], atol=1e-6
    )


def test_gmr_pkl_round_trip_and_safety(robots: Path, g1, tmp_path: Path):
    rows = _csv_rows(robots)
    obj = {
        "fps": 60,
        "root_pos": rows[:, :3],
        "root_rot": rows[:, 3:7],
        "dof_pos": rows[:, 7:],
        "local_body_pos": None,
        "link_body_list": None,
    }
    (tmp_path / "g.pkl").write_bytes(pickle.dumps(obj))
    m = load_motion(tmp_path / "g.pkl", char=g1)
    csv = load_motion(robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv", char=g1, fps=60)
    assert m.variant == "gmr-pkl" and m.fps == 60.0
    np.testing.assert_allclose(m.frames, csv.frames[:40], atol=1e-6)
    save_motion(m, tmp_path / "h.pkl", char=g1, fmt="gmr")
    np.testing.assert_array_equal(load_motion(tmp_path / "h.pkl").frames, m.frames)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(dict(obj, link_body_list=Evil())))
    with pytest.raises(UnsafePickleError):
        load_motion(tmp_path / "evil.pkl")


def test_csv_faults_have_clear_errors(robots: Path, g1, tmp_path: Path):
    rows = _csv_rows(robots)
    src = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.csv"
    with pytest.raises(MotionFormatError, match="pass --fps"):
        load_motion(src, char=g1)
    nan = rows.copy()
    nan[17, 9] = np.nan
    np.savetxt(tmp_path / "nan.csv", nan, delimiter=",")
    with pytest.raises(MotionFormatError, match="first at frame 17"):
        load_motion(tmp_path / "nan.csv", fps=60)
    wxyz = np.concatenate([rows[:, :3], rows[:, 6:7], rows[:, 3:6], rows[:, 7:]], axis=1)
    np.savetxt(tmp_path / "wxyz.csv", wxyz, delimiter=",")
    with pytest.raises(MotionFormatError, match=r"not upright.*\(x, y, z, w\).*\(w, x, y, z\)"):
        load_motion(tmp_path / "wxyz.csv", fps=60)
    np.savetxt(tmp_path / "short.csv", rows[:, :-2], delimiter=",")
    with pytest.raises(MotionFormatError, match="27 joint columns, character .*g1.xml has 29 joints"):
        load_motion(tmp_path / "short.csv", fps=60, char=g1)


def test_npz_in_breadth_first_order_is_named(robots: Path, g1, tmp_path: Path):
    src = robots / "motions/g1_moves/B_HandsUp/B_HandsUp.npz"
    with np.load(src) as z:
        data = {k: z[k] for k in z.files}
    bfs = breadth_first_order(g1)
    assert bfs != list(range(g1.num_bodies))  # the G1's two orders differ
    for k in ("body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w"):
        data[k] = data[k][:, bfs]
    np.savez(tmp_path / "bfs.npz", **data)
    with pytest.raises(MotionFormatError, match="breadth-first"):
        load_motion(tmp_path / "bfs.npz", char=g1)
    assert load_motion(tmp_path / "bfs.npz").num_frames == 441  # without a character nothing to check against
