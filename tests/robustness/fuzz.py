"""A bounded mutation fuzzer for the loaders the CLI runs on untrusted files.

Loaders: ``pkl`` / ``txt`` (``load_motion``), ``bvh`` (``load_bvh`` + forward kinematics), ``mjcf``
(``load_character``), ``yaml`` (env / agent / engine configs and dataset lists). Seeds are valid
files made here or shipped in ``data/``, the crafted hostile files of ``crafted.py`` and, when
``MIMIC_SHARED`` (or ``../shared``) exists, small real files from it. Each case stacks 1-4 mutations
(bit flips, interesting bytes, inserted/deleted/duplicated/repeated chunks, splices, truncation, number
and token swaps for the text formats). A case passes when the loader returns or raises a
``MimicToolsError``; anything else (another exception, a per-case timeout, a ``MemoryError`` inside one
of our messages) is a finding, saved with its input.

    python tests/robustness/fuzz.py --cases 20000 --kinds pkl txt bvh mjcf yaml   (nox -s fuzz)

``run_fuzz`` is also called by ``test_fuzz.py`` for a short, time-bounded run in the default suite.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

KINDS = ("pkl", "txt", "bvh", "mjcf", "yaml")
SUFFIX = {"pkl": ".pkl", "txt": ".txt", "bvh": ".bvh", "mjcf": ".xml", "yaml": ".yaml"}
CASE_TIMEOUT_S = 10.0
INTERESTING_NUMBERS = (
    "nan", "inf", "-inf", "0", "-0", "-1", "1e309", "-1e309", "1e12", "1e300", "99999999999999999999999",
    "2147483648", "4294967296", "1e-320", "0.0", "3e7", "1e8",
    "1.5", "-90", "180", "0.5", "1000", "2", "3", "12345.678", "-0.001", "360", "1e5",  # plausible: go deeper
)  # fmt: skip
INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0x2E, ord("("), ord("]"), ord("}"), ord("q"), ord("h"))
_NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_TOKEN = re.compile(rb"[A-Za-z_]+")


class _Timeout(BaseException):
    pass


@dataclass
class FuzzStats:
    """Outcome of one loader's run."""

    kind: str
    cases: int = 0
    loaded: int = 0
    our_errors: int = 0
    seconds: float = 0.0
    findings: List[Dict[str, str]] = field(default_factory=list)


# ---- seeds ------------------------------------------------------------------------------------------------


def _fake_mimickit_module():
    """Pickle MimicKit's legacy ``anim.motion.Motion`` object without MimicKit."""
    import enum
    import types

    mod = types.ModuleType("anim.motion")

    class LoopMode(enum.Enum):
        CLAMP = 0
        WRAP = 1

    class Motion:
        pass

    for cls in (LoopMode, Motion):
        cls.__module__ = "anim.motion"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return mod


def _pkl_seeds() -> List[bytes]:
    import numpy as np

    frames = np.round(np.random.default_rng(0).normal(size=(4, 34)), 3).astype(np.float32)
    d = {"loop_mode": 1, "fps": 30, "frames": frames.tolist()}
    out = [pickle.dumps(d, protocol=p) for p in range(0, 6)]
    out.append(pickle.dumps(dict(d, frames=frames), protocol=4))
    out.append(pickle.dumps(dict(d, frames=frames, fps=np.float64(60.0)), protocol=2))
    mod = _fake_mimickit_module()
    saved = {k: sys.modules.get(k) for k in ("anim", "anim.motion")}
    import types

    pkg = types.ModuleType("anim")
    pkg.motion = mod  # type: ignore[attr-defined]
    sys.modules["anim"], sys.modules["anim.motion"] = pkg, mod
    try:
        m = mod.Motion()
        m.loop_mode, m.fps, m.frames = mod.LoopMode.WRAP, 30, frames
        out += [pickle.dumps(m, protocol=p) for p in (0, 2, 4)]
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    out += [
        p.read_bytes()
        for p in sorted((REPO / "data" / "motions").glob("*.pkl"))
        if p.stat().st_size < 200_000
    ]
    return out


