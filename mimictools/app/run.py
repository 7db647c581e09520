"""A training run on disk, and how one is resolved from user options.

A run folder holds ``config.yaml`` (the resolved env/agent/engine configs, MimicKit keys),
``run.json`` (what is not in MimicKit's configs: the clip and character actually used, the frame rate
of robot .csv clips (``--fps``), num_envs, device, seed), ``log.txt``, TensorBoard events and checkpoints (``latest.pt``, ``best.pt``,
``iter_*.pt``). ``mimic train --resume`` and ``mimic eval`` rebuild everything from these files.

Path rule for config files: relative ``motion_file``/``char_file`` resolve against the MimicKit data
root (the folder holding ``data/``): for the bundled demo that is the repository root; for a user's
MimicKit configs it is found by walking up from the env config (``config.load.find_data_root``),
or given with ``--data-root``. ``--motion``/``--char`` on the command line are used as given.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

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
    motion_fps: Optional[float] = None
    """Frame rate (Hz) of the clips whose files store none (robot .csv: ``--fps``); None when no clip needs one."""


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
    report: Optional[Callable[[str], None]] = None,
    fps: Optional[float] = None,
) -> tuple:
    """Resolve command-line options into ``(RunConfig, RunSpec)``.

    Any config file not given falls back to the bundled demo's (our humanoid + squat clip, CPU MuJoCo).
    ``engine`` overrides the engine config's ``engine_name``; ``overrides`` are ``--set key=value``.
    Task settings that do not fit the character and that the user did not name (key/contact bodies,
    ``joint_err_w``, ``init_pose``) are derived from it (`mimictools.tasks.defaults`); ``report`` gets one
    line per derived value. The returned config's ``char_file``/``motion_file`` are the files used.
    ``fps``: ``--fps``, the frame rate of robot .csv clips (`mimictools.motion.io.resolve_clip_fps` checks it
    and the spec records it).
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
    from mimictools.motion.io import resolve_clip_fps

    motion_fps = resolve_clip_fps(motion_file, fps)
    cfg = _fit_to_character(cfg, char_file, motion_file, env_config, overrides, report)
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
        motion_fps=motion_fps,
    )
    return cfg, spec


def _fit_to_character(cfg, char_file, motion_file, env_config, overrides, report) -> RunConfig:
    from mimictools.character.mjcf import load_character
    from mimictools.config.load import read_yaml
    from mimictools.tasks.defaults import fit_env_to_character

    named = list(read_yaml(env_config)) if env_config is not None else []
    env, notes = fit_env_to_character(cfg.env, load_character(char_file), named + list(overrides))
    for note in notes:
        if report is not None:
            report(note)
    env = replace(env, char_file=str(Path(char_file).resolve()), motion_file=str(Path(motion_file).resolve()))
    return replace(cfg, env=env)


MAX_SEED = 2**32 - 1
"""Largest seed (numpy's seeds are 32-bit)."""
MAX_NUM_ENVS = 1 << 20
RUNS_DIR = Path("runs")
"""Where `mimic train` puts a run without --out-dir, and where --resume without one looks."""


def check_train_options(
    seed: int, minutes: Optional[float], max_samples: Optional[int], num_envs: Optional[int], threads: int
) -> None:
    """Range checks of a training run's options, before anything is loaded (ConfigError, one line)."""
    import math

    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed {seed}: must be in [0, {MAX_SEED}] (2**32 - 1)")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise ConfigError(f"--minutes {minutes}: must be a finite number > 0")
    if max_samples is not None and max_samples <= 0:
        raise ConfigError(f"--max-samples {max_samples}: must be > 0")
    if num_envs is not None and not 1 <= num_envs <= MAX_NUM_ENVS:
        raise ConfigError(f"--num-envs {num_envs}: must be in [1, {MAX_NUM_ENVS:,}]")
    if threads < 0:
        raise ConfigError(f"--threads {threads}: must be >= 0 (0 = all cores)")


def latest_run(root: Path = RUNS_DIR) -> Path:
    """The run folder under ``root`` whose ``latest.pt`` was written last (``--resume`` without --out-dir)."""
    runs = sorted(
        (p for p in Path(root).glob("*") if (p / "latest.pt").exists()),
        key=lambda p: (p / "latest.pt").stat().st_mtime,
    )
    if not runs:
        raise MimicToolsError(f"--resume without --out-dir: no run with latest.pt under ./{root}")
    return runs[-1]


def new_run_dir(spec: RunSpec, out_dir: Optional[Path], stamp: str) -> Path:
    """The folder of a new run: ``out_dir``, or ``runs/<clip>-<stamp>``; refused when it already holds one."""
    run_dir = Path(out_dir) if out_dir else RUNS_DIR / f"{Path(spec.motion_file).stem}-{stamp}"
    if (run_dir / "latest.pt").exists():
        raise MimicToolsError(
            f"{run_dir} already holds a run: pass --resume to continue it, or another --out-dir"
        )
    return run_dir


