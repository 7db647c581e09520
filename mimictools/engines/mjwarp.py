"""MuJoCo Warp: thousands of characters stepped on the GPU, state shared with torch without copies.

Needs Python >= 3.11 (mujoco-warp 4.0), ``pip install 'mimictools[gpu]'``. Runs on a CUDA GPU
(``EngineSpec.device = "cuda"``) or, slowly, on Warp's CPU device (``device = "cpu"``, used by the
parity tests in CI).

The model is the CPU engine's (``mimictools.engines.mjcf_build.build_sim_model``: PD ``general``
actuators, no passive springs, implicitfast, ground plane), moved to the device once with
``mujoco_warp.put_model``; ``put_data(..., nworld=num_envs)`` holds every env's state. MuJoCo's contact
sensors are switched off in the Warp copy (``mjDSBL_SENSOR``): the ground-contact force per body is
computed by our own kernel from the same contact forces, which is cheaper than MJWarp's sensor matching
(it allocates and sorts per sensor and step) and gives the same number (checked against the CPU
engine's sensors in ``tests/engines/test_mjwarp_parity.py``).

What is captured (one Warp graph per control step; CUDA graph on a GPU, Warp's CPU graph replay on CPU):
``contact accumulator = 0``; ``substeps`` x (``mjw.step``, ``mjw.contact_force`` of every contact,
our ``ground_force`` kernel adding the ground's force on each body into the accumulator / substeps);
``mjw.kinematics`` (``mj_step`` leaves body poses one physics step behind ``qpos``, as the CPU engine
refreshes them too). ``set_state_where`` blends qpos/qvel rows with torch ops; a second small graph
(``mjw.kinematics`` for all worlds) refreshes body poses when they are read after it. ``set_targets`` writes
``ctrl`` with torch ops and ``step_physics`` replays the step graph on torch's current stream, so torch and Warp work is ordered without any host sync.

Tensors the task sees are ``wp.to_torch`` views of the Warp arrays (``body_pos``/``body_rot`` return
views: valid until the next ``step_physics``/``set_state_where``, clone to keep them). float32 throughout.
No host<->device transfer and no Python loop over envs or bodies on the hot path; the step calls
do no validation that would need a host sync (shapes only; NaNs are the task's ``TrainingDivergedError``).

Capacity: ``nconmax`` contacts per world (pooled over worlds) and ``njmax`` constraint rows per world are
fixed at construction; MJWarp drops what does not fit and sets overflow bits (its device printf is
switched off: it would land in ``--json`` output). ``overflow_report()`` reads them (a host sync: call it
between rollouts). Measured on this humanoid: <= 11 contacts and <= 38 rows per world when falling and
lying on the ground, 8 contacts / 34 rows standing (4 per foot box, 4 rows per condim-3 contact).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mimictools.character import kinematics
from mimictools.character.model import Character
from mimictools.engines.base import (
    EngineSpec,
    SimState,
    check_state_shapes,
    check_targets_shape,
)
from mimictools.engines.mjcf_build import SimModel, build_sim_model
from mimictools.errors import EngineError

__all__ = ["MjWarpEngine", "import_warp"]

INSTALL_HINT = "pip install 'mimictools[gpu]' (mujoco-warp and warp-lang, Python >= 3.11)"

_KERNELS: Dict[str, Any] = {}


def import_warp() -> Tuple[Any, Any]:
    """``(warp, mujoco_warp)``, imported on first use; EngineError with the install hint when absent."""
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError as exc:
        raise EngineError(f"engine 'mjwarp' is unavailable: {exc}. Install: {INSTALL_HINT}") from None
    if "ground_force" not in _KERNELS:
        # before init: no greeting and no per-module load lines on stdout (they would corrupt --json output)
        wp.config.log_level = max(int(wp.config.log_level), int(wp.LOG_WARNING))
        wp.init()
        _KERNELS["ground_force"] = _make_ground_force_kernel(wp)
    return wp, mjw


def _make_ground_force_kernel(wp: Any) -> Any:
    """Kernel over all contact slots: add the ground's force on each body (world frame) into ``out``."""

    @wp.kernel(module="unique")
    def ground_force(
        nacon: wp.array(dtype=wp.int32),
        contact_geom: wp.array(dtype=wp.vec2i),
        contact_worldid: wp.array(dtype=wp.int32),
        force_world: wp.array(dtype=wp.spatial_vector),
        geom_char_body: wp.array(dtype=wp.int32),
        ground_geom: int,
        scale: float,
        out: wp.array2d(dtype=wp.vec3),
    ):
        c = wp.tid()
        if c >= nacon[0]:
            return
        g = contact_geom[c]
        # mjw.contact_force (world frame) is the force geom[0] exerts on geom[1]
        f = wp.spatial_top(force_world[c]) * scale
        if g[0] == ground_geom:
            b = geom_char_body[g[1]]
            if b >= 0:
                wp.atomic_add(out, contact_worldid[c], b, f)
        elif g[1] == ground_geom:
            b = geom_char_body[g[0]]
            if b >= 0:
                wp.atomic_add(out, contact_worldid[c], b, -f)

    return ground_force


