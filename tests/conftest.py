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


def pytest_configure(config):
    """One torch thread: CI has 2 cores and the MuJoCo engine's worker threads; OpenMP spinning
    against them made CPU tests ~10x slower (measured: toy PPO test 97 s with 2 threads vs 2 s)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