def _txt_seeds() -> List[bytes]:
    row = [0.0333, 0.0, 0.9, 0.0] + [1.0, 0.0, 0.0, 0.0] * 2 + [0.9, 0.1, 0.0, 0.0]
    row += [1.0, 0.0, 0.0, 0.0, 0.5] + [1.0, 0.0, 0.0, 0.0] * 2 + [0.3]
    row += [1.0, 0.0, 0.0, 0.0, 0.2] + [1.0, 0.0, 0.0, 0.0] * 2 + [-0.1]
    assert len(row) == 44
    doc = {"Loop": "wrap", "Frames": [row, row, [0.0] + row[1:]]}
    return [json.dumps(doc).encode(), json.dumps(dict(doc, Loop="none"), indent=1).encode()]


def _bvh_seeds() -> List[bytes]:
    text = (
        "HIERARCHY\nROOT Hips\n{\n\tOFFSET 0.0 0.0 0.0\n"
        "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n"
        "\tJOINT LeftUpLeg\n\t{\n\t\tOFFSET 10.0 -5.0 0.0\n\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
        "\t\tJOINT LeftLeg\n\t\t{\n\t\t\tOFFSET 0.0 -40.0 0.0\n\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
        "\t\t\tEnd Site\n\t\t\t{\n\t\t\t\tOFFSET 0.0 -40.0 0.0\n\t\t\t}\n\t\t}\n\t}\n"
        "\tJOINT Spine\n\t{\n\t\tOFFSET 0.0 10.0 0.0\n\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n\t}\n}\n"
        "MOTION\nFrames: 3\nFrame Time: 0.0333333\n"
        "0 90 0 0 0 0 1 2 3 4 5 6 7 8 9\n0 90.5 0 1 0 0 1 2 3 4 5 6 7 8 9\n1 91 0 2 0 0 1 2 3 4 5 6 7 8 9\n"
    )
    return [text.encode()]


def _mjcf_seeds() -> List[bytes]:
    small = (
        "<mujoco model='m'><compiler angle='degree'/><default><joint damping='1' stiffness='10'/>"
        "<default class='leg'><joint armature='0.01' range='-90 90'/></default></default>"
        "<worldbody><body name='pelvis' pos='0 0 1'><freejoint/><geom type='sphere' size='0.1'/>"
        "<body name='thigh' pos='0 0.1 -0.1' euler='0 0 10' childclass='leg'>"
        "<joint name='hx' axis='1 0 0'/><joint name='hy' axis='0 1 0'/><joint name='hz' axis='0 0 1'/>"
        "<geom type='capsule' fromto='0 0 0 0 0 -0.4' size='0.05'/>"
        "<body name='shin' pos='0 0 -0.4' quat='1 0 0 0'><joint name='knee' axis='0 1 0' range='0 150'/>"
        "<geom type='capsule' fromto='0 0 0 0 0 -0.4' size='0.04'/></body></body>"
        "<body name='arm' pos='0 -0.2 0.3' xyaxes='1 0 0 0 1 0'><joint name='sh' type='ball'/>"
        "<geom type='box' size='0.1 0.1 0.1' zaxis='0 0 1'/></body></body></worldbody></mujoco>"
    )
    return [small.encode(), (REPO / "data" / "humanoid.xml").read_bytes()]


def _yaml_seeds() -> List[Tuple[str, bytes]]:
    out = [("env" if "env" in p.name else ("agent" if "agent" in p.name else "engine"), p.read_bytes())
           for p in sorted((REPO / "data" / "configs").glob("*.yaml"))]  # fmt: skip
    out.append(("dataset", b"motions:\n  - file: a.pkl\n    weight: 0.5\n  - file: b/c.pkl\n    weight: 2\n"))
    out.append(
        ("run", b"env:\n  episode_length: 5\nagent:\n  steps_per_iter: 16\nengine:\n  sim_freq: 120\n")
    )
    return out


