"""Environment checks behind `mimic doctor`: can this machine run the mujoco, mjwarp or isaacgym engine?

Every check is a plain function ``check_x(env, engines) -> CheckResult`` over an explicit :class:`Env`
(environment variables, PATH, a file-reading root, the Python interpreter to probe and the module names to
import), so tests fake the machine — a bin dir of stub executables, a fake ``/proc/version``, a module name
that does not exist — instead of mocking the checks. Imports of heavy or fragile packages (torch, mujoco,
warp, isaacgym) happen in a subprocess of ``env.python`` with a timeout, never in this process: Isaac Gym must
be imported before torch, and a crashing import must not take the doctor down with it.

Statuses: ``ok`` (works), ``warn`` (works, but something the user probably wants does not), ``fail`` (an
engine in ``blocks`` cannot run until the ``fix`` is applied), ``skip`` (not relevant to the engines asked
about, or not requested). An engine is ready when no ``fail`` result lists it in ``blocks``.

Stdlib only, Python 3.8 syntax.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mimictools.engines.registry import engine_names, is_gpu_engine, is_mujoco_family

ENGINES = engine_names()
"""Engine names accepted by ``--engine``."""
STATUSES = ("ok", "warn", "fail", "skip")

# Python versions each engine's packages exist for: (min inclusive, max exclusive or None).
# Isaac Gym Preview 4 ships bindings for 3.6-3.8 only; mujoco 3.2.x has cp38 wheels (newer releases need
# newer Pythons); mujoco-warp has never been released for Python < 3.10.
PYTHON_RANGES: Dict[str, Tuple[Tuple[int, int], Optional[Tuple[int, int]]]] = {
    "mujoco": ((3, 8), None),
    "mjwarp": ((3, 10), None),
    "isaacgym": ((3, 6), (3, 9)),
}
GPU_ENGINES = tuple(e for e in ENGINES if is_gpu_engine(e))
ISAACGYM_DOC = "docs/isaacgym.md"
ISAACGYM_URL = "https://developer.nvidia.com/isaac-gym"
WSL_LIB_DIR = "/usr/lib/wsl/lib"

DEFAULT_MODULES: Dict[str, str] = {
    "torch": "torch",
    "mujoco": "mujoco",
    "mujoco_warp": "mujoco_warp",
    "warp": "warp",
    "isaacgym": "isaacgym",
}
"""Logical package -> module name to import. Tests swap in a name that does not exist."""


# ---------------------------------------------------------------------------------------------------------
# Result records
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    name: str
    """Stable key, e.g. 'python:isaacgym', 'torch', 'libpython'."""
    status: str
    """'ok' | 'warn' | 'fail' | 'skip'."""
    detail: str
    """What was found (versions, paths, the last lines of an error)."""
    fix: str = ""
    """The exact command(s) to run, or '' when nothing needs fixing."""
    blocks: Tuple[str, ...] = ()
    """Engines that cannot run while this check fails."""

    def to_dict(self) -> Dict[str, object]:
        d = asdict(self)
        d["blocks"] = list(self.blocks)
        return d


@dataclass(frozen=True)
class DoctorReport:
    """All results plus the verdict per engine asked about."""

    engines: Tuple[str, ...]
    """Engines checked (the one from ``--engine``, or all)."""
    results: Tuple[CheckResult, ...]

    def ready(self, engine: str) -> bool:
        """True when no failing check blocks ``engine``."""
        return not self.blockers(engine)

    def blockers(self, engine: str) -> List[str]:
        """Names of the failing checks that block ``engine``."""
        return [r.name for r in self.results if r.status == "fail" and engine in r.blocks]

    def to_dict(self, requested: Optional[str], exit_code: int) -> Dict[str, object]:
        """The ``--json`` document."""
        return {
            "engine": requested,
            "engines": list(self.engines),
            "ready": {e: self.ready(e) for e in self.engines},
            "blockers": {e: self.blockers(e) for e in self.engines},
            "checks": [r.to_dict() for r in self.results],
            "exit_code": exit_code,
        }


@dataclass(frozen=True)
class RunResult:
    """Outcome of one subprocess: return code (None when it could not start or timed out)."""

    rc: Optional[int]
    stdout: str
    stderr: str
    timed_out: bool = False
    error: str = ""
    """Why it did not run (executable missing, permission denied), else ''."""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def tail(self, lines: int = 8) -> str:
        """Last ``lines`` meaningful lines of stdout+stderr (or the start error), Python traceback frames
        dropped, for error reports."""
        text = "\n".join(s for s in (self.stdout, self.stderr) if s.strip())
        if self.error:
            text = self.error
        if self.timed_out:
            text = (text + "\n" if text else "") + "(timed out)"
        return _error_tail(text, lines)


def _error_tail(text: str, lines: int) -> str:
    """The last ``lines`` non-empty lines of ``text`` without traceback frames ('  File ...' + code + '^^^')."""
    rows: List[str] = []
    skip_code = False
    for row in text.splitlines():
        stripped = row.strip()
        if (
            not stripped
            or stripped.startswith("@@PROBE@@")
            or row.startswith("Traceback (most recent call last)")
        ):
            continue
        if re.match(r'\s+File "', row):
            skip_code = True
            continue
        if skip_code and row.startswith("    "):
            continue
        skip_code = False
        if set(stripped) <= set("^~ "):
            continue
        rows.append(row.rstrip())
    return "\n".join(rows[-lines:])


# ---------------------------------------------------------------------------------------------------------
# The environment the checks look at
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Env:
    """What the checks see of the machine. ``default_env()`` describes this process; tests build fakes."""

    environ: Mapping[str, str]
    """Environment variables (PATH, LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, CONDA_PREFIX, MUJOCO_GL, ...)."""
    python: str
    """Interpreter whose packages are probed (subprocesses run ``python -c``)."""
    python_version: Tuple[int, int, int]
    """Version of ``python``."""
    python_include: str
    """Its ``sysconfig.get_paths()['include']`` (where Python.h must be)."""
    python_libdir: str
    """Its ``sysconfig.get_config_var('LIBDIR')`` (where libpython3.X.so usually is)."""
    root: str = "/"
    """Machine paths the checks read (/proc/version, /usr/lib/wsl/lib, LD_LIBRARY_PATH entries, CUDA_HOME,
    python_include, ...) are resolved under this root. PATH entries are not: executables found on PATH run."""
    modules: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODULES))
    """Logical package -> module name to import (see DEFAULT_MODULES)."""
    timeout_s: float = 120.0
    """Time limit of one import probe."""
    build_timeout_s: float = 600.0
    """Time limit of the ``--build-test`` compile."""

    def which(self, cmd: str) -> Optional[str]:
        """``cmd`` resolved on this env's PATH (not the process's), or None."""
        return shutil.which(cmd, path=self.environ.get("PATH", ""))

    def file(self, path: str) -> Path:
        """An absolute machine path resolved under ``root``."""
        return Path(self.root) / path.lstrip("/")

    def read_text(self, path: str) -> Optional[str]:
        """Contents of machine path ``path`` (under ``root``), or None when unreadable."""
        try:
            return self.file(path).read_text(errors="replace")
        except OSError:
            return None

    def module(self, logical: str) -> str:
        return self.modules.get(logical, logical)

    def run(
        self, argv: Sequence[str], timeout_s: float, extra_env: Optional[Mapping[str, str]] = None
    ) -> RunResult:
        """Run ``argv`` with this env's variables; never raises."""
        child_env = dict(self.environ)
        if extra_env:
            child_env.update(extra_env)
        try:
            proc = subprocess.run(
                list(argv),
                env=child_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                text=True,
            )
        except subprocess.TimeoutExpired as exc:
            return RunResult(None, _to_text(exc.stdout), _to_text(exc.stderr), timed_out=True)
        except OSError as exc:
            return RunResult(None, "", "", error=f"{argv[0]}: {exc.strerror or exc}")
        return RunResult(proc.returncode, proc.stdout, proc.stderr)

    def run_python(
        self, code: str, args: Sequence[str] = (), timeout_s: Optional[float] = None, extra_env=None
    ) -> RunResult:
        """Run ``python -c code args...`` in a subprocess."""
        t = self.timeout_s if timeout_s is None else timeout_s
        return self.run([self.python, "-c", code, *args], t, extra_env)


