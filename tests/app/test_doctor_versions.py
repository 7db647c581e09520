"""`mimic doctor` suggests only package versions that pyproject.toml accepts (issue 13: it suggested older ones)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")


def _pyproject_mins() -> dict:
    proj = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(proj["dependencies"]) + [r for rs in proj["optional-dependencies"].values() for r in rs]
    out = {}
    for r in reqs:
        m = re.match(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", r)
        if m:
            out[m.group(1).lower().replace("_", "-")] = tuple(int(x) for x in m.group(2).split("."))
    return out


def test_doctor_pip_suggestions_meet_pyproject():
    text = (REPO / "mimictools" / "app" / "doctor.py").read_text(encoding="utf-8")
    mins = _pyproject_mins()
    found = re.findall(r"'([A-Za-z0-9_.-]+)>=([0-9.]+)'", text)
    assert found, "no versioned pip suggestion found in doctor.py"
    for name, ver in found:
        key = name.lower().replace("_", "-")
        if key in mins:
            assert tuple(int(x) for x in ver.split(".")) >= mins[key], (
                f"doctor suggests {name}>={ver}, pyproject needs >={mins[key]}"
            )
