"""Reference runner: drive a character in MuJoCo with an exported mimic policy (``mimic export``).

This file is the example a robot or simulator integrator copies. It imports only ``mujoco``,
``onnxruntime``, ``numpy`` and the Python standard library, and reads only what ``mimic export`` wrote:

- ``policy.json``  the deployment contract (docs/deploy.md): joints in action order, PD gains and torque
  limits, control and physics rates, the observation layout, the termination rules;
- ``policy.onnx``  raw observation (B, obs_dim) float32 -> PD targets (B, num_dofs) float32, with the
  observation normaliser, the network mean and the action scaling and clipping inside;
- ``policy.motion.npz``  the reference clip (MimicKit frame layout, ``frames`` (F, 6 + num_dofs), ``fps``,
  ``loop_mode``);
- the character's MJCF (the path in the contract, or ``--mjcf``).

Every control step it does what ``mimic``'s DeepMimic task does (``mimictools/tasks``), in numpy float64:

    observation from MuJoCo's state + the reference clip -> ONNX -> PD targets -> ctrl
    -> ``physics_hz / control_hz`` ``mj_step`` calls -> done flags

The scene is the character's MJCF with its actuators replaced by one PD actuator per hinge
(``force = kp (target - q) - kd qdot``, clamped to the torque limit, ``implicitfast`` integrator so the
damping is implicit), a ground plane and one ground-contact sensor per body: the recipe of
``mimictools/engines/mjcf_build.py``, rebuilt here from the contract's numbers.

Conventions: world Z-up, metres, radians, seconds; quaternions (w, x, y, z) as MuJoCo's. A spherical joint
(three hinges on one body, or a ball) is one 3-DoF joint whose DoFs are the exponential map of its local
rotation; its DoF velocity is the angular velocity in the child body's frame.

Run it: ``python runner_reference.py policy.json [--mjcf humanoid.xml] [--episodes 1] [--start 0]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import mujoco
import numpy as np
import onnxruntime

__all__ = [
    "CONTRACT_FORMAT",
    "Episode",
    "ReferenceClip",
    "ReferenceRunner",
    "Skeleton",
    "load_contract",
    "main",
]

CONTRACT_FORMAT = "mimictools.policy"
CONTRACT_VERSION = 1
_LOOP_WRAP = 1
_DONE_NAMES = {0: "NULL", 1: "FAIL", 2: "SUCC", 3: "TIME"}


class ContractError(ValueError):
    """A contract, clip or MJCF that does not fit together (the message says what and where)."""


# ---- quaternions (w, x, y, z), batched over leading dims -------------------------------------------------


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def exp_map_to_quat(e: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(e, axis=-1, keepdims=True)
    small = angle < 1e-4
    safe = np.where(small, 1.0, angle)
    k = np.where(small, 0.5 - angle * angle / 48.0, np.sin(0.5 * safe) / safe)
    return np.concatenate([np.cos(0.5 * angle), e * k], axis=-1)


def quat_to_exp_map(q: np.ndarray) -> np.ndarray:
    """Exponential map (axis * angle, angle in [0, pi]) of unit quaternions (..., 4) -> (..., 3)."""
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    v, w = q[..., 1:], q[..., :1]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    k = np.where(s < 1e-6, 2.0 / np.maximum(w, 1e-8), 2.0 * np.arctan2(s, w) / np.maximum(s, 1e-8))
    return v * k


def axis_angle_to_quat(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    half = 0.5 * np.asarray(angle)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shorter-arc slerp; t broadcasts against q0[..., :1]."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.minimum(np.abs(dot), 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-5
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


def tan_norm(q: np.ndarray) -> np.ndarray:
    """The rotated x (tangent) and z (normal) axes, (..., 4) -> (..., 6): a continuous rotation code."""
    ones = np.ones(q.shape[:-1] + (1,))
    zeros = np.zeros_like(ones)
    x = quat_rotate(q, np.concatenate([ones, zeros, zeros], axis=-1))
    z = quat_rotate(q, np.concatenate([zeros, zeros, ones], axis=-1))
    return np.concatenate([x, z], axis=-1)


def heading_quat_inv(q: np.ndarray) -> np.ndarray:
    """Rotation about z by minus the heading (yaw of the rotated x axis) of q: world -> heading frame."""
    d = quat_rotate(q, np.broadcast_to(np.array([1.0, 0.0, 0.0]), q.shape[:-1] + (3,)))
    h = np.arctan2(d[..., 1], d[..., 0])
    return axis_angle_to_quat(np.array([0.0, 0.0, 1.0]), -h)


def quat_angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] of unit quaternions (..., 4)."""
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def _wrap_pi(x: np.ndarray) -> np.ndarray:
    return np.where(x > np.pi, x - 2.0 * np.pi, np.where(x <= -np.pi, x + 2.0 * np.pi, x))


