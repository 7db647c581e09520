"""io_util: atomic writes (orphaned temps after SIGKILL are cleaned, disk full is one line, the umask is
respected), the run-folder lock, and safe reads of untrusted paths."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mimictools import io_util
from mimictools.errors import MimicToolsError, OutputError

REPO = Path(__file__).resolve().parents[2]

_WRITER = """
import sys, time
from mimictools.io_util import atomic_open
with atomic_open(sys.argv[1], "wb") as f:
    f.write(b"x" * 1000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def _temps(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(io_util.TEMP_SUFFIX))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_writer_leaves_a_temp_that_the_next_write_removes(tmp_path):
    target = tmp_path / "latest.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        orphans = _temps(tmp_path)
        assert len(orphans) == 1 and orphans[0].startswith(f".latest.pt.{proc.pid}.")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _temps(tmp_path) == orphans and not target.exists()  # SIGKILL runs no cleanup
    # a temp of a live process (this one) and foreign files are never touched
    live = tmp_path / f".other.{os.getpid()}.{'0' * 16}.tmp"
    live.write_bytes(b"")
    (tmp_path / ".notes.tmp").write_bytes(b"")
    io_util.atomic_write_text(target, "ok")
    assert target.read_text() == "ok"
    assert _temps(tmp_path) == sorted([live.name, ".notes.tmp"])
    # the sweep at run start removes dead writers' temps of any target
    dead = tmp_path / f".iter_5.pt.{proc.pid}.{'a' * 16}.tmp"
    dead.write_bytes(b"")
    assert io_util.remove_stale_temps(tmp_path) == 1 and not dead.exists()


def test_disk_full_is_one_line_and_leaves_no_temp(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_util.os, "fsync", full)
    with pytest.raises(OutputError, match="the disk is full") as exc:
        io_util.atomic_write_text(tmp_path / "log.txt", "row\n")
    assert str(tmp_path / "log.txt") in str(exc.value) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_write_into_a_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        io_util.atomic_write_text(tmp_path / "f" / "x.txt", "")


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        io_util.atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode


def test_run_dir_lock_refuses_a_second_holder_naming_the_pid(tmp_path):
    code = (
        "import sys, time\nfrom mimictools.io_util import run_dir_lock\n"
        "with run_dir_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "run")], stdout=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(OutputError, match=f"in use by another process \\(PID {proc.pid}\\)"):
            with io_util.run_dir_lock(tmp_path / "run"):
                pass
        proc.kill()
        proc.wait(timeout=30)
        with io_util.run_dir_lock(tmp_path / "run"):  # the lock died with its holder (SIGKILL too)
            assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_dir_lock_on_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        with io_util.run_dir_lock(tmp_path / "file"):
            pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_read_input_refuses_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(str(fifo))
    t = time.monotonic()
    with pytest.raises(MimicToolsError, match="FIFO"):
        io_util.read_input_bytes(fifo)
    assert time.monotonic() - t < 30  # would block forever (a sanity bound, not a timing claim)


def test_input_size_limit_and_override(tmp_path, monkeypatch):
    p = tmp_path / "big.bin"
    p.write_bytes(b"x" * 2000)
    monkeypatch.setenv("MIMIC_MAX_INPUT_BYTES", "1000")
    with pytest.raises(MimicToolsError, match="above the input limit of 1,000.*MIMIC_MAX_INPUT_BYTES"):
        io_util.read_input_bytes(p)
    monkeypatch.setenv("MIMIC_MAX_INPUT_BYTES", "5000")
    assert len(io_util.read_input_bytes(p)) == 2000


def test_cells_limit_and_override(monkeypatch):
    io_util.check_cells(1000, 34, "clip")
    monkeypatch.setenv("MIMIC_MAX_CELLS", "100")
    with pytest.raises(
        MimicToolsError, match="clip: frames x columns = 10 x 34 = 340 numbers.*MIMIC_MAX_CELLS"
    ):
        io_util.check_cells(10, 34, "clip")
    monkeypatch.setenv("MIMIC_MAX_CELLS", "-3")
    with pytest.raises(MimicToolsError, match="MIMIC_MAX_CELLS"):
        io_util.max_cells()


def test_short_repr_is_bounded_for_alias_bombs():
    a = ["x"] * 9
    for _ in range(9):
        a = [a] * 9  # 9**10 leaves: repr() would take gigabytes
    deep = []
    for _ in range(100000):
        deep = [deep]
    assert len(io_util.short_repr(a)) <= 100 and len(io_util.short_repr(deep)) <= 100


def test_rename_onto_a_folder_is_one_line(tmp_path):
    (tmp_path / "latest.pt").mkdir()
    with pytest.raises(OutputError, match="latest.pt: cannot write"):
        io_util.atomic_write_text(tmp_path / "latest.pt", "x")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(io_util.TEMP_SUFFIX)]
