"""Frozen dataclasses for MimicKit's three config files: env, agent, engine.

Keys are spelled exactly as in MimicKit's YAML (``reward_pose_w``, ``actor_batch_size``,
``control_freq``...), so MimicKit's files load unchanged (see `mimictools.config.load`).
Defaults are the values of MimicKit's humanoid DeepMimic configs
(``deepmimic_humanoid_env.yaml``, ``deepmimic_humanoid_ppo_agent.yaml``, ``engines/*.yaml``).

Every field carries its documentation (with units) in ``metadata["doc"]``; `describe_fields`
returns it, so the CLI can print it and error messages can quote it.

Lists in YAML become tuples here (frozen dataclasses stay immutable and hashable).
Validation of values that are valid YAML but not something we build is done by the loader
(`mimictools.config.load`), which raises `ConfigError` or `NotSupportedError`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

__all__ = [
    "AgentConfig",
    "EngineConfig",
    "EnvConfig",
    "FieldInfo",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "describe_fields",
    "mlp_hidden_sizes",
]


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a default and its documentation (units included)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults of frozen config fields")
    return field(default=default, metadata={"doc": doc})


def _nested(factory: Any, doc: str) -> Any:
    return field(default_factory=factory, metadata={"doc": doc})


# MimicKit humanoid rest pose: root pos (3, m), root rot expmap (3), 28 joint dofs (rad).
_HUMANOID_INIT_POSE = (
    (0.0, 0.0, 0.882416, 0.0, 0.0, 0.0) + (0.0,) * 6 + (1.5708, 0.0, 0.0, 0.0, -1.5708) + (0.0,) * 17
)

# ----------------------------------------------------------------------------------- env


@dataclass(frozen=True)
class EnvConfig:
    """DeepMimic motion-tracking environment (MimicKit ``*_env.yaml``)."""

    env_name: str = _f("deepmimic", "Environment type. Only 'deepmimic' is built.")
    char_file: str = _f(
        "data/assets/humanoid/humanoid.xml",
        "Character model (MJCF), relative to the MimicKit data root (see load.resolve_data_path).",
    )
    camera_mode: str = _f("track", "Viewer camera: 'still' or 'track' (follows the character).")
    episode_length: float = _f(10.0, "Episode length in seconds; reaching it ends the episode with TIME.")
    global_obs: bool = _f(
        True, "Observe root/body positions in world frame (True) or in the heading frame (False)."
    )
    root_height_obs: bool = _f(True, "Include the root height (m) in the observation.")
    pose_termination: bool = _f(
        True, "End the episode (FAIL) when a body is farther than pose_termination_dist from the reference."
    )
    pose_termination_dist: float = _f(1.0, "Body position error (m) that triggers pose termination.")
    enable_phase_obs: bool = _f(False, "Include the motion phase (0..1) in the observation.")
    enable_tar_obs: bool = _f(True, "Include future reference poses (target observations).")
    num_phase_encoding: int = _f(
        4, "Number of sin/cos frequencies of the phase encoding (when enable_phase_obs)."
    )
    tar_obs_steps: Tuple[int, ...] = _f(
        (1, 2, 3), "Future reference frames observed, in control steps ahead of now."
    )
    rand_reset: bool = _f(
        True, "Reset to a random time in the clip (reference state init); False resets to t = 0 s."
    )
    log_tracking_error: bool = _f(False, "Report tracking errors (m, rad, m/s) during test episodes.")
    ref_char_offset: Tuple[float, ...] = _f(
        (2.0, 0.0, 0.0), "Offset (m, xyz) at which the reference character is drawn."
    )
    init_pose: Optional[Tuple[float, ...]] = _f(
        _HUMANOID_INIT_POSE,
        "Initial pose: root pos (m, 3), root rot expmap (3), joint dofs (rad); a 3-vector pads with zeros.",
    )
    enable_early_termination: bool = _f(
        True, "End episodes (FAIL) when a non-contact body touches the ground."
    )
    key_bodies: Tuple[str, ...] = _f(
        ("head", "right_hand", "left_hand", "right_foot", "left_foot"),
        "Bodies whose positions are observed and rewarded (key_pos reward).",
    )
    contact_bodies: Tuple[str, ...] = _f(
        ("right_foot", "left_foot"), "Bodies allowed to touch the ground without early termination."
    )
    motion_file: str = _f(
        "data/motions/humanoid/humanoid_spinkick.pkl",
        "Motion clip (.pkl) or dataset list (.yaml), relative to the MimicKit data root.",
    )
    joint_gains: Tuple[str, ...] = _f(
        (),
        "PD gain overrides, '<joint name pattern>: kp kd [torque_limit]' (fnmatch; N m/rad, N m s/rad, N m), "
        "applied in order over the MJCF's gains; for robots whose MJCF carries none.",
    )
    joint_err_w: Optional[Tuple[float, ...]] = _f(
        (1.0, 0.6, 0.6, 0.4, 0.0, 0.6, 0.4, 0.0, 1.0, 0.6, 0.4, 1.0, 0.6, 0.4),
        "Per-joint weight of the pose/velocity errors, one per non-root joint; None = all 1.",
    )
    reward_pose_w: float = _f(0.5, "Weight of the joint-rotation reward term.")
    reward_vel_w: float = _f(0.1, "Weight of the joint-velocity reward term.")
    reward_root_pose_w: float = _f(0.15, "Weight of the root position/rotation reward term.")
    reward_root_vel_w: float = _f(0.1, "Weight of the root linear/angular velocity reward term.")
    reward_key_pos_w: float = _f(0.15, "Weight of the key-body position reward term.")
    reward_pose_scale: float = _f(0.25, "Scale k in exp(-k * err) of the pose term (1/rad^2).")
    reward_vel_scale: float = _f(0.01, "Scale of the joint-velocity term (1/(rad/s)^2).")
    reward_root_pose_scale: float = _f(5.0, "Scale of the root pose term (1/m^2, 1/rad^2).")
    reward_root_vel_scale: float = _f(1.0, "Scale of the root velocity term (1/(m/s)^2).")
    reward_key_pos_scale: float = _f(10.0, "Scale of the key-body position term (1/m^2).")
    zero_center_action: bool = _f(
        False, "Centre 1-DoF joint action ranges at 0 rad instead of the joint range midpoint."
    )
    action_ref_offset: bool = _f(
        False,
        "Actions are offsets from the reference: PD target = the reference DoF positions one control step "
        "ahead + action (mimictools only; MimicKit: the action is the PD target itself).",
    )
    visualize_ref_char: bool = _f(True, "Draw the reference character when a viewer is open.")


# --------------------------------------------------------------------------------- agent


@dataclass(frozen=True)
class ModelConfig:
    """Actor/critic networks (MimicKit agent ``model:`` section)."""

    actor_net: str = _f(
        "fc_2layers_1024units",
        "Actor MLP, MimicKit name fc_<n>layers_<u>units = n-1 hidden layers of u ReLU units, then u/2.",
    )
    actor_init_output_scale: float = _f(
        0.01, "Actor output-layer weights start uniform in [-scale, scale] (bias 0)."
    )
    actor_std_type: str = _f("FIXED", "Action std type. Only 'FIXED' is built (CONSTANT/VARIABLE are not).")
    action_std: float = _f(
        0.05, "Gaussian action std, in normalized action units (action range mapped to [-1, 1])."
    )
    critic_net: str = _f("fc_2layers_1024units", "Critic MLP, same naming as actor_net.")


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer (MimicKit ``actor_optimizer:`` / ``critic_optimizer:`` sections)."""

    type: str = _f("SGD", "'SGD' (momentum 0.9, as MimicKit) or 'Adam' (AdamW with weight_decay).")
    learning_rate: float = _f(1e-4, "Step size.")
    weight_decay: float = _f(0.0, "L2 weight decay (decoupled for Adam, as MimicKit's AdamW).")
    grad_clip: float = _f(0.0, "Clip the gradient norm to this value; 0 = off.")
    use_amp: bool = _f(False, "Mixed precision. Not built: must be False.")
    amp_type: str = _f("fp16", "Mixed-precision dtype ('fp16' or 'bf16'); unused while use_amp is False.")


