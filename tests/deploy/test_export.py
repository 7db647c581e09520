"""`mimic export`: the ONNX graph matches the torch policy, the contract is complete and consistent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mimictools.cli.app import app
from mimictools.config.schema import ModelConfig
from mimictools.rl.action_scale import ActionScale
from mimictools.rl.checkpoint import Policy, load_policy
from mimictools.rl.networks import build_actor_critic
from mimictools.rl.normalizer import Normalizer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# Tolerance of the issue: onnxruntime vs torch, both float32. The two evaluate the same ops; they differ
# only in the summation order inside the matrix products (~1e-7 relative for 1024-wide layers).
PARITY_TOL = 1e-5


def _session(model_bytes: bytes):
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def _torch_targets(policy: Policy, obs: torch.Tensor) -> np.ndarray:
    """What the env gets: the deterministic policy's action clipped to the action bounds (DeepMimicEnv.step)."""
    a = policy(obs)
    return torch.maximum(torch.minimum(a, policy.action_high), policy.action_low).numpy()


def _random_policy(obs_dim=464, act_dim=28, hidden="fc_2layers_256units", seed=0) -> Policy:
    """A policy with non-trivial numbers everywhere: recorded normaliser, large output weights (so that
    some targets saturate at the bounds and the clipping in the graph is exercised)."""
    g = torch.Generator().manual_seed(seed)
    model = ModelConfig(actor_net=hidden, critic_net=hidden, actor_init_output_scale=1.0)
    actor, _ = build_actor_critic(model, obs_dim, act_dim)
    norm = Normalizer(obs_dim)
    norm.record(3.0 * torch.randn(1000, obs_dim, generator=g) + torch.randn(obs_dim, generator=g))
    norm.update()
    low = -torch.rand(act_dim, generator=g) - 0.5
    high = torch.rand(act_dim, generator=g) + 0.5
    return Policy(actor=actor.eval(), obs_normalizer=norm, actions=ActionScale(low, high))


def test_onnx_matches_torch_on_random_observations():
    from mimictools.deploy.onnx_graph import INPUT_NAME, build_policy_graph

    policy = _random_policy()
    model = build_policy_graph(policy, {"k": "v"})
    sess = _session(model.SerializeToString())
    g = torch.Generator().manual_seed(1)
    for batch in (1, 7, 256):  # dynamic batch
        obs = 5.0 * torch.randn(batch, 464, generator=g)  # some beyond the normaliser clip
        ref = _torch_targets(policy, obs)
        got = sess.run(None, {INPUT_NAME: obs.numpy()})[0]
        assert got.shape == (batch, 28) and got.dtype == np.float32
        assert np.abs(got - ref).max() <= PARITY_TOL
    # the clipping is exercised: some targets at the bounds, most inside them
    at_bound = np.isclose(ref, policy.action_low.numpy()) | np.isclose(ref, policy.action_high.numpy())
    assert 0 < at_bound.mean() < 0.9
    assert {p.key: p.value for p in model.metadata_props} == {"k": "v"}


def test_onnx_matches_torch_on_real_observations(tiny_run, tiny_export):
    """Observations of the demo env (resets and steps) through the exported file vs the checkpoint."""
    from mimictools.app import run as runlib

    policy = load_policy(tiny_run / "latest.pt")
    cfg, spec = runlib.load_run_files(tiny_run)
    env = runlib.build_env(cfg, spec, num_envs=4, num_threads=1)
    try:
        obs = [env.reset()]
        for _ in range(20):
            obs.append(env.step(policy(obs[-1]))[0])
    finally:
        env.close()
    obs_t = torch.cat(obs)
    sess = ort.InferenceSession(str(tiny_export.onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"obs": obs_t.numpy()})[0]
    assert np.abs(got - _torch_targets(policy, obs_t)).max() <= PARITY_TOL


def test_contract_is_consistent(tiny_export):
    from mimictools.deploy.export import sha256_file

    c = json.loads(tiny_export.contract_path.read_text())
    assert c == json.loads(json.dumps(tiny_export.contract))
    assert c["format"] == "mimictools.policy" and c["version"] == 1
    assert c["onnx"]["sha256"] == sha256_file(tiny_export.onnx_path)
    assert c["character"]["sha256"] == sha256_file(c["character"]["file"])
    assert c["motion"]["sha256"] == sha256_file(c["motion"]["source"])
    # observation layout: contiguous blocks that add up to the size the ONNX input takes
    layout = c["observation"]["layout"]
    off = 0
    for block in layout:
        assert block["offset"] == off and block["size"] > 0 and block["unit"] and block["frame"]
        off += block["size"]
    assert off == c["observation"]["size"] == 464 == c["onnx"]["input_shape"][1]
    assert [b["name"] for b in layout[:3]] == ["root_height", "root_rot", "root_vel"]
    assert layout[-1]["name"] == "target[3].key_pos"
    # actions: one per DoF, named, bounds ordered; actuators: one per hinge, gains > 0, in DoF order
    act = c["actions"]
    assert act["size"] == len(act["names"]) == len(act["low"]) == 28 == c["onnx"]["output_shape"][1]
    assert all(lo < hi for lo, hi in zip(act["low"], act["high"]))
    acts = c["actuators"]
    assert len(acts) == 28 and all(a["kp"] > 0 and a["kd"] > 0 for a in acts)
    assert [a["joint"] for a in acts] == act["names"]  # our humanoid: hinges only, so actuator = DoF order
    assert c["rates"] == {
        "control_hz": 30.0,
        "physics_hz": 240.0,
        "substeps": 8,
        "integrator": "implicitfast",
    }
    assert c["checkpoint"]["trained_engine"] == "mujoco"
    z = np.load(tiny_export.motion_path, allow_pickle=False)
    assert z["frames"].shape == (c["motion"]["num_frames"], 6 + 28) and float(z["fps"]) == c["motion"]["fps"]
    meta = {p.key: p.value for p in onnx.load(str(tiny_export.onnx_path)).metadata_props}
    assert meta["obs_dim"] == "464" and meta["mimic_contract"] == "policy.json"


def test_export_cli(tiny_run, tmp_path):
    out = tmp_path / "deploy" / "walker.onnx"
    res = CliRunner().invoke(app, ["export", str(tiny_run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and (tmp_path / "deploy" / "walker.json").is_file()
    assert (tmp_path / "deploy" / "walker.motion.npz").is_file()
    assert "464 -> 28 PD targets" in res.output.replace("\n", " ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/best.pt"], "checkpoint not found"),
        (["{run}", "-o", "{tmp}/policy.txt"], "must end in .onnx"),
        (["{run}", "--motion", "/nonexistent.pkl"], "--motion"),
    ],
)
def test_export_cli_bad_input(tiny_run, tmp_path, args, message):
    args = [a.format(run=tiny_run, tmp=tmp_path) for a in args]
    res = CliRunner().invoke(app, ["export"] + args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_export_refuses_reference_offset_actions(tmp_path, tiny_demo_run):
    """The demo's default (env action_ref_offset) is not described by the contract: a clear error, not a policy
    whose targets would be wrong."""
    run_dir = tiny_demo_run  # the session's demo run (tests/conftest.py), read only
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["env"]["action_ref_offset"] is True
    out = CliRunner().invoke(app, ["export", str(run_dir / "latest.pt"), "-o", str(tmp_path / "p.onnx")])
    assert out.exit_code == 2 and "action_ref_offset" in out.output
