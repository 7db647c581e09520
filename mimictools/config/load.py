"""Load MimicKit YAML configs into the frozen dataclasses of `mimictools.config.schema`.

Rules (never silently ignore a key):

- A key we do not know -> `ConfigError` naming the file, the key and the nearest valid keys.
- A real MimicKit key or value for a feature we do not build (``control_mode: torque``,
  ``actor_std_type: VARIABLE``, ``agent_name: AMP``, MimicKit's newer single-``optimizer`` layout...)
  -> `NotSupportedError` saying so.
- Numbers are coerced: PyYAML reads ``1e-4`` (no dot) as the *string* "1e-4"; numeric strings are
  accepted for int/float fields, an int field accepts an integral float (``1e8``). Booleans must be
  YAML booleans. Lists become tuples.
- Keys missing from a file take the MimicKit humanoid defaults of the schema.

``--set`` overrides (`apply_overrides`) parse each value as a YAML scalar/list and go through the
same checks. `dump_resolved` writes a config back as YAML (atomically) with MimicKit's key layout,
so a run records what it used and the file loads again.

Paths inside configs (``motion_file``, ``char_file``) are relative to the MimicKit data root; see
`resolve_data_path` and `find_data_root`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import yaml

from mimictools.config.schema import (
    AgentConfig,
    EngineConfig,
    EnvConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    mlp_hidden_sizes,
)
from mimictools.engines.registry import (
    ENGINE_ALIASES,
    SOLVER_TOLERANCE_RULE,
    canonical_engine_name,
    engine_names,
    solver_tolerance_ok,
)
from mimictools.errors import ConfigError, NotSupportedError
from mimictools.io_util import atomic_write_text, read_input_text, short_repr

__all__ = [
    "apply_overrides",
    "config_from_dict",
    "dump_resolved",
    "find_data_root",
    "load_agent_config",
    "load_engine_config",
    "load_env_config",
    "load_run_config",
    "load_run_configs",
    "read_yaml",
    "resolve_data_path",
    "to_dict",
]

C = TypeVar("C")
PathLike = Union[str, "os.PathLike[str]"]

_SECTIONS = ("env", "agent", "engine")

# Real MimicKit keys of features not built here, per config class -> why.
_UNSUPPORTED_KEYS: Dict[type, Dict[str, str]] = {
    AgentConfig: {
        k: "MimicKit's newer single-optimizer agent layout (optimizer, update_epochs, batch_size, "
        "critic_loss_weight) is not supported yet; use actor_optimizer/critic_optimizer, "
        "actor_epochs/critic_epochs and actor_batch_size/critic_batch_size"
        for k in ("optimizer", "update_epochs", "batch_size", "critic_loss_weight")
    },
}

_MIMICKIT_ENVS = (
    "amp",
    "ase",
    "add",
    "char",
    "task_location",
    "task_steering",
    "view_motion",
    "static_objects",
)
_MIMICKIT_AGENTS = ("AMP", "ASE", "ADD", "AWR", "BC", "DM", "HRL")
_MIMICKIT_ONLY_ENGINES = ("isaac_lab", "warp", "ovphysx")
_CONTROL_MODES_NOT_BUILT = ("none", "vel", "torque", "pd_explicit")
_STD_TYPES_NOT_BUILT = ("CONSTANT", "VARIABLE")

# ------------------------------------------------------------------------------- reading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (YAML would silently keep the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
    loader.flatten_mapping(node)
    out: Dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in out
        except TypeError:  # a list or mapping used as a key
            raise yaml.constructor.ConstructorError(
                None, None, f"a {type(key).__name__} cannot be a key", key_node.start_mark
            ) from None
        if dup:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {short_repr(key)}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: PathLike) -> Dict[str, Any]:
    """Read a YAML file whose top level is a mapping.

    Raises:
        ConfigError: missing/unreadable file, YAML syntax error (with line), duplicate key,
            empty file or a top level that is not a mapping.
    """
    p = Path(path)
    text = read_input_text(p, ConfigError, what="YAML")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(
            f"{p}: invalid YAML at {where}: {short_repr(e.problem or e.context, 200)}"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {short_repr(str(e), 200)}") from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid YAML: nested too deeply") from None
    except ValueError as e:  # PyYAML's int() of a > 4300-digit literal
        raise ConfigError(f"{p}: invalid YAML: {short_repr(str(e), 120)}") from None
    if data is None:
        raise ConfigError(f"{p}: config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping of key: value at the top level, got {type(data).__name__}"
        )
    return data


# ------------------------------------------------------------------------------ coercion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    if origin in (tuple, Tuple):
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Coerce a YAML value to field type `tp`; `where` ("file: key") prefixes error messages."""
    origin = typing.get_origin(tp)
    if origin is Union:
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, inner, where)
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {short_repr(value)}")
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected True or False, got {short_repr(value)}")
    if tp is int:
        num = _as_number(value, where, "an integer")
        if isinstance(num, float):
            if not (math.isfinite(num) and num == int(num)):
                raise ConfigError(f"{where}: expected an integer, got {short_repr(value)}")
            num = int(num)
        return num
    if tp is float:
        return float(_as_number(value, where, "a number"))
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {short_repr(value)}")
    raise TypeError(f"unsupported config field type {tp!r}")  # a schema bug, not user input