@dataclass(frozen=True)
class AgentConfig:
    """PPO agent (MimicKit ``*_ppo_agent.yaml``)."""

    agent_name: str = _f("PPO", "Agent type. Only 'PPO' is built.")
    model: ModelConfig = _nested(ModelConfig, "Networks.")
    actor_optimizer: OptimizerConfig = _nested(OptimizerConfig, "Optimizer of the actor.")
    critic_optimizer: OptimizerConfig = _nested(OptimizerConfig, "Optimizer of the critic.")
    discount: float = _f(0.99, "Discount factor gamma per control step, in [0, 1).")
    steps_per_iter: int = _f(32, "Control steps per env per iteration (rollout length).")
    iters_per_output: int = _f(
        100, "Iterations between outputs (test episodes, log row, checkpoints); iteration 0 outputs."
    )
    test_episodes: int = _f(
        32, "Deterministic test episodes per output (at least one per env is always run, as MimicKit)."
    )
    keep_checkpoints: int = _f(
        5,
        "Keep the newest this many iter_XXXXXX.pt of a run (older ones are deleted; latest.pt and best.pt "
        "always stay); -1 = keep all, 0 = write none (mimictools only).",
    )
    normalizer_samples: int = _f(
        100000000, "The observation normalizer stops updating after this many samples."
    )
    actor_epochs: int = _f(5, "Passes over the rollout for the actor per iteration.")
    actor_batch_size: float = _f(
        4.0, "Actor minibatch size as a multiple of num_envs: ceil(actor_batch_size * num_envs) samples."
    )
    critic_epochs: int = _f(2, "Passes over the rollout for the critic per iteration.")
    critic_batch_size: float = _f(
        2.0, "Critic minibatch size as a multiple of num_envs: ceil(critic_batch_size * num_envs) samples."
    )
    td_lambda: float = _f(0.95, "TD(lambda) parameter of returns and advantages, in [0, 1].")
    ppo_clip_ratio: float = _f(0.2, "PPO clip epsilon of the probability ratio.")
    norm_adv_clip: float = _f(4.0, "Normalized advantages are clipped to [-norm_adv_clip, norm_adv_clip].")
    action_bound_weight: float = _f(
        10.0, "Weight of the penalty on the mean action leaving [-1, 1] (normalized units)."
    )
    action_entropy_weight: float = _f(0.0, "Weight of the entropy bonus (constant for a FIXED std).")
    action_reg_weight: float = _f(0.0, "Weight of the L2 penalty on the normalized mean action.")
    desired_kl: float = _f(
        0.0,
        "Adaptive actor learning rate (rsl_rl's 'adaptive' schedule): on every actor minibatch, KL(rollout policy "
        "|| current policy) (nats, mean over the minibatch) above 2x this divides the actor's learning rate by "
        "1.5, below half of it multiplies it by 1.5, within [min_learning_rate, max_learning_rate]; the adapted "
        "rate is checkpointed and resumed. 0 = off (fixed rate). Needs actor_optimizer.type 'Adam' (mimictools only).",
    )
    min_learning_rate: float = _f(1e-5, "Lower bound of the adaptive actor learning rate (see desired_kl).")
    max_learning_rate: float = _f(1e-2, "Upper bound of the adaptive actor learning rate (see desired_kl).")
    critic_eval_batch_size: int = _f(
        0, "Evaluate the critic over the rollout in chunks of this many samples; 0 = all at once."
    )
    exp_anneal_samples: float = _f(
        float("inf"), "Samples over which exp_prob anneals from exp_prob_beg to exp_prob_end."
    )
    exp_prob_beg: float = _f(1.0, "Probability of a random (sampled) action at the start. Only 1.0 is built.")
    exp_prob_end: float = _f(1.0, "Probability of a random (sampled) action at the end. Only 1.0 is built.")