def _shared_seeds(kind: str) -> List[bytes]:
    root = Path(os.environ.get("MIMIC_SHARED") or (REPO.parent / "shared"))
    if not root.is_dir():
        return []
    pattern = {"pkl": "*.pkl", "txt": "*.txt", "bvh": "*.bvh", "mjcf": "*.xml", "yaml": "*.yaml"}[kind]
    if kind == "bvh":  # real mocap is large: keep the hierarchy and the first 10 frames
        out = []
        for p in sorted(root.rglob(pattern))[:10]:
            head, _, motion = p.read_bytes().partition(b"MOTION")
            lines = motion.strip().splitlines()
            if len(lines) > 12:
                out.append(head + b"MOTION\nFrames: 10\n" + b"\n".join(lines[1:12]) + b"\n")
        return out
    files = sorted(p for p in root.rglob(pattern) if p.is_file() and p.stat().st_size < 150_000)
    if kind == "txt":
        files = [p for p in files if p.read_bytes()[:1] == b"{"]
    return [p.read_bytes() for p in files[:40]]


def seeds(kind: str) -> List[Tuple[str, bytes]]:
    """``[(sub-kind, bytes)]``: the sub-kind picks the YAML loader (env/agent/engine/run/dataset)."""
    import crafted

    if kind == "yaml":
        out = _yaml_seeds()
        for name, (suffix, text) in crafted.texts().items():
            if suffix == ".yaml":
                if len(text) < 20_000:  # (a 40 KB nesting bomb takes PyYAML seconds to refuse)
                    out.append(("dataset" if name.startswith("dataset") else "env", text.encode()))
        out += [("env", b) for b in _shared_seeds(kind) if b"env_name" in b or b"reward_" in b]
        out += [("agent", b) for b in _shared_seeds(kind) if b"agent_name" in b]
        out += [("dataset", b) for b in _shared_seeds(kind) if b"motions:" in b]
        return out
    base = {"pkl": _pkl_seeds, "txt": _txt_seeds, "bvh": _bvh_seeds, "mjcf": _mjcf_seeds}[kind]() * 3
    if kind == "pkl":
        base += [b for b in crafted.pickles().values() if len(b) < 100_000]
    else:
        base += [
            t.encode() for _, (s, t) in crafted.texts().items() if s == SUFFIX[kind] and len(t) < 100_000
        ]
    return [(kind, b) for b in base + _shared_seeds(kind)]


