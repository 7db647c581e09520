"""MuJoCo on the CPU: N characters, one ``MjModel``, stepped in parallel by ``mujoco.rollout``.

State: the envs' full physics state (MuJoCo's ``mjSTATE_FULLPHYSICS`` vectors) lives in one numpy array,
Shape (num_envs, nstate). A control step hands the whole batch to a persistent ``mujoco.rollout.Rollout``
thread pool (``spec.num_threads``, default all cores; the GIL is released for the whole call), which runs
``substeps`` ``mj_step`` per env in C and returns the new states plus every physics step's sensor values;
the ground-contact sensors are averaged over the substeps. Body poses are MuJoCo's own ``mj_kinematics`` on
the new ``qpos``, computed lazily (one scratch ``MjData``) when ``body_pos``/``body_rot`` are read (``mj_step``
itself leaves ``xpos``/``xquat`` one physics step behind ``qpos``).

Why rollout and not a Python thread pool over N ``MjData`` (one ``mj_step`` call per env and substep, GIL
released inside): measured on this humanoid (docs/performance.md, "MuJoCo CPU engine"), the stepping costs
the same; on an idle machine the pool came out 3-8 % ahead (it computes body poses inside its threads), on a
loaded one far behind (its threads re-take the GIL between substeps, and a descheduled GIL holder stalls
the others). Rollout also keeps all state in one array (subset resets are row writes). The price: the
solver warm start is not carried across control steps (rollout starts each call from a zero
``qacc_warmstart``; trajectories differ from uninterrupted ``mj_step`` by ~1e-16 per control step).
Results are bitwise deterministic and independent of the thread count (tested).

Conventions (``mimictools.engines.base``): tensors float32 on ``spec.device``; quaternions wxyz; bodies in
Character order (MuJoCo body ids are mapped by name, the world body is skipped); DoFs in motion DoF space.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import mujoco
import numpy as np
import torch
from mujoco import rollout
from torch import Tensor

from mimictools.character import kinematics
from mimictools.character.model import Character
from mimictools.engines.base import (
    EngineSpec,
    SimState,
    check_state_shapes,
    check_targets_shape,
    set_state,
)
from mimictools.engines.mjcf_build import SimModel, build_sim_model
from mimictools.errors import EngineError
from mimictools.math import rotations_np as rnp
from mimictools.system import available_cpus

__all__ = ["MuJoCoEngine", "mujoco_body_poses"]

_F64 = torch.float64


class MuJoCoEngine:
    """The ``Engine`` protocol on MuJoCo CPU (see the module docstring)."""

    name = "mujoco"

    def __init__(self, character: Character, spec: EngineSpec, integrator: str = "implicitfast"):
        self.character = character
        self.spec = spec
        self._sim: SimModel = build_sim_model(character, spec, integrator)
        self.num_envs = spec.num_envs
        try:
            self.device = torch.device(spec.device)
        except RuntimeError as exc:
            raise EngineError(f"invalid device {spec.device!r}: {exc}") from None
        self.dtype = torch.float32
        self.control_dt = 1.0 / spec.control_freq
        self.sim_dt = 1.0 / spec.sim_freq
        self.substeps = spec.substeps

        m = self._sim.model
        n = self.num_envs
        self._model = m
        self._scratch = mujoco.MjData(m)  # kinematics, snapshots
        # The envs' full physics state (time, qpos, qvel, act, ...), MuJoCo's mjSTATE_FULLPHYSICS layout.
        spec_bits = int(mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
        self._state_spec = spec_bits
        nstate = mujoco.mj_stateSize(m, spec_bits)
        template = np.zeros(nstate)
        mujoco.mj_getState(m, self._scratch, template, spec_bits)  # qpos0, zero velocity, time 0
        self._template = template
        self._state = np.repeat(template[None, :], n, axis=0)
        self._qpos_off = int(mujoco.mj_stateSize(m, int(mujoco.mjtState.mjSTATE_TIME.value)))
        self._qvel_off = self._qpos_off + m.nq
        self._check_state_layout()
        self._ctrl = np.zeros((n, m.nu))
        self._control = np.zeros((n, self.substeps, m.nu))
        self._out_state = np.zeros((n, self.substeps, nstate))
        self._out_sensor = np.zeros((n, self.substeps, m.nsensordata))
        nb = character.num_bodies
        self._xpos = np.zeros((n, nb, 3))
        self._xquat = np.zeros((n, nb, 4))
        self._xpos_all = np.zeros((n, m.nbody, 3))  # every MuJoCo body (world included): _update_poses
        self._xquat_all = np.zeros((n, m.nbody, 4))
        self._poses_stale = np.ones(n, dtype=bool)
        self._contact = np.zeros((n, nb, 3))
        bodies = self._sim.contact_sensor_bodies
        self._sensor_bodies = bodies
        self._sensor_cols = (self._sim.contact_sensor_adr[bodies][:, None] + np.arange(3)[None, :]).reshape(
            -1
        )

        threads = spec.num_threads if spec.num_threads > 0 else available_cpus()
        self.num_threads = max(1, min(threads, n))
        self._rollout: Optional[rollout.Rollout] = rollout.Rollout(
            nthread=self.num_threads if self.num_threads > 1 else 0
        )
        self._thread_data = [mujoco.MjData(m) for _ in range(self.num_threads)]
        self._models = [m] * n  # rollout's skip_checks path takes one model per env
        self._closed = False
        self._cache: Dict[str, Tensor] = {}
        ids = self._sim.body_ids
        contiguous = np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids)))
        self._body_sel = (
            slice(int(ids[0]), int(ids[0]) + len(ids)) if contiguous else ids
        )  # slices copy faster
        self._dof_map = _DofMap(character)
        self._unstable_steps = 0

    def unstable_steps(self, reset: bool = False) -> int:
        """Env-steps (control steps of one env) in which MuJoCo found NaN, Inf or a huge value in QPOS/QVEL/QACC
        and reset that env to the model's default pose (its "simulation is unstable" warning), since the last
        ``reset``. Found from the env's time going back (``mj_resetData`` zeroes it); host memory, no cost."""
        n = self._unstable_steps
        if reset:
            self._unstable_steps = 0
        return n

    def _check_state_layout(self) -> None:
        """The qpos/qvel offsets into the state vector agree with mj_getState (a MuJoCo version guard)."""
        m, d = self._model, mujoco.MjData(self._model)
        d.qpos[:] = np.arange(1, m.nq + 1)
        d.qvel[:] = -np.arange(1, m.nv + 1)
        row = np.zeros_like(self._template)
        mujoco.mj_getState(m, d, row, self._state_spec)
        if not (
            np.array_equal(row[self._qpos_off : self._qpos_off + m.nq], d.qpos)
            and np.array_equal(row[self._qvel_off : self._qvel_off + m.nv], d.qvel)
        ):
            raise EngineError(
                "unexpected MuJoCo state layout (mjSTATE_FULLPHYSICS); this mujoco version is not supported"
            )

    # ---- accessors beyond the protocol (rendering, fk-check, tests) ----------------------------------
    @property
    def sim_model(self) -> SimModel:
        """The compiled model and its Character <-> MuJoCo index tables."""
        return self._sim

    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._model

    def mj_data(self, env_id: int) -> mujoco.MjData:
        """A snapshot ``MjData`` of one env: its state and current ``ctrl``, after ``mj_forward`` (so
        ``actuator_force``, contacts, ... are those the next physics step starts from). Writing it changes nothing."""
        self._check_open()
        d = mujoco.MjData(self._model)
        mujoco.mj_setState(self._model, d, self._state[env_id], self._state_spec)
        d.ctrl[:] = self._ctrl[env_id]
        mujoco.mj_forward(self._model, d)
        return d

    # ---- protocol -----------------------------------------------------------------------------------
    def set_state_where(self, mask: Tensor, state: SimState) -> None:
        """Teleport the envs where ``mask`` (num_envs,) bool is True to the same rows of ``state`` (num_envs rows;
        the others are ignored): everything else of their physics state is reset to the model's defaults (time 0,
        no actuator activation); contact forces read zero until the next step. On the CPU only the selected rows
        are converted (an index, not a blend: the result is the same)."""
        self._check_open()
        n = self.num_envs
        if tuple(mask.shape) != (n,):
            raise EngineError(f"set_state_where: mask has shape {tuple(mask.shape)}, expected ({n},)")
        check_state_shapes(state, n, self.character.num_dofs)
        idx = np.flatnonzero(mask.detach().to("cpu").numpy())
        k = int(idx.size)
        if k == 0:
            return
        root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel = (
            t.detach().to(device="cpu", dtype=_F64).numpy()[idx] for t in state.fields()
        )
        root_rot = root_rot / np.maximum(np.linalg.norm(root_rot, axis=-1, keepdims=True), 1e-12)
        qpos, qvel = self._dof_map.to_qpos_qvel(root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel)
        if not (np.isfinite(qpos).all() and np.isfinite(qvel).all()):
            raise EngineError("set_state: the state has NaN or inf values")
        rows = np.repeat(self._template[None, :], k, axis=0)
        rows[:, self._qpos_off + self._sim.qpos_adr] = qpos
        rows[:, self._qvel_off + self._sim.qvel_adr] = qvel
        self._state[idx] = rows
        self._contact[idx] = 0.0
        self._poses_stale[idx] = True
        self._cache.clear()

    def get_state(self) -> SimState:
        """Root and DoF state of all envs (float32, ``device``)."""
        self._check_open()
        if "state" not in self._cache:
            qpos = self._state[:, self._qpos_off + self._sim.qpos_adr]
            qvel = self._state[:, self._qvel_off + self._sim.qvel_adr]
            parts = self._dof_map.from_qpos_qvel(qpos, qvel)
            for key, t in zip(
                ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel"), parts
            ):
                self._cache[key] = self._out(np.ascontiguousarray(t))
            self._cache["state"] = torch.empty(0)
        c = self._cache
        return SimState(
            c["root_pos"], c["root_rot"], c["root_vel"], c["root_ang_vel"], c["dof_pos"], c["dof_vel"]
        )

    def body_pos(self) -> Tensor:
        """World body origins (MuJoCo's ``mj_kinematics``), Shape (num_envs, num_bodies, 3), metres."""
        self._check_open()
        if "body_pos" not in self._cache:
            self._update_poses()
            self._cache["body_pos"] = self._out(self._xpos)
        return self._cache["body_pos"]

    def body_rot(self) -> Tensor:
        """World body orientations (MuJoCo's ``mj_kinematics``), Shape (num_envs, num_bodies, 4), wxyz."""
        self._check_open()
        if "body_rot" not in self._cache:
            self._update_poses()
            self._cache["body_rot"] = self._out(self._xquat)
        return self._cache["body_rot"]

    def contact_forces(self) -> Tensor:
        """Net ground-contact force on each body, world frame, newtons, averaged over the last control step's
        physics steps. Shape (num_envs, num_bodies, 3); zero after ``set_state`` and for bodies without geoms."""
        self._check_open()
        if "contact" not in self._cache:
            self._cache["contact"] = self._out(self._contact)
        return self._cache["contact"]

    def close(self) -> None:
        """Stop the rollout threads and drop the MuJoCo data."""
        if self._closed:
            return
        self._closed = True
        if self._rollout is not None:
            self._rollout.close()
            self._rollout = None
        self._thread_data = []
        self._cache.clear()

    def set_targets(self, dof_targets: Tensor) -> None:
        """PD targets for the next ``step_physics``: motion-DoF targets (num_envs, num_dofs) to actuator ``ctrl``
        (hinge angles / ball exp maps)."""
        self._check_open()
        check_targets_shape(dof_targets, self.num_envs, self.character.num_dofs)
        t = dof_targets.detach().to(device="cpu", dtype=_F64).numpy()
        src = np.concatenate([self._dof_map.joint_qpos(t), t], axis=-1)
        ctrl = src[:, self._sim.ctrl_src]
        if not np.isfinite(ctrl).all():
            raise EngineError("step: dof_targets has NaN or inf values")
        self._ctrl[:] = ctrl

    def step_physics(self) -> None:
        """Advance every env one control step (``substeps`` physics steps) towards the targets last set."""
        self._check_open()
        runner = self._rollout
        if runner is None:
            raise EngineError("the MuJoCo engine was closed")
        self._control[:] = self._ctrl[:, None, :]
        t_before = self._state[:, 0].copy()  # mjSTATE_TIME comes first
        runner.rollout(
            self._models,
            self._thread_data,
            self._state,
            self._control,
            nstep=self.substeps,
            state=self._out_state,
            sensordata=self._out_sensor,
            skip_checks=True,
        )
        self._state[:] = self._out_state[:, -1]
        # MuJoCo's instability warning (Nan, Inf or huge QPOS/QVEL/QACC) resets the MjData, time included
        self._unstable_steps += int(
            np.count_nonzero(self._state[:, 0] < t_before + self.control_dt - 0.5 * self.sim_dt)
        )
        if len(self._sensor_bodies):
            mean = self._out_sensor[:, :, self._sensor_cols].mean(axis=1)
            self._contact[:, self._sensor_bodies] = mean.reshape(self.num_envs, -1, 3)
        self._poses_stale[:] = True
        self._cache.clear()

    def _update_poses(self) -> None:
        """MuJoCo's body poses (``mj_kinematics``) of the envs whose state changed since the last call.

        The per-env loop is the hot part (one call per env and control step): it binds ``MjData``'s
        arrays once (each attribute access builds a new numpy view), copies whole ``xpos``/``xquat``
        rows into full-model buffers and selects the Character's bodies once for the batch
        (~25 % less time at 128 envs than indexing per env; the same numbers).
        """
        m, d = self._model, self._scratch
        stale = np.flatnonzero(self._poses_stale)
        if stale.size == 0:
            return
        qpos = self._state[:, self._qpos_off : self._qpos_off + m.nq]
        d_qpos, d_xpos, d_xquat = d.qpos, d.xpos, d.xquat
        all_pos, all_quat = self._xpos_all, self._xquat_all
        kinematics = mujoco.mj_kinematics
        for i in stale.tolist():
            d_qpos[:] = qpos[i]
            kinematics(m, d)
            all_pos[i] = d_xpos
            all_quat[i] = d_xquat
        ids = self._body_sel
        if stale.size == self.num_envs:
            self._xpos[:] = all_pos[:, ids]
            self._xquat[:] = all_quat[:, ids]
        else:
            self._xpos[stale] = all_pos[stale][:, ids]
            self._xquat[stale] = all_quat[stale][:, ids]
        self._poses_stale[:] = False

    def _out(self, a: np.ndarray) -> Tensor:
        return torch.from_numpy(a).to(device=self.device, dtype=self.dtype)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the MuJoCo engine was closed")

    def __del__(self) -> None:  # best effort: never leave rollout threads behind
        try:
            self.close()
        except Exception:
            pass