def _as_number(value: Any, where: str, what: str) -> Union[int, float]:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected {what}, got {short_repr(value)}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)  # "1e-4", "3e-4", "inf"
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected {what}, got {short_repr(value)}")


def _field_types(cls: type) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def _suggest(key: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "valid keys: " + ", ".join(valid)


def _build(cls: Type[C], data: Mapping[str, Any], source: str, prefix: str = "") -> C:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping, got {short_repr(data)}"
        )
    data = dict(data)
    if cls is EngineConfig and isinstance(data.get("engine_name"), str):
        data["engine_name"] = canonical_engine_name(data["engine_name"])
    # The type name decides which keys exist: report "AMP is not supported" before its keys.
    if cls is EnvConfig and "env_name" in data:
        _check_env_name(data["env_name"], source)
    if cls is AgentConfig and "agent_name" in data:
        _check_agent_name(data["agent_name"], source)
    types = _field_types(cls)
    unsupported = _UNSUPPORTED_KEYS.get(cls, {})
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: key {short_repr(key)} is not a string")
        if key in unsupported:
            raise NotSupportedError(f"{source}: key {prefix + key!r}: {unsupported[key]}")
        if key not in types:
            raise ConfigError(
                f"{source}: unknown key {short_repr(prefix + key)} in {cls.__name__}: "
                + _suggest(key, [f.name for f in dataclasses.fields(cls)])
            )
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        tp = types[key]
        if _is_section(tp):
            kwargs[key] = _build(tp, value if value is not None else {}, source, prefix + key + ".")
        else:
            kwargs[key] = _coerce(value, tp, f"{source}: {prefix + key}")
    return cls(**kwargs)


def config_from_dict(cls: Type[C], data: Mapping[str, Any], source: str = "<dict>") -> C:
    """Build and validate a config of class `cls` (EnvConfig, AgentConfig, EngineConfig, RunConfig).

    Args:
        cls: the config class.
        data: MimicKit-style mapping (keys as in the YAML files).
        source: where the data came from, for error messages (usually the file path).

    Raises:
        ConfigError: unknown key (with the nearest valid keys) or invalid value.
        NotSupportedError: a MimicKit key/value for a feature not built yet.
    """
    cfg = _build(cls, data, source)
    _validate(cfg, source)
    return cfg


# ---------------------------------------------------------------------------- validation


def _check_env_name(value: Any, source: str) -> None:
    if value == "deepmimic":
        return
    if value in _MIMICKIT_ENVS:
        raise NotSupportedError(f"{source}: env_name {value!r} is not supported yet (built: 'deepmimic')")
    raise ConfigError(
        f"{source}: env_name {short_repr(value)} is not a known environment (built: 'deepmimic')"
    )


def _check_agent_name(value: Any, source: str) -> None:
    if value == "PPO":
        return
    if value in _MIMICKIT_AGENTS:
        raise NotSupportedError(f"{source}: agent_name {value!r} is not supported yet (built: 'PPO')")
    raise ConfigError(f"{source}: agent_name {short_repr(value)} is not a known agent (built: 'PPO')")


