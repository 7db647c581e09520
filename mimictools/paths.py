"""Where the files bundled with mimictools live (the repository's ``data/`` folder)."""

from __future__ import annotations

from pathlib import Path

import mimictools
from mimictools.errors import MimicToolsError

__all__ = ["bundled_data_dir", "bundled_humanoid_xml"]


def bundled_data_dir() -> Path:
    """The bundled ``data/`` folder (our own humanoid MJCF, demo clips and configs).

    An installed wheel carries it inside the package (``mimictools/_bundled/data``, copied there by the build
    hook in ``setup.py``); a source checkout (``pip install -e .``) has it next to the package. Its parent is
    the data root that the demo configs' ``data/...`` paths resolve against. Raises ``MimicToolsError`` when
    neither exists.
    """
    pkg = Path(mimictools.__file__).resolve().parent
    candidates = (pkg / "_bundled" / "data", pkg.parent / "data")
    for d in candidates:
        if (d / "humanoid.xml").is_file():
            return d
    raise MimicToolsError(
        f"bundled data folder not found (looked in {candidates[0]} and {candidates[1]}); reinstall mimictools "
        "(pip install mimictools, or pip install -e . in a source checkout) or pass the file explicitly "
        "(e.g. --char path/to/humanoid.xml)"
    )


def bundled_humanoid_xml() -> Path:
    """Path of our own MJCF humanoid (``data/humanoid.xml``), MimicKit-compatible DoF layout."""
    p = bundled_data_dir() / "humanoid.xml"
    if not p.is_file():
        raise MimicToolsError(f"bundled humanoid not found at {p}; pass --char path/to/humanoid.xml")
    return p
