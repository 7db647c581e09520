"""Issue 12, untrusted files: every crafted input ends in one line of our own error, in bounded memory.

The files come from ``crafted.py`` (one or more per class: pickle state/amplification/recursion, FIFOs
and devices, BVH headers, MJCF numbers and nesting, JSON recursion, YAML alias bombs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import crafted
import pytest

from mimictools.errors import MimicToolsError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    return crafted.crafted_files(folder) + crafted.special_files(folder)


def _names():
    return list(crafted.pickles()) + list(crafted.texts())


@pytest.mark.parametrize("name", _names())
def test_crafted_file_ends_in_one_line_of_our_error(files, name):
    (entry,) = [f for f in files if f[0] == name]
    _, path, kind = entry
    with pytest.raises(MimicToolsError) as exc:
        crafted.loaders()[kind](path)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 600, msg[:1000]
    assert path.name in msg
    assert "MemoryError" not in msg and "RecursionError" not in msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifos_and_devices_are_refused_without_reading(files):
    special = [f for f in files if f[0].startswith(("fifo_", "dev_zero_"))]
    assert len(special) >= 5
    for name, path, kind in special:
        with pytest.raises(MimicToolsError, match="not a regular file") as exc:
            crafted.loaders()[kind](path)
        assert path.name in str(exc.value), name


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the memory limit")
def test_crafted_files_stay_under_1_gib(tmp_path):
    """Each file loads in a subprocess capped at (its size + 1 GiB) of address space; every outcome is
    our error and the peak RSS grows by < 1 GiB over the whole set."""
    env = dict(
        os.environ,
        MALLOC_ARENA_MAX="2",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, str(HERE / "memcheck.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(_names())
    bad = [r for r in rows if r["outcome"] != "our_error" or "MemoryError" in r["msg"]]
    assert not bad, bad
    assert max(r["rss_growth"] for r in rows) < (1 << 30)


def test_mapping_yaml_alias_bomb_and_fifo(tmp_path):
    from mimictools.motion.retarget.mapping import load_mapping

    bomb = crafted.texts()["yaml_alias_bomb_env"][1].replace(
        "env_name: *b8", "bodies: {pelvis: {source: *b8}}"
    )
    p = tmp_path / "map.yaml"
    p.write_text(bomb)
    with pytest.raises(MimicToolsError) as exc:
        load_mapping(p)
    assert p.name in str(exc.value) and len(str(exc.value)) < 600
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "map_fifo.yaml"
        os.mkfifo(str(fifo))
        with pytest.raises(MimicToolsError, match="FIFO"):
            load_mapping(fifo)


def test_messages_are_capped_and_one_line():
    from mimictools.errors import MAX_MESSAGE_CHARS, MotionFormatError

    msg = str(MotionFormatError("f.pkl: " + "x" * 10_000 + "\nsecond line"))
    assert len(msg) == MAX_MESSAGE_CHARS and msg.endswith("...") and "\n" not in msg
    assert str(MotionFormatError("a\nb")) == "a b"
