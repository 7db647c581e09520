"""`mimictools.app.doctor` checks against faked machines: stub executables in a fake bin dir, fake /proc files under
a fake root, env vars, fake Python packages on PYTHONPATH and module names that do not exist. The checks run for
real (subprocesses, file reads); nothing in them is mocked."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from mimictools.app import doctor
from mimictools.app.doctor import ENGINES, STATUSES, CheckResult, Env
from mimictools.errors import ConfigError

MISSING = "mimic_doctor_no_such_module_3f9a"


class FakeMachine:
    """A fake machine under ``tmp_path``: ``bin/`` (the whole PATH), ``root/`` (the file system the checks
    read) and ``pkgs/`` (PYTHONPATH of the probed interpreter)."""

    def __init__(self, tmp_path: Path):
        self.bin = tmp_path / "bin"
        self.root = tmp_path / "root"
        self.pkgs = tmp_path / "pkgs"
        for d in (self.bin, self.root, self.pkgs):
            d.mkdir()
        self.environ = {"PATH": str(self.bin), "PYTHONPATH": str(self.pkgs)}
        self.modules = {k: MISSING for k in doctor.DEFAULT_MODULES}
        self.python_version = (3, 8, 10)
        self.include = "/usr/include/python3.8"
        self.libdir = "/usr/lib"

    def exe(self, name: str, script: str) -> Path:
        """A stub executable ``name`` on PATH running the sh ``script``."""
        p = self.bin / name
        p.write_text("#!/bin/sh\n" + textwrap.dedent(script))
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return p

    def file(self, path: str, text: str = "") -> Path:
        """Machine file ``path`` (absolute) under the fake root."""
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def package(self, name: str, files: dict) -> None:
        """A fake importable package ``name`` with ``files`` {relative name: source}."""
        d = self.pkgs / name
        d.mkdir()
        for rel, src in files.items():
            (d / rel).write_text(textwrap.dedent(src))

    def env(self, **changes) -> Env:
        e = Env(
            environ=dict(self.environ),
            python=sys.executable,
            python_version=self.python_version,
            python_include=self.include,
            python_libdir=self.libdir,
            root=str(self.root),
            modules=dict(self.modules),
            timeout_s=60.0,
        )
        return dataclasses.replace(e, **changes) if changes else e


@pytest.fixture
def fm(tmp_path) -> FakeMachine:
    return FakeMachine(tmp_path)


TWO_GPUS = """
echo "0, NVIDIA H100 80GB HBM3, 550.54.15, 81559, 40000"
echo "1, NVIDIA H100 80GB HBM3, 550.54.15, 81559, 3"
"""


def _check_record(r: CheckResult) -> None:
    assert r.status in STATUSES
    if r.status == "fail":
        assert r.fix, f"{r.name}: a failing check must say how to fix it"
    if r.blocks:
        assert set(r.blocks) <= set(ENGINES)


# ---- Python version ---------------------------------------------------------------------------------------
def test_python_version_per_engine(fm):
    py38 = fm.env()
    assert doctor.check_python(py38, "isaacgym").status == "ok"
    assert doctor.check_python(py38, "mujoco").status == "ok"
    r = doctor.check_python(py38, "mjwarp")
    assert r.status == "fail" and r.blocks == ("mjwarp",) and "3.10" in r.detail

    py311 = fm.env(python_version=(3, 11, 7))
    r = doctor.check_python(py311, "isaacgym")
    assert r.status == "fail" and r.blocks == ("isaacgym",)
    assert "3.6 to 3.8" in r.detail and "python=3.8" in r.fix
    assert doctor.check_python(py311, "mjwarp").status == "ok"
    py39 = fm.env(python_version=(3, 9, 0))
    assert doctor.check_python(py39, "isaacgym").status == "fail"  # the upper bound is exclusive


# ---- GPU / driver / CUDA_VISIBLE_DEVICES ------------------------------------------------------------------
def test_gpu_listed_by_nvidia_smi(fm):
    fm.exe("nvidia-smi", TWO_GPUS)
    r = doctor.check_gpu(fm.env(), ENGINES)
    assert r.status == "ok"
    assert "550.54.15" in r.detail and "2 GPU(s)" in r.detail and "1: NVIDIA H100" in r.detail


def test_no_gpu_fails_isaacgym_warns_mjwarp_skips_mujoco(fm):
    env = fm.env()
    r = doctor.check_gpu(env, ("isaacgym",))
    assert r.status == "fail" and r.blocks == ("isaacgym",) and "no NVIDIA GPU" in r.detail and r.fix
    assert doctor.check_gpu(env, ("mjwarp",)).status == "warn"
    assert doctor.check_gpu(env, ("mujoco",)).status == "skip"


def test_driver_loaded_but_no_nvidia_smi(fm):
    fm.file(
        "/proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n",
    )
    r = doctor.check_gpu(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "535.104.05" in r.detail and "not on PATH" in r.detail


def test_nvidia_smi_that_fails_is_reported_with_its_message(fm):
    fm.exe(
        "nvidia-smi",
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\nexit 9\n',
    )
    r = doctor.check_gpu(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "couldn't communicate" in r.detail


def test_cuda_visible_devices(fm):
    fm.exe("nvidia-smi", TWO_GPUS)
    r = doctor.check_cuda_visible_devices(fm.env(), ("isaacgym",))
    # GPU 0 has 40 GB in use: the fix must pick GPU 1.
    assert (
        r.status == "warn"
        and "2 GPUs" in r.detail
        and r.fix.endswith("CUDA_VISIBLE_DEVICES=1   # the least-used GPU now")
    )

    fm.environ.update(CUDA_VISIBLE_DEVICES="1", CUDA_DEVICE_ORDER="PCI_BUS_ID")
    r = doctor.check_cuda_visible_devices(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "cuda:0 is physical GPU 1 (NVIDIA H100" in r.detail

    fm.environ.pop("CUDA_DEVICE_ORDER")
    assert doctor.check_cuda_visible_devices(fm.env(), ("isaacgym",)).status == "warn"

    fm.environ["CUDA_VISIBLE_DEVICES"] = "5"
    r = doctor.check_cuda_visible_devices(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "[0, 1]" in r.detail

    fm.environ["CUDA_VISIBLE_DEVICES"] = ""
    r = doctor.check_cuda_visible_devices(fm.env(), ("mjwarp", "isaacgym"))
    assert r.status == "fail" and "hides every GPU" in r.detail and "unset CUDA_VISIBLE_DEVICES" in r.fix

    assert doctor.check_cuda_visible_devices(fm.env(), ("mujoco",)).status == "skip"


# ---- WSL and libcuda --------------------------------------------------------------------------------------
WSL_VERSION = (
    "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0) #1 SMP\n"
)


def test_not_wsl_is_skipped(fm):
    fm.file("/proc/version", "Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115) #45-Ubuntu SMP\n")
    assert doctor.check_wsl(fm.env(), ENGINES).status == "skip"


def test_wsl_without_lib_dir_on_ld_library_path(fm):
    fm.file("/proc/version", WSL_VERSION)
    fm.file("/usr/lib/wsl/lib/libcuda.so.1")
    r = doctor.check_wsl(fm.env(), ("isaacgym",))
    assert r.status == "fail" and r.blocks == ("isaacgym",)
    assert "export LD_LIBRARY_PATH=/usr/lib/wsl/lib:$LD_LIBRARY_PATH" in r.fix
    assert doctor.check_wsl(fm.env(), ("mujoco",)).status == "warn"

    fm.environ["LD_LIBRARY_PATH"] = "/opt/x:/usr/lib/wsl/lib"
    r = doctor.check_wsl(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "libcuda.so.1" in r.detail


def test_wsl_without_libcuda_at_all(fm):
    fm.file("/proc/version", WSL_VERSION)
    fm.environ["LD_LIBRARY_PATH"] = "/usr/lib/wsl/lib"
    r = doctor.check_wsl(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "missing" in r.detail and "Windows" in r.fix


# ---- libpython --------------------------------------------------------------------------------------------
def test_libpython_in_ldconfig_cache(fm):
    fm.exe(
        "ldconfig",
        'echo "1234 libs found in cache"\n'
        'echo "\tlibpython3.8.so.1.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libpython3.8.so.1.0"\n',
    )
    r = doctor.check_libpython(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "/usr/lib/x86_64-linux-gnu/libpython3.8.so.1.0" in r.detail


def test_libpython_only_in_conda_env_lib(fm):
    fm.exe("ldconfig", 'echo "2 libs found in cache"\n')
    fm.environ["CONDA_PREFIX"] = "/opt/conda/envs/rlgpu"
    fm.file("/opt/conda/envs/rlgpu/lib/libpython3.8.so.1.0")
    env = fm.env(python_libdir="/opt/conda/envs/rlgpu/lib")
    r = doctor.check_libpython(env, ("isaacgym",))
    assert r.status == "fail" and r.blocks == ("isaacgym",)
    assert r.fix.startswith("export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH")

    fm.environ["LD_LIBRARY_PATH"] = "/opt/conda/envs/rlgpu/lib"
    assert doctor.check_libpython(fm.env(), ("isaacgym",)).status == "ok"


def test_libpython_nowhere(fm):
    r = doctor.check_libpython(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "libpython3.8.so.1.0" in r.detail and "conda create" in r.fix
    assert doctor.check_libpython(fm.env(), ("mujoco",)).status == "skip"


# ---- gymtorch build prerequisites -------------------------------------------------------------------------
def test_compiler(fm):
    r = doctor.check_compiler(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "no c++ or g++" in r.detail and "build-essential" in r.fix

    fm.exe("g++", 'echo "g++ (Fake) 9.4.0"\n')
    r = doctor.check_compiler(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "g++ (Fake) 9.4.0" in r.detail

    fm.exe("c++", 'echo "broken toolchain" >&2\nexit 3\n')
    r = doctor.check_compiler(fm.env(), ("isaacgym",))  # c++ is tried first, as torch does
    assert r.status == "fail" and "broken toolchain" in r.detail

    fm.environ["CXX"] = "clang++-nonexistent"
    r = doctor.check_compiler(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "$CXX" in r.detail
    assert doctor.check_compiler(fm.env(), ("mujoco",)).status == "skip"


def test_ninja(fm):
    r = doctor.check_ninja(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "pip install ninja" in r.fix
    fm.exe("ninja", 'echo "1.11.1"\n')
    r = doctor.check_ninja(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "1.11.1" in r.detail


def test_python_headers(fm):
    r = doctor.check_python_headers(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "python3.8-dev" in r.fix
    fm.file("/usr/include/python3.8/Python.h", "/* fake */")
    assert doctor.check_python_headers(fm.env(), ("isaacgym",)).status == "ok"


def test_cuda_home(fm):
    r = doctor.check_cuda_home(fm.env(), ("isaacgym",))
    assert r.status == "warn" and not r.blocks  # gymtorch is C++-only: a missing toolkit never blocks

    fm.file("/usr/local/cuda/bin/nvcc")
    r = doctor.check_cuda_home(fm.env(), ("isaacgym",))
    assert r.status == "warn" and "export CUDA_HOME=/usr/local/cuda" in r.fix

    fm.environ["CUDA_HOME"] = "/opt/cuda-11.8"
    assert doctor.check_cuda_home(fm.env(), ("isaacgym",)).status == "warn"  # set, but no nvcc there
    fm.file("/opt/cuda-11.8/bin/nvcc")
    assert doctor.check_cuda_home(fm.env(), ("isaacgym",)).status == "ok"


# ---- importable packages (fake packages on PYTHONPATH, missing module names) ------------------------------
def test_isaacgym_missing(fm):
    r = doctor.check_isaacgym(fm.env(), ("isaacgym",))
    assert r.status == "fail" and r.blocks == ("isaacgym",) and "developer.nvidia.com/isaac-gym" in r.fix
    r = doctor.check_isaacgym(fm.env(python_version=(3, 11, 7)), ("isaacgym",))
    assert r.status == "fail" and "cannot be on Python 3.11" in r.detail
    assert doctor.check_isaacgym(fm.env(), ("mujoco",)).status == "skip"


def test_isaacgym_installed_but_libpython_missing(fm):
    fm.package(
        "fakegym_broken",
        {
            "__init__.py": "",
            "gymapi.py": 'raise ImportError("libpython3.8.so.1.0: cannot open shared object file: No such file or directory")\n',
        },
    )
    fm.modules["isaacgym"] = "fakegym_broken"
    r = doctor.check_isaacgym(fm.env(), ("isaacgym",))
    assert r.status == "fail" and "libpython3.8.so.1.0: cannot open shared object file" in r.detail
    assert "LD_LIBRARY_PATH=$CONDA_PREFIX/lib" in r.fix


@pytest.mark.parametrize(
    "gymapi_src, fix_part",
    [
        ("import mimic_doctor_missing_dep_7c1\n", "pip install mimic_doctor_missing_dep_7c1"),
        (
            'raise ImportError("PyTorch was imported before isaacgym modules.  Please import torch after isaacgym modules.")\n',
            "import isaacgym before torch",
        ),
        (
            'raise OSError("libcuda.so.1: cannot open shared object file")\n',
            "LD_LIBRARY_PATH=/usr/lib/wsl/lib",
        ),
    ],
)
def test_isaacgym_import_errors_get_their_fix(fm, gymapi_src, fix_part):
    fm.package("fakegym_err", {"__init__.py": "", "gymapi.py": gymapi_src})
    fm.modules["isaacgym"] = "fakegym_err"
    r = doctor.check_isaacgym(fm.env(), ("isaacgym",))
    assert r.status == "fail" and fix_part in r.fix, r


def test_isaacgym_importable(fm):
    fm.package("fakegym_ok", {"__init__.py": "__version__ = '1.0rc4'\n", "gymapi.py": "X = 1\n"})
    fm.modules["isaacgym"] = "fakegym_ok"
    r = doctor.check_isaacgym(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "1.0rc4" in r.detail


def _fake_torch(fm, name: str, cuda, available: bool) -> None:
    fm.package(
        name,
        {
            "__init__.py": f"""
            import types
            __version__ = "2.0.1"
            version = types.SimpleNamespace(cuda={cuda!r})
            class cuda:
                @staticmethod
                def is_available(): return {available!r}
                @staticmethod
                def device_count(): return 1
                @staticmethod
                def get_device_name(i): return "NVIDIA A100-SXM4-40GB"
            """
        },
    )
    fm.modules["torch"] = name


def test_torch(fm):
    r = doctor.check_torch(fm.env(), ENGINES)
    assert r.status == "fail" and set(r.blocks) == set(ENGINES) and "pip install" in r.fix

    _fake_torch(fm, "faketorch_cuda", "11.8", True)
    r = doctor.check_torch(fm.env(), ("isaacgym",))
    assert r.status == "ok" and "2.0.1" in r.detail and "CUDA 11.8" in r.detail and "A100" in r.detail


def test_torch_cpu_build_warns_only_for_gpu_engines(fm):
    _fake_torch(fm, "faketorch_cpu", None, False)
    r = doctor.check_torch(fm.env(), ("isaacgym",))
    assert r.status == "warn" and "CPU-only" in r.detail and "download.pytorch.org/whl/cu" in r.fix
    assert doctor.check_torch(fm.env(), ("mujoco",)).status == "ok"


def test_mujoco_and_mjwarp_missing(fm):
    r = doctor.check_mujoco(fm.env(), ("mujoco",))
    assert r.status == "fail" and set(r.blocks) == {"mujoco", "mjwarp"} and "pip install" in r.fix
    r = doctor.check_mjwarp(fm.env(), ("mjwarp",))
    assert r.status == "fail" and "mujoco_warp not installed" in r.detail and "warp-lang" in r.fix
    assert doctor.check_mjwarp(fm.env(), ("mujoco",)).status == "skip"


def test_render_skipped_without_mujoco(fm):
    assert doctor.check_render(fm.env(), ENGINES).status == "skip"


def test_render_with_an_invalid_mujoco_gl(fm):
    pytest.importorskip("mujoco")
    fm.modules["mujoco"] = "mujoco"
    fm.environ["MUJOCO_GL"] = "notabackend"
    r = doctor.check_render(fm.env(), ENGINES, mujoco_ok=True)
    assert r.status == "warn" and "notabackend" in r.detail and "MUJOCO_GL=egl" in r.fix


# ---- the trial build --------------------------------------------------------------------------------------
def test_build_test_skipped_unless_asked(fm):
    assert doctor.check_build_test(fm.env(), ENGINES, enabled=False).status == "skip"


def test_build_test_without_ninja_fails_with_torchs_message(fm):
    pytest.importorskip("torch")
    env = fm.env(modules=dict(doctor.DEFAULT_MODULES))
    r = doctor.check_build_test(env, ("isaacgym",), enabled=True)
    assert r.status == "fail" and r.blocks == ("isaacgym",)
    assert "Ninja is required" in r.detail and "pip install ninja" in r.fix


def test_build_test_reports_the_compiler_error(fm):
    pytest.importorskip("torch")
    ninja = shutil.which("ninja")
    if ninja is None:
        pytest.skip("ninja not on PATH")
    os.symlink(ninja, fm.bin / "ninja")
    fm.exe(
        "c++",
        """
        if [ "$1" = "--version" ]; then echo "c++ (Fake) 12.2.0"; exit 0; fi
        echo "main.cpp:1:10: fatal error: fake_missing_header.h: No such file or directory" >&2
        exit 1
        """,
    )
    r = doctor.check_build_test(fm.env(), ("isaacgym",), enabled=True)
    assert r.status == "fail" and "fake_missing_header.h: No such file or directory" in r.detail
    assert 'File "' not in r.detail  # traceback frames are dropped, the compiler's words kept


@pytest.mark.slow
def test_build_test_compiles_for_real():
    pytest.importorskip("torch")
    env = doctor.default_env()
    if env.which("ninja") is None or (env.which("c++") is None and env.which("g++") is None):
        pytest.skip("needs ninja and a C++ compiler on PATH")
    r = doctor.check_build_test(env, ("isaacgym",), enabled=True)
    assert r.status == "ok", r.detail


# ---- all together -----------------------------------------------------------------------------------------
def test_a_machine_ready_for_isaacgym(fm):
    """Everything Isaac Gym needs, faked: the report says ready; remove ninja and it does not."""
    fm.exe("nvidia-smi", TWO_GPUS)
    fm.environ["CUDA_VISIBLE_DEVICES"] = "1"
    fm.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    fm.exe("c++", 'echo "c++ (Fake) 9.4.0"\n')
    fm.exe("ninja", 'echo "1.10.2"\n')
    fm.file("/usr/include/python3.8/Python.h")
    fm.file("/usr/lib/libpython3.8.so.1.0")
    fm.environ["LD_LIBRARY_PATH"] = "/usr/lib"
    fm.file("/proc/version", "Linux version 5.15.0-91-generic\n")
    fm.package("fakegym_ready", {"__init__.py": "", "gymapi.py": ""})
    fm.modules["isaacgym"] = "fakegym_ready"
    _fake_torch(fm, "faketorch_ready", "11.7", True)

    report = doctor.run_checks(fm.env(), engines=("isaacgym",))
    for r in report.results:
        _check_record(r)
    by_name = {r.name: r for r in report.results}
    assert report.ready("isaacgym"), [(r.name, r.detail) for r in report.results if r.status == "fail"]
    assert by_name["python:isaacgym"].status == "ok" and by_name["gpu"].status == "ok"
    assert by_name["mujoco"].status == "skip" and by_name["build_test"].status == "skip"
    assert "python:mujoco" not in by_name

    (fm.bin / "ninja").unlink()
    report = doctor.run_checks(fm.env(), engines=("isaacgym",))
    assert not report.ready("isaacgym") and report.blockers("isaacgym") == ["ninja"]
    doc = report.to_dict("isaacgym", 1)
    assert doc["ready"] == {"isaacgym": False} and doc["blockers"] == {"isaacgym": ["ninja"]}


def test_unknown_engine_is_a_config_error(fm):
    with pytest.raises(ConfigError, match="valid engines: mujoco, mjwarp, isaacgym"):
        doctor.run_checks(fm.env(), engines=("physx",))