def check_resume(spec: RunSpec, num_envs: Optional[int], changes_given: bool) -> None:
    """A resumed run continues with its own files: no new clip/character/configs/overrides, same env count."""
    if changes_given:
        raise MimicToolsError(
            "--resume continues a run with its own config.yaml/run.json; drop --motion/--char/--fps/--*-config/--set"
        )
    if num_envs is not None and num_envs != spec.num_envs:
        raise MimicToolsError(
            f"--resume: the run used --num-envs {spec.num_envs}; resuming with another count would change the numbers"
        )


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
    from mimictools.io_util import read_input_text

    try:
        raw = json.loads(read_input_text(spec_path, MimicToolsError, what="JSON"))
        spec = RunSpec(**raw)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MimicToolsError(f"{spec_path}: unreadable run description ({type(exc).__name__})") from None
    for f in fields(RunSpec):  # a hand-edited run.json must not fail later, deep inside training
        value = getattr(spec, f.name)
        if f.name == "motion_fps":  # absent in run folders written before it existed: None
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
            ):
                raise MimicToolsError(f"{spec_path}: motion_fps must be null or a number > 0, got {value!r}")
            continue
        want = (str,) if f.type in ("str", str) else (int,)
        if not isinstance(value, want) or isinstance(value, bool):
            raise MimicToolsError(
                f"{spec_path}: {f.name} must be {want[0].__name__}, got {type(value).__name__}"
            )
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
        motion_fps=spec.motion_fps,
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

    In a process group (torchrun, ``--nproc``; `mimictools.rl.distributed`) each rank builds its own
    ``spec.num_envs`` envs on its own device: "cuda" becomes ``cuda:<LOCAL_RANK>`` (the MJWarp engine is pinned
    there), and a CPU engine left at "all cores" gets its share of the cores (cores / local ranks).
    """
    import torch

    from mimictools.config.load import to_dict
    from mimictools.rl import distributed
    from mimictools.rl.runner import Runner
    from mimictools.system import available_cpus

    record = {"config": to_dict(cfg), "run": asdict(spec)}  # the run's spec, not one rank's device
    ranks = distributed.current()
    if ranks.distributed:
        threads = spec.num_threads or max(1, available_cpus() // ranks.local_world_size)
        spec = replace(spec, device=distributed.rank_device(spec.device, ranks), num_threads=threads)
    if torch.device(spec.device).type == "cpu":
        torch.set_num_threads(max(1, int(torch_threads)))
    env = build_env(cfg, spec)
    check_training_memory(cfg.agent, spec.num_envs, env.obs_dim, env.action_dim, spec.device)
    runner = Runner(
        env,
        cfg.agent,
        run_dir,
        seed=None if resume else spec.seed,
        config_record=record,
        tensorboard=tensorboard,
        save_iter_checkpoints=save_iter_checkpoints,
    )
    return env, runner


def training_memory_bytes(agent, num_envs: int, obs_dim: int, action_dim: int) -> int:
    """Rough upper estimate of what PPO allocates (bytes): the rollout (obs, actions, means, log-probs,
    rewards, values, returns, advantages, dones) x 3 for minibatch copies, and the actor and critic with
    their gradients and two optimizer moments (float32)."""
    from mimictools.config.schema import mlp_hidden_sizes

    per_sample = obs_dim + 2 * action_dim + 8
    rollout = agent.steps_per_iter * num_envs * per_sample * 4 * 3

    def params(net: str, inp: int, out: int) -> int:
        sizes = (inp,) + mlp_hidden_sizes(net) + (out,)
        return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))

    nets = params(agent.model.actor_net, obs_dim, action_dim) + params(agent.model.critic_net, obs_dim, 1)
    return int(rollout + nets * 4 * 4)


def check_training_memory(agent, num_envs: int, obs_dim: int, action_dim: int, device: str) -> None:
    """ConfigError when PPO's estimated memory exceeds the machine's (RAM, or GPU memory on cuda)."""
    import os

    from mimictools.errors import ConfigError

    need = training_memory_bytes(agent, num_envs, obs_dim, action_dim)
    have = 0
    where = "RAM"
    if device.startswith("cuda"):
        import torch

        have, where = int(torch.cuda.mem_get_info()[1]), "GPU memory"
    else:
        try:
            have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            return
    if need > have:
        raise ConfigError(
            f"training would need ~{need / 2**30:.1f} GiB (steps_per_iter {agent.steps_per_iter} x {num_envs} envs x "
            f"obs {obs_dim}, networks {agent.model.actor_net}/{agent.model.critic_net}) but the {where} is "
            f"{have / 2**30:.1f} GiB; lower --num-envs, steps_per_iter or the network size"
        )
