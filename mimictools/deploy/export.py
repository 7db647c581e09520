"""``mimic export``: a checkpoint -> ``policy.onnx`` + ``policy.json`` (the contract) + ``policy.motion.npz``.

The run folder next to the checkpoint (``config.yaml``, ``run.json``) says which character, clip, rates and
observation the policy was trained with; the contract (`mimictools.deploy.contract`, docs/deploy.md)
writes them down for a runner that has none of mimic's code (`mimictools.deploy.runner_reference`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from mimictools.errors import ConfigError, MimicToolsError
from mimictools.io_util import atomic_open, atomic_write_text

__all__ = ["ExportResult", "build_contract", "export_policy", "git_commit", "require_onnx", "sha256_file"]


@dataclass(frozen=True)
class ExportResult:
    """What `export_policy` wrote."""

    onnx_path: Path
    contract_path: Path
    motion_path: Path
    contract: Dict[str, Any]


def require_onnx() -> None:
    """Raise a one-line error naming the extra to install when onnx is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise MimicToolsError(
            "mimic export needs the optional package onnx: pip install 'mimictools[export]'"
        ) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit() -> Optional[str]:
    """The commit of the mimictools source tree this runs from (None outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=str(here),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def _paths(out: Path) -> tuple:
    out = Path(out)
    if out.suffix != ".onnx":
        raise ConfigError(f"-o/--out {out}: the policy file must end in .onnx")
    stem = out.with_suffix("")
    return out, Path(str(stem) + ".json"), Path(str(stem) + ".motion.npz")


def build_contract(
    cfg, spec, char, sim, motion, ckpt: Path, state: Dict[str, Any], onnx_name: str, motion_name: str
) -> Dict[str, Any]:
    """The contract dict (see docs/deploy.md) of a run's configs, character, simulation model and clip."""
    from mimictools import __version__
    from mimictools.deploy.contract import (
        CONTRACT_FORMAT,
        CONTRACT_VERSION,
        actuator_table,
        joint_table,
        observation_layout,
    )
    from mimictools.deploy.onnx_graph import INPUT_NAME, OPSET, OUTPUT_NAME
    from mimictools.tasks.actions import action_bounds
    from mimictools.tasks.observations import ObsConfig, deepmimic_obs_size

    env, eng = cfg.env, cfg.engine
    obs_cfg = ObsConfig.from_env_config(env)
    obs_size = deepmimic_obs_size(obs_cfg, char.num_bodies, char.num_dofs, len(env.key_bodies))
    low, high = action_bounds(char, zero_center_action=env.zero_center_action)
    init_pose = [float(v) for v in env.init_pose] if env.init_pose else None
    return {
        "format": CONTRACT_FORMAT,
        "version": CONTRACT_VERSION,
        "mimic": {"version": __version__, "commit": git_commit()},
        "onnx": {
            "file": onnx_name,
            "opset": OPSET,
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "input_shape": ["batch", int(obs_size)],
            "output_shape": ["batch", int(char.num_dofs)],
            "dtype": "float32",
            "includes": [
                f"observation normaliser (clip +-{float(state['obs_normalizer']['clip']):g})",
                "actor mean",
                "action scaling to [low, high]",
                "clipping to [low, high]",
            ],
        },
        "checkpoint": {
            "file": str(ckpt),
            "sha256": sha256_file(ckpt),
            "iteration": int(state.get("iteration", -1)),
            "samples": int(state.get("samples", -1)),
            "trained_engine": eng.engine_name,
        },
        "character": {
            "file": str(Path(char.source).resolve()),
            "sha256": sha256_file(Path(char.source)),
            "name": char.name,
            "bodies": list(char.body_names),
            "parents": [int(p) for p in char.parents],
            "bodies_with_geoms": [char.body_names[b] for b in sorted({g.body for g in char.geoms})],
        },
        "motion": {
            "clip": motion_name,
            "source": str(Path(spec.motion_file).resolve()),
            "sha256": sha256_file(Path(spec.motion_file)),
            "fps": float(motion.fps),
            "num_frames": int(motion.num_frames),
            "loop_mode": int(motion.loop_mode),
            "length_s": float((motion.num_frames - 1) / float(motion.fps)),
            "frame_layout": "root_pos (3, m) | root_rot exp map (3) | DoFs in action order",
        },
        "rates": {
            "control_hz": float(eng.control_freq),
            "physics_hz": float(eng.sim_freq),
            "substeps": int(eng.sim_freq // eng.control_freq),
            "integrator": "implicitfast",
        },
        "actions": {
            "size": int(char.num_dofs),
            "kind": "PD position targets, motion DoF space (hinge: angle; spherical: exp map of the joint rotation)",
            "unit": "rad",
            "names": list(char.dof_names),
            "low": [float(v) for v in low],
            "high": [float(v) for v in high],
        },
        "joints": joint_table(char),
        "actuators": actuator_table(char, sim),
        "pd_law": "torque = clamp(kp * (target - q) - kd * qdot, -torque_limit, torque_limit), per actuator; "
        "for a hinge triple the exp-map target is first turned into the three hinge angles",
        "observation": {
            "size": int(obs_size),
            "global_obs": bool(env.global_obs),
            "root_height_obs": bool(env.root_height_obs),
            "enable_phase_obs": bool(env.enable_phase_obs),
            "num_phase_encoding": int(env.num_phase_encoding),
            "enable_tar_obs": bool(env.enable_tar_obs),
            "tar_obs_steps": [int(s) for s in env.tar_obs_steps],
            "key_bodies": list(env.key_bodies),
            "layout": observation_layout(obs_cfg, char, env.key_bodies),
        },
        "termination": {
            "episode_length_s": float(env.episode_length),
            "enable_early_termination": bool(env.enable_early_termination),
            "contact_bodies": list(env.contact_bodies),
            "contact_force_threshold_n": 0.1,
            "pose_termination": bool(env.pose_termination),
            "pose_termination_dist_m": float(env.pose_termination_dist),
            "global_obs": bool(env.global_obs),
            "track_root": bool(env.enable_tar_obs and env.global_obs),
        },
        "ground": {"friction": [1.0, 0.05, 0.05], "condim": 3, "height_m": 0.0},
        "default_pose": {
            "frame": init_pose,
            "frame_layout": "root_pos (3) | root_rot exp map (3) | DoFs in action order",
            "what": "the env config's init_pose (where the character is placed before the first reset); "
            "episodes start from the reference clip instead (reference state initialisation)",
        },
    }


def export_policy(checkpoint: Path, out: Path, motion: Optional[Path] = None) -> ExportResult:
    """Export ``checkpoint`` (its run folder must hold config.yaml and run.json) to ``out`` (``*.onnx``),
    with the contract ``<stem>.json`` and the reference clip ``<stem>.motion.npz`` beside it."""
    require_onnx()
    from mimictools.app import run as runlib
    from mimictools.app.evaluate import resolve_checkpoint
    from mimictools.character.mjcf import load_character
    from mimictools.deploy.onnx_graph import build_policy_graph
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.mjcf_build import build_sim_model
    from mimictools.motion.io import expand_motion_paths, load_motion, resolve_clip_fps
    from mimictools.rl.checkpoint import load_checkpoint, load_policy

    ckpt = resolve_checkpoint(Path(checkpoint))
    onnx_path, json_path, motion_path = _paths(out)
    cfg, spec = runlib.load_run_files(ckpt.parent)
    if cfg.env.action_ref_offset:
        from mimictools.errors import NotSupportedError

        raise NotSupportedError(
            f"{ckpt}: this run's actions are offsets from the reference pose (env action_ref_offset, the demo's "
            "setting); the deployment contract does not describe that yet: export a run trained with "
            "--set env.action_ref_offset=false"
        )
    if motion is not None:
        if not Path(motion).is_file():
            raise ConfigError(f"--motion: {motion} is not a clip file")
        from dataclasses import replace

        spec = replace(spec, motion_file=str(Path(motion).resolve()))
    for what, p in (("character", spec.char_file), ("clip", spec.motion_file)):
        if not Path(p).is_file():
            raise ConfigError(f"the run's {what} {p} is not a file (run.json); fix run.json or pass --motion")
    clips = expand_motion_paths(Path(spec.motion_file))
    if len(clips) != 1:
        raise ConfigError(
            f"{spec.motion_file}: the contract holds one reference clip, this is a set of {len(clips)}; "
            "pass --motion CLIP"
        )
    char = load_character(spec.char_file)
    clip = load_motion(
        clips[0][0], char=char, fps=resolve_clip_fps(spec.motion_file, spec.motion_fps, given=False)
    )
    if not np.isfinite(clip.frames).all():
        raise MimicToolsError(f"{clips[0][0]}: the clip has NaN/inf values; a runner cannot track it")
    policy = load_policy(ckpt)
    state = load_checkpoint(ckpt, required=("obs_normalizer",))
    sim = build_sim_model(
        char,
        EngineSpec(
            num_envs=1, control_freq=float(cfg.engine.control_freq), sim_freq=float(cfg.engine.sim_freq)
        ),
    )
    contract = build_contract(cfg, spec, char, sim, clip, ckpt, state, onnx_path.name, motion_path.name)
    if int(policy.obs_normalizer.dim) != contract["observation"]["size"]:
        raise MimicToolsError(
            f"{ckpt}: the policy takes {policy.obs_normalizer.dim} observations, the run's env gives "
            f"{contract['observation']['size']}"
        )
    meta = {
        "mimic_contract": json_path.name,
        "obs_dim": contract["observation"]["size"],
        "action_dim": contract["actions"]["size"],
        "mimic_version": contract["mimic"]["version"],
        "mimic_commit": contract["mimic"]["commit"] or "",
        "checkpoint_sha256": contract["checkpoint"]["sha256"],
    }
    model = build_policy_graph(policy, meta)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(onnx_path, "wb") as f:
        f.write(model.SerializeToString())
    contract["onnx"]["sha256"] = sha256_file(onnx_path)
    with atomic_open(motion_path, "wb") as f:
        np.savez(
            f,
            frames=np.asarray(clip.frames, dtype=np.float64),
            fps=np.float64(clip.fps),
            loop_mode=np.int64(clip.loop_mode),
        )
    atomic_write_text(json_path, json.dumps(contract, indent=2) + "\n")
    return ExportResult(onnx_path, json_path, motion_path, contract)