def _to_text(b: object) -> str:
    if b is None:
        return ""
    if isinstance(b, bytes):
        return b.decode(errors="replace")
    return str(b)


def default_env() -> Env:
    """The real machine, as seen by this process."""
    paths = sysconfig.get_paths()
    return Env(
        environ=dict(os.environ),
        python=sys.executable,
        python_version=(sys.version_info[0], sys.version_info[1], sys.version_info[2]),
        python_include=paths.get("include", ""),
        python_libdir=str(sysconfig.get_config_var("LIBDIR") or ""),
    )


# ---------------------------------------------------------------------------------------------------------
# Probes shared by several checks
# ---------------------------------------------------------------------------------------------------------
# Runs in env.python, which may be an old interpreter: keep it 3.6-compatible.
_PROBE_MODULE = r"""
import importlib, importlib.util, json, sys, traceback
name, subs = sys.argv[1], [s for s in sys.argv[2].split(",") if s]
out = {"found": False, "imported": False, "version": None, "path": None, "error": ""}
try:
    spec = importlib.util.find_spec(name)
except Exception as e:
    spec = None
    out["error"] = "%s: %s" % (type(e).__name__, e)
if spec is None:
    out["error"] = out["error"] or "No module named %r" % name
else:
    out["found"] = True
    out["path"] = spec.origin
    try:
        m = importlib.import_module(name)
        for s in subs:
            importlib.import_module(name + "." + s)
        out["imported"] = True
        out["version"] = getattr(m, "__version__", None)
    except BaseException as e:
        out["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
    if out["version"] is None:
        try:
            import importlib.metadata as md
            out["version"] = md.version(name.replace("_", "-"))
        except Exception:
            pass
print("@@PROBE@@" + json.dumps(out))
"""