def _quat_to_euler_xyz(q: np.ndarray) -> np.ndarray:
    """Intrinsic x-y-z angles (a, b, c) with q = qx(a) qy(b) qz(c); b in [-pi/2, pi/2]."""
    q = quat_normalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    sp, cp, sm, cm = x + z, w + y, x - z, w - y
    kp, km = np.hypot(sp, cp), np.hypot(sm, cm)
    b = 2.0 * np.arctan2(kp, km) - 0.5 * np.pi
    half_sum, half_diff = np.arctan2(sp, cp), np.arctan2(sm, cm)
    tiny = 4.0 * np.finfo(np.float64).eps
    half_diff = np.where(km < tiny, half_sum, half_diff)
    half_sum = np.where(kp < tiny, half_diff, half_sum)
    return np.stack([_wrap_pi(half_sum + half_diff), b, _wrap_pi(half_sum - half_diff)], axis=-1)


def _matrix_to_quat(m: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(m, dtype=np.float64).reshape(9))
    return q


# ---- the contract -----------------------------------------------------------------------------------------


def load_contract(path: Path) -> dict:
    """Read ``policy.json`` and check its format tag and version."""
    path = Path(path)
    try:
        contract = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ContractError(f"{path}: not a readable JSON contract: {e}") from None
    if not isinstance(contract, dict) or contract.get("format") != CONTRACT_FORMAT:
        raise ContractError(f"{path}: not a mimic policy contract (format {CONTRACT_FORMAT!r} missing)")
    if int(contract.get("version", 0)) > CONTRACT_VERSION:
        raise ContractError(
            f"{path}: contract version {contract.get('version')} is newer than this runner reads"
        )
    return contract


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finite_or_inf(x: Optional[float]) -> float:
    return math.inf if x is None else float(x)


# ---- skeleton: DoFs -> joint rotations -> body poses -----------------------------------------------------


