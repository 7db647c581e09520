"""Shared fixtures: where the reference data lives, and skip-with-reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mimictools.engines.isaacgym_preload import preload_isaacgym

# Isaac Gym refuses to load after torch: import it before any test module imports torch (a no-op where
# isaacgym is not installed). See docs/isaacgym.md.
preload_isaacgym()

REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path:
    """``$MIMIC_SHARED`` or ``<repo>/../shared`` (read-only reference data, see docs/testing.md)."""
    env = os.environ.get("MIMIC_SHARED")
    return Path(env) if env else (REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = find_shared_dir()
    if not (d / "mimickit").is_dir():
        pytest.skip(
            f"reference data not found at {d} (set MIMIC_SHARED to the shared/ folder to run this test)"
        )
    return d


@pytest.fixture(scope="session")
def robots(shared_dir: Path) -> Path:
    """``<shared>/robots`` (the Unitree G1 model and clips, ../shared/robots/ROBOTS.md); skips without it."""
    d = shared_dir / "robots"
    for f in ("g1.xml", "scene_mjx.xml"):
        if not (d / "unitree_g1" / f).is_file():
            pytest.skip(f"{d} has no unitree_g1/{f} (shared robot data)")
    return d


@pytest.fixture(scope="session")
def g1_xml(robots: Path) -> Path:
    """The Menagerie G1 MJCF with its meshes (``<shared>/robots/unitree_g1/g1.xml``)."""
    return robots / "unitree_g1" / "g1.xml"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def humanoid_xml(shared_dir: Path) -> Path:
    """MimicKit's humanoid MJCF (from the shared reference data)."""
    return shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml"


@pytest.fixture(scope="session")
def humanoid(humanoid_xml: Path):
    """MimicKit's humanoid as a Character."""
    from mimictools.character.mjcf import load_character

    return load_character(humanoid_xml)


@pytest.fixture(scope="session")
def train_no_probe():
    """``train_no_probe(*args)``: `mimic train --no-progress *args` in-process (CliRunner), without the start-up
    stability probe; returns the CliRunner result. For runs of the bundled demo whose subject is not the probe:
    the probe of the demo (16 envs x 150 control steps at 240 Hz, ~3 CPU-s, the same every time) is checked by
    tests/cli/test_train_cli.py::test_unstable_physics_is_warned_about and tests/app/test_stability.py."""
    from typer.testing import CliRunner

    import mimictools.cli.train as train_cli
    from mimictools.cli.app import app

    def run(*args: str):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(train_cli, "_warn_if_unstable", lambda cfg, spec: None)
            return CliRunner().invoke(app, ["train", "--no-progress", *args])

    return run


@pytest.fixture(scope="session")
def tiny_demo_run(tmp_path_factory, train_no_probe) -> Path:
    """The bundled demo (our humanoid, squat clip, CPU MuJoCo) trained for 256 samples on 4 envs: one run folder
    for the session, shared by the tests that need a trained run. Read-only: a test that writes into a run
    (``--resume``) copies it first."""
    run_dir = tmp_path_factory.mktemp("demo_run") / "tiny"
    res = train_no_probe(
        "--max-samples", "256", "--num-envs", "4", "--out-dir", str(run_dir), "--threads", "1",
        "--set", "test_episodes=4",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (run_dir / "latest.pt").is_file()
    return run_dir


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's addopts): one pytest-xdist worker per core this process may run on (its affinity
    mask: ``mimictools.system.available_cpus``), not psutil's count of the machine's cores. ``-n 0`` runs serially
    (a debugger, ``--pdb``); docs/testing.md."""
    from mimictools.system import available_cpus

    return available_cpus()


def pytest_configure(config):
    """One torch thread (in each xdist worker too): CI has 2 cores and the MuJoCo engine's worker threads; OpenMP
    spinning against them made CPU tests ~10x slower (measured: toy PPO test 97 s with 2 threads vs 2 s)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