_PROBE_TORCH = r"""
import importlib, json, sys
torch = importlib.import_module(sys.argv[1])
out = {"version": torch.__version__, "cuda": torch.version.cuda, "available": False, "count": 0,
       "names": [], "error": ""}
try:
    out["available"] = bool(torch.cuda.is_available())
    out["count"] = int(torch.cuda.device_count()) if out["available"] else 0
    out["names"] = [torch.cuda.get_device_name(i) for i in range(out["count"])]
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print("@@PROBE@@" + json.dumps(out))
"""

_PROBE_GL = r"""
import importlib
mujoco = importlib.import_module(__import__("sys").argv[1])
ctx = mujoco.GLContext(64, 64)
ctx.make_current()
ctx.free()
print("@@PROBE@@{}")
"""

_BUILD_TEST = r"""
import sys, time
import torch.utils.cpp_extension as ce
src = "int64_t mimic_doctor_add(int64_t a, int64_t b) { return a + b; }"
t0 = time.time()
mod = ce.load_inline(name="mimic_doctor_build_test", cpp_sources=[src], functions=["mimic_doctor_add"],
                     build_directory=sys.argv[1], verbose=False)
if mod.mimic_doctor_add(2, 3) != 5:
    raise SystemExit("the compiled extension returned a wrong result")
print("@@PROBE@@{\"seconds\": %.1f}" % (time.time() - t0))
"""


@dataclass(frozen=True)
class ModuleProbe:
    found: bool
    imported: bool
    version: Optional[str]
    error: str
    path: Optional[str] = None


def _parse_probe(res: RunResult) -> Optional[Dict[str, object]]:
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("@@PROBE@@"):
            try:
                data = json.loads(line[len("@@PROBE@@") :])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def probe_module(env: Env, logical: str, submodules: Sequence[str] = ()) -> ModuleProbe:
    """Import ``env.module(logical)`` (then its ``submodules``) in a subprocess of ``env.python``."""
    name = env.module(logical)
    res = env.run_python(_PROBE_MODULE, [name, ",".join(submodules)])
    data = _parse_probe(res)
    if data is None:  # the interpreter itself crashed (segfault in a binding, timeout, ...)
        return ModuleProbe(True, False, None, res.tail() or f"python exited with code {res.rc}")
    return ModuleProbe(
        found=bool(data.get("found")),
        imported=bool(data.get("imported")),
        version=_opt_str(data.get("version")),
        error=str(data.get("error") or ""),
        path=_opt_str(data.get("path")),
    )


def _opt_str(x: object) -> Optional[str]:
    return None if x is None else str(x)


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    driver: str
    memory_total_mib: float
    memory_used_mib: float


@dataclass(frozen=True)
class GpuQuery:
    """What ``nvidia-smi`` (or /proc/driver/nvidia/version) says."""

    gpus: Tuple[GpuInfo, ...]
    source: str
    """'nvidia-smi <path>', '/proc/driver/nvidia/version' or '' (nothing found)."""
    driver_version: str = ""
    error: str = ""


def query_gpus(env: Env) -> GpuQuery:
    """GPUs visible to the NVIDIA driver, from nvidia-smi on PATH (or WSL's copy), else the driver's /proc file."""
    smi = env.which("nvidia-smi")
    if smi is None and env.file(WSL_LIB_DIR + "/nvidia-smi").is_file():
        smi = str(env.file(WSL_LIB_DIR + "/nvidia-smi"))
    if smi is not None:
        res = env.run(
            [
                smi,
                "--query-gpu=index,name,driver_version,memory.total,memory.used",
                "--format=csv,noheader,nounits",
            ],
            timeout_s=30.0,
        )
        if not res.ok:
            return GpuQuery((), f"nvidia-smi {smi}", error=res.tail(4) or f"exit code {res.rc}")
        gpus = []
        for row in res.stdout.splitlines():
            cols = [c.strip() for c in row.split(",")]
            if len(cols) < 5:
                continue
            try:
                gpus.append(GpuInfo(int(cols[0]), cols[1], cols[2], _num(cols[3]), _num(cols[4])))
            except ValueError:
                continue
        driver = gpus[0].driver if gpus else ""
        return GpuQuery(tuple(gpus), f"nvidia-smi {smi}", driver_version=driver)
    text = env.read_text("/proc/driver/nvidia/version")
    if text:
        m = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
        return GpuQuery((), "/proc/driver/nvidia/version", driver_version=m.group(1) if m else "unknown")
    return GpuQuery((), "")