class Skeleton:
    """The character's tree and DoF layout (from the contract) with body offsets from the MuJoCo model.

    ``local_pos``/``local_quat`` (nb, 3)/(nb, 4): each body's fixed frame in its parent's (MJCF pos/quat).
    """

    def __init__(self, contract: dict, model: mujoco.MjModel):
        ch = contract["character"]
        self.body_names: List[str] = list(ch["bodies"])
        self.parents: List[int] = [int(p) for p in ch["parents"]]
        self.num_bodies = len(self.body_names)
        self.num_dofs = int(contract["actions"]["size"])
        self.joints: List[dict] = list(contract["joints"])
        self.body_ids = np.zeros(self.num_bodies, dtype=np.int64)
        for b, name in enumerate(self.body_names):
            bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            self.body_ids[b] = bid if bid >= 0 else b + 1  # an unnamed body: its depth-first position
            if self.body_ids[b] >= model.nbody:
                raise ContractError(f"MJCF has no body {name!r} of the contract")
        self.local_pos = model.body_pos[self.body_ids].copy()
        self.local_quat = model.body_quat[self.body_ids].copy()
        self.key_ids = np.array(
            [self.body_names.index(n) for n in contract["observation"]["key_bodies"]], dtype=np.int64
        )

    def local_rot(self, dof: np.ndarray) -> np.ndarray:
        """Joint rotation of every body (identity for the root and welded bodies). (k, nd) -> (k, nb, 4)."""
        k = dof.shape[0]
        out = np.zeros((k, self.num_bodies, 4))
        out[..., 0] = 1.0
        for j in self.joints:
            o = int(j["dof_offset"])
            if j["kind"] == "hinge":
                out[:, j["body"]] = axis_angle_to_quat(np.asarray(j["axes"][0], dtype=np.float64), dof[:, o])
            else:
                out[:, j["body"]] = exp_map_to_quat(dof[:, o : o + 3])
        return out

    def forward_kinematics(
        self, root_pos: np.ndarray, root_rot: np.ndarray, local_rot: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """World body poses: body_rot = parent_rot * local_quat * local_rot. Shapes (k, nb, 3), (k, nb, 4)."""
        k = root_pos.shape[0]
        pos = np.zeros((k, self.num_bodies, 3))
        rot = np.zeros((k, self.num_bodies, 4))
        pos[:, 0], rot[:, 0] = root_pos, root_rot
        for b in range(1, self.num_bodies):
            p = self.parents[b]
            pos[:, b] = pos[:, p] + quat_rotate(rot[:, p], np.broadcast_to(self.local_pos[b], (k, 3)))
            rot[:, b] = quat_mul(
                rot[:, p], quat_mul(np.broadcast_to(self.local_quat[b], (k, 4)), local_rot[:, b])
            )
        return pos, rot


# ---- the reference clip -------------------------------------------------------------------------------------


class ReferenceClip:
    """One clip's per-frame tables and interpolated queries (mimic's MotionLib, for one clip).

    Velocities are forward differences times fps (the last frame repeats the one before): root linear
    (world), root angular (world, from q1 q0^-1), hinge rates, spherical joints' child-frame angular
    velocity (from q0^-1 q1). A query lerps positions and velocities, slerps the root and joint rotations,
    advances wrap clips by whole cycles of their root xy displacement, and runs FK on the blended pose.
    """

    def __init__(self, frames: np.ndarray, fps: float, loop_mode: int, skel: Skeleton):
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2 or frames.shape[1] != 6 + skel.num_dofs:
            raise ContractError(
                f"clip frames have Shape {frames.shape}; the contract needs (F, {6 + skel.num_dofs})"
            )
        if not np.isfinite(frames).all():
            raise ContractError("clip frames have NaN or inf values")
        self.skel = skel
        self.fps = float(fps)
        self.loop_mode = int(loop_mode)
        self.num_frames = frames.shape[0]
        self.length_s = (self.num_frames - 1) / self.fps
        n = self.num_frames
        self.root_pos = frames[:, 0:3]
        self.root_rot = exp_map_to_quat(frames[:, 3:6])
        self.dof_pos = frames[:, 6:]
        self.local_rot = skel.local_rot(self.dof_pos)

        def fix_last(v: np.ndarray) -> np.ndarray:
            v = v * self.fps
            v[-1] = v[-2] if n > 1 else 0.0
            return v

        d = np.zeros_like(self.root_pos)
        d[:-1] = self.root_pos[1:] - self.root_pos[:-1]
        self.root_vel = fix_last(d)
        d = np.zeros_like(self.root_pos)
        d[:-1] = quat_to_exp_map(quat_mul(self.root_rot[1:], quat_conj(self.root_rot[:-1])))
        self.root_ang_vel = fix_last(d)
        dv = np.zeros_like(self.dof_pos)
        dv[:-1] = self.dof_pos[1:] - self.dof_pos[:-1]
        for j in skel.joints:
            if j["kind"] != "hinge":
                o, q = int(j["dof_offset"]), self.local_rot[:, j["body"]]
                dv[:-1, o : o + 3] = quat_to_exp_map(quat_mul(quat_conj(q[:-1]), q[1:]))
        self.dof_vel = fix_last(dv)
        delta = self.root_pos[-1] - self.root_pos[0]
        delta[2] = 0.0
        self.wrap_delta = delta if self.loop_mode == _LOOP_WRAP else np.zeros(3)

    @classmethod
    def load(cls, path: Path, skel: Skeleton) -> ReferenceClip:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["frames"], float(z["fps"]), int(z["loop_mode"]), skel)

    def query(self, times_s: np.ndarray) -> Dict[str, np.ndarray]:
        """Reference state at clip times (k,) s: root_pos/rot/vel/ang_vel, dof_pos/vel, local_rot (k, nb, 4),
        body_pos (k, nb, 3), body_rot (k, nb, 4)."""
        t = np.asarray(times_s, dtype=np.float64)
        length = self.length_s
        wrap = self.loop_mode == _LOOP_WRAP and length > 0
        cycles = np.floor(t / length) if wrap else np.zeros_like(t)
        t = np.minimum(np.maximum(t - cycles * length, 0.0), length)
        pos = t * self.fps
        i0 = np.minimum(np.floor(pos).astype(np.int64), self.num_frames - 1)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        b = np.clip(pos - i0, 0.0, 1.0)[:, None]

        def lerp(x: np.ndarray) -> np.ndarray:
            bb = b.reshape(b.shape + (1,) * (x.ndim - 2))
            return x[i0] + bb * (x[i1] - x[i0])

        root_rot = quat_slerp(self.root_rot[i0], self.root_rot[i1], b)
        local_rot = quat_slerp(self.local_rot[i0], self.local_rot[i1], b[:, None])
        root_pos = lerp(self.root_pos) + cycles[:, None] * self.wrap_delta
        dof_pos = lerp(self.dof_pos)
        for j in self.skel.joints:
            if j["kind"] != "hinge":
                o = int(j["dof_offset"])
                dof_pos[:, o : o + 3] = quat_to_exp_map(local_rot[:, j["body"]])
        body_pos, body_rot = self.skel.forward_kinematics(root_pos, root_rot, local_rot)
        return {
            "root_pos": root_pos,
            "root_rot": root_rot,
            "root_vel": lerp(self.root_vel),
            "root_ang_vel": lerp(self.root_ang_vel),
            "dof_pos": dof_pos,
            "dof_vel": lerp(self.dof_vel),
            "local_rot": local_rot,
            "body_pos": body_pos,
            "body_rot": body_rot,
        }


