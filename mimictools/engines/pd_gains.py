"""PD damping from a ``<position dampratio>`` actuator: the one definition every engine uses (MuJoCo, MJWarp,
Isaac Gym).

MuJoCo defines a position servo's damping ratio against the joint's reflected inertia at the model's
reference pose ``qpos0`` (computed when the model is compiled, ``engine_setconst.c``):

    kd = dampratio * 2 * sqrt(kp * m_eff)        (joint units: kd N m s/rad, kp N m/rad, m_eff kg m^2)

with ``m_eff = 1 / (M^-1)_jj``: the inverse of the joint's diagonal entry of the *inverse* joint-space inertia
matrix ``M`` at ``qpos0`` (``M`` from ``mj_forward``, the joint's ``armature`` on its diagonal). That is the
inertia a torque at the joint feels when the rest of the body, a floating base included, is free to move.
It is not ``M_jj``: for the G1's hip pitch ``M_jj`` = 0.92 kg m^2 but ``m_eff`` = 0.053 (the pelvis swings
back), so ``M_jj`` would give 4.2x MuJoCo's kd; for a distal joint (wrist roll) the two agree to 0.1 %.
A gear ``g`` cancels out in joint units: the actuator's kp_a = kp / g^2 and m_eff / g^2 give
kv_a = dampratio * 2 * sqrt(kp * m_eff) / g^2, i.e. kd = kv_a g^2 as above.

`reflected_inertia` compiles the character's MJCF with MuJoCo and runs ``mj_forward`` at ``qpos0``;
`resolve_damping_ratios` turns every pending ``Joint.damping_ratio`` into ``Joint.damping``. The Isaac Gym
adapter gets its drive damping from here too, so a Menagerie robot has the same kd on every engine
(tests/engines/test_pd_gains.py checks the result against MuJoCo's own compiled ``actuator_biasprm``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional

import mujoco
import numpy as np

from mimictools.character.model import Character
from mimictools.errors import EngineError

__all__ = ["damping_from_ratio", "reflected_inertia", "resolve_damping_ratios"]


def damping_from_ratio(kp: float, damping_ratio: float, inertia: float) -> float:
    """``kd = damping_ratio * 2 * sqrt(kp * inertia)`` (N m s/rad) for ``kp`` (N m/rad) and the joint's
    reflected ``inertia`` (kg m^2, `reflected_inertia`): MuJoCo's ``dampratio`` definition."""
    return float(damping_ratio) * 2.0 * math.sqrt(max(float(kp), 0.0) * max(float(inertia), 0.0))


def reflected_inertia(character: Character, ms: Optional[mujoco.MjSpec] = None) -> Dict[str, float]:
    """Per hinge joint name: its reflected inertia ``1 / (M^-1)_jj`` at ``qpos0`` (kg m^2; module docstring),
    ``M`` the joint-space inertia matrix of ``mj_forward`` (armature included). Compiles ``ms`` (a copy), or
    ``character.source``."""
    try:
        model = (ms.copy() if ms is not None else mujoco.MjSpec.from_file(character.source)).compile()
    except Exception as exc:  # mujoco raises ValueError with the compiler's message
        raise EngineError(f"{character.source}: MuJoCo cannot compile this MJCF: {exc}") from None
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    mujoco.mj_forward(model, data)
    diag = 1.0 / np.diag(np.linalg.inv(_full_inertia_matrix(model, data)))
    out = {}
    for j in range(model.njnt):
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            continue
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if name:
            out[name] = float(diag[int(model.jnt_dofadr[j])])
    return out


def _full_inertia_matrix(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Dense joint-space inertia matrix (nv, nv) after ``mj_forward``. MuJoCo 4 takes ``(m, d, dst)``,
    MuJoCo 3 ``(m, dst, d.qM)``."""
    full = np.zeros((model.nv, model.nv))
    qm = getattr(data, "qM", None)
    if qm is not None:
        mujoco.mj_fullM(model, full, qm)
    else:
        mujoco.mj_fullM(model, data, full)
    return full


def resolve_damping_ratios(character: Character, ms: Optional[mujoco.MjSpec] = None) -> Character:
    """The character with every ``Joint.damping_ratio`` > 0 turned into ``Joint.damping`` (N m s/rad) by
    `damping_from_ratio` with the joint's kp (``Joint.stiffness``) and `reflected_inertia`. A no-op for
    characters without pending ratios (no MuJoCo compile then)."""
    pending = [j for j in character.joints if j.damping_ratio is not None and np.any(j.damping_ratio > 0)]
    if not pending:
        return character
    inertia = reflected_inertia(character, ms)
    joints = []
    for j in character.joints:
        if j.damping_ratio is None or not np.any(j.damping_ratio > 0):
            joints.append(j)
            continue
        damping = j.damping.copy()
        for k, name in enumerate(j.mjcf_joints):
            if j.damping_ratio[k] > 0:
                if name not in inertia:
                    raise EngineError(
                        f"{character.source}: joint {name!r} has a dampratio but is not a hinge in MuJoCo's model"
                    )
                damping[k] = damping_from_ratio(j.stiffness[k], j.damping_ratio[k], inertia[name])
        joints.append(dataclasses.replace(j, damping=damping, damping_ratio=np.zeros_like(j.damping_ratio)))
    return dataclasses.replace(character, joints=tuple(joints))