def _num(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return float("nan")


def _is_wsl(env: Env) -> bool:
    text = env.read_text("/proc/version") or ""
    return "microsoft" in text.lower()


def _ver(v: Sequence[int]) -> str:
    return ".".join(str(x) for x in v)


def _relevant(engines: Sequence[str], needed_by: Sequence[str]) -> bool:
    return any(e in needed_by for e in engines)


def _skip(name: str, needed_by: Sequence[str]) -> CheckResult:
    return CheckResult(name, "skip", f"only needed by {', '.join(needed_by)}")


# ---------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------
def check_python(env: Env, engine: str) -> CheckResult:
    """The interpreter's version against what ``engine``'s packages exist for."""
    lo, hi = PYTHON_RANGES[engine]
    have = env.python_version[:2]
    name = f"python:{engine}"
    need = f">= {_ver(lo)}" if hi is None else f"{_ver(lo)} to {hi[0]}.{hi[1] - 1}"
    detail = f"Python {_ver(env.python_version)} ({env.python}); {engine} needs {need}"
    if have >= lo and (hi is None or have < hi):
        return CheckResult(name, "ok", detail)
    if engine == "isaacgym":
        fix = (
            "conda create -n mimic-isaacgym python=3.8 -y && conda activate mimic-isaacgym && "
            "pip install -e <isaacgym>/python && pip install -e .   # see " + ISAACGYM_DOC
        )
    else:
        extra = "'.[gpu]'" if engine == "mjwarp" else "."
        fix = f"conda create -n mimic python=3.11 -y && conda activate mimic && pip install -e {extra}"
    return CheckResult(name, "fail", detail, fix, (engine,))


def check_torch(env: Env, engines: Sequence[str]) -> CheckResult:
    """torch importable; its CUDA build and whether a GPU is usable (matters for mjwarp/isaacgym)."""
    name = "torch"
    res = env.run_python(_PROBE_TORCH, [env.module("torch")])
    data = _parse_probe(res)
    if data is None:
        return CheckResult(
            name,
            "fail",
            "torch does not import: " + (res.tail(4) or f"exit code {res.rc}"),
            "pip install 'torch>=2.0'   # CUDA builds: https://pytorch.org/get-started/locally/",
            tuple(ENGINES),
        )
    cuda = data.get("cuda")
    available = bool(data.get("available"))
    raw_names = data.get("names")
    names = [str(n) for n in raw_names] if isinstance(raw_names, list) else []
    detail = f"torch {data.get('version')}, built with CUDA {cuda or 'none (CPU-only build)'}, "
    detail += f"torch.cuda.is_available()={available}"
    if names:
        detail += f" ({len(names)} GPU: {', '.join(names)})"
    gpu_wanted = _relevant(engines, GPU_ENGINES)
    if not gpu_wanted or available:
        return CheckResult(name, "ok", detail)
    if not cuda:
        fix = (
            "pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu121"
            "   # pick the cuXXX your driver supports (nvidia-smi, top right)"
        )
        return CheckResult(name, "warn", detail + "; GPU training needs a CUDA build of torch", fix)
    err = str(data.get("error") or "")
    fix = "nvidia-smi   # must list a GPU; if not, (re)install the NVIDIA driver"
    if env.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        fix = "unset CUDA_VISIBLE_DEVICES"
    return CheckResult(name, "warn", detail + (f"; {err}" if err else "") + "; no usable GPU", fix)


def check_gpu(env: Env, engines: Sequence[str], gpus: Optional[GpuQuery] = None) -> CheckResult:
    """An NVIDIA GPU and driver visible (nvidia-smi, or /proc/driver/nvidia/version)."""
    name = "gpu"
    q = gpus if gpus is not None else query_gpus(env)
    if q.gpus:
        listing = "; ".join(f"{g.index}: {g.name} ({g.memory_total_mib:.0f} MiB)" for g in q.gpus)
        return CheckResult(
            name, "ok", f"driver {q.driver_version}, {len(q.gpus)} GPU(s): {listing} [{q.source}]"
        )
    if q.error:
        detail = f"{q.source} failed: {q.error}"
        fix = "sudo nvidia-smi   # if the driver does not answer: reinstall it (sudo apt-get install nvidia-driver-535) and reboot"
    elif q.source:
        detail = f"driver {q.driver_version} loaded ({q.source}) but nvidia-smi is not on PATH"
        fix = "sudo apt-get install -y nvidia-utils-535   # the utils matching your driver version"
    else:
        detail = "no NVIDIA GPU/driver visible (no nvidia-smi on PATH, no /proc/driver/nvidia/version)"
        fix = "install the NVIDIA driver (>= 470 for Isaac Gym, >= 525 for Warp): sudo ubuntu-drivers install"
    if "isaacgym" in engines:
        status = "fail"
    elif "mjwarp" in engines:
        status = "warn"
        detail += "; mjwarp falls back to Warp's (slow) CPU device"
    else:
        return CheckResult(name, "skip", detail + "; not needed by mujoco (CPU)")
    return CheckResult(name, status, detail, fix, ("isaacgym",))


def check_cuda_visible_devices(
    env: Env, engines: Sequence[str], gpus: Optional[GpuQuery] = None
) -> CheckResult:
    """Which GPU cuda:0 will be; warn when several GPUs are visible and none was chosen."""
    name = "cuda_visible_devices"
    if not _relevant(engines, GPU_ENGINES):
        return _skip(name, GPU_ENGINES)
    q = gpus if gpus is not None else query_gpus(env)
    value = env.environ.get("CUDA_VISIBLE_DEVICES")
    order = env.environ.get("CUDA_DEVICE_ORDER", "")
    by_index = {g.index: g for g in q.gpus}
    if value is not None:
        ids = [v.strip() for v in value.split(",") if v.strip()]
        if not ids or ids[0] == "-1":
            return CheckResult(
                name,
                "fail",
                f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU",
                "unset CUDA_VISIBLE_DEVICES   # or: export CUDA_VISIBLE_DEVICES=0",
                ("isaacgym",),
            )
        first = ids[0]
        desc = f"CUDA_VISIBLE_DEVICES={value}: cuda:0 is physical GPU {first}"
        if first.isdigit() and int(first) in by_index:
            desc += f" ({by_index[int(first)].name})"
        if q.gpus and first.isdigit() and int(first) not in by_index:
            return CheckResult(
                name,
                "fail",
                desc + f", but nvidia-smi lists only GPU(s) {sorted(by_index)}",
                f"export CUDA_VISIBLE_DEVICES={min(by_index)}",
                ("isaacgym",),
            )
        if len(q.gpus) > 1 and order != "PCI_BUS_ID":
            return CheckResult(
                name,
                "warn",
                desc
                + "; without CUDA_DEVICE_ORDER=PCI_BUS_ID, CUDA may number GPUs differently from nvidia-smi",
                f"export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={value}",
            )
        return CheckResult(name, "ok", desc)
    if not q.gpus:
        return CheckResult(name, "skip", "not set; no GPU listed (see gpu)")
    if len(q.gpus) == 1:
        return CheckResult(name, "ok", f"not set; the only GPU ({q.gpus[0].name}) will be used")
    idle = min(q.gpus, key=lambda g: (g.memory_used_mib, g.index))
    busy = ", ".join(f"{g.index}: {g.memory_used_mib:.0f} MiB used" for g in q.gpus)
    return CheckResult(
        name,
        "warn",
        f"not set and {len(q.gpus)} GPUs are visible ({busy}); cuda:0 = CUDA's fastest GPU, "
        "which may be one another job is using",
        f"export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={idle.index}   # the least-used GPU now",
    )


def check_mujoco(env: Env, engines: Sequence[str]) -> CheckResult:
    name = "mujoco"
    needed_by = tuple(e for e in ENGINES if is_mujoco_family(e))
    if not _relevant(engines, needed_by):
        return _skip(name, needed_by)
    p = probe_module(env, "mujoco")
    if p.imported:
        return CheckResult(name, "ok", f"mujoco {p.version} ({p.path})")
    detail = "not installed" if not p.found else "installed but does not import: " + _last_line(p.error)
    return CheckResult(name, "fail", f"mujoco {detail}", "pip install 'mujoco>=3.2'", needed_by)


def check_mjwarp(env: Env, engines: Sequence[str]) -> CheckResult:
    name = "mujoco_warp"
    if not _relevant(engines, ("mjwarp",)):
        return _skip(name, ("mjwarp",))
    mw = probe_module(env, "mujoco_warp")
    wp = probe_module(env, "warp")
    if mw.imported and wp.imported:
        return CheckResult(name, "ok", f"mujoco_warp {mw.version}, warp {wp.version}")
    parts = []
    for label, p in (("mujoco_warp", mw), ("warp", wp)):
        if not p.found:
            parts.append(f"{label} not installed")
        elif not p.imported:
            parts.append(f"{label} does not import: {_last_line(p.error)}")
    fix = "pip install 'mujoco-warp>=4.0' 'warp-lang>=1.19'   # or: pip install 'mimictools[gpu]'"
    return CheckResult(name, "fail", "; ".join(parts), fix, ("mjwarp",))


def _last_line(text: str) -> str:
    rows = [r for r in text.splitlines() if r.strip()]
    return rows[-1] if rows else text


def check_isaacgym(env: Env, engines: Sequence[str]) -> CheckResult:
    """isaacgym (and its gymapi binding) imports."""
    name = "isaacgym"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    p = probe_module(env, "isaacgym", ("gymapi",))
    if p.imported:
        return CheckResult(name, "ok", f"isaacgym {p.version or '(version unknown)'} ({p.path})")
    lo, hi = PYTHON_RANGES["isaacgym"]
    py = env.python_version[:2]
    if not p.found:
        detail = "isaacgym is not installed"
        if hi is not None and not (lo <= py < hi):
            detail += f" (and cannot be on Python {_ver(py)}: Isaac Gym Preview 4 supports 3.6-3.8)"
            fix = "see python:isaacgym, then: pip install -e <isaacgym>/python"
        else:
            fix = f"download Isaac Gym Preview 4 from {ISAACGYM_URL}, then: pip install -e <isaacgym>/python   # {ISAACGYM_DOC}"
        return CheckResult(name, "fail", detail, fix, ("isaacgym",))
    err = _last_line(p.error)
    m = re.search(r"(libpython\d\.\d+m?\.so[.\d]*)", p.error)
    if m:
        fix = "export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH   # see the libpython check"
    elif "libcuda" in p.error:
        fix = f"export LD_LIBRARY_PATH={WSL_LIB_DIR}:$LD_LIBRARY_PATH   # WSL; elsewhere install the NVIDIA driver"
    elif "imported before isaacgym" in p.error.lower():
        fix = "import isaacgym before torch (mimic does this for --engine isaacgym)"
    elif "No module named" in err:
        missing = re.search(r"No module named '([^']+)'", err)
        fix = f"pip install {missing.group(1).split('.')[0] if missing else '<the missing module>'}"
    else:
        fix = f"pip install -e <isaacgym>/python   # reinstall; {ISAACGYM_DOC} lists known import errors"
    return CheckResult(name, "fail", f"isaacgym is installed but does not import: {err}", fix, ("isaacgym",))


def check_compiler(env: Env, engines: Sequence[str]) -> CheckResult:
    """A C++ compiler for gymtorch's JIT build (torch.utils.cpp_extension uses $CXX, else c++)."""
    name = "compiler"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    cxx = env.environ.get("CXX", "").strip()
    candidates = [cxx] if cxx else ["c++", "g++"]
    for cand in candidates:
        path = env.which(cand) or (cand if os.path.isabs(cand) and os.access(cand, os.X_OK) else None)
        if path is None:
            continue
        res = env.run([path, "--version"], timeout_s=20.0)
        first = res.stdout.strip().splitlines()[0] if res.ok and res.stdout.strip() else res.tail(2)
        if res.ok:
            return CheckResult(name, "ok", f"{path}: {first}")
        return CheckResult(
            name,
            "fail",
            f"{path} --version failed: {first}",
            "sudo apt-get install -y build-essential   # or: conda install -c conda-forge gxx_linux-64",
            ("isaacgym",),
        )
    what = f"$CXX={cxx!r} not found" if cxx else "no c++ or g++ on PATH"
    return CheckResult(
        name,
        "fail",
        what + " (gymtorch is compiled on first import)",
        "sudo apt-get install -y build-essential   # or: conda install -c conda-forge gxx_linux-64",
        ("isaacgym",),
    )


def check_ninja(env: Env, engines: Sequence[str]) -> CheckResult:
    """ninja on PATH: torch.utils.cpp_extension.load refuses to build without it."""
    name = "ninja"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    path = env.which("ninja")
    if path is None:
        venv_bin = os.path.dirname(env.python)
        note = ""
        if os.path.isfile(os.path.join(venv_bin, "ninja")):
            note = f" ({venv_bin}/ninja exists: that folder is not on PATH)"
        return CheckResult(
            name,
            "fail",
            "ninja not on PATH" + note,
            f"pip install ninja && export PATH={venv_bin}:$PATH",
            ("isaacgym",),
        )
    res = env.run([path, "--version"], timeout_s=20.0)
    if not res.ok:
        return CheckResult(
            name,
            "fail",
            f"{path} --version failed: {res.tail(2)}",
            "pip install --force-reinstall ninja",
            ("isaacgym",),
        )
    return CheckResult(name, "ok", f"ninja {res.stdout.strip()} ({path})")


def check_python_headers(env: Env, engines: Sequence[str]) -> CheckResult:
    name = "python_headers"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    header = os.path.join(env.python_include, "Python.h")
    if env.file(header).is_file():
        return CheckResult(name, "ok", header)
    mm = _ver(env.python_version[:2])
    return CheckResult(
        name,
        "fail",
        f"{header} is missing (needed to compile gymtorch)",
        f"sudo apt-get install -y python{mm}-dev   # conda Pythons ship the headers: conda install python={mm}",
        ("isaacgym",),
    )


def check_cuda_home(env: Env, engines: Sequence[str]) -> CheckResult:
    """CUDA toolkit (nvcc) location. gymtorch is a C++-only extension, so this only warns."""
    name = "cuda_home"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        val = env.environ.get(var)
        if val:
            nvcc = os.path.join(val, "bin", "nvcc")
            if env.file(nvcc).is_file():
                return CheckResult(name, "ok", f"{var}={val} (nvcc found)")
            return CheckResult(
                name,
                "warn",
                f"{var}={val} but {nvcc} does not exist",
                "export CUDA_HOME=$(dirname $(dirname $(readlink -f $(which nvcc))))",
            )
    nvcc_path = env.which("nvcc")
    if nvcc_path:
        home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc_path)))
        return CheckResult(name, "ok", f"CUDA_HOME not set; torch will derive {home} from nvcc on PATH")
    if env.file("/usr/local/cuda/bin/nvcc").is_file():
        return CheckResult(
            name,
            "warn",
            "CUDA_HOME not set and nvcc not on PATH; /usr/local/cuda exists",
            "export CUDA_HOME=/usr/local/cuda PATH=/usr/local/cuda/bin:$PATH",
        )
    return CheckResult(
        name,
        "warn",
        "no CUDA toolkit found (CUDA_HOME unset, no nvcc); gymtorch builds without it, CUDA extensions do not",
        "conda install -c nvidia cuda-toolkit   # then: export CUDA_HOME=$CONDA_PREFIX",
    )


