"""The viewer's library: primitive meshes, body poses against our own FK, fault marks, G1 meshes, replay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mimictools.view.geometry import primitive_mesh


@pytest.mark.parametrize(
    "gtype,size,extent",
    [
        (2, [0.1, 0, 0], [0.1, 0.1, 0.1]),  # sphere r
        (3, [0.05, 0.2, 0], [0.05, 0.05, 0.25]),  # capsule r, half-length
        (4, [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),  # ellipsoid
        (5, [0.1, 0.3, 0], [0.1, 0.1, 0.3]),  # cylinder r, half-length
        (6, [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),  # box half-sizes
    ],
)
def test_primitive_extents_match_mujoco_sizes(gtype, size, extent):
    v, f = primitive_mesh(gtype, np.array(size))
    np.testing.assert_allclose(np.abs(v).max(axis=0), extent, atol=1e-9)
    assert f.min() >= 0 and f.max() < len(v)


@pytest.fixture(scope="module")
def humanoid(repo_dir):
    from mimictools.view.tracks import load_view_character

    return load_view_character(repo_dir / "data" / "humanoid.xml")


def test_body_poses_match_our_fk(shared_dir, humanoid):
    """MuJoCo's mj_kinematics (what the viewer draws) and our FK agree on every body of a real clip."""
    from mimictools.character.kinematics import frames_to_body_poses
    from mimictools.motion.io import load_motion
    from mimictools.view.tracks import clip_track

    motion = load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_spinkick.pkl")
    track = clip_track(humanoid, motion)
    pos, _ = frames_to_body_poses(humanoid.char, torch.as_tensor(motion.frames, dtype=torch.float64))
    # float32 clip frames through two float64 FKs: agreement to 1e-6 m (same tolerance scale as fk-check)
    np.testing.assert_allclose(track.body_pos[:, humanoid.body_ids], pos.numpy(), atol=1e-6)
    assert track.faults is not None


def test_nan_marks_the_head_of_humanoid_walk(shared_dir, humanoid):
    import mujoco

    from mimictools.motion.io import load_motion
    from mimictools.view.tracks import clip_track

    track = clip_track(humanoid, load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_walk.pkl"))
    head = mujoco.mj_name2id(humanoid.model, mujoco.mjtObj.mjOBJ_BODY, "head")
    nan = track.faults.bodies[0]
    assert nan[:, head].all() and nan.sum() == track.num_frames  # the neck columns -> the head body, only
    # inspect reports left_knee past its limit in frames 54-58 (README tour): the same frames are marked
    np.testing.assert_array_equal(track.faults.frames("joint_limit"), [54, 55, 56, 57, 58])
    assert np.isfinite(track.body_pos).all()  # NaN joints drawn at their zero pose, not as NaN


def test_below_floor_marked_on_a_sunk_clip(shared_dir, humanoid):
    from mimictools.motion.io import load_motion
    from mimictools.view.tracks import clip_track

    m = load_motion(shared_dir / "mimickit/data/motions/humanoid/humanoid_run.pkl")
    frames = m.frames.copy()
    frames[10:12, 2] -= 0.5  # sink the whole body 0.5 m in two frames
    track = clip_track(humanoid, m.replace(frames=frames))
    fr = track.faults.frames("below_floor")
    assert 10 in fr and 11 in fr and 0 not in fr


def test_g1_meshes_and_clip(g1_view, g1_clip):
    from mimictools.view.tracks import clip_track

    meshes = g1_view.meshes
    # g1.xml: 35 mesh geoms in the visual group 2; collision copies (group 3) are not drawn
    assert sum(1 for m in meshes if len(m.vertices) > 100) == len(meshes) == 35
    track = clip_track(g1_view, g1_clip)
    assert track.num_frames == 30 and np.isfinite(track.body_pos).all()
    pelvis = g1_view.body_ids[0]
    np.testing.assert_allclose(track.body_pos[:, pelvis, 2], 0.79, atol=1e-6)


def test_policy_episode_and_eval_replay_agree(tmp_path, tiny_demo_run):
    """A policy's episodes (run through mimic eval's evaluate) and the replay of `mimic eval`'s errors.npz
    give the same poses; the ghost is the reference, beside the character."""
    from typer.testing import CliRunner

    from mimictools.cli.app import app
    from mimictools.view.sources import eval_replay_tracks, policy_tracks

    run_dir = tiny_demo_run  # read only
    runner = CliRunner()
    vc, tracks = policy_tracks(run_dir / "latest.pt", episodes=1)
    assert len(tracks) == 1 and tracks[0].ghost_pos is not None
    t = tracks[0]
    assert len(t.captions) == t.num_frames and "body position error" in t.captions[0]
    # first frame: one control step after reference state init, so the character is near its ghost (+1 m y)
    root = vc.body_ids[0]
    d = t.ghost_pos[0, root] - t.body_pos[0, root]
    np.testing.assert_allclose(d, [0.0, 1.0, 0.0], atol=0.1)
    res = runner.invoke(
        app, ["eval", "--model", str(run_dir / "latest.pt"), "--episodes", "1", "--out", str(tmp_path / "ev")]
    )
    assert res.exit_code == 0, res.output
    vc2, replay = eval_replay_tracks(tmp_path / "ev" / "errors.npz", None)
    np.testing.assert_allclose(replay[0].body_pos, t.body_pos, atol=1e-4)
    np.testing.assert_allclose(replay[0].ghost_pos, t.ghost_pos, atol=1e-4)
