#!/usr/bin/env python3
"""One GPU call for the MuJoCo Warp engine: smoke test, benchmarks, profile, capacity check, Warp cache.

Run from the repository root on the GPU host (see ``scripts/gpu/mjwarp_gpu_run.sh``, which sets up
``PYTHONPATH`` and the Warp kernel cache)::

    python3 scripts/gpu/mjwarp_gpu_run.py --out "$OUT"

Stages (each wrapped: a failure is recorded with its traceback and the next stage runs; each is skipped
when the remaining time budget is below its estimate). ``results.json`` is rewritten after every stage,
so a run killed at its time limit still leaves everything finished so far:

1. ``env``        versions, GPU, commit;
2. ``smoke``      build the engine on CUDA (Warp kernel compilation: ~100 s cold), a 1 s standing rollout
                  compared with the MuJoCo CPU engine;
3. ``bench``      ``mimic bench --engine mjwarp --num-envs 1024,4096,8192,16384 --json``;
4. ``task``       DeepMimic env steps/s (engine + obs + reward + done + resets, the runner's way);
5. ``train``      full training loop samples/s at 4096 envs (rollout + PPO update, MimicKit's network sizes),
                  with the rollout/update time split;
6. ``profile``    torch.profiler over 10 control steps (engine only, then the task env): host<->device
                  memcpy events, syncs, top kernels, GPU busy fraction; chrome trace to ``trace.json.gz``;
7. ``capacity``   contact/constraint capacity under falling humanoids, and raw speed vs ``njmax``;
8. ``bench_cpu``  ``mimic bench --engine mujoco`` on this host's CPU cores, for reference;
9. ``pytest``     the GPU-marked engine tests (needs the reference data: ``MIMIC_SHARED``);
10. ``warp_cache`` the compiled kernels as ``warpcache.tgz`` (+ parts) in ``--out``: bring it back and carry
                  ``.warpcache`` next time to skip the ~100 s compilation.

A short table is printed last (also ``summary.txt``). ``--quick --device cpu`` is a dry run on Warp's CPU
device with tiny sizes (how this script is tested without a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
T0 = time.monotonic()


# ---- plumbing ----------------------------------------------------------------------------------------------


class Run:
    def __init__(self, out: Path, budget_s: float):
        self.out = out
        self.budget_s = budget_s
        self.results: Dict[str, Any] = {"started_unix": time.time(), "stages": {}}
        out.mkdir(parents=True, exist_ok=True)

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - T0)

    def save(self) -> None:
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=2, default=str))
        os.replace(tmp, self.out / "results.json")

    def stage(self, name: str, fn: Callable[[], Any], needs_s: float) -> Any:
        rec: Dict[str, Any] = {}
        self.results["stages"][name] = rec
        left = self.remaining()
        if left < needs_s:
            rec.update(status="skipped", reason=f"{left:.0f} s of budget left, stage needs ~{needs_s:.0f} s")
            print(f"[{name}] skipped: {rec['reason']}", flush=True)
            self.save()
            return None
        print(f"[{name}] start ({left:.0f} s of budget left)", flush=True)
        t = time.monotonic()
        try:
            res = fn()
            rec.update(status="ok", seconds=round(time.monotonic() - t, 2), result=res)
            print(f"[{name}] ok in {rec['seconds']} s: {json.dumps(res, default=str)[:1500]}", flush=True)
        except Exception as exc:  # keep going: one stage's failure must not lose the others' results
            rec.update(
                status="error",
                seconds=round(time.monotonic() - t, 2),
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            print(f"[{name}] ERROR: {rec['error']}\n{rec['traceback']}", flush=True)
        self.save()
        return rec.get("result")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def py_cmd(*args: str) -> List[str]:
    return [sys.executable, *args]


def run_json_cmd(cmd: List[str], timeout: float) -> Any:
    """Run a command that prints one JSON document on stdout; stderr goes to our stdout (the log)."""
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(proc.stderr[-4000:])
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]} {proc.stdout[-2000:]}"
        )
    text = proc.stdout
    start = text.find("{")  # tolerate stray lines before the document
    return json.loads(text[start:])


def character(args: argparse.Namespace):
    from mimictools.character.mjcf import load_character
    from mimictools.paths import bundled_humanoid_xml

    return load_character(args.char or bundled_humanoid_xml())


# ---- stages ------------------------------------------------------------------------------------------------


def stage_env(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    info: Dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "warp_cache": os.environ.get("WARP_CACHE_PATH"),
        "warp_cache_files_before": sum(
            len(f) for _, _, f in os.walk(os.environ.get("WARP_CACHE_PATH", "/nonexistent"))
        ),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1), sm=f"{p.major}.{p.minor}")
    for mod in ("warp", "mujoco", "mujoco_warp"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:
            info[mod] = f"missing: {exc}"
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip() or os.environ.get("MIMIC_COMMIT", "unknown")
    except Exception:
        info["commit"] = os.environ.get("MIMIC_COMMIT", "unknown")
    return info


def _teleport(eng, ids, state) -> None:
    from mimictools.engines.base import set_state

    set_state(eng, ids, state)


def _step(eng, targets) -> None:
    eng.set_targets(targets)
    eng.step_physics()


def standing(char, n: int, device: str):
    from mimictools.app.bench import standing_state
    from mimictools.engines.base import SimState

    s = standing_state(char, n)
    return SimState(*(t.to(device) for t in s.fields()))


def stage_smoke(args: argparse.Namespace) -> Dict[str, Any]:
    """Build on the device (compiles Warp kernels), 30 standing steps vs the MuJoCo CPU engine."""
    import torch

    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mjwarp import MjWarpEngine
    from mimictools.engines.mujoco import MuJoCoEngine

    char = character(args)
    t = time.monotonic()
    eng = MjWarpEngine(char, EngineSpec(num_envs=8, device=args.device))
    build_s = time.monotonic() - t
    cpu = MuJoCoEngine(char, EngineSpec(num_envs=8, num_threads=1))
    try:
        start = standing(char, 8, "cpu")
        for e in (eng, cpu):
            _teleport(e, None, start)
        targets = start.dof_pos.float()
        for _ in range(30):
            _step(eng, targets.to(eng.device))
            _step(cpu, targets)
        sync(args.device)
        pos_err = (eng.body_pos().double().cpu() - cpu.body_pos().double()).abs().max().item()
        cf_err = (eng.contact_forces().double().cpu() - cpu.contact_forces().double()).abs().max().item()
        return {
            "first_build_s": round(build_s, 1),
            "max_body_pos_diff_vs_cpu_m": pos_err,
            "max_contact_force_diff_vs_cpu_n": cf_err,
            "root_z_m": float(eng.get_state().root_pos[0, 2]),
            "overflow": eng.overflow_report(),
            "torch_streams_seen": len(eng._torch_streams),
            "graph": "cuda graph" if eng.is_cuda else "warp cpu graph",
            "cuda_ok": bool(torch.cuda.is_available()),
        }
    finally:
        eng.close()
        cpu.close()


def stage_bench(args: argparse.Namespace, run: Run) -> Any:
    out: Dict[str, Any] = {}
    for hz in [x for x in args.bench_sim_freqs.split(",") if x]:
        counts = args.num_envs if hz == args.bench_sim_freqs.split(",")[0] else str(args.train_envs)
        cmd = py_cmd("-m", "mimictools", "bench", "--engine", "mjwarp", "--num-envs", counts, "--json")
        cmd += [
            "--seconds",
            str(args.seconds),
            "--device",
            "cuda:0" if args.device == "cuda" else args.device,
        ]
        cmd += ["--sim-freq", hz] + (["--train"] if args.bench_train else [])
        out[f"{hz}Hz"] = run_json_cmd(cmd, timeout=max(30.0, run.remaining() - 5))
    return out


def stage_bench_cpu(args: argparse.Namespace, run: Run) -> Any:
    threads = str(os.cpu_count() or 1)
    cmd = py_cmd("-m", "mimictools", "bench", "--engine", "mujoco", "--num-envs", args.cpu_num_envs, "--json")
    cmd += ["--seconds", str(min(args.seconds, 3.0)), "--threads", threads]
    return run_json_cmd(cmd, timeout=max(30.0, run.remaining() - 5))


def build_task_env(args: argparse.Namespace, num_envs: int, agent_overrides: List[str] = ()):
    from mimictools.app import run as runmod

    cfg, spec = runmod.resolve_run(
        engine="mjwarp", num_envs=num_envs, device=args.device, seed=0, overrides=list(agent_overrides)
    )
    return cfg, runmod.build_env(cfg, spec)


def _env_actions(env, gen):
    import torch

    from mimictools.rl.action_scale import ActionScale

    scale = ActionScale(env.action_low, env.action_high, device=env.device)
    return lambda: scale.to_env(
        0.05 * torch.randn(env.num_envs, env.action_dim, device=env.device, generator=gen)
    )


def _step_like_runner(env, action):
    """The env contract's step with the masked auto-reset, as `mimictools.rl.step` runs it (no policy)."""
    from mimictools.tasks.env_api import DoneFlag

    obs, rew, done, info = env.step(action)
    env.reset_where(done != int(DoneFlag.NULL), obs)
    return done


