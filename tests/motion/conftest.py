"""Fixtures for motion tests: MimicKit's humanoid and the reference clip folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mk_dir(shared_dir: Path) -> Path:
    """``shared/mimickit`` (the folder that contains ``data/``)."""
    return shared_dir / "mimickit"


@pytest.fixture(scope="session")
def mk_motions(mk_dir: Path) -> Path:
    return mk_dir / "data" / "motions" / "humanoid"


@pytest.fixture(scope="session")
def dm_motions(shared_dir: Path) -> Path:
    return shared_dir / "deepmimic" / "motions"


@pytest.fixture(scope="session")
def humanoid(mk_dir: Path):
    """MimicKit's humanoid.xml (radians) as a Character."""
    from mimictools.character.mjcf import load_character

    return load_character(mk_dir / "data" / "assets" / "humanoid" / "humanoid.xml")
