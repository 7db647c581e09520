"""Config loading: MimicKit's own YAMLs, unknown keys, not-supported features, overrides, dumping."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mimictools.config.load import (
    apply_overrides,
    config_from_dict,
    dump_resolved,
    find_data_root,
    load_agent_config,
    load_engine_config,
    load_env_config,
    load_run_config,
    load_run_configs,
    resolve_data_path,
    to_dict,
)
from mimictools.config.schema import (
    AgentConfig,
    EngineConfig,
    EnvConfig,
    OptimizerConfig,
    RunConfig,
    describe_fields,
    mlp_hidden_sizes,
)
from mimictools.errors import ConfigError, NotSupportedError


def _write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ MimicKit's real files


def test_mimickit_humanoid_env_and_agent_load_and_equal_the_defaults(shared_dir):
    cfgs = shared_dir / "mimickit" / "configs"
    env = load_env_config(cfgs / "deepmimic_humanoid_env.yaml")
    agent = load_agent_config(cfgs / "deepmimic_humanoid_ppo_agent.yaml")
    assert env == EnvConfig() and agent == AgentConfig()  # our defaults are MimicKit's humanoid values
    assert env.tar_obs_steps == (1, 2, 3) and len(env.init_pose) == 34
    # PyYAML reads `learning_rate: 1e-4` as a string; the loader coerces it
    raw = yaml.safe_load((cfgs / "deepmimic_humanoid_ppo_agent.yaml").read_text())
    assert raw["actor_optimizer"]["learning_rate"] == "1e-4"
    assert agent.actor_optimizer.learning_rate == 1e-4 and agent.critic_optimizer.type == "SGD"


def test_mimickit_engine_files_map_to_our_engines(shared_dir):
    engines = shared_dir / "mimickit" / "configs" / "engines"
    gym = load_engine_config(engines / "isaac_gym_engine.yaml")
    newton = load_engine_config(engines / "newton_engine.yaml")
    assert (gym.engine_name, gym.sim_freq, gym.sim_substeps) == ("isaacgym", 120, 4)
    assert (newton.engine_name, newton.sim_freq, newton.control_freq) == ("mjwarp", 240, 30)
    assert gym.ground_contact_height == 0.3 and newton.env_spacing == 5.0
    with pytest.raises(NotSupportedError, match="isaac_lab"):
        load_engine_config(engines / "isaac_lab_engine.yaml")


def test_paths_in_configs_resolve_against_the_data_root(shared_dir):
    cfg_file = shared_dir / "mimickit" / "configs" / "deepmimic_humanoid_env.yaml"
    env = load_env_config(cfg_file)
    root = find_data_root(cfg_file, env.motion_file)
    assert root == (shared_dir / "mimickit").resolve()
    assert resolve_data_path(env.motion_file, root).is_file()
    assert resolve_data_path(env.char_file, root).is_file()
    assert resolve_data_path("/abs/clip.pkl", root) == Path("/abs/clip.pkl")
    with pytest.raises(ConfigError, match="cannot find"):
        find_data_root(cfg_file, "data/motions/no_such_clip.pkl")


def test_project_demo_configs_load(repo_dir):
    demo = repo_dir / "data" / "configs"
    if not demo.is_dir():
        pytest.skip("no data/configs in this checkout")
    run = load_run_configs(demo / "demo_env.yaml", demo / "demo_agent.yaml", demo / "mujoco_engine.yaml")
    assert run.agent.model.actor_net == "fc_2layers_128units" and run.engine.engine_name == "mujoco"
    assert load_engine_config(demo / "mjwarp_engine.yaml").engine_name == "mjwarp"


# ----------------------------------------------------------------------------- errors


def test_unknown_key_names_file_key_and_nearest(tmp_path):
    p = _write(tmp_path, "env_name: deepmimic\nreward_pos_w: 0.5\n", "my_env.yaml")
    with pytest.raises(ConfigError) as e:
        load_env_config(p)
    msg = str(e.value)
    assert "my_env.yaml" in msg and "'reward_pos_w'" in msg and "'reward_pose_w'" in msg


def test_unknown_nested_key_suggests_within_the_section(tmp_path):
    p = _write(tmp_path, "actor_optimizer:\n  type: Adam\n  learnig_rate: 1e-3\n")
    with pytest.raises(ConfigError, match=r"'actor_optimizer.learnig_rate'.*'learning_rate'"):
        load_agent_config(p)


@pytest.mark.parametrize(
    "loader, text, match",
    [
        (
            load_engine_config,
            "engine_name: newton\ncontrol_mode: torque\n",
            "control_mode 'torque' is not supported yet",
        ),
        (load_engine_config, "engine_name: ovphysx\n", "not supported yet"),
        (
            load_agent_config,
            "model:\n  actor_std_type: VARIABLE\n",
            "actor_std_type 'VARIABLE' is not supported yet",
        ),
        (load_agent_config, "model:\n  actor_net: cnn_3conv_1fc_0\n", "cnn_3conv_1fc_0"),
        (load_agent_config, "agent_name: AMP\ndisc_net: fc_2layers_1024units\n", "agent_name 'AMP'"),
        (load_agent_config, "optimizer:\n  type: SGD\nupdate_epochs: 5\n", "single-optimizer"),
        (load_agent_config, "actor_optimizer:\n  use_amp: True\n", "mixed precision"),
        (load_agent_config, "exp_prob_beg: 0.5\n", "exp_prob_beg"),
        (load_env_config, "env_name: amp\n", "env_name 'amp' is not supported yet"),
    ],
)
def test_real_mimickit_features_we_do_not_build_are_not_supported_errors(tmp_path, loader, text, match):
    with pytest.raises(NotSupportedError, match=match):
        loader(_write(tmp_path, text))


@pytest.mark.parametrize(
    "loader, text, match",
    [
        (load_env_config, "global_obs: 1\n", "expected True or False"),
        (load_env_config, "episode_length: ten\n", "expected a number"),
        (load_env_config, "tar_obs_steps: 3\n", "expected a list"),
        (load_env_config, "camera_mode: orbit\n", "'still' or 'track'"),
        (load_agent_config, "discount: 1.0\n", r"in \[0, 1\)"),
        (load_agent_config, "steps_per_iter: 2.5\n", "expected an integer"),
        (load_agent_config, "actor_optimizer:\n  type: RMSprop\n", "'SGD' or 'Adam'"),
        (load_agent_config, "desired_kl: -0.01\n", r"desired_kl = -0.01: must be >= 0 \(0 = off\)"),
        (
            load_agent_config,
            "desired_kl: 0.01\n",
            r"actor_optimizer.type = 'SGD': must be 'Adam' when desired_kl",
        ),
        (
            load_agent_config,
            "desired_kl: 0.01\nactor_optimizer:\n  type: Adam\n  learning_rate: 0.1\n",
            r"actor_optimizer.learning_rate = 0.1: must be within \[min_learning_rate, max_learning_rate\]",
        ),
        (load_agent_config, "min_learning_rate: 1e-3\nmax_learning_rate: 1e-4\n", "max_learning_rate"),
        (load_engine_config, "engine_name: mujuco\n", "did you mean 'mujoco'"),
        (load_engine_config, "control_freq: 30\nsim_freq: 100\n", r"multiple of control_freq .*90 or 120 Hz"),
        (
            load_engine_config,
            "control_freq: 30\nsim_freq: 20\n",
            r"multiple of control_freq .*valid: 30 Hz\)",
        ),
        (load_engine_config, "control_mode: position\n", "'pos'"),
        (load_env_config, "a: 1\na: 2\n", "duplicate key 'a'"),
        (load_env_config, "env_name: [deepmimic\n", "invalid YAML at line"),
        (load_env_config, "", "empty"),
        (load_env_config, "- a\n- b\n", "mapping"),
    ],
)
def test_invalid_values_are_config_errors(tmp_path, loader, text, match):
    with pytest.raises(ConfigError, match=match):
        loader(_write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_env_config(tmp_path / "absent.yaml")


def test_number_coercion():
    a = config_from_dict(
        AgentConfig, {"normalizer_samples": "1e8", "steps_per_iter": 16.0, "discount": "0.9"}
    )
    assert a.normalizer_samples == 100000000 and isinstance(a.normalizer_samples, int)
    assert a.steps_per_iter == 16 and a.discount == 0.9
    e = config_from_dict(EngineConfig, {"env_spacing": 5, "control_freq": "30"})
    assert isinstance(e.env_spacing, float) and e.control_freq == 30


# -------------------------------------------------------------------------- overrides


def test_overrides_single_config():
    a = apply_overrides(
        AgentConfig(), ["actor_optimizer.learning_rate=3e-4", "model.action_std=0.1", "td_lambda=0.9"]
    )
    assert a.actor_optimizer.learning_rate == 3e-4 and a.model.action_std == 0.1 and a.td_lambda == 0.9
    e = apply_overrides(EnvConfig(), ["reward_pose_w=0.6", "tar_obs_steps=[1, 5]", "joint_err_w=null"])
    assert e.reward_pose_w == 0.6 and e.tar_obs_steps == (1, 5) and e.joint_err_w is None
    assert apply_overrides(EnvConfig(), ["motion_file=clips/run.pkl"]).motion_file == "clips/run.pkl"


def test_overrides_on_a_run_config_route_bare_and_prefixed_keys():
    run = apply_overrides(
        RunConfig(),
        [
            "reward_pose_w=0.6",
            "actor_optimizer.learning_rate=3e-4",
            "engine.engine_name=newton",
            "env.rand_reset=false",
        ],
    )
    assert run.env.reward_pose_w == 0.6 and run.env.rand_reset is False
    assert run.agent.actor_optimizer.learning_rate == 3e-4 and run.engine.engine_name == "mjwarp"
    assert RunConfig() == RunConfig()  # the input is untouched (frozen)


@pytest.mark.parametrize(
    "item, err, match",
    [
        ("reward_pos_w=0.6", ConfigError, "did you mean 'env.reward_pose_w'"),
        ("agent.actor_optimizer.learnin_rate=1", ConfigError, "learning_rate"),
        ("discount", ConfigError, "key=value"),
        ("discount=abc", ConfigError, "expected a number"),
        ("discount=[1", ConfigError, "not valid YAML"),
        ("agent.model=3", ConfigError, "is a section"),
        ("control_mode=vel", NotSupportedError, "not supported yet"),
        ("env.env_name=ase", NotSupportedError, "not supported yet"),
        ("agent.batch_size=4", NotSupportedError, "single-optimizer"),
    ],
)
def test_bad_overrides(item, err, match):
    with pytest.raises(err, match=match) as e:
        apply_overrides(RunConfig(), [item])
    assert "--set" in str(e.value)


# ---------------------------------------------------------------------------- dumping


def test_dump_resolved_round_trips_and_is_atomic(tmp_path):
    run = apply_overrides(
        RunConfig(), ["reward_pose_w=0.6", "engine_name=isaac_gym", "exp_anneal_samples=1e9"]
    )
    path = dump_resolved(run, tmp_path / "run" / "config.yaml", header="mimic train --set reward_pose_w=0.6")
    assert load_run_config(path) == run
    text = path.read_text()
    assert text.startswith("# resolved config") and "tar_obs_steps: [1, 2, 3]" in text
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left behind
    single = dump_resolved(run.agent, tmp_path / "agent.yaml")
    assert load_agent_config(single) == run.agent
    assert to_dict(run)["env"]["key_bodies"][0] == "head"


def test_field_docs_and_net_names():
    docs = {f.key: f for f in describe_fields(AgentConfig)}
    assert "actor_optimizer.learning_rate" in docs and "num_envs" in docs["actor_batch_size"].doc
    assert all(f.doc for f in describe_fields(EnvConfig) + describe_fields(EngineConfig))
    assert mlp_hidden_sizes("fc_2layers_1024units") == (1024, 512)
    assert mlp_hidden_sizes("fc_3layers_1024units") == (1024, 1024, 512)
    assert mlp_hidden_sizes("fc_2layers_512units") == (512, 256)
    assert mlp_hidden_sizes("fc_1layers_64units") == (32,)


def test_spinkick_fast_agent_is_mimickits_agent_with_adam_and_adaptive_kl(repo_dir):
    """data/configs/spinkick_fast_agent.yaml changes only the optimizers of MimicKit's agent (whose values are
    our defaults: test above): same networks, rollout, epochs, batch sizes and losses."""
    import dataclasses

    agent = load_agent_config(repo_dir / "data" / "configs" / "spinkick_fast_agent.yaml")
    adam = OptimizerConfig(type="Adam", learning_rate=1e-3)
    want = dataclasses.replace(
        AgentConfig(),
        actor_optimizer=adam,
        critic_optimizer=adam,
        desired_kl=0.01,
        min_learning_rate=1e-5,
        max_learning_rate=1e-2,
    )
    assert agent == want


def test_spinkick_agent_is_mimickits_agent_with_both_rates_at_6x(repo_dir):
    """data/configs/spinkick_agent.yaml (issue 18's 10-minute spinkick) is MimicKit's agent (our defaults) with
    the actor's and the critic's SGD rates at 6e-4 instead of 1e-4, and nothing else changed."""
    import dataclasses

    agent = load_agent_config(repo_dir / "data" / "configs" / "spinkick_agent.yaml")
    sgd = OptimizerConfig(type="SGD", learning_rate=6e-4)
    assert AgentConfig().actor_optimizer.learning_rate == 1e-4
    assert agent == dataclasses.replace(AgentConfig(), actor_optimizer=sgd, critic_optimizer=sgd)
