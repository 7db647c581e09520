"""Every clip of ../shared opens in the viewer: loaded into its scene model (Tracks: body poses by MuJoCo's
kinematics, fault marks) without a browser. The list of what is checked is in docs/viewer.md."""

from __future__ import annotations

import numpy as np
import pytest

HUMANOID_CLIP_DIRS = ("mimickit/data/motions/humanoid", "mimickit/format_variants", "deepmimic/motions")
"""Folders of humanoid clips (MimicKit .pkl of every variant, DeepMimic .txt), read recursively."""
G1_CLIPS = {"robots/motions/lafan1_g1_csv": 30.0, "robots/motions/g1_moves": 60.0}
"""Folders of G1 clips (CSV, mjlab NPZ) and the frame rate their CSVs do not store (../shared/robots/ROBOTS.md)."""
BVH = ("mocap/cmu_bvh/01_01.bvh", "mocap/cmu_bvh/01_14.bvh", "mocap/sfu_bvh/0005_Walking001.bvh")


def _check(track, name: str) -> None:
    assert track.num_frames > 1, name
    assert np.isfinite(track.body_pos).all() and np.isfinite(track.body_quat).all(), name
    assert track.faults is not None and track.faults.bodies.shape[1] == track.num_frames, name


@pytest.fixture(scope="module")
def humanoid_view(repo_dir):
    from mimictools.view.tracks import load_view_character

    return load_view_character(repo_dir / "data" / "humanoid.xml")


def test_every_shared_humanoid_clip_opens(shared_dir, humanoid_view):
    from mimictools.view.sources import clip_tracks

    # a folder is what `mimic view FOLDER/` opens: its clips, recursively (LICENSE.txt and READMEs skipped)
    tracks = clip_tracks(humanoid_view, [shared_dir / d for d in HUMANOID_CLIP_DIRS])
    assert len(tracks) == 22 + 11 + 50 + 1 + 18  # top-level, long/, sie/, format variant, DeepMimic .txt
    for track in tracks:
        _check(track, track.name)
    # the one clip with a fault (DATA.md): humanoid_walk's neck is NaN in every frame
    (walk,) = clip_tracks(humanoid_view, [shared_dir / "mimickit/data/motions/humanoid/humanoid_walk.pkl"])
    assert walk.faults.frames("nan").size == walk.num_frames


def test_the_shared_dataset_opens_as_a_clip_list(shared_dir, humanoid_view):
    from mimictools.view.sources import clip_tracks

    tracks = clip_tracks(
        humanoid_view, [shared_dir / "mimickit/data/datasets/dataset_humanoid_locomotion.yaml"]
    )
    assert len(tracks) == 56  # DATA.md: the 56 clips it lists are all present


def test_every_shared_g1_clip_opens(shared_dir, g1_view):
    from mimictools.view.sources import clip_tracks

    tracks = [t for d, fps in G1_CLIPS.items() for t in clip_tracks(g1_view, [shared_dir / d], fps=fps)]
    assert len(tracks) == 1 + 4 * 2  # LAFAN1 CSV, g1-moves CSV + NPZ
    for track in tracks:
        _check(track, track.name)


def test_every_shared_bvh_opens_beside_its_retargeting(shared_dir, humanoid_view, tmp_path):
    """A BVH is mocap on its own skeleton: the viewer shows it as the source of a retargeting result
    (``mimic view OUT.pkl --compare SRC.bvh``)."""
    from typer.testing import CliRunner

    from mimictools.cli.app import app
    from mimictools.view.sources import compare_track

    for rel in BVH:
        src = shared_dir / rel
        out = tmp_path / (src.stem + ".pkl")
        res = CliRunner().invoke(app, ["motion", "retarget", str(src), "-o", str(out)])
        assert res.exit_code == 0, res.output
        track = compare_track(humanoid_view, src, out)
        _check(track, src.name)
        assert track.skeleton is not None and np.isfinite(track.skeleton.pos).all()
