"""nox sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s fuzz`.

`pip install torch==2.13.0` from PyPI is the CUDA build on Linux (GBs of nvidia-* wheels); on a CPU-only machine
set MIMIC_TORCH_INDEX=https://download.pytorch.org/whl/cpu and the sessions install PyTorch's CPU wheel from there.
nox itself comes with the `test` extra (`pip install -e ".[test]"`).
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
TORCH = "torch==2.13.0"


def _install_torch(session: nox.Session) -> None:
    index = os.environ.get("MIMIC_TORCH_INDEX")
    session.install(TORCH, *(["--index-url", index] if index else []))


@nox.session
def tests(session: nox.Session) -> None:
    _install_torch(session)
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "mimictools", "tests", "scripts")
    session.run("ruff", "format", "--check", "mimictools", "tests", "scripts")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the typed core, and the Isaac Gym adapter against (repaired) isaacgym-stubs."""
    _install_torch(session)
    session.install("-e", ".[test]", "isaacgym-stubs")
    session.run(
        "mypy",
        "--ignore-missing-imports",
        "mimictools/math",
        "mimictools/errors.py",
        "mimictools/engines/base.py",
        "mimictools/character/model.py",
    )
    # The published isaacgym-stubs have syntax errors; this harness repairs a temp copy and runs mypy.
    session.run("python", "tests/engines/test_isaacgym_static.py")


@nox.session
def fuzz(session: nox.Session) -> None:
    """Mutation-fuzz the pkl, txt, BVH, MJCF and YAML loaders: >= 20 K cases each (about 10 min on 2 cores).

    `nox -s fuzz -- --cases 100000 --seed 3` passes options on; findings are saved under fuzz-findings/.
    """
    session.install(TORCH)
    session.install("-e", ".[test]")
    session.run("python", "tests/robustness/fuzz.py", *(session.posargs or ["--cases", "20000"]))
