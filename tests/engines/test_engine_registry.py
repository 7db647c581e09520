"""Engine registry: lazy imports, clear errors for unknown names and missing packages."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from mimictools.engines import registry
from mimictools.engines.base import EngineSpec
from mimictools.errors import EngineError, NotSupportedError


def test_names():
    assert registry.engine_names() == ("mujoco", "mjwarp", "isaacgym")


def test_unknown_engine_lists_valid_ones():
    with pytest.raises(EngineError, match="unknown engine 'physx'.*mujoco, mjwarp, isaacgym"):
        registry.make_engine("physx", None, EngineSpec(num_envs=1))  # type: ignore[arg-type]


def test_importing_the_registry_imports_no_engine():
    code = (
        "import sys, mimictools.engines.registry; "
        "print(','.join(m for m in ('mujoco', 'warp', 'mujoco_warp', 'isaacgym', 'mimictools.engines.mujoco') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_make_mujoco(humanoid):
    eng = registry.make_engine("mujoco", humanoid, EngineSpec(num_envs=2))
    try:
        assert type(eng).__name__ == "MuJoCoEngine" and eng.num_envs == 2
    finally:
        eng.close()
    assert registry.is_available("mujoco")


def _fake_import(missing: str, module_missing: bool = False):
    real = importlib.import_module

    def fake(name: str, *args, **kwargs):
        if name.startswith("mimictools.engines.") and name != "mimictools.engines.registry":
            raise ModuleNotFoundError(
                f"No module named {missing!r}", name=name if module_missing else missing
            )
        return real(name, *args, **kwargs)

    return fake


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(registry.importlib, "import_module", _fake_import("mujoco_warp"))
    with pytest.raises(
        EngineError, match=r"'mjwarp' is unavailable.*mujoco_warp.*pip install 'mimictools\[gpu\]'"
    ):
        registry.engine_class("mjwarp")
    assert not registry.is_available("mjwarp")


def test_engine_module_not_built(monkeypatch):
    monkeypatch.setattr(registry.importlib, "import_module", _fake_import("", module_missing=True))
    with pytest.raises(NotSupportedError, match="'isaacgym' is not built yet"):
        registry.engine_class("isaacgym")


def test_unrelated_import_errors_propagate(monkeypatch):
    monkeypatch.setattr(registry.importlib, "import_module", _fake_import("scipy"))
    with pytest.raises(ModuleNotFoundError):
        registry.engine_class("mujoco")
