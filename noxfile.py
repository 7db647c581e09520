"""nox sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s fuzz`.

Install the pinned CPU torch first (`pip install torch==2.13.0`): an unpinned torch pulls CUDA wheels.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
TORCH = "torch==2.13.0"


@nox.session
def tests(session: nox.Session) -> None:
    session.install(TORCH)
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
    session.install(TORCH)
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
