"""The deployment contract (``policy.json``): everything a runner needs besides the ONNX graph.

Written by `mimictools.deploy.export.export_policy`, read by `mimictools.deploy.runner_reference` (and by
whoever integrates the policy on another simulator or a robot). docs/deploy.md documents every field.
Plain JSON: numbers, strings, lists; an infinite limit is ``null``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["CONTRACT_FORMAT", "CONTRACT_VERSION", "actuator_table", "joint_table", "observation_layout"]

CONTRACT_FORMAT = "mimictools.policy"
CONTRACT_VERSION = 1


def _num(x: float) -> Optional[float]:
    """A JSON number; None for +-inf/NaN."""
    x = float(x)
    return x if math.isfinite(x) else None


def observation_layout(obs_cfg, char, key_bodies: Sequence[str]) -> List[Dict[str, Any]]:
    """One entry per observation block, in order: name, offset, size, frame, unit, what.

    Mirrors `mimictools.tasks.observations` (``compute_deepmimic_obs``); the sizes add up to
    ``deepmimic_obs_size``.
    """
    nb, nd, nk = char.num_bodies, char.num_dofs, len(key_bodies)
    g = bool(obs_cfg.global_obs)
    char_frame = "world" if g else "heading of the simulated root (yaw-only rotation)"
    blocks: List[Dict[str, Any]] = []

    def add(name: str, size: int, frame: str, unit: str, what: str) -> None:
        off = blocks[-1]["offset"] + blocks[-1]["size"] if blocks else 0
        blocks.append(
            {"name": name, "offset": off, "size": int(size), "frame": frame, "unit": unit, "what": what}
        )

    if obs_cfg.root_height_obs:
        add("root_height", 1, "world", "m", "simulated root z")
    add("root_rot", 6, char_frame, "tan-norm", "root orientation: rotated x axis, then rotated z axis")
    add("root_vel", 3, char_frame, "m/s", "root linear velocity")
    add("root_ang_vel", 3, char_frame, "rad/s", "root angular velocity")
    add(
        "joint_rot",
        6 * (nb - 1),
        "parent body",
        "tan-norm",
        "local joint rotation of every non-root body, in body order: " + ", ".join(char.body_names[1:]),
    )
    add("dof_vel", nd, "child body (spherical) / hinge axis", "rad/s", "DoF velocities in action order")
    add(
        "key_pos", 3 * nk, char_frame, "m", "key body positions minus root position: " + ", ".join(key_bodies)
    )
    if obs_cfg.enable_phase_obs:
        m = int(obs_cfg.num_phase_encoding)
        add(
            "phase",
            1 + (2 * m if m > 0 else 0),
            "-",
            "1",
            "clip phase in [0, 1], then sin/cos of 2 pi 2^i phase",
        )
    if obs_cfg.enable_tar_obs:
        tar_frame = "world" if g else "heading of the first target frame's root"
        for s in obs_cfg.tar_obs_steps:
            p = f"target[{int(s)}]."
            if obs_cfg.root_height_obs:
                add(
                    p + "root_pos",
                    3,
                    tar_frame,
                    "m",
                    f"reference root {s} control steps ahead: xy minus "
                    f"{'simulated root' if g else 'first target root'}, then absolute z",
                )
            else:
                add(p + "root_pos", 2, tar_frame, "m", "reference root xy difference")
            add(p + "root_rot", 6, tar_frame, "tan-norm", "reference root orientation")
            add(p + "joint_rot", 6 * (nb - 1), "parent body", "tan-norm", "reference local joint rotations")
            add(p + "key_pos", 3 * nk, tar_frame, "m", "reference key body positions minus reference root")
    return blocks


def joint_table(char) -> List[Dict[str, Any]]:
    """The character's joints in action (DoF) order, with what a runner needs to map targets to joints."""
    out = []
    for j in char.joints:
        out.append(
            {
                "name": j.name,
                "body": int(j.body),
                "body_name": char.body_names[j.body],
                "kind": j.kind,
                "dof_offset": int(j.dof_offset),
                "dof_count": int(j.dof_count),
                "mjcf_joints": list(j.mjcf_joints),
                "axes": [[float(v) for v in a] for a in j.axes],
                "range_low": [_num(v) for v in j.range_low],
                "range_high": [_num(v) for v in j.range_high],
            }
        )
    return out


def actuator_table(char, sim) -> List[Dict[str, Any]]:
    """The PD actuators of the simulation model (`mimictools.engines.mjcf_build.SimModel`), MuJoCo order.

    Per actuator: its joint (MJCF name), ``joint_index`` (into `joint_table`), ``component`` (which hinge of
    a triple / which exp-map axis of a ball), ``gear``, gains ``kp`` (N m/rad) and ``kd`` (N m s/rad),
    ``torque_limit`` (N m, null = none).
    """
    import mujoco

    m = sim.model
    by_name = {}
    for k, j in enumerate(char.joints):
        for c, name in enumerate(j.mjcf_joints):
            by_name[name] = (k, c)
    out = []
    for a in range(m.nu):
        jname = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, int(m.actuator_trnid[a, 0]))
        k, comp = by_name[jname]
        gear = [float(v) for v in m.actuator_gear[a, :3]]
        if char.joints[k].is_ball:
            comp = int(max(range(3), key=lambda i: abs(gear[i])))
        out.append(
            {
                "name": mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"actuator{a}",
                "joint": jname,
                "joint_index": int(k),
                "component": int(comp),
                "gear": gear,
                "kp": float(sim.kp[a]),
                "kd": float(sim.kd[a]),
                "torque_limit": _num(sim.effort_limit[a]),
            }
        )
    return out