# -------------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class EngineConfig:
    """Physics engine (MimicKit ``engines/*_engine.yaml``)."""

    engine_name: str = _f(
        "mujoco",
        "'mujoco' (CPU), 'mjwarp' (GPU; MimicKit's 'newton') or 'isaacgym' (MimicKit's 'isaac_gym').",
    )
    control_mode: str = _f("pos", "Actuation: 'pos' (PD position targets). none/vel/torque are not built.")
    control_freq: int = _f(30, "Policy/control rate in Hz; one env step lasts 1/control_freq s.")
    sim_freq: int = _f(
        240, "Physics rate in Hz, a multiple of control_freq (MimicKit's newton value; isaac_gym uses 120)."
    )
    implicit_pd: bool = _f(
        False,
        "MuJoCo engines: stable PD (the position term at the next step's angle, integrated implicitly); "
        "False (default): explicit PD. Isaac Gym ignores it (PhysX drives are implicit).",
    )
    solver_iterations: int = _f(
        0,
        "MuJoCo engines: most constraint-solver iterations per physics step (MuJoCo's opt.iterations); "
        "0 (default): the MJCF's own value (MuJoCo's default 100 where it sets none). Isaac Gym ignores it.",
    )
    ls_iterations: int = _f(
        0,
        "MuJoCo engines: most line-search iterations per solver iteration (opt.ls_iterations); "
        "0 (default): the MJCF's own value (MuJoCo's default 50). Isaac Gym ignores it.",
    )
    solver_tolerance: float = _f(
        0.0,
        "MuJoCo engines: the constraint solver stops once its scaled improvement or gradient falls below this "
        "(MuJoCo's opt.tolerance); 0 (default): the MJCF's own value (MuJoCo's default 1e-8; MuJoCo Warp uses at "
        "least 1e-6). Isaac Gym ignores it.",
    )
    env_spacing: float = _f(5.0, "Distance between neighbouring envs in the viewer/world grid (m).")
    ground_contact_height: float = _f(
        0.3, "Contacts of bodies below this height (m) count as ground contacts."
    )

    @property
    def sim_substeps(self) -> int:
        """Physics steps per control step."""
        return self.sim_freq // self.control_freq

    @property
    def control_dt_s(self) -> float:
        """Duration of one control step (s)."""
        return 1.0 / self.control_freq


