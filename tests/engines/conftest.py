"""Fixtures for the engine tests: the characters, the engines under contract, reference states.

To put another engine under the contract suite, add one line to ``ENGINES`` (name, torch device, marks).
An engine whose package is missing is skipped with the registry's install hint.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import torch

from mimictools.character.mjcf import load_character
from mimictools.character.model import Character
from mimictools.engines.base import EngineSpec
from mimictools.errors import EngineError, NotSupportedError

# pytest.param((engine name, device of the tensors it returns), marks=..., id=name)
ENGINES = [
    pytest.param(("mujoco", "cpu"), id="mujoco"),
    pytest.param(("mjwarp", "cpu"), id="mjwarp-cpu"),  # MuJoCo Warp on Warp's CPU device (runs in CI)
    pytest.param(("mjwarp", "cuda"), marks=pytest.mark.gpu, id="mjwarp"),
    # Isaac Gym: GPU pipeline; skipped with this reason where isaacgym is not installed (docs/isaacgym.md).
    pytest.param(
        ("isaacgym", "cuda"),
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(find_spec("isaacgym") is None, reason="isaacgym not importable"),
        ],
        id="isaacgym",
    ),
]


@pytest.fixture(scope="session", params=["mimickit", "bundled"])
def character(request: pytest.FixtureRequest, shared_dir: Path, repo_dir: Path) -> Character:
    """The characters every engine must handle: MimicKit's humanoid.xml and our data/humanoid.xml."""
    if request.param == "mimickit":
        return load_character(shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml")
    path = repo_dir / "data" / "humanoid.xml"
    if not path.is_file():
        pytest.skip(f"bundled humanoid not found at {path}")
    return load_character(path)


@pytest.fixture(params=ENGINES)
def engine_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., object]]:
    """``make(character, num_envs, **spec_fields)`` -> engine of the parametrised kind; closed after the test."""
    from mimictools.engines.registry import make_engine

    name, device = request.param
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"engine {name!r} needs a CUDA GPU")
    made: List[object] = []

    def make(character: Character, num_envs: int, **fields: object) -> object:
        spec = EngineSpec(num_envs=num_envs, device=device, **fields)  # type: ignore[arg-type]
        try:
            engine = make_engine(name, character, spec)
        except (EngineError, NotSupportedError) as exc:
            pytest.skip(str(exc))
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()  # type: ignore[attr-defined]
