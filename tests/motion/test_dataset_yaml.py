"""Dataset .yaml and folder expansion."""

from __future__ import annotations

import pickle

import pytest

from mimictools.errors import MotionFormatError
from mimictools.motion import load_motion_set
from mimictools.motion.formats.dataset_yaml import read_dataset_yaml
from mimictools.motion.io import expand_motion_paths


def test_mimickit_locomotion_dataset(mk_dir):
    yaml_path = mk_dir / "data" / "datasets" / "dataset_humanoid_locomotion.yaml"
    entries = read_dataset_yaml(yaml_path)
    assert len(entries) == 56
    for path, _w in entries:
        assert path.is_file(), path
        assert str(path.resolve()).startswith(str(mk_dir.resolve()))
    weights = {p.name: w for p, w in entries}
    assert weights["humanoid_run.pkl"] == 3.0 and weights["humanoid_walk.pkl"] == 3.0
    assert sum(1 for p, _ in entries if p.parent.name == "sie") == 46
    assert sum(1 for p, _ in entries if p.parent.name == "long") == 8
    pairs = load_motion_set(yaml_path)
    assert len(pairs) == 56 and pairs[0][0].source.endswith("humanoid_run.pkl")


def _clip(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": [[0.0] * 34] * 2}))


def test_relative_paths_resolve_against_the_folder_containing_data(tmp_path):
    root = tmp_path / "proj"
    _clip(root / "data" / "motions" / "a.pkl")
    _clip(root / "data" / "datasets" / "b.pkl")  # relative to the yaml's own folder
    y = root / "data" / "datasets" / "set.yaml"
    y.write_text(
        "motions:\n"
        "  - file: data/motions/a.pkl\n    weight: 2\n"
        "  - file: b.pkl\n"
        f"  - file: {root / 'data' / 'motions' / 'a.pkl'}\n    weight: 0.5\n"
    )
    got = read_dataset_yaml(y)
    assert [(p.name, w) for p, w in got] == [("a.pkl", 2.0), ("b.pkl", 1.0), ("a.pkl", 0.5)]
    assert all(p.is_file() for p, _ in got)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("clips: []\n", r"top-level 'motions' list"),
        ("motions: []\n", r"non-empty list"),
        ("motions:\n  - weight: 1\n", r"motions\[0\] needs a 'file' key"),
        ("motions:\n  - file: a.pkl\n    weight: -1\n", r"motions\[0\] weight is -1.0"),
        ("motions:\n  - file: a.pkl\n    weight: x\n", r"weight 'x' is not a number"),
        ("motions:\n  - file: a.pkl\n    weight: 0\n", r"all weights are 0"),
        ("motions: [\n", r"invalid YAML"),
    ],
)
def test_bad_dataset_yaml(tmp_path, text, pattern):
    y = tmp_path / "d.yaml"
    y.write_text(text)
    with pytest.raises(MotionFormatError, match=pattern):
        read_dataset_yaml(y)


def test_missing_clip_in_dataset_names_it(tmp_path):
    y = tmp_path / "d.yaml"
    y.write_text("motions:\n  - file: data/motions/nope.pkl\n")
    with pytest.raises(MotionFormatError, match=r"d.yaml: lists .*nope.pkl, which does not exist"):
        load_motion_set(y)


def test_folder_expansion_skips_non_clip_txt(tmp_path):
    _clip(tmp_path / "x" / "a.pkl")
    (tmp_path / "x" / "LICENSE.txt").write_text("Apache License\n")
    (tmp_path / "x" / "deep" / "c.txt").parent.mkdir()
    (tmp_path / "x" / "deep" / "c.txt").write_text('{"Loop": "wrap", "Frames": []}')
    got = [p.relative_to(tmp_path / "x").as_posix() for p, _ in expand_motion_paths(tmp_path / "x")]
    assert got == ["a.pkl", "deep/c.txt"]
    with pytest.raises(MotionFormatError, match="no such file or folder"):
        expand_motion_paths(tmp_path / "missing")