def check_build_test(env: Env, engines: Sequence[str], enabled: bool) -> CheckResult:
    """Compile and load a tiny torch C++ extension, exactly as gymtorch is built (``--build-test``)."""
    name = "build_test"
    if not enabled:
        return CheckResult(name, "skip", "not run (add --build-test to compile a tiny torch C++ extension)")
    blocks = ("isaacgym",)
    with tempfile.TemporaryDirectory(prefix="mimic-doctor-build-") as tmp:
        t0 = time.time()
        res = env.run_python(
            _BUILD_TEST,
            [tmp],
            timeout_s=env.build_timeout_s,
            extra_env={"TORCH_EXTENSIONS_DIR": tmp, "MAX_JOBS": env.environ.get("MAX_JOBS", "2")},
        )
        took = time.time() - t0
    if _parse_probe(res) is not None and res.ok:
        return CheckResult(name, "ok", f"compiled and loaded a torch C++ extension in {took:.0f} s")
    if res.timed_out:
        detail = f"the build did not finish within {env.build_timeout_s:.0f} s"
    else:
        detail = "the trial build failed:\n" + res.tail(12)
    text = res.stderr + res.stdout
    if "Ninja is required" in text:
        fix = "pip install ninja   # and put the env's bin folder on PATH"
    elif "Python.h" in text:
        fix = f"sudo apt-get install -y python{_ver(env.python_version[:2])}-dev"
    elif re.search(r"(c\+\+|g\+\+|gcc|compiler)\W.*(not found|No such file|non-zero exit)", text) or (
        "Error checking compiler" in text
    ):
        fix = "sudo apt-get install -y build-essential   # or point CXX at a working C++ compiler"
    else:
        fix = "read the compiler error above; run again with --build-test after fixing"
    return CheckResult(name, "fail", detail, fix, blocks if "isaacgym" in engines else ())