# ----------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class RunConfig:
    """The three configs of one training run, as written next to it (``config.yaml``)."""

    env: EnvConfig = _nested(EnvConfig, "Environment config.")
    agent: AgentConfig = _nested(AgentConfig, "Agent config.")
    engine: EngineConfig = _nested(EngineConfig, "Engine config.")


# ---------------------------------------------------------------------------------- nets

_MLP_NAME = re.compile(r"^fc_(\d+)layers_(\d+)units$")
MAX_MLP_LAYERS = 32
"""Most layers a network name may ask for (``fc_<n>layers_...``)."""
MAX_MLP_UNITS = 16384
"""Most units per layer a network name may ask for (a 1e8-unit layer would need petabytes)."""


def mlp_hidden_sizes(net_name: str) -> Tuple[int, ...]:
    """Hidden layer widths of a MimicKit MLP name.

    MimicKit's ``learning/nets/fc_<n>layers_<u>units.py`` build n Linear+ReLU layers whose widths
    are ``u`` for the first n-1 and ``u // 2`` for the last: ``fc_2layers_1024units`` = (1024, 512),
    ``fc_3layers_1024units`` = (1024, 1024, 512), ``fc_2layers_512units`` = (512, 256).
    Any name of that pattern is accepted with the same rule.

    Raises:
        NotSupportedError: the name is not of that pattern (e.g. MimicKit's ``cnn_3conv_1fc_0``).
    """
    from mimictools.errors import ConfigError, NotSupportedError

    m = _MLP_NAME.match(net_name) if isinstance(net_name, str) else None
    if m is None:
        raise NotSupportedError(
            f"network {net_name!r} is not supported yet: only MLPs named fc_<n>layers_<u>units "
            "(e.g. fc_2layers_1024units) are built"
        )
    if len(m.group(1)) > 6 or len(m.group(2)) > 9:
        raise ConfigError(
            f"network {net_name[:60]!r}: at most {MAX_MLP_LAYERS} layers of at most {MAX_MLP_UNITS} units"
        )
    n, u = int(m.group(1)), int(m.group(2))
    if n < 1 or u < 2:
        raise NotSupportedError(f"network {net_name!r}: need at least 1 layer of at least 2 units")
    if n > MAX_MLP_LAYERS or u > MAX_MLP_UNITS:
        raise ConfigError(
            f"network {net_name!r}: at most {MAX_MLP_LAYERS} layers of at most {MAX_MLP_UNITS} units"
        )
    return (u,) * (n - 1) + (u // 2,)


# ------------------------------------------------------------------------------ describe


@dataclass(frozen=True)
class FieldInfo:
    """One config key: dotted name, default and documentation."""

    key: str
    default: Any
    doc: str


def describe_fields(cls: type, prefix: str = "") -> List[FieldInfo]:
    """All keys of a config class (nested sections as ``section.key``), in declaration order."""
    out: List[FieldInfo] = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if f.default_factory is not dataclasses.MISSING:  # nested section
            out.extend(describe_fields(f.default_factory, key + "."))
        else:
            out.append(FieldInfo(key=key, default=f.default, doc=f.metadata.get("doc", "")))
    return out