# ---- numpy DoF <-> qpos/qvel maps (the per-step hot path) ------------------------------------------------
#
# The same formulas as ``mimictools.character.kinematics`` (dof_to_qpos, qpos_to_dof, qvel_to_dof_vel,
# dof_vel_to_qvel), written in numpy float64: for the few-env batches of a CPU engine, torch's per-op
# dispatch made these conversions cost several times the physics of a control step. Parity with
# ``kinematics`` is tested to 1e-12 (tests/engines/test_engine_mujoco.py::test_numpy_dof_map_matches_kinematics).


class _DofMap:
    """Character DoF space <-> Character-layout qpos/qvel (``kinematics``' layouts), numpy float64."""

    def __init__(self, char: Character):
        from mimictools.math.rotations import matrix_to_quat

        self.num_dofs = char.num_dofs
        self.num_qpos = char.num_qpos
        hinge_dof, hinge_q, triple_dof, triple_q, ball_dof, ball_q = [], [], [], [], [], []
        qa, sign, axes, low, high = [], [], [], [], []
        col = 7
        for j in char.joints:
            dofs = list(range(j.dof_offset, j.dof_offset + j.dof_count))
            if j.kind == "hinge":
                hinge_dof.append(j.dof_offset)
                hinge_q.append(col)
            elif j.is_ball:
                ball_dof.append(dofs)
                ball_q.append(list(range(col, col + 4)))
            else:
                a = np.array(j.axes, dtype=np.float64)
                sgn = 1.0 if np.linalg.det(a) > 0 else -1.0
                frame = np.stack([a[0], a[1], sgn * a[2]], axis=1)
                qa.append(matrix_to_quat(torch.as_tensor(frame, dtype=_F64)).numpy())
                sign.append([1.0, 1.0, sgn])
                axes.append(a)
                low.append(np.asarray(j.range_low, dtype=np.float64))
                high.append(np.asarray(j.range_high, dtype=np.float64))
                triple_dof.append(dofs)
                triple_q.append(list(range(col, col + 3)))
            col += j.qpos_count
        i64 = lambda x, *shape: np.asarray(x, dtype=np.int64).reshape(shape)  # noqa: E731
        f64 = lambda x, *shape: np.asarray(x, dtype=np.float64).reshape(shape)  # noqa: E731
        self.hinge_dof, self.hinge_q = i64(hinge_dof, -1), i64(hinge_q, -1)
        self.triple_dof, self.triple_q = i64(triple_dof, -1, 3), i64(triple_q, -1, 3)
        self.ball_dof, self.ball_q = i64(ball_dof, -1, 3), i64(ball_q, -1, 4)
        self.qa, self.sign = f64(qa, -1, 4), f64(sign, -1, 3)
        self.conj_qa = rnp.conjugation_matrix(self.qa)  # x -> qa x qa^-1, Shape (nt, 4, 4)
        self.conj_qa_inv = np.swapaxes(self.conj_qa, -1, -2).copy()  # x -> qa^-1 x qa (orthogonal)
        self.axes, self.low, self.high = f64(axes, -1, 3, 3), f64(low, -1, 3), f64(high, -1, 3)

    def _triple_euler(self, q: np.ndarray) -> np.ndarray:
        """Hinge angles (n, nt, 3) of joint rotations q (n, nt, 4), limit-aware branch (as kinematics)."""
        qe = (self.conj_qa_inv @ q[..., None])[..., 0]
        raw = rnp.quat_to_euler_xyz(qe)
        alt = np.stack([raw[..., 0] + np.pi, np.pi - raw[..., 1], raw[..., 2] + np.pi], axis=-1)
        e = rnp.wrap_pi(raw * self.sign)
        alt = rnp.wrap_pi((np.remainder(alt + np.pi, 2.0 * np.pi) - np.pi) * self.sign)

        def violation(x: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                v = np.maximum(self.low - x, 0.0) + np.maximum(x - self.high, 0.0)
            return v.sum(-1, keepdims=True)

        return np.where(violation(alt) < violation(e) - 1e-9, alt, e)

    def _triple_quat(self, angles: np.ndarray) -> np.ndarray:
        qe = rnp.euler_xyz_to_quat(angles * self.sign)
        return (self.conj_qa @ qe[..., None])[..., 0]

    def _triple_jacobian(self, angles: np.ndarray) -> np.ndarray:
        """J (n, nt, 3, 3): child-frame angular velocity = J @ hinge rates."""
        a = self.axes
        h2, h3 = 0.5 * angles[..., 1:2], 0.5 * angles[..., 2:3]
        q2 = np.concatenate([np.cos(h2), np.sin(h2) * a[:, 1]], axis=-1)
        q3 = np.concatenate([np.cos(h3), np.sin(h3) * a[:, 2]], axis=-1)
        shape = angles.shape
        col1 = rnp.quat_rotate(rnp.quat_conj(rnp.quat_mul(q2, q3)), np.broadcast_to(a[:, 0], shape))
        col2 = rnp.quat_rotate(rnp.quat_conj(q3), np.broadcast_to(a[:, 1], shape))
        col3 = np.broadcast_to(a[:, 2], shape)
        return np.stack([col1, col2, col3], axis=-1)

    def joint_qpos(self, dof: np.ndarray) -> np.ndarray:
        """Character-layout qpos (n, num_qpos) with root = 0 / identity, from dof (n, num_dofs)."""
        n = dof.shape[0]
        out = np.zeros((n, self.num_qpos))
        out[:, 3] = 1.0
        out[:, self.hinge_q] = dof[:, self.hinge_dof]
        if self.triple_dof.size:
            out[:, self.triple_q] = self._triple_euler(rnp.exp_map_to_quat(dof[:, self.triple_dof]))
        if self.ball_dof.size:
            out[:, self.ball_q] = rnp.exp_map_to_quat(dof[:, self.ball_dof])
        return out

    def to_qpos_qvel(
        self,
        root_pos: np.ndarray,
        root_rot: np.ndarray,
        root_vel: np.ndarray,
        root_ang_vel: np.ndarray,
        dof: np.ndarray,
        dof_vel: np.ndarray,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """``kinematics.dof_to_qpos`` + ``dof_vel_to_qvel``: Character-layout (qpos (n, nq), qvel (n, 6 + nd))."""
        qpos = self.joint_qpos(dof)
        qpos[:, 0:3] = root_pos
        qpos[:, 3:7] = root_rot
        qvel = np.concatenate(
            [root_vel, rnp.quat_rotate(rnp.quat_conj(root_rot), root_ang_vel), dof_vel], axis=-1
        )
        if self.triple_dof.size:
            # the rates of the one solver (exact away from gimbal lock, damped least squares near it)
            m = np.ascontiguousarray(self._triple_jacobian(qpos[:, self.triple_q]), dtype=np.float64)
            v = np.ascontiguousarray(dof_vel[:, self.triple_dof], dtype=np.float64)
            rates = kinematics.solve_triple_rates(torch.from_numpy(m), torch.from_numpy(v))
            qvel[:, 6 + self.triple_dof] = rates.numpy()
        return qpos, qvel

    def from_qpos_qvel(self, qpos: np.ndarray, qvel: np.ndarray) -> Tuple[np.ndarray, ...]:
        """``kinematics.qpos_to_dof`` + ``qvel_to_dof_vel``: (root_pos, root_rot, root_vel, root_ang_vel, dof, dof_vel)."""
        n = qpos.shape[0]
        root_rot = qpos[:, 3:7] / np.maximum(np.linalg.norm(qpos[:, 3:7], axis=-1, keepdims=True), 1e-12)
        dof = np.zeros((n, self.num_dofs))
        dof[:, self.hinge_dof] = qpos[:, self.hinge_q]
        dof_vel = qvel[:, 6:].copy()
        if self.triple_dof.size:
            ang = qpos[:, self.triple_q]
            dof[:, self.triple_dof] = rnp.quat_to_exp_map(self._triple_quat(ang))
            rates = qvel[:, 6 + self.triple_dof]
            dof_vel[:, self.triple_dof] = (self._triple_jacobian(ang) @ rates[..., None])[..., 0]
        if self.ball_dof.size:
            dof[:, self.ball_dof] = rnp.quat_to_exp_map(qpos[:, self.ball_q])
        root_ang_vel = rnp.quat_rotate(root_rot, qvel[:, 3:6])
        return qpos[:, 0:3], root_rot, qvel[:, 0:3], root_ang_vel, dof, dof_vel


def mujoco_body_poses(
    character: Character, root_pos: Tensor, root_rot: Tensor, dof_pos: Tensor, chunk: int = 256
) -> Tuple[Tensor, Tensor]:
    """MuJoCo's body poses for a batch of poses (e.g. every frame of a clip), via the engine's ``set_state``.

    root_pos (F, 3), root_rot (F, 4) wxyz, dof_pos (F, num_dofs) -> (body_pos (F, nb, 3) m, body_rot (F, nb, 4)),
    float64, CPU. Uses one engine of ``chunk`` envs without ground; the same path as training's resets.
    """
    f = int(root_pos.shape[0])
    nd = character.num_dofs
    spec = EngineSpec(num_envs=max(1, min(chunk, f)), ground=False, num_threads=1)
    engine = MuJoCoEngine(character, spec)
    try:
        out_pos = np.zeros((f, character.num_bodies, 3))
        out_rot = np.zeros((f, character.num_bodies, 4))
        for lo in range(0, f, spec.num_envs):
            hi = min(f, lo + spec.num_envs)
            k = hi - lo
            z3 = torch.zeros(k, 3, dtype=_F64)
            zd = torch.zeros(k, nd, dtype=_F64)
            state = SimState(root_pos[lo:hi], root_rot[lo:hi], z3, z3, dof_pos[lo:hi], zd)
            set_state(engine, torch.arange(k), state)
            engine._update_poses()
            out_pos[lo:hi] = engine._xpos[:k]
            out_rot[lo:hi] = engine._xquat[:k]
    finally:
        engine.close()
    return torch.from_numpy(out_pos), torch.from_numpy(out_rot)