def _require(ok: bool, source: str, key: str, value: Any, what: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: {key} = {short_repr(value)}: must be {what}")


def _nearest_multiples(value: int, base: int) -> str:
    """``value``'s nearest multiples of ``base`` (at least ``base``), e.g. ``'90 or 120 Hz'`` for 100 and 30."""
    low = max(base, value // base * base)
    high = max(base, -(-value // base) * base)
    return f"{low} Hz" if low == high else f"{low} or {high} Hz"


def _validate(cfg: Any, source: str) -> None:
    if isinstance(cfg, RunConfig):
        _validate(cfg.env, source)
        _validate(cfg.agent, source)
        _validate(cfg.engine, source)
    elif isinstance(cfg, EnvConfig):
        _validate_env(cfg, source)
    elif isinstance(cfg, AgentConfig):
        _validate_agent(cfg, source)
    elif isinstance(cfg, EngineConfig):
        _validate_engine(cfg, source)
    elif isinstance(cfg, ModelConfig):
        _validate_model(cfg, source, "")
    elif isinstance(cfg, OptimizerConfig):
        _validate_optimizer(cfg, source, "")


# Upper bounds: far above any real run, low enough that a typo (1e12) fails here, in one line, instead
# of exhausting memory or hanging later. docs/robustness.md lists them.
LIMITS = {
    "episode_length": 1e5,
    "num_phase_encoding": 64,
    "tar_obs_steps": 1000,
    "tar_obs_steps_len": 32,
    "pose_list_len": 4096,
    "steps_per_iter": 100_000,
    "iters_per_output": 1_000_000_000,
    "epochs": 1000,
    "test_episodes": 1_000_000,
    "batch_size_multiple": 10_000.0,
    "critic_eval_batch_size": 1_000_000_000,
    "control_freq": 1000,
    "sim_freq": 10_000,
    "solver_caps": 10_000,
    "distance_m": 1e4,
}  # type: Dict[str, Any]


def _finite(v: float) -> bool:
    return math.isfinite(v)


def _validate_env(c: EnvConfig, source: str) -> None:
    L = LIMITS
    _require(
        math.isfinite(c.episode_length) and c.episode_length <= L["episode_length"],
        source,
        "episode_length",
        c.episode_length,
        f"finite and at most {L['episode_length']:g} s",
    )
    _require(
        _finite(c.pose_termination_dist), source, "pose_termination_dist", c.pose_termination_dist, "finite"
    )
    _require(
        c.num_phase_encoding <= L["num_phase_encoding"],
        source,
        "num_phase_encoding",
        c.num_phase_encoding,
        f"at most {L['num_phase_encoding']}",
    )
    _require(
        len(c.tar_obs_steps) <= L["tar_obs_steps_len"]
        and all(s <= L["tar_obs_steps"] for s in c.tar_obs_steps),
        source,
        "tar_obs_steps",
        list(c.tar_obs_steps),
        f"at most {L['tar_obs_steps_len']} steps, each at most {L['tar_obs_steps']}",
    )
    for name in ("ref_char_offset", "init_pose", "joint_err_w"):
        v = getattr(c, name)
        if v is not None:
            _require(
                len(v) <= L["pose_list_len"] and all(map(_finite, v)),
                source,
                name,
                f"<{len(v)} numbers>",
                f"at most {L['pose_list_len']} finite numbers",
            )
    for name in ("key_bodies", "contact_bodies"):
        v = getattr(c, name)
        _require(
            len(v) <= L["pose_list_len"], source, name, f"<{len(v)} names>", f"at most {L['pose_list_len']}"
        )
    _validate_env_base(c, source)


def _validate_env_base(c: EnvConfig, source: str) -> None:
    _check_env_name(c.env_name, source)
    _require(c.camera_mode in ("still", "track"), source, "camera_mode", c.camera_mode, "'still' or 'track'")
    _require(c.episode_length > 0, source, "episode_length", c.episode_length, "> 0 s")
    _require(c.pose_termination_dist > 0, source, "pose_termination_dist", c.pose_termination_dist, "> 0 m")
    _require(c.num_phase_encoding >= 0, source, "num_phase_encoding", c.num_phase_encoding, ">= 0")
    _require(
        all(s >= 1 for s in c.tar_obs_steps) and (len(c.tar_obs_steps) > 0 or not c.enable_tar_obs),
        source,
        "tar_obs_steps",
        list(c.tar_obs_steps),
        "a non-empty list of steps >= 1 when enable_tar_obs is True",
    )
    _require(len(c.ref_char_offset) == 3, source, "ref_char_offset", list(c.ref_char_offset), "3 numbers (m)")
    if c.init_pose is not None:
        n = len(c.init_pose)
        _require(n == 3 or n >= 6, source, "init_pose", f"<{n} numbers>", "3 numbers or 6 + num_dofs numbers")
    if c.joint_err_w is not None:
        _require(all(w >= 0 for w in c.joint_err_w), source, "joint_err_w", list(c.joint_err_w), ">= 0")
    for name in (
        "reward_pose_w",
        "reward_vel_w",
        "reward_root_pose_w",
        "reward_root_vel_w",
        "reward_key_pos_w",
        "reward_pose_scale",
        "reward_vel_scale",
        "reward_root_pose_scale",
        "reward_root_vel_scale",
        "reward_key_pos_scale",
    ):
        v = getattr(c, name)
        _require(math.isfinite(v) and v >= 0, source, name, v, "a finite number >= 0")


def _validate_model(m: ModelConfig, source: str, prefix: str) -> None:
    for key in ("actor_net", "critic_net"):
        try:
            mlp_hidden_sizes(getattr(m, key))
        except NotSupportedError as e:
            raise NotSupportedError(f"{source}: {prefix}{key}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"{source}: {prefix}{key}: {e}") from None
    _require(
        math.isfinite(m.actor_init_output_scale),
        source,
        prefix + "actor_init_output_scale",
        m.actor_init_output_scale,
        "finite",
    )
    if m.actor_std_type in _STD_TYPES_NOT_BUILT:
        raise NotSupportedError(
            f"{source}: {prefix}actor_std_type {m.actor_std_type!r} is not supported yet (built: 'FIXED')"
        )
    _require(m.actor_std_type == "FIXED", source, prefix + "actor_std_type", m.actor_std_type, "'FIXED'")
    _require(
        m.action_std > 0 and math.isfinite(m.action_std), source, prefix + "action_std", m.action_std, "> 0"
    )
    _require(
        m.actor_init_output_scale >= 0,
        source,
        prefix + "actor_init_output_scale",
        m.actor_init_output_scale,
        ">= 0",
    )


def _validate_optimizer(o: OptimizerConfig, source: str, prefix: str) -> None:
    _require(o.type in ("SGD", "Adam"), source, prefix + "type", o.type, "'SGD' or 'Adam'")
    _require(
        o.learning_rate > 0 and math.isfinite(o.learning_rate),
        source,
        prefix + "learning_rate",
        o.learning_rate,
        "> 0",
    )
    _require(
        o.weight_decay >= 0 and math.isfinite(o.weight_decay),
        source,
        prefix + "weight_decay",
        o.weight_decay,
        ">= 0",
    )
    _require(
        o.grad_clip >= 0 and math.isfinite(o.grad_clip),
        source,
        prefix + "grad_clip",
        o.grad_clip,
        ">= 0 (0 = off)",
    )
    if o.use_amp:
        raise NotSupportedError(f"{source}: {prefix}use_amp: mixed precision is not supported yet")
    _require(o.amp_type in ("fp16", "bf16"), source, prefix + "amp_type", o.amp_type, "'fp16' or 'bf16'")


def _validate_agent(a: AgentConfig, source: str) -> None:
    _check_agent_name(a.agent_name, source)
    _validate_model(a.model, source, "model.")
    _validate_optimizer(a.actor_optimizer, source, "actor_optimizer.")
    _validate_optimizer(a.critic_optimizer, source, "critic_optimizer.")
    _require(0 <= a.discount < 1, source, "discount", a.discount, "in [0, 1)")
    _require(0 <= a.td_lambda <= 1, source, "td_lambda", a.td_lambda, "in [0, 1]")
    for key in ("steps_per_iter", "iters_per_output", "actor_epochs", "critic_epochs"):
        _require(getattr(a, key) >= 1, source, key, getattr(a, key), ">= 1")
    for key, top in (
        ("steps_per_iter", LIMITS["steps_per_iter"]),
        ("iters_per_output", LIMITS["iters_per_output"]),
        ("actor_epochs", LIMITS["epochs"]),
        ("critic_epochs", LIMITS["epochs"]),
        ("test_episodes", LIMITS["test_episodes"]),
        ("critic_eval_batch_size", LIMITS["critic_eval_batch_size"]),
        ("actor_batch_size", LIMITS["batch_size_multiple"]),
        ("critic_batch_size", LIMITS["batch_size_multiple"]),
    ):
        _require(getattr(a, key) <= top, source, key, getattr(a, key), f"at most {top:,}")
    _require(math.isfinite(a.discount), source, "discount", a.discount, "in [0, 1)")
    for key in ("test_episodes", "normalizer_samples", "critic_eval_batch_size"):
        _require(getattr(a, key) >= 0, source, key, getattr(a, key), ">= 0")
    for key in ("actor_batch_size", "critic_batch_size", "ppo_clip_ratio", "norm_adv_clip"):
        v = getattr(a, key)
        _require(v > 0 and math.isfinite(v), source, key, v, "> 0")
    for key in ("action_bound_weight", "action_entropy_weight", "action_reg_weight"):
        v = getattr(a, key)
        _require(v >= 0 and math.isfinite(v), source, key, v, ">= 0")
    _require(a.exp_anneal_samples > 0, source, "exp_anneal_samples", a.exp_anneal_samples, "> 0")
    _validate_adaptive_lr(a, source)
    _require(
        a.keep_checkpoints >= -1, source, "keep_checkpoints", a.keep_checkpoints, ">= -1 (-1 = keep all)"
    )
    for key in ("exp_prob_beg", "exp_prob_end"):
        if getattr(a, key) != 1.0:
            raise NotSupportedError(
                f"{source}: {key} = {getattr(a, key)!r}: mixing deterministic actions into training "
                "rollouts is not supported yet (only 1.0)"
            )


def _validate_adaptive_lr(a: AgentConfig, source: str) -> None:
    """desired_kl >= 0; when on: Adam actor, 0 < min_learning_rate <= learning_rate <= max_learning_rate."""
    kl = a.desired_kl
    _require(kl >= 0 and math.isfinite(kl), source, "desired_kl", kl, ">= 0 (0 = off)")
    lo, hi = a.min_learning_rate, a.max_learning_rate
    _require(lo > 0 and math.isfinite(lo), source, "min_learning_rate", lo, "> 0")
    _require(hi >= lo and math.isfinite(hi), source, "max_learning_rate", hi, f">= min_learning_rate ({lo})")
    if kl == 0:
        return
    _require(
        a.actor_optimizer.type == "Adam",
        source,
        "actor_optimizer.type",
        a.actor_optimizer.type,
        "'Adam' when desired_kl > 0 (the adaptive rate is a device tensor that fused Adam reads)",
    )
    lr = a.actor_optimizer.learning_rate
    _require(
        lo <= lr <= hi,
        source,
        "actor_optimizer.learning_rate",
        lr,
        f"within [min_learning_rate, max_learning_rate] = [{lo}, {hi}] when desired_kl > 0",
    )


def _validate_engine(e: EngineConfig, source: str) -> None:
    if e.engine_name in _MIMICKIT_ONLY_ENGINES:
        raise NotSupportedError(
            f"{source}: engine_name {e.engine_name!r} is not supported yet "
            "(built: mujoco, mjwarp = MimicKit's newton, isaacgym = MimicKit's isaac_gym)"
        )
    if e.engine_name not in engine_names():
        raise ConfigError(
            f"{source}: engine_name {e.engine_name!r} is not a known engine: "
            + _suggest(e.engine_name, list(engine_names()) + list(ENGINE_ALIASES))
        )
    if e.control_mode in _CONTROL_MODES_NOT_BUILT:
        raise NotSupportedError(
            f"{source}: control_mode {e.control_mode!r} is not supported yet (built: 'pos')"
        )
    _require(e.control_mode == "pos", source, "control_mode", e.control_mode, "'pos'")
    _require(
        1 <= e.control_freq <= LIMITS["control_freq"],
        source,
        "control_freq",
        e.control_freq,
        f">= 1 and <= {LIMITS['control_freq']} Hz",
    )
    _require(
        e.sim_freq <= LIMITS["sim_freq"], source, "sim_freq", e.sim_freq, f"at most {LIMITS['sim_freq']:,} Hz"
    )
    for name in ("env_spacing", "ground_contact_height"):
        v = getattr(e, name)
        _require(
            math.isfinite(v) and abs(v) <= LIMITS["distance_m"],
            source,
            name,
            v,
            f"finite, at most {LIMITS['distance_m']:g} m",
        )
    _require(
        e.sim_freq >= e.control_freq and e.sim_freq % e.control_freq == 0,
        source,
        "sim_freq",
        e.sim_freq,
        f"a multiple of control_freq ({e.control_freq} Hz): the engine runs a whole number of physics steps "
        f"per control step (nearest valid: {_nearest_multiples(e.sim_freq, e.control_freq)})",
    )
    _require(e.env_spacing >= 0, source, "env_spacing", e.env_spacing, ">= 0 m")
    for name in ("solver_iterations", "ls_iterations"):
        v = getattr(e, name)
        _require(
            0 <= v <= LIMITS["solver_caps"],
            source,
            name,
            v,
            f">= 0 (0 = the MJCF's value) and <= {LIMITS['solver_caps']:,}",
        )
    _require(
        solver_tolerance_ok(e.solver_tolerance),
        source,
        "solver_tolerance",
        e.solver_tolerance,
        SOLVER_TOLERANCE_RULE,
    )


# ------------------------------------------------------------------------------- loading


def load_env_config(path: PathLike) -> EnvConfig:
    """Load a MimicKit env YAML (``deepmimic_*_env.yaml``)."""
    return config_from_dict(EnvConfig, read_yaml(path), str(path))


def load_agent_config(path: PathLike) -> AgentConfig:
    """Load a MimicKit agent YAML (``*_ppo_agent.yaml``)."""
    return config_from_dict(AgentConfig, read_yaml(path), str(path))


def load_engine_config(path: PathLike) -> EngineConfig:
    """Load a MimicKit engine YAML (``engines/*_engine.yaml``); engine names are mapped to ours."""
    return config_from_dict(EngineConfig, read_yaml(path), str(path))


def load_run_configs(
    env_file: Optional[PathLike] = None,
    agent_file: Optional[PathLike] = None,
    engine_file: Optional[PathLike] = None,
) -> RunConfig:
    """Load the three MimicKit files (any may be None = defaults) into one `RunConfig`."""
    return RunConfig(
        env=load_env_config(env_file) if env_file is not None else EnvConfig(),
        agent=load_agent_config(agent_file) if agent_file is not None else AgentConfig(),
        engine=load_engine_config(engine_file) if engine_file is not None else EngineConfig(),
    )


def load_run_config(path: PathLike) -> RunConfig:
    """Load a combined file with ``env:``, ``agent:``, ``engine:`` sections (as `dump_resolved` writes)."""
    return config_from_dict(RunConfig, read_yaml(path), str(path))


# ----------------------------------------------------------------------------- overrides


def _all_keys(cls: type, prefix: str = "") -> List[str]:
    out: List[str] = []
    for name, tp in _field_types(cls).items():
        if _is_section(tp):
            out.extend(_all_keys(tp, prefix + name + "."))
        else:
            out.append(prefix + name)
    return out


def _resolve_run_key(cfg: RunConfig, key: str, where: str) -> List[str]:
    parts = key.split(".")
    if parts[0] in _SECTIONS:
        return parts
    owners = [s for s in _SECTIONS if parts[0] in _field_types(type(getattr(cfg, s)))]
    if len(owners) == 1:
        return [owners[0]] + parts
    if len(owners) > 1:  # not the case for MimicKit's keys today, kept honest anyway
        raise ConfigError(f"{where}: key {key!r} is ambiguous; prefix it with one of {', '.join(owners)}")
    raise ConfigError(f"{where}: unknown key {key!r}: " + _suggest(key, _all_keys(RunConfig)))


def _set_path(cfg: Any, parts: Sequence[str], value: Any, where: str, full_key: str) -> Any:
    types = _field_types(type(cfg))
    name = parts[0]
    if name not in types:
        unsupported = _UNSUPPORTED_KEYS.get(type(cfg), {})
        if name in unsupported and len(parts) == 1:
            raise NotSupportedError(f"{where}: {unsupported[name]}")
        raise ConfigError(f"{where}: unknown key {full_key!r}: " + _suggest(full_key, _all_keys(type(cfg))))
    tp = types[name]
    if _is_section(tp):
        if len(parts) == 1:
            raise ConfigError(f"{where}: {full_key!r} is a section; set one of its keys ({full_key}.<key>)")
        new = _set_path(getattr(cfg, name), parts[1:], value, where, full_key)
    else:
        if len(parts) > 1:
            raise ConfigError(f"{where}: {'.'.join(parts[:1])!r} has no sub-keys")
        if tp is str and isinstance(value, (int, float)):
            value = str(value)  # "--set motion_file=123" is a string, YAML would make it an int
        if name == "engine_name" and isinstance(value, str):
            value = canonical_engine_name(value)
        new = _coerce(value, tp, where)
    return dataclasses.replace(cfg, **{name: new})


def apply_overrides(cfg: C, overrides: Sequence[str], source: str = "--set") -> C:
    """Return `cfg` with ``key=value`` overrides applied and validated.

    Keys are dotted for sections (``actor_optimizer.learning_rate=3e-4``). On a `RunConfig` a key
    may be prefixed with ``env.``/``agent.``/``engine.``, or left bare when one section has it
    (``reward_pose_w=0.6``). Values are parsed as YAML scalars/lists (``tar_obs_steps=[1,2]``,
    ``joint_err_w=null``) and type-checked against the field.

    Raises:
        ConfigError: malformed override, unknown key (with suggestions) or invalid value.
        NotSupportedError: a value for a feature not built yet.
    """
    for item in overrides:
        where = f"{source} {item}"
        if "=" not in item:
            raise ConfigError(f"{where}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"{where}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, RecursionError, ValueError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"{where}: value is not valid YAML ({short_repr(first, 120)})") from None
        parts = _resolve_run_key(cfg, key, where) if isinstance(cfg, RunConfig) else key.split(".")
        cfg = _set_path(cfg, parts, value, where, key)
        _validate(cfg, where)
    return cfg


# ------------------------------------------------------------------------------- dumping


def to_dict(cfg: Any) -> Dict[str, Any]:
    """Plain nested dict of a config (tuples -> lists), keys in MimicKit's layout."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


class _Dumper(yaml.SafeDumper):
    """Sections as blocks, lists on one line (``tar_obs_steps: [1, 2, 3]``) as MimicKit writes them."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def dump_resolved(cfg: Any, path: PathLike, header: Optional[str] = None) -> Path:
    """Write a config (Env/Agent/Engine/RunConfig) as YAML, atomically; returns the path.

    A `RunConfig` is written with ``env:``, ``agent:``, ``engine:`` sections (`load_run_config`
    reads it back); a single config is written flat, loadable by its ``load_*_config``.
    """
    from mimictools import __version__

    p = Path(path)
    lines = [f"# resolved config written by mimictools {__version__}"]
    if header:
        lines += ["# " + line for line in header.splitlines()]
    body = yaml.dump(to_dict(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    atomic_write_text(p, "\n".join(lines) + "\n" + body)
    return p


# --------------------------------------------------------------------------------- paths


def resolve_data_path(path: PathLike, base_dir: PathLike) -> Path:
    """Resolve a path written in a MimicKit config (``motion_file``, ``char_file``).

    The rule: MimicKit opens these paths relative to its working directory, which is the MimicKit
    root holding ``data/`` (``data/motions/humanoid/humanoid_spinkick.pkl``). So a relative path is
    joined to `base_dir`, the MimicKit data root (e.g. ``shared/mimickit``); an absolute path, or
    one starting with ``~``, is used as it is. The file is not required to exist.
    """
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    return Path(base_dir) / p


def find_data_root(config_file: PathLike, rel_path: PathLike, extra: Sequence[PathLike] = ()) -> Path:
    """The MimicKit data root for a config: the first folder in which `rel_path` exists.

    Candidates, in order: the config file's folder and each of its parents (MimicKit keeps configs
    under ``data/`` of its root, and ``shared/mimickit/configs`` sits next to ``data/``), then `extra`.

    Raises:
        ConfigError: `rel_path` exists under none of them.
    """
    rel = Path(rel_path)
    if rel.is_absolute():
        return Path(rel.anchor)
    start = Path(config_file).resolve().parent
    candidates = [start] + list(start.parents) + [Path(e) for e in extra]
    for c in candidates:
        if (c / rel).exists():
            return c
    raise ConfigError(
        f"{config_file}: cannot find {str(rel)!r} relative to the config's folder or any parent; "
        "pass the MimicKit data root (the folder holding data/) explicitly"
    )
