"""Where the files bundled with mimictools live (the repository's ``data/`` folder)."""

from __future__ import annotations

from pathlib import Path

import mimictools
from mimictools.errors import MimicToolsError

__all__ = ["bundled_data_dir", "bundled_humanoid_xml"]


def bundled_data_dir() -> Path:
    """The ``data/`` folder next to the ``mimictools`` package (our own humanoid MJCF, ...).

    Raises ``MimicToolsError`` when it is missing (e.g. a wheel built without the data files).
    """
    d = Path(mimictools.__file__).resolve().parents[1] / "data"
    if not d.is_dir():
        raise MimicToolsError(
            f"bundled data folder not found at {d}; reinstall mimictools from a source checkout "
            "(pip install -e .) or pass the file explicitly (e.g. --char path/to/humanoid.xml)"
        )
    return d


def bundled_humanoid_xml() -> Path:
    """Path of our own MJCF humanoid (``data/humanoid.xml``), MimicKit-compatible DoF layout."""
    p = bundled_data_dir() / "humanoid.xml"
    if not p.is_file():
        raise MimicToolsError(f"bundled humanoid not found at {p}; pass --char path/to/humanoid.xml")
    return p