# ---- mutations ----------------------------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes, pool: List[bytes], text: bool) -> bytes:
    b = bytearray(data)
    gentle = text and rng.random() < 0.5  # half the text cases keep the structure: values and words only
    for _ in range(rng.randint(1, 4)):
        n = len(b)
        op = rng.choice((0, 1, 9, 9, 10)) if gentle else rng.randrange(11 if text else 9)
        if n == 0:
            b += bytes([rng.randrange(256)])
            continue
        i = rng.randrange(n)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(INTERESTING_BYTES)
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del b[i : i + rng.randint(1, 16)]
        elif op == 4:
            j = min(n, i + rng.randint(1, 64))
            b[j:j] = b[i:j]
        elif op == 5:  # repeat a chunk many times (amplification, deep nesting)
            j = min(n, i + rng.randint(1, 8))
            b[i:i] = bytes(b[i:j]) * rng.randint(2, 2000)
        elif op == 6:
            other = rng.choice(pool)
            if other:
                k = rng.randrange(len(other))
                b[i:] = other[k : k + rng.randint(1, 400)] + bytes(b[i:])
        elif op == 7:
            del b[i:]
        elif op == 8:
            b[i : i + 4] = rng.choice(
                (b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00")
            )
        elif op == 9:  # swap a number for an interesting one
            nums = list(_NUMBER.finditer(bytes(b)))
            if nums:
                m = rng.choice(nums)
                b[m.start() : m.end()] = rng.choice(INTERESTING_NUMBERS).encode()
        else:  # swap a word for another word of the file
            toks = list(_TOKEN.finditer(bytes(b)))
            if len(toks) > 1:
                m, other = rng.choice(toks), rng.choice(toks)
                b[m.start() : m.end()] = other.group()
    return bytes(b)


# ---- running ---------------------------------------------------------------------------------------------------


def _loaders() -> Dict[str, Callable[[Path], object]]:
    from mimictools.character.mjcf import load_character
    from mimictools.config.load import load_agent_config, load_engine_config, load_env_config, load_run_config
    from mimictools.motion.formats.dataset_yaml import read_dataset_yaml
    from mimictools.motion.io import load_motion
    from mimictools.motion.retarget.bvh import bvh_forward_kinematics, detect_unit, detect_up_axis, load_bvh

    def bvh(p: Path) -> object:
        clip = load_bvh(p)
        detect_unit(clip.skeleton, detect_up_axis(clip.skeleton))
        return bvh_forward_kinematics(clip)

    def motion(p: Path) -> object:
        from mimictools.motion.checks import inspect_motion

        return inspect_motion(load_motion(p, warn=False))  # what `mimic motion inspect` runs

    return {
        "pkl": motion,
        "txt": motion,
        "bvh": bvh,
        "mjcf": load_character,
        "env": load_env_config,
        "agent": load_agent_config,
        "engine": load_engine_config,
        "run": load_run_config,
        "dataset": read_dataset_yaml,
    }


def run_fuzz(
    kind: str,
    cases: int,
    seconds: Optional[float] = None,
    seed: int = 0,
    work_dir: Optional[Path] = None,
    findings_dir: Optional[Path] = None,
) -> FuzzStats:
    """Fuzz one loader for ``cases`` cases or ``seconds``, whichever ends first."""
    import warnings

    from mimictools.errors import MimicToolsError

    warnings.simplefilter("ignore")
    loaders = _loaders()
    rng = random.Random(seed)
    seed_list = seeds(kind)
    pool = [b for _, b in seed_list]
    work = Path(work_dir or tempfile.mkdtemp(prefix="mimic-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    target = work / f"case{SUFFIX[kind]}"
    stats = FuzzStats(kind)
    start = time.monotonic()
    use_alarm = hasattr(signal, "setitimer")

    def on_alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    try:
        while stats.cases < cases and (seconds is None or time.monotonic() - start < seconds):
            sub, data = rng.choice(seed_list)
            data = mutate(rng, data, pool, text=kind != "pkl")
            target.write_bytes(data)
            stats.cases += 1
            problem = ""
            try:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
                try:
                    loaders[sub](target)
                finally:
                    if use_alarm:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                stats.loaded += 1
            except MimicToolsError as exc:
                msg = str(exc)
                if "MemoryError" in msg or "RecursionError" in msg or "\n" in msg:
                    problem = f"bad message: {msg[:300]!r}"
                else:
                    stats.our_errors += 1
            except _Timeout:
                problem = f"no result after {CASE_TIMEOUT_S:g} s"
            except Exception as exc:  # noqa: BLE001 - a finding
                problem = f"{type(exc).__name__}: {str(exc)[:300]}"
            if problem:
                item = {"kind": kind, "loader": sub, "case": str(stats.cases), "problem": problem}
                if findings_dir is not None:
                    findings_dir.mkdir(parents=True, exist_ok=True)
                    path = findings_dir / f"{kind}-{seed}-{stats.cases}{SUFFIX[kind]}"
                    path.write_bytes(data)
                    item["input"] = str(path)
                stats.findings.append(item)
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)
    stats.seconds = time.monotonic() - start
    return stats


def _limit_memory(gib: float) -> None:
    try:
        import resource

        with open("/proc/self/status") as f:
            vm = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
        limit = vm + int(gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, StopIteration, ValueError):
        pass


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000, help="cases per loader")
    ap.add_argument("--seconds", type=float, default=None, help="time bound per loader")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    ap.add_argument("--memory-gib", type=float, default=2.0, help="address-space headroom (RLIMIT_AS)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    _loaders()["bvh"](_write_tmp(_bvh_seeds()[0], ".bvh"))  # warm up torch before the memory limit
    _limit_memory(args.memory_gib)
    total = 0
    for kind in args.kinds:
        st = run_fuzz(kind, args.cases, args.seconds, args.seed, findings_dir=args.findings)
        total += len(st.findings)
        print(
            f"{kind:5s} {st.cases:7d} cases in {st.seconds:7.1f} s: {st.loaded} loaded, {st.our_errors} our errors, "
            f"{len(st.findings)} findings",
            flush=True,
        )
        for f in st.findings[:20]:
            print("   ", json.dumps(f))
    return 1 if total else 0


def _write_tmp(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
