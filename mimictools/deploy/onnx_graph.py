"""The exported policy as one ONNX graph: raw observation -> PD targets.

Built node by node with ``onnx.helper`` from the checkpoint's tensors (no tracing, no exporter
dependencies), float32, opset `OPSET`, batch dimension dynamic (``batch``)::

    obs (batch, obs_dim)
      -> Sub(mean) -> Div(std) -> Max(-clip) -> Min(+clip)        the observation normaliser
      -> [Gemm(W, b) -> Relu] x hidden layers -> Gemm(W, b)        the actor's mean (normalized action units)
      -> Mul(half) -> Add(mid)                                     action scaling: [-1, 1] -> [low, high]
      -> Max(low) -> Min(high)                                     the env's action clipping
    pd_targets (batch, action_dim)                                 radians, motion DoF space

The same arithmetic as `mimictools.rl.checkpoint.Policy` (deterministic) followed by the task's clipping
(`mimictools.tasks.deepmimic.DeepMimicEnv.step`); parity is tested with onnxruntime (<= 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

__all__ = ["INPUT_NAME", "OPSET", "OUTPUT_NAME", "PolicyArrays", "build_policy_graph", "policy_arrays"]

OPSET = 17
INPUT_NAME = "obs"
OUTPUT_NAME = "pd_targets"


@dataclass(frozen=True)
class PolicyArrays:
    """The numbers of a policy graph, float32."""

    mean: np.ndarray
    """Observation normaliser mean, Shape (obs_dim,)."""
    std: np.ndarray
    """Observation normaliser std, Shape (obs_dim,)."""
    clip: float
    """Normalised observations are clipped to [-clip, clip]."""
    layers: List[Tuple[np.ndarray, np.ndarray]]
    """Linear layers in order, (W Shape (out, in), b Shape (out,)); the last is the action mean head."""
    low: np.ndarray
    """Action (PD target) lower bounds, Shape (action_dim,), rad."""
    high: np.ndarray
    """Action upper bounds, Shape (action_dim,), rad."""
    mid: np.ndarray
    """Env action for a normalized action of 0 (`ActionScale.mid`), Shape (action_dim,), rad."""
    half: np.ndarray
    """Env action per normalized unit (`ActionScale.half`), Shape (action_dim,), rad."""


def policy_arrays(policy: Any) -> PolicyArrays:
    """The numbers the graph needs from a `mimictools.rl.checkpoint.Policy`."""
    import torch

    norm = policy.obs_normalizer
    linears: List = [m for m in policy.actor.body if isinstance(m, torch.nn.Linear)] + [
        policy.actor.mean_head
    ]

    def f32(t) -> np.ndarray:
        return t.detach().cpu().to(torch.float32).numpy().copy()

    return PolicyArrays(
        mean=f32(norm.mean),
        std=f32(norm.std),
        clip=float(norm.clip),
        layers=[(f32(m.weight), f32(m.bias)) for m in linears],
        low=f32(policy.action_low),
        high=f32(policy.action_high),
        mid=f32(policy.actions.mid),
        half=f32(policy.actions.half),
    )


def build_policy_graph(policy: Any, metadata: Dict[str, str]) -> Any:
    """The ONNX ``ModelProto`` of ``policy`` (a `mimictools.rl.checkpoint.Policy`), checked by
    ``onnx.checker``; ``metadata`` goes into the model's ``metadata_props``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a = policy_arrays(policy)
    obs_dim = int(a.mean.shape[0])
    low, high = a.low, a.high
    act_dim = int(low.shape[0])
    inits: List[Any] = []
    nodes: List[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name=name))
        return name

    def node(op: str, inputs: List[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    clip = a.clip
    x = node("Sub", [INPUT_NAME, const("obs_mean", a.mean)], "norm_centered")
    x = node("Div", [x, const("obs_std", a.std)], "norm_scaled")
    x = node("Max", [x, const("obs_clip_low", np.float32(-clip))], "norm_clip_low")
    x = node("Min", [x, const("obs_clip_high", np.float32(clip))], "obs_normalized")
    layers = a.layers
    for i, (w, b) in enumerate(layers):
        last = i == len(layers) - 1
        name = "action_mean" if last else f"hidden{i}"
        x = node(
            "Gemm", [x, const(f"{name}_weight", w), const(f"{name}_bias", b)], name + "_linear", transB=1
        )
        if not last:
            x = node("Relu", [x], name)
    mid, half = a.mid, a.half  # the policy's action units (rl.action_scale.ActionScale), as in training
    x = node("Mul", [x, const("action_half_range", half)], "action_scaled")
    x = node("Add", [x, const("action_mid", mid)], "action_unclipped")
    x = node("Max", [x, const("action_low", low)], "action_clip_low")
    node("Min", [x, const("action_high", high)], OUTPUT_NAME)

    graph = helper.make_graph(
        nodes,
        "mimic_policy",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", act_dim])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mimictools"
    )
    model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime >= 1.10
    helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model)
    return model
