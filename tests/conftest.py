"""Shared fixtures: where the reference data lives, and skip-with-reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path:
    """``$MIMIC_SHARED`` or ``<repo>/../shared`` (read-only reference data, see docs/testing.md)."""
    env = os.environ.get("MIMIC_SHARED")
    return Path(env) if env else (REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = find_shared_dir()
    if not (d / "mimickit").is_dir():
        pytest.skip(f"reference data not found at {d} (set MIMIC_SHARED to the shared/ folder to run this test)")
    return d


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO
