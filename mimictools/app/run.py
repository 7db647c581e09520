"""A training run on disk, and how one is resolved from user options.

A run folder holds ``config.yaml`` (the resolved env/agent/engine configs, MimicKit keys),
``run.json`` (what is not in MimicKit's configs: the clip and character actually used, num_envs,
device, seed), ``log.txt``, TensorBoard events and checkpoints (``latest.pt``, ``best.pt``,
``iter_*.pt``). ``mimic train --resume`` and ``mimic eval`` rebuild everything from these files.

Path rule for config files: relative ``motion_file``/``char_file`` resolve against the MimicKit data
root (the folder holding ``data/``): for the bundled demo that is the repository root; for a user's
MimicKit configs it is found by walking up from the env config (``config.load.find_data_root``),
or given with ``--data-root``. ``--motion``/``--char`` on the command line are used as given.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from mimictools.config.load import (
    apply_overrides,
    dump_resolved,
    find_data_root,
    load_run_config,
    load_run_configs,
    resolve_data_path,
)
from mimictools.config.schema import RunConfig
from mimictools.engines.registry import canonical_engine_name, is_gpu_engine
from mimictools.errors import ConfigError, MimicToolsError
from mimictools.io_util import atomic_write_text
from mimictools.paths import bundled_data_dir

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunSpec:
    """Everything a run needs beyond the three MimicKit configs."""

    motion_file: str
    """Clip or dataset actually used (absolute path)."""
    char_file: str
    """Character MJCF actually used (absolute path)."""
    num_envs: int
    """Parallel environments."""
    device: str = "cpu"
    """torch device for the task and PPO ('cpu' or 'cuda')."""
    seed: int = 0
    """Seed of python/numpy/torch RNGs (CPU runs with the same seed are repeatable)."""
    num_threads: int = 0
    """CPU engine worker threads (0 = all cores)."""


def demo_config_files() -> tuple:
    """(env, agent, engine) YAML files of the bundled demo, and the data root they resolve against."""
    cfg_dir = bundled_data_dir() / "configs"
    return cfg_dir / "demo_env.yaml", cfg_dir / "demo_agent.yaml", cfg_dir / "mujoco_engine.yaml"


def resolve_run(
    motion: Optional[Path] = None,
    char: Optional[Path] = None,
    engine: Optional[str] = None,
    num_envs: Optional[int] = None,
    device: str = "cpu",
    seed: Optional[int] = 0,
    env_config: Optional[Path] = None,
    agent_config: Optional[Path] = None,
    engine_config: Optional[Path] = None,
    overrides: Sequence[str] = (),
    data_root: Optional[Path] = None,
    num_threads: int = 0,
) -> tuple:
    """Resolve command-line options into ``(RunConfig, RunSpec)``.

    Any config file not given falls back to the bundled demo's (our humanoid + squat clip, CPU MuJoCo).
    ``engine`` overrides the engine config's ``engine_name``; ``overrides`` are ``--set key=value``.
    """
    demo_env, demo_agent, demo_engine = demo_config_files()
    env_file = Path(env_config) if env_config else demo_env
    cfg = load_run_configs(env_file, agent_config or demo_agent, engine_config or demo_engine)
    if engine:
        name = canonical_engine_name(engine)
        cfg = apply_overrides(cfg, [f"engine.engine_name={name}"], source="--engine")
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))

    if data_root is not None:
        root = Path(data_root)
    elif env_config is None:
        root = bundled_data_dir().parent
    elif motion is not None and char is not None:
        root = Path.cwd()  # nothing left to resolve from the config
    else:
        root = find_data_root(env_file, cfg.env.motion_file if motion is None else cfg.env.char_file)
    motion_file = Path(motion) if motion else resolve_data_path(cfg.env.motion_file, root)
    char_file = Path(char) if char else resolve_data_path(cfg.env.char_file, root)
    for what, p in (("motion", motion_file), ("character", char_file)):
        if not p.exists():
            raise ConfigError(
                f"{what} file not found: {p} (resolved against data root {root}; use --data-root or --{what[:4]})"
            )
    if num_envs is None:  # a GPU engine on the CPU (Warp's CPU device) is as slow as MuJoCo's: the CPU count
        on_gpu = is_gpu_engine(cfg.engine.engine_name) and not str(device).startswith("cpu")
        num_envs = 4096 if on_gpu else 32
    if num_envs < 1:
        raise ConfigError(f"--num-envs must be >= 1, got {num_envs}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    spec = RunSpec(
        motion_file=str(motion_file.resolve()),
        char_file=str(char_file.resolve()),
        num_envs=int(num_envs),
        device=device,
        seed=int(seed),
        num_threads=int(num_threads),
    )
    return cfg, spec


def save_run_files(out_dir: Path, cfg: RunConfig, spec: RunSpec) -> None:
    """Write ``config.yaml`` and ``run.json`` into ``out_dir`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_resolved(cfg, out_dir / CONFIG_FILE, header="resolved config of this run (MimicKit keys)")
    atomic_write_text(out_dir / RUN_FILE, json.dumps(asdict(spec), indent=2) + "\n")


def load_run_files(run_dir: Path) -> tuple:
    """``(RunConfig, RunSpec)`` of an existing run folder."""
    run_dir = Path(run_dir)
    cfg_path, spec_path = run_dir / CONFIG_FILE, run_dir / RUN_FILE
    if not cfg_path.is_file() or not spec_path.is_file():
        raise MimicToolsError(f"{run_dir} is not a mimic run folder (missing {CONFIG_FILE} or {RUN_FILE})")
    cfg = load_run_config(cfg_path)
    try:
        spec = RunSpec(**json.loads(spec_path.read_text()))
    except (ValueError, TypeError) as exc:
        raise MimicToolsError(f"{spec_path}: unreadable run description ({exc})") from None
    return cfg, spec


def build_env(cfg: RunConfig, spec: RunSpec, **overrides):
    """The DeepMimic env of a run; ``overrides`` replace RunSpec fields (e.g. num_envs=1 for eval)."""
    from mimictools.tasks.deepmimic import build_env as _build

    spec = replace(spec, **overrides) if overrides else spec
    return _build(
        cfg.env,
        cfg.engine,
        num_envs=spec.num_envs,
        device=spec.device,
        motion_path=spec.motion_file,
        char_path=spec.char_file,
        num_threads=spec.num_threads,
    )


def make_runner(
    cfg: RunConfig,
    spec: RunSpec,
    run_dir: Path,
    *,
    resume: bool = False,
    torch_threads: int = 1,
    tensorboard: bool = True,
    save_iter_checkpoints: bool = True,
):
    """The env and the `Runner` of a run, configured as ``mimic train`` runs it (the bench and the GPU scripts
    call this too, so that they measure what training does).

    On the CPU torch gets ``torch_threads`` intra-op threads for the task and the PPO update alike (default 1:
    the physics threads own the cores; more make OpenMP spin against them). A fresh run is seeded with
    ``spec.seed``; a resumed one restores its RNG state from ``latest.pt``.
    """
    import torch

    from mimictools.config.load import to_dict
    from mimictools.rl.runner import Runner

    if torch.device(spec.device).type == "cpu":
        torch.set_num_threads(max(1, int(torch_threads)))
    env = build_env(cfg, spec)
    runner = Runner(
        env,
        cfg.agent,
        run_dir,
        seed=None if resume else spec.seed,
        config_record={"config": to_dict(cfg), "run": asdict(spec)},
        tensorboard=tensorboard,
        save_iter_checkpoints=save_iter_checkpoints,
    )
    return env, runner