def check_gymtorch(env: Env, engines: Sequence[str], enabled: bool, isaacgym_ok: bool) -> CheckResult:
    """Import isaacgym.gymtorch for real: Isaac Gym's own JIT build (``--build-test``, isaacgym importable)."""
    name = "gymtorch"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    if not enabled:
        return CheckResult(name, "skip", "not run (add --build-test)")
    if not isaacgym_ok:
        return CheckResult(name, "skip", "isaacgym does not import (see above)")
    p = probe_module(env, "isaacgym", ("gymapi", "gymtorch"))
    if p.imported:
        return CheckResult(name, "ok", "isaacgym.gymtorch built and imported")
    return CheckResult(
        name,
        "fail",
        "isaacgym.gymtorch failed to build/import: " + "\n".join(p.error.splitlines()[-8:]),
        "rm -rf ~/.cache/torch_extensions/*/gymtorch   # stale build; then fix what build_test/compiler/ninja report",
        ("isaacgym",),
    )


def check_wsl(env: Env, engines: Sequence[str]) -> CheckResult:
    """Under WSL, libcuda.so lives in /usr/lib/wsl/lib, which must be on LD_LIBRARY_PATH for Isaac Gym."""
    name = "wsl"
    if not _is_wsl(env):
        return CheckResult(name, "skip", "not WSL (/proc/version does not mention Microsoft)")
    ld = [p.rstrip("/") for p in env.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    libs = [n for n in ("libcuda.so", "libcuda.so.1") if env.file(WSL_LIB_DIR + "/" + n).exists()]
    blocks = ("isaacgym",) if "isaacgym" in engines else ()
    if not libs:
        return CheckResult(
            name,
            "fail" if blocks else "warn",
            f"WSL detected but {WSL_LIB_DIR}/libcuda.so is missing",
            "install/update the NVIDIA driver on Windows (WSL gets libcuda.so from it), then: wsl --shutdown",
            blocks,
        )
    if WSL_LIB_DIR not in ld:
        return CheckResult(
            name,
            "fail" if blocks else "warn",
            f"WSL detected; {WSL_LIB_DIR}/{libs[0]} exists but {WSL_LIB_DIR} is not on LD_LIBRARY_PATH",
            f"echo 'export LD_LIBRARY_PATH={WSL_LIB_DIR}:$LD_LIBRARY_PATH' >> ~/.bashrc && source ~/.bashrc",
            blocks,
        )
    return CheckResult(name, "ok", f"WSL detected; {WSL_LIB_DIR} is on LD_LIBRARY_PATH ({libs[0]} found)")


def _libpython_names(version: Tuple[int, int, int]) -> List[str]:
    mm = _ver(version[:2])
    names = [f"libpython{mm}.so.1.0", f"libpython{mm}.so"]
    if version[:2] < (3, 8):
        names += [f"libpython{mm}m.so.1.0", f"libpython{mm}m.so"]
    return names


def check_libpython(env: Env, engines: Sequence[str]) -> CheckResult:
    """libpython3.X.so findable by the dynamic loader (Isaac Gym's bindings link against it)."""
    name = "libpython"
    if "isaacgym" not in engines:
        return _skip(name, ("isaacgym",))
    names = _libpython_names(env.python_version)
    ld_dirs = [p for p in env.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    for d in ld_dirs:
        for n in names:
            if env.file(os.path.join(d, n)).exists():
                return CheckResult(name, "ok", f"{d}/{n} (on LD_LIBRARY_PATH)")
    ldconfig = env.which("ldconfig")
    if ldconfig is None:
        for cand in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
            if env.file(cand).is_file():
                ldconfig = str(env.file(cand))
                break
    if ldconfig is not None:
        res = env.run([ldconfig, "-p"], timeout_s=20.0)
        for row in res.stdout.splitlines():
            entry = row.strip().split(" ", 1)[0]
            if entry in names and "=>" in row:
                return CheckResult(
                    name, "ok", f"{entry} in the loader cache: {row.split('=>', 1)[1].strip()}"
                )
    conda = env.environ.get("CONDA_PREFIX", "")
    places = []
    if env.python_libdir:
        places.append(("", env.python_libdir))
    if conda:
        places.append(("$CONDA_PREFIX/lib", os.path.join(conda, "lib")))
    for label, d in places:
        for n in names:
            if env.file(os.path.join(d, n)).exists():
                shown = label or d
                if conda and os.path.normpath(d) == os.path.normpath(os.path.join(conda, "lib")):
                    shown = "$CONDA_PREFIX/lib"
                return CheckResult(
                    name,
                    "fail",
                    f"{d}/{n} exists but the dynamic loader will not find it (not on LD_LIBRARY_PATH)",
                    f"export LD_LIBRARY_PATH={shown}:$LD_LIBRARY_PATH"
                    + (
                        "   # permanent: conda env config vars set LD_LIBRARY_PATH=$CONDA_PREFIX/lib"
                        if shown.startswith("$CONDA_PREFIX")
                        else ""
                    ),
                    ("isaacgym",),
                )
    mm = _ver(env.python_version[:2])
    return CheckResult(
        name,
        "fail",
        f"no {names[0]} on LD_LIBRARY_PATH, in the ldconfig cache, in LIBDIR {env.python_libdir or '?'}"
        + (f" or in {conda}/lib" if conda else "")
        + " (a Python built without --enable-shared has none)",
        f"conda create -n mimic-isaacgym python={mm} -y   # conda Pythons ship {names[0]}; or: sudo apt-get install -y libpython{mm}",
        ("isaacgym",),
    )


def check_render(env: Env, engines: Sequence[str], mujoco_ok: Optional[bool] = None) -> CheckResult:
    """An offscreen OpenGL backend for ``--video``: try ``mujoco.GLContext`` under MUJOCO_GL=egl, then osmesa."""
    name = "render"
    if mujoco_ok is None:
        mujoco_ok = probe_module(env, "mujoco").imported
    if not mujoco_ok:
        return CheckResult(name, "skip", "mujoco does not import, so videos cannot be rendered (see mujoco)")
    chosen = env.environ.get("MUJOCO_GL", "").strip().lower()
    backends = [chosen] if chosen else ["egl", "osmesa"]
    errors = []
    for backend in backends:
        res = env.run_python(
            _PROBE_GL,
            [env.module("mujoco")],
            timeout_s=60.0,
            extra_env={"MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend},
        )
        if res.ok and _parse_probe(res) is not None:
            if chosen:
                return CheckResult(name, "ok", f"MUJOCO_GL={backend}: offscreen GL context works")
            return CheckResult(
                name,
                "warn" if backend != "egl" else "ok",
                f"MUJOCO_GL unset; {backend} works"
                + ("" if backend == "egl" else " (software rendering: slow)"),
                f"export MUJOCO_GL={backend}",
            )
        errors.append(f"{backend}: {_last_line(res.tail(3))}")
    fix = "sudo apt-get install -y libegl1 libgl1 && export MUJOCO_GL=egl   # no GPU: sudo apt-get install -y libosmesa6 && export MUJOCO_GL=osmesa"
    return CheckResult(
        name, "warn", "no offscreen GL backend works; --video will fail: " + "; ".join(errors), fix
    )


# ---------------------------------------------------------------------------------------------------------
# Running them all
# ---------------------------------------------------------------------------------------------------------
def run_checks(
    env: Optional[Env] = None, engines: Sequence[str] = ENGINES, build_test: bool = False
) -> DoctorReport:
    """All checks for ``engines`` (each a name from ENGINES), in report order."""
    env = env if env is not None else default_env()
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        from mimictools.errors import ConfigError

        raise ConfigError(f"unknown engine {unknown[0]!r}; valid engines: {', '.join(ENGINES)}")
    engines = tuple(engines)
    results: List[CheckResult] = [check_python(env, e) for e in engines]
    results.append(check_torch(env, engines))
    gpus = query_gpus(env)
    results.append(check_gpu(env, engines, gpus))
    results.append(check_cuda_visible_devices(env, engines, gpus))
    results.append(check_wsl(env, engines))
    mujoco_res = check_mujoco(env, engines)
    results.append(mujoco_res)
    results.append(check_mjwarp(env, engines))
    ig = check_isaacgym(env, engines)
    results.append(ig)
    results.append(check_libpython(env, engines))
    results.append(check_compiler(env, engines))
    results.append(check_ninja(env, engines))
    results.append(check_python_headers(env, engines))
    results.append(check_cuda_home(env, engines))
    results.append(check_build_test(env, engines, build_test))
    results.append(check_gymtorch(env, engines, build_test, ig.status == "ok"))
    mujoco_ok = None if mujoco_res.status == "skip" else mujoco_res.status == "ok"
    results.append(check_render(env, engines, mujoco_ok))
    return DoctorReport(engines, tuple(results))