# ---- the scene ------------------------------------------------------------------------------------------------


def build_scene(contract: dict, mjcf: Path) -> mujoco.MjModel:
    """The character's MJCF with PD actuators, no passive springs/dampers, a ground and contact sensors."""
    rates = contract["rates"]
    ms = mujoco.MjSpec.from_file(str(mjcf))
    ms.option.timestep = 1.0 / float(rates["physics_hz"])
    integrators = {
        "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
        "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
    }
    ms.option.integrator = integrators[rates.get("integrator", "implicitfast")]
    for act in list(ms.actuators):
        ms.delete(act)
    for key in list(ms.keys):
        ms.delete(key)
    for jnt in ms.joints:  # the MJCF stiffness/damping are the PD gains, not passive springs
        jnt.stiffness = np.zeros_like(np.asarray(jnt.stiffness, dtype=np.float64))
        jnt.damping = np.zeros_like(np.asarray(jnt.damping, dtype=np.float64))
    for act in contract["actuators"]:
        a = ms.add_actuator(name=act["name"], target=act["joint"])
        a.trntype = mujoco.mjtTrn.mjTRN_JOINT
        a.gear = np.concatenate([np.asarray(act["gear"], dtype=np.float64), np.zeros(3)])
        a.dyntype = mujoco.mjtDyn.mjDYN_NONE
        a.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        kp, kd = float(act["kp"]), float(act["kd"])
        a.gainprm = np.concatenate([[kp], np.zeros(len(a.gainprm) - 1)])
        a.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        a.biasprm = np.concatenate([[0.0, -kp, -kd], np.zeros(len(a.biasprm) - 3)])
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        limit = _finite_or_inf(act["torque_limit"])
        if math.isfinite(limit):
            a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            a.forcerange = np.array([-limit, limit])
        else:
            a.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE
    ground = contract["ground"]
    ms.worldbody.add_geom(
        name="ground",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        condim=int(ground["condim"]),
        friction=[float(f) for f in ground["friction"]],
    )
    for name in contract["character"]["bodies_with_geoms"]:
        s = ms.add_sensor(
            name="ground_force_" + name,
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_GEOM,
            objname="ground",
            reftype=mujoco.mjtObj.mjOBJ_BODY,
            refname=name,
        )
        s.intprm = np.concatenate(
            [[2, 3, 1], np.zeros(len(s.intprm) - 3, dtype=int)]
        )  # force, netforce, 1 slot
    try:
        return ms.compile()
    except Exception as e:
        raise ContractError(f"{mjcf}: MuJoCo cannot build the scene: {e}") from None


# ---- the runner -------------------------------------------------------------------------------------------------


class Episode:
    """One episode's per-step record (after each control step), numpy arrays with T = steps."""

    def __init__(self) -> None:
        self.body_pos: List[np.ndarray] = []
        self.ref_body_pos: List[np.ndarray] = []
        self.root_pos: List[np.ndarray] = []
        self.ref_root_pos: List[np.ndarray] = []
        self.done_flag = 0

    @property
    def num_steps(self) -> int:
        return len(self.body_pos)

    def body_pos_err_m(self) -> np.ndarray:
        """MimicKit's Body_Pos_Err per step: mean over bodies of the root-relative position error. (T,)."""
        sim = np.asarray(self.body_pos) - np.asarray(self.root_pos)[:, None]
        ref = np.asarray(self.ref_body_pos) - np.asarray(self.ref_root_pos)[:, None]
        return np.linalg.norm(ref - sim, axis=-1).mean(axis=-1)

    def root_pos_err_m(self) -> np.ndarray:
        """MimicKit's Root_Pos_Err per step (T,)."""
        return np.linalg.norm(np.asarray(self.ref_root_pos) - np.asarray(self.root_pos), axis=-1)


