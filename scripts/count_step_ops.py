"""Count the aten ops one training control step dispatches, split by phase (issue 18: fewer kernels per step).

Usage (repo root; CPU only):
    MIMIC_SHARED=/path/to/shared python scripts/count_step_ops.py [--num-envs 64] [--steps 32] [--index] [--json]

Builds the run ``mimic train`` would build for MimicKit's task: MimicKit's env config and humanoid and the spinkick
clip from ``$MIMIC_SHARED/mimickit`` (default ``<repo>/../shared``; the bundled demo when it is absent), the
``spinkick_fast`` agent, MuJoCo (CPU) at 120 Hz physics, then runs one rollout of ``--steps`` control steps through
`mimictools.rl.runner.Runner`'s own rollout loop, counting every aten op (``TorchDispatchMode``) by phase.

Resets run the GPU way (``reset_by_blend``: every env's reset is computed and blended, so the count does not
depend on how many envs are done) unless ``--index`` (the CPU way). The engine's calls (physics, state reads
and writes, PD targets) are counted apart and left out of the total: on MuJoCo CPU they are numpy/C, on MJWarp
Warp kernels. The count of aten ops on the CPU is a proxy for the GPU kernels of the captured step graphs
(most aten ops are one kernel; views are counted though they launch none).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Dict, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode

REPO = Path(__file__).resolve().parents[1]
ENGINE_METHODS = (
    "step_physics",
    "set_targets",
    "get_state",
    "body_pos",
    "body_rot",
    "contact_forces",
    "set_state_where",
)
# (phase, what it is), in report order; the engine rows are not in the total.
PHASES = (
    ("act.policy", "normalizer, actor forward, sample, log-prob, action scaling"),
    ("act.apply_actions", "clip + reference offset -> PD targets (env)"),
    ("observe.reference", "reference frames: MotionLib interpolation + FK of the new frame(s)"),
    ("observe.sim_state", "simulated state: dtype casts, DoF -> local rotations"),
    ("observe.obs", "observation"),
    ("observe.reward", "reward"),
    ("observe.done", "termination (contacts, pose, time)"),
    ("observe.other", "time, state copies, unstable-speed count, non-finite guard"),
    ("post.episode_stats", "episode returns/lengths"),
    ("post.reset_where", "masked resets (sampling, reference frames, blends, reset obs)"),
    ("post.other", "done mask, obs copy"),
    ("runner.storage", "normalizer record, obs clone, rollout storage writes"),
)


class _OpCounter(TorchDispatchMode):
    """Counts aten ops by the innermost phase label."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: List[str] = ["runner.storage"]
        self.counts: Dict[str, int] = defaultdict(int)
        self.compute: Dict[str, int] = defaultdict(int)  # ops that are not views (views launch no kernel)
        self.ops: Dict[str, Counter] = defaultdict(Counter)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        phase = self.stack[-1]
        self.counts[phase] += 1
        self.compute[phase] += 0 if func.is_view else 1
        self.ops[phase][str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


def _wrap(counter: _OpCounter, obj, name: str, phase: str, under: str = "") -> None:
    """Count ``obj.name``'s ops as ``phase`` (only when called under a phase starting with ``under``)."""
    fn: Callable = getattr(obj, name)

    def wrapped(*a, **k):
        parent = counter.stack[-1]
        counter.stack.append(phase if parent.startswith(under) else parent)
        try:
            return fn(*a, **k)
        finally:
            counter.stack.pop()

    setattr(obj, name, wrapped)


def _configs(shared: Path, num_envs: int):
    from mimictools.app.run import resolve_run

    mk = shared / "mimickit"
    agent = REPO / "data" / "configs" / "spinkick_fast_agent.yaml"
    if mk.is_dir():
        kw = dict(
            motion=mk / "data" / "motions" / "humanoid" / "humanoid_spinkick.pkl",
            char=mk / "data" / "assets" / "humanoid" / "humanoid.xml",
            env_config=mk / "configs" / "deepmimic_humanoid_env.yaml",
            agent_config=agent,
        )
        what = "MimicKit's deepmimic_humanoid_env.yaml, humanoid.xml, humanoid_spinkick.pkl"
    else:
        kw = dict(agent_config=agent)
        what = f"the bundled demo ({mk} not found)"
    cfg, spec = resolve_run(
        engine="mujoco", num_envs=num_envs, device="cpu", overrides=["engine.sim_freq=120"], **kw
    )
    return cfg, spec, what


def count(num_envs: int, steps: int, index: bool) -> dict:
    from mimictools.app.run import build_env
    from mimictools.rl.runner import Runner

    shared = Path(os.environ["MIMIC_SHARED"]) if os.environ.get("MIMIC_SHARED") else REPO.parent / "shared"
    cfg, spec, what = _configs(shared, num_envs)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = build_env(cfg, spec)
    env.reset_by_blend = not index
    agent = dataclasses.replace(cfg.agent, steps_per_iter=steps)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(env, agent, tmp, seed=0, tensorboard=False, save_iter_checkpoints=False)
        runner.iterate()  # first rollout (resets every env) + update: not counted
        c = _OpCounter()
        step = runner._steps[False]
        for name in ENGINE_METHODS:
            _wrap(c, env.engine, name, "engine." + name)
        _wrap(c, step, "_act", "act.policy")
        _wrap(c, env, "apply_actions", "act.apply_actions")
        _wrap(c, step, "_post", "post.other")
        _wrap(c, env, "observe", "observe.other")
        _wrap(c, env, "_advance_reference", "observe.reference", under="observe")
        _wrap(c, env, "read_sim_state", "observe.sim_state", under="observe")
        _wrap(c, env, "_obs", "observe.obs", under="observe")
        _wrap(c, env, "_done", "observe.done", under="observe")
        import mimictools.tasks.deepmimic as dm

        reward_fn = dm.compute_deepmimic_reward
        tracker = step.tracker
        _wrap(c, tracker, "update", "post.episode_stats")
        _wrap(c, env, "reset_where", "post.reset_where")
        dm.compute_deepmimic_reward = lambda *a, **k: _in(c, "observe.reward", reward_fn, *a, **k)
        done_total = 0
        try:
            with c:
                runner._rollout()
        finally:
            dm.compute_deepmimic_reward = reward_fn
        done_total = int((runner.storage.dones != 0).sum())
        env.close()
    per_step = {p: c.counts.get(p, 0) / steps for p, _ in PHASES}
    compute = {p: c.compute.get(p, 0) / steps for p, _ in PHASES}
    engine = {k: v / steps for k, v in c.counts.items() if k.startswith("engine.")}
    return {
        "task": what,
        "num_envs": num_envs,
        "steps": steps,
        "resets": "index (CPU way)" if index else "blend (GPU way)",
        "env_steps_done": done_total,
        "per_step": per_step,
        "total_per_step": sum(per_step.values()),
        "compute_per_step": compute,
        "compute_total_per_step": sum(compute.values()),
        "engine_per_step_not_in_total": engine,
        "top_ops": {p: c.ops[p].most_common(8) for p, _ in PHASES},
        "torch": torch.__version__,
    }


def _in(c: _OpCounter, phase: str, fn, *a, **k):
    c.stack.append(phase)
    try:
        return fn(*a, **k)
    finally:
        c.stack.pop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32, help="control steps counted (one rollout)")
    ap.add_argument("--index", action="store_true", help="reset the CPU way (index the done envs)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--top", action="store_true", help="also print the most frequent ops of each phase")
    a = ap.parse_args()
    r = count(a.num_envs, a.steps, a.index)
    if a.json:
        json.dump(r, sys.stdout, indent=1)
        print()
        return
    print(
        f"{r['task']}; {r['num_envs']} envs, {r['steps']} steps, resets: {r['resets']}, "
        f"done env-steps: {r['env_steps_done']}; torch {r['torch']}"
    )
    print(f"{'phase':22s} {'aten ops/step':>14s} {'non-view':>9s}  what")
    for p, what in PHASES:
        print(f"{p:22s} {r['per_step'][p]:14.1f} {r['compute_per_step'][p]:9.1f}  {what}")
        if a.top:
            print("    " + ", ".join(f"{k} {v / r['steps']:.0f}" for k, v in r["top_ops"][p]))
    print(f"{'total (task + policy)':22s} {r['total_per_step']:14.1f} {r['compute_total_per_step']:9.1f}")
    print(
        "engine calls (not in the total): "
        + ", ".join(f"{k[7:]} {v:.1f}" for k, v in sorted(r["engine_per_step_not_in_total"].items()))
    )


if __name__ == "__main__":
    main()