def stage_task(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    import torch

    out: Dict[str, Any] = {}
    for n in [int(x) for x in args.num_envs.split(",")]:
        if run.remaining() < 25:
            out[str(n)] = "skipped: budget"
            continue
        _, env = build_task_env(args, n)
        try:
            gen = torch.Generator(device=env.device).manual_seed(0)
            act = _env_actions(env, gen)
            env.reset()
            for _ in range(10):
                _step_like_runner(env, act())
            sync(args.device)
            steps, done_frac = 0, 0.0
            t = time.perf_counter()
            while steps < 5 or time.perf_counter() - t < args.seconds:
                done = _step_like_runner(env, act())
                done_frac += float((done != 0).float().mean()) if steps % 20 == 0 else 0.0
                steps += 1
            sync(args.device)
            dt = time.perf_counter() - t
            eng = getattr(env, "engine", None)
            mem = eng.memory_report() if hasattr(eng, "memory_report") else {}
            out[str(n)] = {
                "env_steps_per_s": n * steps / dt,
                "ms_per_step": 1e3 * dt / steps,
                "steps": steps,
                "done_fraction_sampled": done_frac / max(1, math.ceil(steps / 20)),
                "memory_mib": mem,
            }
        finally:
            env.close()
    return out


MIMICKIT_AGENT = [  # MimicKit's deepmimic_humanoid_ppo_agent.yaml where the bundled demo agent differs
    "agent.model.actor_net=fc_2layers_1024units",
    "agent.model.critic_net=fc_2layers_1024units",
    "agent.actor_optimizer.type=SGD",
    "agent.actor_optimizer.learning_rate=1e-4",
    "agent.critic_optimizer.type=SGD",
    "agent.critic_optimizer.learning_rate=1e-4",
    "agent.test_episodes=32",
    "agent.iters_per_output=100",
    "env.episode_length=10.0",
]


def stage_train(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    """`Runner.iterate` (the training iteration mimic train runs, set up by `make_runner`) for ``train_seconds``."""
    import torch

    from mimictools.app import run as runmod

    cfg, spec = runmod.resolve_run(
        engine="mjwarp", num_envs=args.train_envs, device=args.device, seed=0, overrides=MIMICKIT_AGENT
    )
    with tempfile.TemporaryDirectory() as tmp:
        env, runner = runmod.make_runner(
            cfg, spec, Path(tmp) / "run", tensorboard=False, save_iter_checkpoints=False
        )
        try:
            stats = []
            t = time.perf_counter()
            while time.perf_counter() - t < args.train_seconds:
                stats.append(runner.iterate())
            wall = time.perf_counter() - t
            capture_errors = runner.capture_errors
        finally:
            env.close()
    samples = sum(st.samples for st in stats)
    rates = [st.samples_per_s for st in stats]
    steady = rates[2:] if len(rates) > 4 else rates
    return {
        "num_envs": args.train_envs,
        "iterations": len(stats),
        "samples": samples,
        "wall_s": wall,
        "samples_per_s_overall": samples / wall,
        "samples_per_s_median_iteration": statistics.median(steady) if steady else None,
        "rollout_s": sum(st.rollout_s for st in stats),
        "update_s": sum(st.update_s for st in stats),
        "rollout_samples_per_s": samples / max(sum(st.rollout_s for st in stats), 1e-9),
        "capture_errors": capture_errors,
        "torch_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else None,
        "agent_overrides": MIMICKIT_AGENT,
    }


def _profile_counts(prof, wall_s: float) -> Dict[str, Any]:
    import torch

    names: Dict[str, int] = {}
    kernel_us: Dict[str, float] = {}
    busy_us = 0.0
    for e in prof.events():
        names[e.name] = names.get(e.name, 0) + 1
        dev_type = getattr(e, "device_type", None)
        if dev_type == torch.autograd.DeviceType.CUDA:
            dur = float(e.time_range.elapsed_us())
            kernel_us[e.name] = kernel_us.get(e.name, 0.0) + dur
            busy_us += dur

    def count(pred) -> Dict[str, int]:
        return {k: v for k, v in names.items() if pred(k.lower())}

    top = sorted(kernel_us.items(), key=lambda kv: -kv[1])[:15]
    return {
        "memcpy_htod_dtoh": count(lambda s: "memcpy" in s and ("htod" in s or "dtoh" in s)),
        "memcpy_all": count(lambda s: "memcpy" in s),
        "syncs": count(lambda s: "synchronize" in s),
        "host_reads": count(lambda s: s in ("aten::item", "aten::_local_scalar_dense", "aten::nonzero")),
        "gpu_busy_fraction": busy_us / max(1e-9, wall_s * 1e6),
        "top_kernels_ms": [(k[:80], round(v / 1e3, 3)) for k, v in top],
    }


def stage_profile(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mjwarp import MjWarpEngine

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    n = args.profile_envs
    char = character(args)
    out: Dict[str, Any] = {"num_envs": n, "control_steps": 10}

    eng = MjWarpEngine(char, EngineSpec(num_envs=n, device=args.device))
    try:
        start = standing(char, n, str(eng.device))
        _teleport(eng, None, start)
        targets = start.dof_pos.float()
        ids = torch.arange(0, n, 17, device=eng.device)
        sub = start.index(ids)
        for _ in range(3):
            _step(eng, targets)
        sync(args.device)
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(10):
                _step(eng, targets)
                eng.get_state()
                eng.body_pos().sum()
                eng.contact_forces().sum()
                _teleport(eng, ids, sub)
            sync(args.device)
        out["engine"] = _profile_counts(prof, time.perf_counter() - t)
    finally:
        eng.close()

    _, env = build_task_env(args, n)
    try:
        gen = torch.Generator(device=env.device).manual_seed(0)
        act = _env_actions(env, gen)
        env.reset()
        for _ in range(5):
            _step_like_runner(env, act())
        sync(args.device)
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(10):
                _step_like_runner(env, act())
            sync(args.device)
        out["task_env_eager"] = _profile_counts(prof, time.perf_counter() - t)
        trace = Path(tempfile.mkdtemp()) / "trace.json"
        prof.export_chrome_trace(str(trace))
        with open(trace, "rb") as src, gzip.open(run.out / "trace.json.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        out["trace_mib"] = round((run.out / "trace.json.gz").stat().st_size / 2**20, 2)
        if out["trace_mib"] > 15:
            (run.out / "trace.json.gz").unlink()
            out["trace_mib"] = f"dropped ({out['trace_mib']} MiB > 15)"
    finally:
        env.close()

    # one training iteration as mimic train runs it on a GPU: CUDA-graph replays (mimictools.rl.step)
    from mimictools.app import run as runmod

    cfg, spec = runmod.resolve_run(
        engine="mjwarp", num_envs=n, device=args.device, seed=0, overrides=MIMICKIT_AGENT
    )
    with tempfile.TemporaryDirectory() as tmp:
        env, runner = runmod.make_runner(cfg, spec, Path(tmp), tensorboard=False, save_iter_checkpoints=False)
        try:
            runner.iterate()
            runner.iterate()  # the update graph is captured at the second update
            sync(args.device)
            t = time.perf_counter()
            with profile(activities=acts) as prof:
                st = runner.iterate()
                sync(args.device)
            wall = time.perf_counter() - t
            out["iteration_graphed"] = _profile_counts(prof, wall)
            out["iteration_graphed"].update(
                graphed=runner.capture,
                capture_errors=runner.capture_errors,
                steps=runner.cfg.steps_per_iter,
                rollout_s=st.rollout_s,
                update_s=st.update_s,
                ms_per_step=1e3 * st.rollout_s / runner.cfg.steps_per_iter,
            )
        finally:
            env.close()
    return out


def stage_capacity(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    """Falling humanoids (random poses 1 m up, random targets): peak contacts/constraints; speed vs njmax."""
    import torch

    from mimictools.engines.base import EngineSpec, SimState
    from mimictools.engines.mjwarp import MjWarpEngine
    from mimictools.math.rotations import exp_map_to_quat

    char = character(args)
    n = args.profile_envs
    g = torch.Generator().manual_seed(0)
    start = standing(char, n, "cpu")
    dof = start.dof_pos + 0.6 * (torch.rand(n, char.num_dofs, generator=g, dtype=torch.float64) - 0.5)
    tilt = exp_map_to_quat(1.2 * (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5))
    pos = start.root_pos.clone()
    pos[:, 2] += 0.3
    falling = SimState(pos, tilt, start.root_vel, start.root_ang_vel, dof, start.dof_vel)
    out: Dict[str, Any] = {"num_envs": n}
    eng = MjWarpEngine(char, EngineSpec(num_envs=n, device=args.device))
    try:
        _teleport(eng, None, falling)
        peak_nefc, peak_nacon = 0, 0
        for k in range(90):
            tgt = dof + 0.5 * torch.randn(n, char.num_dofs, generator=g, dtype=torch.float64)
            _step(eng, tgt.float().to(eng.device))
            if k % 10 == 9:
                rep = eng.overflow_report()
                peak_nefc = max(peak_nefc, rep["max_nefc"])
                peak_nacon = max(peak_nacon, rep["nacon"])
        rep = eng.overflow_report()
        out.update(
            peak_max_nefc_per_world=peak_nefc,
            peak_nacon_total=peak_nacon,
            njmax=rep["njmax"],
            naconmax=rep["naconmax"],
            overflow=rep["overflow"],
            fallen_fraction=float((eng.get_state().root_pos[:, 2] < 0.5).float().mean()),
        )
    finally:
        eng.close()
    speed = {}
    for njmax in args.njmax_sweep:
        if run.remaining() < 15:
            break
        eng = MjWarpEngine(char, EngineSpec(num_envs=n, device=args.device), njmax=njmax)
        try:
            s = standing(char, n, "cpu")
            _teleport(eng, None, s)
            eng.set_targets(s.dof_pos.float().to(eng.device))
            for _ in range(3):
                eng.step_physics()
            sync(args.device)
            steps, t = 0, time.perf_counter()
            while steps < 3 or time.perf_counter() - t < min(args.seconds, 3.0):
                eng.step_physics()
                steps += 1
            sync(args.device)
            speed[str(njmax)] = n * eng.substeps * steps / (time.perf_counter() - t)
        finally:
            eng.close()
    out["raw_physics_steps_per_s_by_njmax"] = speed
    return out


def stage_pytest(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    """The GPU-marked tests (MJWarp parity, engine contract, CUDA graphs); those needing ../shared skip
    without it (set MIMIC_SHARED to a copy)."""
    # -o addopts=: serially, without pyproject's `-n auto` (pytest-xdist need not be on the GPU machine)
    cmd = py_cmd("-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=", "-m", "gpu", "-rs")
    cmd += [
        "tests/rl/test_rl_step.py",
        "tests/tasks/test_task_deepmimic_cuda.py",
        "tests/rl/test_rl_ppo.py",
        "tests/engines/test_mjwarp_parity.py",
        "tests/engines/test_engine_contract.py",
        "-k",
        "mjwarp or cuda",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=max(30.0, run.remaining() - 20)
    )
    sys.stdout.write(proc.stdout[-6000:] + proc.stderr[-2000:])
    return {"returncode": proc.returncode, "tail": proc.stdout[-1500:]}


def stage_warp_cache(args: argparse.Namespace, run: Run) -> Dict[str, Any]:
    cache = os.environ.get("WARP_CACHE_PATH")
    if not cache or not Path(cache).is_dir():
        return {"skipped": f"no cache dir {cache}"}
    tgz = run.out / "warpcache.tgz"
    # Warp looks modules up by hash folder and loads the compiled binary + meta; sources are not needed
    subprocess.run(
        [
            "tar",
            "czf",
            str(tgz),
            "--exclude=*.cu",
            "--exclude=*.cpp",
            "-C",
            str(Path(cache).parent),
            Path(cache).name,
        ],
        check=True,
        timeout=120,
    )
    size = tgz.stat().st_size
    parts: List[str] = []
    limit = 15 * 2**20
    if size > limit:
        with open(tgz, "rb") as f:
            i = 0
            while True:
                chunk = f.read(limit)
                if not chunk:
                    break
                if i >= 3:  # at most 8 files come back: results, summary, log, trace + 3 parts + spare
                    for p in parts:
                        (run.out / p).unlink()
                    tgz.unlink()
                    return {"skipped": f"cache archive {size / 2**20:.1f} MiB is too large to bring back"}
                name = f"warpcache.tgz.part{i}"
                (run.out / name).write_bytes(chunk)
                parts.append(name)
                i += 1
        tgz.unlink()
    return {
        "archive_mib": round(size / 2**20, 2),
        "files": parts or ["warpcache.tgz"],
        "restore": "cat warpcache.tgz.part* > warpcache.tgz (if split); tar xzf warpcache.tgz  # -> .warpcache/",
    }


# ---- summary -----------------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if x >= 1e6:
            return f"{x / 1e6:.2f} M"
        if x >= 1e3:
            return f"{x / 1e3:.1f} K"
        return f"{x:.3g}"
    return str(x)


def summary(run: Run) -> str:
    st = run.results["stages"]
    lines = []
    env = (st.get("env") or {}).get("result") or {}
    lines.append(
        f"GPU {env.get('gpu', '?')} | torch {env.get('torch', '?')} | warp {env.get('warp', '?')} | "
        f"mujoco_warp {env.get('mujoco_warp', '?')} | commit {str(env.get('commit', '?'))[:12]}"
    )
    lines.append("stages: " + ", ".join(f"{k}={v.get('status')}" for k, v in st.items()))
    smoke = (st.get("smoke") or {}).get("result") or {}
    if smoke:
        lines.append(
            f"first engine build (Warp compile) {smoke.get('first_build_s')} s; 1 s standing vs CPU engine: "
            f"body pos diff {smoke.get('max_body_pos_diff_vs_cpu_m', float('nan')):.2e} m"
        )
    task = (st.get("task") or {}).get("result") or {}
    lines.append(
        f"{'Hz':>4} {'envs':>6} {'raw phys/s':>11} {'ctrl/s':>9} {'task env/s':>11} {'rollout/s':>10} "
        f"{'train/s':>9} {'upd s':>6} {'peak MiB':>9}"
    )
    for hz, doc in ((st.get("bench") or {}).get("result") or {}).items():
        for r in (doc or {}).get("results") or [] if isinstance(doc, dict) else []:
            t = task.get(str(r["num_envs"]))
            tv = t.get("env_steps_per_s") if isinstance(t, dict) and hz.startswith("240") else None
            lines.append(
                f"{hz:>4} {r['num_envs']:>6} {_fmt(r['raw_physics_steps_per_s']):>11} "
                f"{_fmt(r['control_steps_per_s']):>9} {_fmt(tv) if tv else '-':>11} "
                f"{_fmt(r.get('rollout_samples_per_s') or 0):>10} {_fmt(r.get('samples_per_s') or 0):>9} "
                f"{r.get('update_s_per_iter') or 0:>6.3f} {_fmt(r.get('peak_memory_mb') or 0):>9}"
            )
    tr = (st.get("train") or {}).get("result") or {}
    if tr:
        lines.append(
            f"train @ {tr['num_envs']} envs: {_fmt(tr['samples_per_s_overall'])} samples/s overall, "
            f"{_fmt(tr['samples_per_s_median_iteration'] or 0)} median per iteration; rollout "
            f"{tr['rollout_s']:.1f} s / update {tr['update_s']:.1f} s"
        )
    prof = (st.get("profile") or {}).get("result") or {}
    for key in ("engine", "task_env_eager", "iteration_graphed"):
        p = prof.get(key)
        if p:
            lines.append(
                f"profile {key}: HtoD/DtoH memcpy events {sum(p['memcpy_htod_dtoh'].values())}, "
                f"syncs {p['syncs']} (1 cudaDeviceSynchronize is the harness's), host reads {p['host_reads']}, "
                f"GPU busy {p['gpu_busy_fraction']:.0%}"
                + (
                    f", {p['ms_per_step']:.2f} ms/step, capture errors {p['capture_errors']}"
                    if "ms_per_step" in p
                    else ""
                )
            )
    cap = (st.get("capacity") or {}).get("result") or {}
    if cap:
        lines.append(
            f"capacity: peak nefc/world {cap.get('peak_max_nefc_per_world')} of njmax {cap.get('njmax')}, "
            f"overflow {cap.get('overflow')}; raw phys/s by njmax {{"
            + ", ".join(f"{k}: {_fmt(v)}" for k, v in cap.get("raw_physics_steps_per_s_by_njmax", {}).items())
            + "}"
        )
    cpu = ((st.get("bench_cpu") or {}).get("result") or {}).get("results") or []
    for r in cpu:
        lines.append(
            f"mujoco CPU {r['num_envs']} envs x {r['num_threads']} threads: raw {_fmt(r['raw_physics_steps_per_s'])} phys/s"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run on Warp's CPU device")
    ap.add_argument("--num-envs", default="1024,4096,8192,16384")
    ap.add_argument("--cpu-num-envs", default="16,128")
    ap.add_argument("--seconds", type=float, default=5.0, help="wall time per measurement")
    ap.add_argument("--train-envs", type=int, default=4096)
    ap.add_argument("--train-seconds", type=float, default=75.0)
    ap.add_argument("--profile-envs", type=int, default=4096)
    ap.add_argument("--njmax-sweep", default="64,96,128")
    ap.add_argument(
        "--budget-s", type=float, default=510.0, help="stop starting stages after this (the call is 600 s)"
    )
    ap.add_argument(
        "--char", type=Path, default=None, help="character MJCF (default: bundled data/humanoid.xml)"
    )
    ap.add_argument("--skip", default="", help="comma-separated stages to skip")
    ap.add_argument("--bench-train", action="store_true", help="mimic bench --train (training loop too)")
    ap.add_argument(
        "--bench-sim-freqs",
        default="240",
        help="physics rates to bench; all env counts at the first, train-envs at the others",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes (dry run of the script itself)")
    args = ap.parse_args(argv)
    args.njmax_sweep = [int(x) for x in args.njmax_sweep.split(",") if x]
    if args.quick:
        args.num_envs, args.cpu_num_envs, args.seconds = "4,8", "4", 1.0
        args.train_envs, args.train_seconds, args.profile_envs = 8, 10.0, 8
        args.njmax_sweep = args.njmax_sweep[:2]
    os.environ.setdefault("WARP_CACHE_PATH", str(REPO / ".warpcache"))
    sys.path.insert(0, str(REPO))
    run = Run(args.out, args.budget_s)
    run.results["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    skip = set(filter(None, args.skip.split(",")))

    stages = [
        ("env", lambda: stage_env(args), 1),
        ("smoke", lambda: stage_smoke(args), 150),
        ("pytest", lambda: stage_pytest(args, run), 60),
        ("bench", lambda: stage_bench(args, run), 60),
        ("task", lambda: stage_task(args, run), 40),
        ("train", lambda: stage_train(args, run), args.train_seconds + 30),
        ("profile", lambda: stage_profile(args, run), 30),
        ("capacity", lambda: stage_capacity(args, run), 30),
        ("bench_cpu", lambda: stage_bench_cpu(args, run), 25),
        ("warp_cache", lambda: stage_warp_cache(args, run), 0),
    ]
    env_info = None
    for name, fn, needs in stages:
        if name in skip:
            run.results["stages"][name] = {"status": "skipped", "reason": "--skip"}
            continue
        if name == "warp_cache":  # always try to bring the compiled kernels back, budget or not
            needs = -1e9
        res = run.stage(name, fn, needs)
        if name == "env":
            env_info = res or {}
            if args.device == "cuda" and not env_info.get("cuda_available"):
                print("torch sees no CUDA GPU: only the warp_cache stage runs", flush=True)
                skip |= {s for s, _, _ in stages if s != "warp_cache"}
    text = summary(run)
    (args.out / "summary.txt").write_text(text + "\n")
    print("\n" + "=" * 100 + "\n" + text, flush=True)
    with contextlib.suppress(Exception):
        run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
