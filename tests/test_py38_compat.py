"""The core must stay importable on Python 3.8 (the only Python Isaac Gym has). See DESIGN.md.

Two independent checks over every core module (all of `mimictools/` except the MuJoCo/MJWarp engine
modules, which need the Python those packages require):
1. the file parses with Python 3.8's grammar (`ast.parse(feature_version=(3, 8))`) and starts with
   `from __future__ import annotations` (so PEP 585/604 annotations are never evaluated);
2. `vermin` (a static minimum-version analyser) finds no construct or stdlib API newer than 3.8.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mimictools"
# Engine modules bound to packages that need newer Pythons (mujoco >= 3.9, mujoco-warp >= 3.10).
NOT_CORE = {"engines/mujoco.py", "engines/mjwarp.py", "engines/mjcf_build.py"}


def core_files() -> list:
    files = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).as_posix()
        if rel not in NOT_CORE:
            files.append(p)
    return files


def test_core_files_found():
    names = {p.relative_to(PKG).as_posix() for p in core_files()}
    assert "math/rotations.py" in names and "engines/base.py" in names
    assert not names & NOT_CORE


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(PKG).as_posix())
def test_parses_as_python38_with_future_annotations(path):
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src, filename=str(path), feature_version=(3, 8))
    body = [
        n
        for n in tree.body
        if not (isinstance(n, ast.Expr) and isinstance(getattr(n, "value", None), ast.Constant))
    ]
    if not body:
        return  # docstring-only module
    futures = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert any(a.name == "annotations" for n in futures for a in n.names), (
        f"{path}: add `from __future__ import annotations` (core modules must import on Python 3.8)"
    )


def test_vermin_finds_nothing_newer_than_38():
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).exists():
        pytest.skip("vermin not installed (pip install -e '.[test]')")
    files = [str(p) for p in core_files()]
    proc = subprocess.run(
        [vermin, "-t=3.8-", "--violations", "--no-tips", "--no-parse-comments", *files],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"constructs newer than Python 3.8:\n{proc.stdout}\n{proc.stderr}"


def test_cli_import_is_light():
    """`mimic --help` must stay fast: importing the CLI must not import torch, mujoco or warp."""
    code = (
        "import sys, mimictools.cli.app; "
        "heavy = [m for m in ('torch', 'mujoco', 'warp', 'mujoco_warp', 'isaacgym', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"mimictools.cli.app imported heavy modules at import time: {out}"
