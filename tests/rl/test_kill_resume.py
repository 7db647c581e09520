"""Kill a training process at random moments, resume it, and compare with a run that was never interrupted.

SIGKILL (no chance to save): every resume restarts from the last output checkpoint, so the final log is the
uninterrupted run's, row for row (Wall_Time aside), and no temp file of an atomic write is left behind.
SIGINT / SIGTERM (saved on the way out, mid-episode): the resumed run is not bit-identical, but the log is
complete: every output iteration once, in order. The toy point-mass env keeps each process short.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mimictools.eval.logs import read_log

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ITERS = 24
SCRIPT = f"""
import sys, torch
sys.path.insert(0, {str(HERE)!r})
torch.set_num_threads(1)
from conftest import PointMassEnv, toy_agent_config
from mimictools.rl.runner import Runner

out = sys.argv[1]
cfg = toy_agent_config(steps_per_iter=8, iters_per_output=3, test_episodes=8)
runner = Runner(PointMassEnv(8, episode_steps=12), cfg, out, seed=3, tensorboard=False)
resume = (runner.out_dir / "latest.pt").exists()
print("ready", flush=True)
result = runner.train(max_samples=8 * 8 * {ITERS}, resume=resume)
sys.exit(0 if result.stop_reason == "max_samples" else 3)
"""


def _start(script: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[1])] + sys.path))
    return subprocess.Popen(
        [sys.executable, str(script), str(out)], env=env, stdout=subprocess.PIPE, text=True
    )


def _run_to_completion(
    script: Path, out: Path, sig=None, rng=None, run_s: float = 1.0, max_kills: int = 6
) -> int:
    """Run until the training finishes; ``sig``: send it to each of the first ``max_kills`` processes after a
    random delay within the time an uninterrupted run trains (``run_s``, measured: machines differ a lot).
    Returns how many processes were interrupted."""
    kills = 0
    for _ in range(40):
        proc = _start(script, out)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"  # imports done
        if sig is not None and kills < max_kills:
            time.sleep(rng.uniform(0.02, 0.8) * run_s)
            if proc.poll() is None:
                proc.send_signal(sig)
                kills += 1
        code = proc.wait(timeout=300)
        if code == 0:
            return kills
        assert code in (-signal.SIGKILL, -signal.SIGTERM, 3, 130, -signal.SIGINT), f"exit code {code}"
    raise AssertionError("training never completed")


def _leftovers(out: Path):
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    script = root / "train_toy.py"
    script.write_text(SCRIPT)
    out = root / "uninterrupted"
    proc = _start(script, out)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    assert proc.wait(timeout=300) == 0
    return script, read_log(out / "log.txt"), time.monotonic() - t0  # the training part of a run (s)


def _same_rows(a, b) -> None:
    assert a["Iteration"].tolist() == b["Iteration"].tolist()
    for col in a:
        if col != "Wall_Time":
            assert a[col].tolist() == b[col].tolist(), col


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_log(reference, tmp_path):
    script, ref, run_s = reference
    out = tmp_path / "killed"
    kills = _run_to_completion(script, out, signal.SIGKILL, random.Random(0), run_s)
    assert kills >= 1
    _same_rows(read_log(out / "log.txt"), ref)
    assert not [n for n in _leftovers(out) if n != ".lock"], _leftovers(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_at_random_moments_leave_a_complete_log(reference, tmp_path, sig):
    script, ref, run_s = reference
    out = tmp_path / "stopped"
    kills = _run_to_completion(script, out, sig, random.Random(1), run_s)
    assert kills >= 1
    log = read_log(out / "log.txt")
    assert log["Iteration"].tolist() == ref["Iteration"].tolist()  # every output row once, in order
    assert not [n for n in _leftovers(out) if n != ".lock"], _leftovers(out)