class MjWarpEngine:
    """The ``Engine`` protocol on MuJoCo Warp (see the module docstring).

    Args:
        character, spec: as every engine (``spec.device`` "cuda"/"cuda:N" or "cpu" = Warp's CPU device).
        nconmax: contact slots per world; MJWarp pools them over all worlds (``naconmax = nconmax *
            num_envs``), so this is the *average* number of contacts a world may have.
        njmax: constraint rows per world (a hard per-world cap). Contacts against the ground are
            pyramidal condim-3 (4 rows each); joint limits 1 row each.
        deterministic: MJWarp's deterministic mode (sorted contacts, ordered atomics); slower.
        integrator: as ``build_sim_model``.
    """

    name = "mjwarp"

    def __init__(
        self,
        character: Character,
        spec: EngineSpec,
        nconmax: int = 32,
        njmax: int = 96,
        deterministic: bool = False,
        integrator: str = "implicitfast",
    ):
        wp, mjw = import_warp()
        import mujoco

        self._wp, self._mjw = wp, mjw
        self.character = character
        self.spec = spec
        self.num_envs = spec.num_envs
        self.control_dt = 1.0 / spec.control_freq
        self.sim_dt = 1.0 / spec.sim_freq
        self.substeps = spec.substeps
        self.dtype = torch.float32
        self.device = _torch_device(spec.device)
        self._closed = False
        if nconmax < 1 or njmax < 1:
            raise EngineError(f"nconmax and njmax must be >= 1, got {nconmax} and {njmax}")

        self._sim: SimModel = build_sim_model(character, spec, integrator)
        mjm = copy.copy(self._sim.model)
        mjm.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SENSOR)  # contact forces: our kernel below
        mjd = mujoco.MjData(mjm)
        mujoco.mj_kinematics(mjm, mjd)
        self._mj_model = mjm
        char_geoms = np.isin(mjm.geom_bodyid, self._sim.body_ids)
        lowest = (
            float((mjd.geom_xpos[char_geoms, 2] - mjm.geom_rbound[char_geoms]).min())
            if char_geoms.any()
            else 0.0
        )
        self._warmup_lift_m = max(0.0, 0.5 - lowest)

        n = self.num_envs
        try:
            self._wp_device = wp.device_from_torch(self.device)
        except Exception as exc:
            raise EngineError(f"Warp cannot use device {spec.device!r}: {exc}") from None
        self.is_cuda = bool(self._wp_device.is_cuda)
        self._wp_mem_base = self._warp_mem_current()
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(mjm)
            if deterministic:
                self._m.opt.deterministic = True
            # no device printf on stdout (it would corrupt --json output): see overflow_report()
            self._m.opt.warn_overflow = 0
            self._d = mjw.put_data(mjm, mjd, nworld=n, nconmax=nconmax, njmax=njmax)
            d = self._d
            naconmax = int(d.naconmax)
            geom_char_body = np.full(mjm.ngeom, -1, dtype=np.int32)
            mj_to_char = {int(bid): b for b, bid in enumerate(self._sim.body_ids)}
            for g in range(mjm.ngeom):
                geom_char_body[g] = mj_to_char.get(int(mjm.geom_bodyid[g]), -1)
            self._geom_char_body = wp.array(geom_char_body, dtype=wp.int32)
            self._contact_ids = wp.array(np.arange(naconmax, dtype=np.int32), dtype=wp.int32)
            self._contact_frc = wp.zeros(naconmax, dtype=wp.spatial_vector)
            self._ground_frc = wp.zeros((n, character.num_bodies), dtype=wp.vec3)

        # zero-copy torch views of the simulation state
        to_torch = wp.to_torch
        self._qpos = to_torch(d.qpos)  # (n, nq)
        self._qvel = to_torch(d.qvel)  # (n, nv)
        self._ctrl = to_torch(d.ctrl)  # (n, nu)
        self._qacc_warmstart = to_torch(d.qacc_warmstart)  # (n, nv)
        self._time = to_torch(d.time)  # (n,)
        self._solver_niter = to_torch(d.solver_niter)  # (n,) int32: the last physics step's solver iterations
        self._contact = to_torch(self._ground_frc)  # (n, num_bodies, 3)
        xpos, xquat = to_torch(d.xpos), to_torch(d.xquat)  # (n, nbody, 3) / (n, nbody, 4) wxyz
        body_ids = self._sim.body_ids
        nb = character.num_bodies
        if np.array_equal(body_ids, np.arange(1, nb + 1)):
            self._xpos, self._xquat = xpos[:, 1 : nb + 1], xquat[:, 1 : nb + 1]
            self._body_index: Optional[Tensor] = None
        else:  # not expected for a single character (MuJoCo keeps MJCF body order): gather per call
            self._xpos, self._xquat = xpos, xquat
            self._body_index = torch.as_tensor(body_ids, device=self.device)
        # Character layouts <-> MuJoCo layouts (identity for a single-character model: slicing, no gather)
        self._qpos_adr = _maybe_index(self._sim.qpos_adr, mjm.nq, self.device)
        self._qvel_adr = _maybe_index(self._sim.qvel_adr, mjm.nv, self.device)
        self._ctrl_src = torch.as_tensor(self._sim.ctrl_src, device=self.device)
        self._ctrl_identity = bool(np.array_equal(self._sim.ctrl_src, np.arange(7, 7 + mjm.nu)))
        f32 = dict(device=self.device, dtype=torch.float32)
        self._zero3 = torch.zeros(3, **f32)
        self._ident4 = torch.tensor([1.0, 0.0, 0.0, 0.0], **f32)

        self._torch_streams: Dict[int, Any] = {}
        self._step_graph = self._capture(self._step_body)
        self._kin_graph = self._capture(self._kinematics_body)
        self._poses_stale = False
        """A ``set_state_where`` ran eagerly since the last kinematics: ``body_pos``/``body_rot`` refresh first."""

    # ---- captured bodies ----------------------------------------------------------------------------
    def _step_body(self) -> None:
        wp, mjw, m, d = self._wp, self._mjw, self._m, self._d
        self._ground_frc.zero_()
        kernel = _KERNELS["ground_force"]
        scale = 1.0 / self.substeps
        for _ in range(self.substeps):
            mjw.step(m, d)
            mjw.contact_force(m, d, self._contact_ids, True, self._contact_frc)
            wp.launch(
                kernel,
                dim=int(d.naconmax),
                inputs=[
                    d.nacon,
                    d.contact.geom,
                    d.contact.worldid,
                    self._contact_frc,
                    self._geom_char_body,
                    int(self._sim.ground_geom),
                    scale,
                ],
                outputs=[self._ground_frc],
            )
        mjw.kinematics(m, d)

    def _kinematics_body(self) -> None:
        self._mjw.kinematics(self._m, self._d)

    def _capture(self, body: Any) -> Any:
        """Run ``body`` once eagerly (compiles and creates every kernel), restore the state, capture it."""
        wp = self._wp
        wp.synchronize_device(self._wp_device)
        saved = [t.clone() for t in (self._qpos, self._qvel, self._ctrl, self._qacc_warmstart, self._time)]
        # the MJCF default pose may sit in the ground (contact overflow): warm up in the air
        self._qpos[:, int(self._sim.qpos_adr[2])] += self._warmup_lift_m
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
        with wp.ScopedDevice(self._wp_device):
            body()
            wp.synchronize_device(self._wp_device)
            for t, s in zip((self._qpos, self._qvel, self._ctrl, self._qacc_warmstart, self._time), saved):
                t.copy_(s)
            self._contact.zero_()
            self._d.overflow.zero_()
            if self.is_cuda:
                torch.cuda.synchronize(self.device)
            graph: Any = None
            try:
                with wp.ScopedCapture(device=self._wp_device, force_module_load=False) as cap:
                    body()
                graph = cap.graph
            except Exception as exc:
                if self.is_cuda:
                    raise EngineError(f"CUDA graph capture of the MJWarp step failed: {exc}") from exc
                graph = body  # a Warp without CPU graph capture: replay = call the body eagerly
            self._mjw.kinematics(self._m, self._d)
            wp.synchronize_device(self._wp_device)
        return graph

    def _replay(self, graph: Any) -> None:
        """Launch ``graph`` on torch's current stream (ordered after the torch writes before it)."""
        if self.is_cuda:
            ts = torch.cuda.current_stream(self.device)
            key = ts.cuda_stream
            if key not in self._torch_streams:
                try:
                    self._torch_streams[key] = self._wp.stream_from_torch(ts)
                except Exception:  # Warp's own device stream is blocking: ordered with torch's legacy stream
                    self._torch_streams[key] = None
            stream = self._torch_streams[key]
            self._wp.capture_launch(graph, stream=stream)
        elif callable(graph):
            graph()
        else:
            self._wp.capture_launch(graph)

    # ---- accessors beyond the protocol (bench, tests) ------------------------------------------------
    @property
    def sim_model(self) -> SimModel:
        """The compiled (host) model and its Character <-> MuJoCo index tables."""
        return self._sim

    def _warp_mem_current(self) -> int:
        wp = self._wp
        if self.is_cuda and wp.is_mempool_enabled(self._wp_device):
            return int(wp.get_mempool_used_mem_current(self._wp_device))
        return 0

    def memory_report(self) -> Dict[str, float]:
        """Device memory in MiB: ``warp_engine`` (Warp arrays + graphs this engine holds), ``warp_peak`` and
        ``torch_peak`` (process-wide high-water marks of Warp's pool and torch's allocator), ``device_used``
        (everything on the GPU, other processes included). Zeros on the CPU."""
        if not self.is_cuda:
            return {"warp_engine": 0.0, "warp_peak": 0.0, "torch_peak": 0.0, "device_used": 0.0}
        wp, mib = self._wp, 2.0**20
        peak = wp.get_mempool_used_mem_high(self._wp_device) if wp.is_mempool_enabled(self._wp_device) else 0
        free, total = torch.cuda.mem_get_info(self.device)
        return {
            "warp_engine": (self._warp_mem_current() - self._wp_mem_base) / mib,
            "warp_peak": peak / mib,
            "torch_peak": torch.cuda.max_memory_allocated(self.device) / mib,
            "device_used": (total - free) / mib,
        }

    def peak_memory_mb(self) -> Optional[float]:
        """``mimic bench``'s hook: Warp pool peak + torch allocator peak (MiB, process-wide); None on the CPU."""
        if not self.is_cuda:
            return None
        rep = self.memory_report()
        return rep["warp_peak"] + rep["torch_peak"]

    def solver_iterations(self) -> Tensor:
        """Constraint-solver iterations of each env's last physics step (the last substep of the last control
        step), Shape (num_envs,) int32: a view of the device state, no copy and no sync. The training loop samples
        it every rollout step (`mimictools.rl.runner`: the log's Solver_Iters columns); on a GPU the solver loop
        of a physics step runs until the slowest env of the batch has converged."""
        return self._solver_niter

    def overflow_report(self, reset: bool = False) -> Dict[str, Any]:
        """Contact/constraint capacity use since the last reset (reads the device: call it between rollouts,
        not per step). ``max_nefc`` is the current step's; an overflow drops contacts/constraints silently."""
        d = self._d
        ovf = int(np.bitwise_or.reduce(d.overflow.numpy())) if d.overflow.shape[0] else 0
        out = {
            "nacon": int(d.nacon.numpy()[0]),
            "naconmax": int(d.naconmax),
            "max_nefc": int(d.nefc.numpy().max()),
            "njmax": int(d.njmax),
            "overflow_bits": ovf,
            "overflow": [
                f.name
                for f in self._mjw.OverflowType
                if f.value and not (f.value & (f.value - 1)) and ovf & f.value
            ],
        }
        if reset:
            d.overflow.zero_()
        return out

    # ---- protocol -----------------------------------------------------------------------------------
    def set_state_where(self, mask: Tensor, state: SimState) -> None:
        """Teleport the envs where ``mask`` (num_envs,) bool is True to the same rows of ``state`` (all num_envs
        rows; the other rows are ignored); the other envs are untouched. No host sync and fixed shapes (usable
        inside a captured CUDA graph): every row is converted, then blended; solver warm start, ctrl and contact
        forces of the teleported envs are zeroed (as ``mj_resetData``). Body poses are recomputed lazily by the
        next ``body_pos``/``body_rot`` outside a graph capture, or by the next ``step_physics``."""
        self._check_open()
        n = self.num_envs
        if tuple(mask.shape) != (n,):
            raise EngineError(f"set_state_where: mask has shape {tuple(mask.shape)}, expected ({n},)")
        qpos, qvel = self._to_qpos_qvel(state, n)
        m = mask.to(device=self.device, dtype=torch.bool).unsqueeze(-1)
        self._qpos.copy_(torch.where(m, qpos, self._qpos))
        self._qvel.copy_(torch.where(m, qvel, self._qvel))
        self._qacc_warmstart.masked_fill_(m, 0.0)
        self._ctrl.masked_fill_(m, 0.0)
        self._time.masked_fill_(mask, 0.0)
        self._contact.masked_fill_(m.unsqueeze(-1), 0.0)
        if not (self.is_cuda and torch.cuda.is_current_stream_capturing()):
            self._poses_stale = True  # a captured reset is always followed by step_physics before a read

    def _to_qpos_qvel(self, state: SimState, k: int) -> Tuple[Tensor, Tensor]:
        """MuJoCo qpos (k, nq) / qvel (k, nv), float32, of ``k`` rows of ``state`` (root quaternions normalised)."""
        nd = self.character.num_dofs
        check_state_shapes(state, k, nd)
        dt = state.dof_pos.dtype if state.dof_pos.is_floating_point() else torch.float32
        root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel = (
            t.detach().to(device=self.device, dtype=dt) for t in state.fields()
        )
        root_rot = root_rot / root_rot.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        char = self.character
        qpos = kinematics.dof_to_qpos(char, root_pos, root_rot, dof_pos).to(torch.float32)
        qvel = kinematics.dof_vel_to_qvel(char, root_rot, dof_pos, root_vel, root_ang_vel, dof_vel).to(
            torch.float32
        )
        if self._qpos_adr is not None:
            qpos = torch.zeros(k, self._qpos.shape[1], device=self.device).index_copy_(
                1, self._qpos_adr, qpos
            )
            qvel = torch.zeros(k, self._qvel.shape[1], device=self.device).index_copy_(
                1, self._qvel_adr, qvel
            )
        return qpos, qvel

    def get_state(self) -> SimState:
        """Root and DoF state of all envs (float32, ``device``; fresh tensors)."""
        self._check_open()
        qpos, qvel = self._qpos, self._qvel
        if self._qpos_adr is not None:
            qpos, qvel = qpos.index_select(1, self._qpos_adr), qvel.index_select(1, self._qvel_adr)
        root_pos, root_rot, dof_pos = kinematics.qpos_to_dof(self.character, qpos)
        root_vel, root_ang_vel, dof_vel = kinematics.qvel_to_dof_vel(self.character, qpos, qvel)
        fields = (root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel)
        return SimState(*(t.clone() if t._is_view() else t for t in fields))

    def body_pos(self) -> Tensor:
        """World body origins, Shape (num_envs, num_bodies, 3), metres. A view of the device state."""
        self._check_open()
        self._refresh_poses()
        if self._body_index is not None:
            return self._xpos.index_select(1, self._body_index)
        return self._xpos

    def body_rot(self) -> Tensor:
        """World body orientations, Shape (num_envs, num_bodies, 4), wxyz. A view of the device state."""
        self._check_open()
        self._refresh_poses()
        if self._body_index is not None:
            return self._xquat.index_select(1, self._body_index)
        return self._xquat

    def contact_forces(self) -> Tensor:
        """Net ground-contact force on each body, world frame, newtons, averaged over the last control step's
        physics steps. Shape (num_envs, num_bodies, 3); zero after ``set_state_where``. A view of the device state."""
        self._check_open()
        return self._contact

    def close(self) -> None:
        """Drop the graphs and device arrays (memory returns to Warp's pool)."""
        if self._closed:
            return
        self._closed = True
        if self.is_cuda:
            self._wp.synchronize_device(self._wp_device)
        self._step_graph = self._kin_graph = None
        self._torch_streams = {}
        # the torch views keep their Warp arrays alive: drop them too so the memory returns to the pool
        for name in ("_qpos", "_qvel", "_ctrl", "_qacc_warmstart", "_time", "_contact", "_xpos", "_xquat"):
            setattr(self, name, None)
        self._m = self._d = self._contact_frc = self._ground_frc = self._contact_ids = None

    def set_targets(self, dof_targets: Tensor) -> None:
        """PD targets for the next ``step_physics``: actuator ``ctrl`` from motion-DoF targets (num_envs, num_dofs),
        hinge angles / ball exp maps (torch ops on the device, no sync)."""
        self._check_open()
        check_targets_shape(dof_targets, self.num_envs, self.character.num_dofs)
        t = dof_targets.detach().to(device=self.device, dtype=torch.float32)
        tq = kinematics.dof_to_qpos(self.character, self._zero3, self._ident4, t)
        if self._ctrl_identity:
            self._ctrl.copy_(tq[:, 7:])
        else:
            self._ctrl.copy_(torch.cat([tq, t], dim=-1).index_select(1, self._ctrl_src))

    def step_physics(self) -> None:
        """Advance every env one control step towards the targets last set (one graph replay; it ends with
        ``mjw.kinematics``, so body poses are fresh afterwards)."""
        self._check_open()
        self._replay(self._step_graph)
        self._poses_stale = False

    def _refresh_poses(self) -> None:
        """Body poses after a ``set_state_where`` read outside a graph capture: one kinematics replay."""
        if self._poses_stale and not (self.is_cuda and torch.cuda.is_current_stream_capturing()):
            self._replay(self._kin_graph)
            self._poses_stale = False

    def synchronize(self) -> None:
        """Wait for the device (timing)."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the MJWarp engine was closed")


def _torch_device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise EngineError(f"invalid device {name!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(
                f"device {name!r}: torch sees no CUDA GPU (use device 'cpu' for Warp's CPU device)"
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif dev.type != "cpu":
        raise EngineError(f"device {name!r}: the mjwarp engine runs on 'cuda[:N]' or 'cpu'")
    return dev


def _maybe_index(adr: np.ndarray, size: int, device: torch.device) -> Optional[Tensor]:
    """None when ``adr`` is the identity (slicing suffices), else the index tensor."""
    if adr.shape[0] == size and np.array_equal(adr, np.arange(size)):
        return None
    return torch.as_tensor(adr, device=device)