class ReferenceRunner:
    """Loads the contract, the ONNX policy, the clip and the MJCF; steps one character (see module doc)."""

    def __init__(self, contract_path: Path, mjcf: Optional[Path] = None, check_hashes: bool = True):
        contract_path = Path(contract_path)
        c = load_contract(contract_path)
        here = contract_path.parent
        self.contract = c
        mjcf = Path(mjcf) if mjcf is not None else Path(c["character"]["file"])
        if not mjcf.is_absolute() and not mjcf.is_file():
            mjcf = here / mjcf
        if not mjcf.is_file():
            raise ContractError(f"character MJCF {mjcf} not found (pass --mjcf)")
        if check_hashes and c["character"].get("sha256") and _sha256(mjcf) != c["character"]["sha256"]:
            raise ContractError(f"{mjcf}: sha256 differs from the contract's character file (another model?)")
        self.model = build_scene(c, mjcf)
        self.data = mujoco.MjData(self.model)
        self.skel = Skeleton(c, self.model)
        self.clip = ReferenceClip.load(here / c["motion"]["clip"], self.skel)
        onnx_path = here / c["onnx"]["file"]
        self.session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.onnx_input = c["onnx"]["input"]

        rates = c["rates"]
        self.control_dt = 1.0 / float(rates["control_hz"])
        self.substeps = int(round(float(rates["physics_hz"]) / float(rates["control_hz"])))
        obs = c["observation"]
        self.obs_size = int(obs["size"])
        self.global_obs = bool(obs["global_obs"])
        self.root_height_obs = bool(obs["root_height_obs"])
        self.phase_obs = bool(obs["enable_phase_obs"])
        self.num_phase_encoding = int(obs["num_phase_encoding"])
        self.tar_steps = [int(s) for s in obs["tar_obs_steps"]] if obs["enable_tar_obs"] else []
        act = c["actions"]
        self.action_low = np.asarray(act["low"], dtype=np.float64)
        self.action_high = np.asarray(act["high"], dtype=np.float64)
        term = c["termination"]
        self.term = term
        self.contact_ok = np.zeros(self.skel.num_bodies, dtype=bool)
        for name in term["contact_bodies"]:
            self.contact_ok[self.skel.body_names.index(name)] = True
        self._index_model()
        self.steps = 0
        self.time_s = 0.0
        self.start_time_s = 0.0
        self.contact_force = np.zeros((self.skel.num_bodies, 3))

    # -- MuJoCo index tables
    def _index_model(self) -> None:
        m, skel = self.model, self.skel
        root_j = m.body_jntadr[skel.body_ids[0]]
        self.root_qpos = int(m.jnt_qposadr[root_j])
        self.root_qvel = int(m.jnt_dofadr[root_j])
        self.joint_ids: List[List[int]] = []
        for j in skel.joints:
            ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name) for name in j["mjcf_joints"]]
            if min(ids) < 0:
                raise ContractError(f"MJCF lacks joint(s) {j['mjcf_joints']} of the contract")
            self.joint_ids.append(ids)
        # triple hinges: the axes' frame (a1, a2, +-a3) as a quaternion, for target -> hinge angles
        self.triple_frame: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        for k, j in enumerate(skel.joints):
            if j["kind"] != "hinge" and len(j["mjcf_joints"]) == 3:
                a = np.asarray(j["axes"], dtype=np.float64)
                s = 1.0 if np.linalg.det(a) > 0 else -1.0
                qa = _matrix_to_quat(np.stack([a[0], a[1], s * a[2]], axis=1))
                self.triple_frame[k] = (qa, np.array([1.0, 1.0, s]))
        self.sensor_adr = np.full(skel.num_bodies, -1, dtype=np.int64)
        for b, name in enumerate(skel.body_names):
            sid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "ground_force_" + name)
            if sid >= 0:
                self.sensor_adr[b] = m.sensor_adr[sid]

    def _triple_angles(self, k: int, q: np.ndarray) -> np.ndarray:
        """Hinge angles (3,) reproducing joint rotation q of triple joint k; of the two Euler solutions the
        one inside the joint limits (the principal one when both or neither fit)."""
        j = self.skel.joints[k]
        qa, sign = self.triple_frame[k]
        qe = quat_mul(quat_mul(quat_conj(qa), q), qa)
        raw = _quat_to_euler_xyz(qe)
        alt = np.array([raw[0] + np.pi, np.pi - raw[1], raw[2] + np.pi])
        e = _wrap_pi(raw * sign)
        alt = _wrap_pi((np.remainder(alt + np.pi, 2.0 * np.pi) - np.pi) * sign)
        low = np.array([_finite_or_inf(x) if x is not None else -math.inf for x in j["range_low"]])
        high = np.array([_finite_or_inf(x) for x in j["range_high"]])

        def violation(x: np.ndarray) -> float:
            with np.errstate(invalid="ignore"):
                return float(np.nansum(np.maximum(low - x, 0.0) + np.maximum(x - high, 0.0)))

        return alt if violation(alt) < violation(e) - 1e-9 else e

    # -- state in / out
    def set_state(self, ref: Dict[str, np.ndarray]) -> None:
        """Teleport the character to a reference state (reference state initialisation)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        root_rot = quat_normalize(ref["root_rot"])
        d.qpos[self.root_qpos : self.root_qpos + 3] = ref["root_pos"]
        d.qpos[self.root_qpos + 3 : self.root_qpos + 7] = root_rot
        dof, dof_vel = ref["dof_pos"], ref["dof_vel"]
        for k, j in enumerate(self.skel.joints):
            o, ids = int(j["dof_offset"]), self.joint_ids[k]
            if j["kind"] == "hinge":
                d.qpos[m.jnt_qposadr[ids[0]]] = dof[o]
            elif len(ids) == 1:  # ball
                adr = m.jnt_qposadr[ids[0]]
                d.qpos[adr : adr + 4] = exp_map_to_quat(dof[o : o + 3])
            else:
                ang = self._triple_angles(k, exp_map_to_quat(dof[o : o + 3]))
                for i, jid in enumerate(ids):
                    d.qpos[m.jnt_qposadr[jid]] = ang[i]
        d.qvel[self.root_qvel : self.root_qvel + 3] = ref["root_vel"]
        d.qvel[self.root_qvel + 3 : self.root_qvel + 6] = quat_rotate(
            quat_conj(root_rot), ref["root_ang_vel"]
        )
        mujoco.mj_kinematics(m, d)  # xaxis/xquat of the new pose, for the triple-hinge rates
        for k, j in enumerate(self.skel.joints):
            o, ids = int(j["dof_offset"]), self.joint_ids[k]
            if j["kind"] == "hinge":
                d.qvel[m.jnt_dofadr[ids[0]]] = dof_vel[o]
            elif len(ids) == 1:
                adr = m.jnt_dofadr[ids[0]]
                d.qvel[adr : adr + 3] = dof_vel[o : o + 3]
            else:  # child-frame angular velocity = R_body^T sum_k xaxis_k rate_k: solve for the rates
                rot_inv = quat_conj(d.xquat[self.skel.body_ids[j["body"]]])
                cols = np.stack([quat_rotate(rot_inv, d.xaxis[jid]) for jid in ids], axis=1)
                rates = np.linalg.solve(cols, dof_vel[o : o + 3])
                for i, jid in enumerate(ids):
                    d.qvel[m.jnt_dofadr[jid]] = rates[i]
        self.contact_force[:] = 0.0

    def read_state(self) -> Dict[str, np.ndarray]:
        """The simulated state in the task's terms (root, joint rotations, DoF velocities, body poses)."""
        m, d, skel = self.model, self.data, self.skel
        mujoco.mj_kinematics(m, d)  # mj_step leaves xpos/xquat one physics step behind qpos
        root_rot = quat_normalize(d.qpos[self.root_qpos + 3 : self.root_qpos + 7].copy())
        body_pos = d.xpos[skel.body_ids].copy()
        body_rot = d.xquat[skel.body_ids].copy()
        parent_rot = body_rot[skel.parents[1:]]
        joint_rot = quat_mul(quat_conj(quat_mul(parent_rot, skel.local_quat[1:])), body_rot[1:])
        dof_vel = np.zeros(skel.num_dofs)
        for k, j in enumerate(skel.joints):
            o, ids = int(j["dof_offset"]), self.joint_ids[k]
            if j["kind"] == "hinge":
                dof_vel[o] = d.qvel[m.jnt_dofadr[ids[0]]]
            elif len(ids) == 1:
                adr = m.jnt_dofadr[ids[0]]
                dof_vel[o : o + 3] = d.qvel[adr : adr + 3]
            else:
                w = sum(d.xaxis[jid] * d.qvel[m.jnt_dofadr[jid]] for jid in ids)
                dof_vel[o : o + 3] = quat_rotate(quat_conj(body_rot[j["body"]]), w)
        return {
            "root_pos": d.qpos[self.root_qpos : self.root_qpos + 3].copy(),
            "root_rot": root_rot,
            "root_vel": d.qvel[self.root_qvel : self.root_qvel + 3].copy(),
            "root_ang_vel": quat_rotate(root_rot, d.qvel[self.root_qvel + 3 : self.root_qvel + 6]),
            "joint_rot": joint_rot,
            "dof_vel": dof_vel,
            "body_pos": body_pos,
            "body_rot": body_rot,
        }

    # -- observation
    def observation(self, sim: Dict[str, np.ndarray]) -> np.ndarray:
        """The DeepMimic observation (contract ``observation.layout``), Shape (obs_size,), float64."""
        skel = self.skel
        motion_time = self.start_time_s + self.time_s
        root_pos, root_rot = sim["root_pos"], sim["root_rot"]
        key_rel = sim["body_pos"][skel.key_ids] - root_pos
        root_rot_obs, root_vel, root_ang_vel = root_rot, sim["root_vel"], sim["root_ang_vel"]
        if not self.global_obs:
            h = heading_quat_inv(root_rot)
            root_rot_obs = quat_mul(h, root_rot)
            root_vel, root_ang_vel = quat_rotate(h, root_vel), quat_rotate(h, root_ang_vel)
            key_rel = quat_rotate(h, key_rel)
        parts = [root_pos[2:3]] if self.root_height_obs else []
        parts += [
            tan_norm(root_rot_obs),
            root_vel,
            root_ang_vel,
            tan_norm(sim["joint_rot"]).reshape(-1),
            sim["dof_vel"],
            key_rel.reshape(-1),
        ]
        if self.phase_obs:
            t = motion_time / self.clip.length_s
            if self.clip.loop_mode == _LOOP_WRAP:
                t = t - math.floor(t)
            phase = min(max(t, 0.0), 1.0)
            parts.append(np.array([phase]))
            if self.num_phase_encoding > 0:
                val = phase * 2.0 * np.pi * 2.0 ** np.arange(self.num_phase_encoding)
                parts += [np.sin(val), np.cos(val)]
        if self.tar_steps:
            tar = self.clip.query(np.array([motion_time + s * self.control_dt for s in self.tar_steps]))
            if self.global_obs:
                ref_pos, ref_rot = root_pos, root_rot
            else:
                ref_pos, ref_rot = tar["root_pos"][0], tar["root_rot"][0]
            pos_obs = tar["root_pos"] - ref_pos
            tar_key = tar["body_pos"][:, skel.key_ids] - tar["root_pos"][:, None]
            tar_rot = tar["root_rot"]
            if not self.global_obs:
                h = heading_quat_inv(ref_rot)
                pos_obs, tar_rot, tar_key = (
                    quat_rotate(h, pos_obs),
                    quat_mul(h, tar_rot),
                    quat_rotate(h, tar_key),
                )
            if self.root_height_obs:
                pos_obs = np.concatenate([pos_obs[:, :2], tar["root_pos"][:, 2:3]], axis=-1)
            else:
                pos_obs = pos_obs[:, :2]
            n = len(self.tar_steps)
            tar_obs = np.concatenate(
                [
                    pos_obs,
                    tan_norm(tar_rot),
                    tan_norm(tar["local_rot"][:, 1:]).reshape(n, -1),
                    tar_key.reshape(n, -1),
                ],
                axis=-1,
            )
            parts.append(tar_obs.reshape(-1))
        obs = np.concatenate(parts)
        if obs.shape[0] != self.obs_size:
            raise ContractError(f"built {obs.shape[0]} observation values, the contract says {self.obs_size}")
        return obs

    # -- actions and stepping
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """PD targets (num_dofs,) from the ONNX graph (already clipped to the action bounds)."""
        x = np.asarray(obs, dtype=np.float32)[None, :]
        return self.session.run(None, {self.onnx_input: x})[0][0].astype(np.float64)

    def set_targets(self, targets: np.ndarray) -> None:
        """Motion-DoF PD targets -> actuator ctrl (hinge angles; a ball's exp-map components)."""
        targets = np.minimum(np.maximum(targets, self.action_low), self.action_high)
        ctrl = self.data.ctrl
        for act_i, act in enumerate(self.contract["actuators"]):
            k, comp = int(act["joint_index"]), int(act["component"])
            j = self.skel.joints[k]
            o = int(j["dof_offset"])
            if j["kind"] == "hinge" or len(j["mjcf_joints"]) == 1:
                ctrl[act_i] = targets[o + comp]
            else:
                ctrl[act_i] = self._triple_angles(k, exp_map_to_quat(targets[o : o + 3]))[comp]

    def step_physics(self) -> None:
        """``substeps`` mj_step calls; ground-contact forces averaged over them."""
        m, d = self.model, self.data
        acc = np.zeros((self.skel.num_bodies, 3))
        with_sensor = np.flatnonzero(self.sensor_adr >= 0)
        for _ in range(self.substeps):
            mujoco.mj_step(m, d)
            for b in with_sensor:
                acc[b] += d.sensordata[self.sensor_adr[b] : self.sensor_adr[b] + 3]
        self.contact_force = acc / self.substeps

    def done_flag(self, sim: Dict[str, np.ndarray], ref: Dict[str, np.ndarray]) -> int:
        """0 running, 1 FAIL (fell / drifted), 2 SUCC (end of a clamp clip), 3 TIME (episode length)."""
        term, flag = self.term, 0
        if self.time_s >= float(term["episode_length_s"]):
            flag = 3
        if self.clip.loop_mode != _LOOP_WRAP and self.start_time_s + self.time_s >= self.clip.length_s:
            flag = 2
        if term["enable_early_termination"] and self.time_s > 0:
            failed = False
            if self.contact_ok.any():
                touching = (np.abs(self.contact_force) > float(term["contact_force_threshold_n"])).any(
                    axis=-1
                )
                failed = bool((touching & ~self.contact_ok).any())
            if term["pose_termination"]:
                dist = float(term["pose_termination_dist_m"])
                body, ref_body = sim["body_pos"], ref["body_pos"]
                if not term["global_obs"]:
                    body = quat_rotate(quat_conj(sim["root_rot"]), body[1:] - body[:1])
                    ref_body = quat_rotate(quat_conj(ref["root_rot"]), ref_body[1:] - ref_body[:1])
                elif not term["track_root"]:
                    body, ref_body = body[1:] - body[:1], ref_body[1:] - ref_body[:1]
                far = float(np.max(np.sum((ref_body - body) ** 2, axis=-1))) > dist * dist
                failed = failed or far
            if failed:
                flag = 1
        return flag

    def reset(self, start_time_s: float = 0.0) -> np.ndarray:
        """Reference state initialisation at clip time ``start_time_s``; returns the first observation."""
        self.start_time_s = float(start_time_s)
        self.steps = 0
        self.time_s = 0.0
        ref = {k: v[0] for k, v in self.clip.query(np.array([self.start_time_s])).items()}
        self.set_state(ref)
        return self.observation(self.read_state())

    def step(self, obs: np.ndarray) -> Tuple[np.ndarray, Dict[str, np.ndarray], Dict[str, np.ndarray], int]:
        """One control step: policy, PD targets, physics. Returns (next obs, sim state, reference, done flag)."""
        self.set_targets(self.policy(obs))
        self.step_physics()
        self.steps += 1
        self.time_s = self.steps * self.control_dt  # as the task: an integer step count times dt
        sim = self.read_state()
        ref = {k: v[0] for k, v in self.clip.query(np.array([self.start_time_s + self.time_s])).items()}
        return self.observation(sim), sim, ref, self.done_flag(sim, ref)

    def run_episode(self, start_time_s: float = 0.0, max_steps: Optional[int] = None) -> Episode:
        """Run until a done flag (or ``max_steps``); record body and root positions per step."""
        ep = Episode()
        obs = self.reset(start_time_s)
        while max_steps is None or ep.num_steps < max_steps:
            obs, sim, ref, flag = self.step(obs)
            ep.body_pos.append(sim["body_pos"])
            ep.ref_body_pos.append(ref["body_pos"])
            ep.root_pos.append(sim["root_pos"])
            ep.ref_root_pos.append(ref["root_pos"])
            if flag:
                ep.done_flag = flag
                break
        return ep


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Drive a character in MuJoCo with an exported mimic policy.")
    p.add_argument("contract", type=Path, help="policy.json written by `mimic export`")
    p.add_argument(
        "--mjcf", type=Path, default=None, help="the character MJCF (default: the contract's path)"
    )
    p.add_argument("--episodes", type=int, default=1, help="episodes to run")
    p.add_argument("--start", type=float, default=0.0, help="clip time of the first reset (s)")
    p.add_argument(
        "--max-steps", type=int, default=None, help="stop an episode after this many control steps"
    )
    args = p.parse_args(argv)
    try:
        runner = ReferenceRunner(args.contract, mjcf=args.mjcf)
    except ContractError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for i in range(args.episodes):
        ep = runner.run_episode(args.start, args.max_steps)
        print(
            f"episode {i}: {ep.num_steps} steps ({ep.num_steps * runner.control_dt:.2f} s), "
            f"ended {_DONE_NAMES[ep.done_flag]}, Body_Pos_Err {100 * ep.body_pos_err_m().mean():.2f} cm, "
            f"Root_Pos_Err {100 * ep.root_pos_err_m().mean():.2f} cm"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
