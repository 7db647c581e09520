"""Turn a Character's MJCF into the simulation ``MjModel`` shared by the MuJoCo-based engines (CPU, Warp).

What changes relative to the character's own MJCF (``Character.source``, loaded with ``mujoco.MjSpec``):

- **PD position control, MimicKit semantics.** The joints' ``stiffness``/``damping`` are read as PD gains
  (``Character`` already holds them as ``Joint.stiffness``/``Joint.damping``; for MJCFs that keep their gains
  on ``<position>`` actuators, as MuJoCo Menagerie does, the parser took them from there, and a
  ``dampratio`` is turned into kd with MuJoCo's definition, `mimictools.engines.pd_gains`). A joint
  without gains is an ``EngineError`` (never a silent zero-gain PD). The passive MuJoCo springs
  and dampers they would otherwise create are removed (armature and frictionloss stay). Every existing
  actuator (and keyframe, whose ``ctrl`` would no longer fit) is deleted, and each hinge gets one
  ``general`` actuator ``force = kp * (ctrl - q) - kd * qdot`` (gain ``kp``, affine bias ``[0, -kp, -kd]``),
  clamped to ``+-effort_limit`` (the joint's ``actuatorfrcrange``) through the actuator ``forcerange``, so
  the clamp applies to the PD torque itself and shows in ``MjData.actuator_force``. ``ctrl`` is the hinge
  angle target (radians) and is not clamped: limiting actions is the task's job.
- **Stable PD** (``EngineSpec.implicit_pd``, off by default: see below). The position error is taken at the next physics
  step's angle, ``q + dt * qdot`` (Tan, Liu & Turk 2011, "Stable proportional-derivative controllers"), which
  folds into the damping: ``force = kp * (ctrl - q) - (kd + kp * dt) * qdot``. ``implicitfast`` integrates
  the velocity term implicitly, so with ``q' = q + dt * qdot'`` the step solves
  ``force = kp * (ctrl - q') - kd * qdot'``: a backward-Euler PD, what PhysX's joint drives do. An explicit PD needs ``dt < 2 / omega``,
  ``omega = sqrt(kp / I)`` (~1/120 s for the ankles: kp 400 on ~0.01 kg m^2); this one has no such bound.
  The extra damping is ``kp * dt`` (8 % of MimicKit's kd at 120 Hz, 4 % at 240 Hz); it vanishes as
  ``dt -> 0``, where both laws are the same PD. Off by default: with bounded reset rates near gimbal lock
  (`mimictools.character.kinematics.solve_triple_rates`, the cause of MimicKit's humanoid blowing up at 120 Hz)
  both humanoids are stable at 120 Hz with explicit PD as well, and neither law holds 60 Hz (docs/performance.md,
  "Stable PD").
  ``SimModel.kd`` stays the joint's gain; ``SimModel.kd_implicit`` holds the added ``kp * dt``.
- **Ball joints** get three such actuators with ``gear`` = the unit axes. MuJoCo's transmission length of
  a ball joint along ``gear`` is that component of the joint rotation's exponential map (child frame) and
  its velocity is the matching component of ``qvel``, so ``ctrl`` is the motion-DoF exp-map target and the
  torque is MimicKit's component-wise exp-map PD, computed in C (no Python per physics step).
- **Integrator ``implicitfast``.** The PD damping acts through the actuator bias; ``implicitfast`` puts
  its velocity derivative into the implicit update. Explicit Euler is unstable here: the kd/inertia ratio of
  the light distal bodies (hands, feet, head: armature 0.01 kg m^2, kd 10-40 N m s/rad) needs
  ``dt < 2 I / kd`` ~ 1 ms, below the 4.2 ms physics step at 240 Hz (measured in
  ``tests/engines/test_engine_mujoco.py::test_euler_blows_up_where_implicitfast_holds``).
- ``opt.timestep = 1 / sim_freq``; solver and cone stay the MJCF's (MuJoCo's defaults: Newton, pyramidal), and
  so do ``opt.iterations`` / ``opt.ls_iterations`` unless ``EngineSpec.solver_iterations`` /
  ``ls_iterations`` cap them (> 0), and ``opt.tolerance`` unless ``EngineSpec.solver_tolerance`` sets it (> 0).
  Newton stops at its tolerance long before MuJoCo's caps of 100 / 50 on most steps; the cap bounds the worst
  step, which on the GPU sets the pace of all envs in a batch.
- **Ground** (``spec.ground``): planes already in the file's ``<worldbody>`` (a Menagerie ``scene.xml``
  floor) are removed, then an infinite plane ``mimic_ground`` at z = 0 with ``condim=3`` and friction
  ``1 0.05 0.05`` (MimicKit's MuJoCo scene), a checker material and a directional light for rendering.
  Contact ``condim``/friction are the max over the pair, so frictionless character geoms (MimicKit's humanoid
  uses ``condim=1``) still get sliding friction against the ground.
- **Ground-contact sensors**: one ``contact`` sensor per character body that has geoms, matching
  ``geom1 = ground``, ``body2 = body``, ``data=force``, ``reduce=netforce``: the net force the ground exerts
  on that body, world frame, newtons, computed by MuJoCo inside ``mj_step``.

``SimModel`` carries the index tables that map between the Character's layouts and MuJoCo's: bodies by
name, joints per body, qpos/qvel addresses, actuator order.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Tuple

import mujoco
import numpy as np

from mimictools.character.model import Character
from mimictools.engines.base import EngineSpec
from mimictools.engines.pd_gains import resolve_damping_ratios
from mimictools.engines.registry import SOLVER_TOLERANCE_RULE, solver_tolerance_ok
from mimictools.errors import EngineError

__all__ = [
    "GROUND_GEOM",
    "SimModel",
    "build_sim_model",
    "build_sim_spec",
    "check_gains",
    "implicit_damping",
    "map_character",
    "resolve_damping_ratios",
]

GROUND_GEOM = "mimic_ground"
"""Name of the ground plane geom added when ``EngineSpec.ground``."""

_INTEGRATORS = {
    "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
    "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
    "euler": mujoco.mjtIntegrator.mjINT_EULER,
    "rk4": mujoco.mjtIntegrator.mjINT_RK4,
}


@dataclass(frozen=True, eq=False)
class SimModel:
    """The compiled simulation model plus the Character <-> MuJoCo index tables.

    "Character qpos/qvel layout" is ``mimictools.character.kinematics``'s: ``[root 7 | per joint ...]`` and
    ``[root 6 | dof layout]`` in DoF order.
    """

    model: mujoco.MjModel
    character: Character
    spec: EngineSpec
    body_ids: np.ndarray
    """MuJoCo body id per Character body, Shape (num_bodies,) int64."""
    qpos_adr: np.ndarray
    """MuJoCo qpos address per Character-layout qpos entry, Shape (num_qpos,) int64."""
    qvel_adr: np.ndarray
    """MuJoCo dof address per Character-layout qvel entry, Shape (6 + num_dofs,) int64."""
    ctrl_src: np.ndarray
    """Per actuator (MuJoCo order), its column in ``cat([target_qpos (num_qpos), target_dof (num_dofs)])``:
    hinges take the hinge angle from the Character-layout target qpos, ball joints the exp-map DoF. Shape (nu,)."""
    kp: np.ndarray
    """Proportional gain per actuator (N m / rad), Shape (nu,)."""
    kd: np.ndarray
    """Derivative gain per actuator (N m s / rad), the joint's own, Shape (nu,)."""
    kd_implicit: np.ndarray
    """Damping stable PD adds per actuator, ``kp * dt`` (N m s / rad; 0 with ``implicit_pd`` off), Shape (nu,).
    The actuator's velocity gain is ``kd + kd_implicit``."""
    effort_limit: np.ndarray
    """Torque limit per actuator (N m, inf if none), Shape (nu,)."""
    ground_geom: int
    """MuJoCo geom id of the ground plane, -1 without ground."""
    contact_sensor_adr: np.ndarray
    """``sensordata`` start of each body's ground-contact sensor (3 values: world force on the body, N),
    -1 for bodies without geoms or without ground. Shape (num_bodies,) int64."""

    @property
    def substeps(self) -> int:
        return self.spec.substeps

    @property
    def contact_sensor_bodies(self) -> np.ndarray:
        """Character body indices that have a ground-contact sensor, Shape (k,)."""
        return np.nonzero(self.contact_sensor_adr >= 0)[0]


def _check_spec(spec: EngineSpec) -> None:
    if spec.control_mode != "pos":
        raise EngineError(
            f"control_mode {spec.control_mode!r} is not supported; valid: 'pos' (PD position targets)"
        )
    if spec.num_envs < 1:
        raise EngineError(f"num_envs must be >= 1, got {spec.num_envs}")
    if not (spec.control_freq > 0 and spec.sim_freq > 0):
        raise EngineError(
            f"control_freq and sim_freq must be > 0 Hz, got {spec.control_freq} and {spec.sim_freq}"
        )
    ratio = spec.sim_freq / spec.control_freq
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise EngineError(
            f"sim_freq ({spec.sim_freq} Hz) must be an integer multiple of control_freq ({spec.control_freq} Hz)"
        )


def build_sim_spec(character: Character, spec: EngineSpec, integrator: str = "implicitfast") -> mujoco.MjSpec:
    """The adapted ``MjSpec`` (not compiled): PD actuators, no passive joint springs, ground, sensors.

    Engines that need more changes (e.g. the Warp engine's size limits) edit it before ``compile()``.
    """
    _check_spec(spec)
    if integrator not in _INTEGRATORS:
        raise EngineError(f"unknown integrator {integrator!r}; valid: {', '.join(_INTEGRATORS)}")
    path = character.source
    if not os.path.isfile(path):
        raise EngineError(
            f"character {character.name!r}: its MJCF {path!r} is not a file; MuJoCo engines build from the MJCF "
            "(load the character with load_character(path))"
        )
    try:
        ms = mujoco.MjSpec.from_file(path)
    except Exception as exc:  # mujoco raises ValueError with the compiler's message
        raise EngineError(f"{path}: MuJoCo cannot load this MJCF: {exc}") from None

    ms.option.timestep = 1.0 / spec.sim_freq
    ms.option.integrator = _INTEGRATORS[integrator]
    if spec.solver_iterations < 0 or spec.ls_iterations < 0:
        raise EngineError(
            f"solver_iterations / ls_iterations must be >= 0 (0 = the MJCF's value), got "
            f"{spec.solver_iterations} / {spec.ls_iterations}"
        )
    if not solver_tolerance_ok(spec.solver_tolerance):
        raise EngineError(f"solver_tolerance must be {SOLVER_TOLERANCE_RULE}, got {spec.solver_tolerance}")
    if spec.solver_iterations:
        ms.option.iterations = int(spec.solver_iterations)
    if spec.ls_iterations:
        ms.option.ls_iterations = int(spec.ls_iterations)
    if spec.solver_tolerance:
        ms.option.tolerance = float(spec.solver_tolerance)

    character = resolve_damping_ratios(character, ms)
    check_gains(character)
    for act in list(ms.actuators):
        ms.delete(act)
    for key in list(ms.keys):
        ms.delete(key)

    joints = {j.name: j for j in ms.joints if j.name}
    for mj_joint in ms.joints:  # passive springs/dampers off everywhere: the gains become PD gains below
        mj_joint.stiffness = np.zeros_like(np.asarray(mj_joint.stiffness, dtype=np.float64))
        mj_joint.damping = np.zeros_like(np.asarray(mj_joint.damping, dtype=np.float64))

    for joint in character.joints:
        for k, name in enumerate(joint.mjcf_joints):
            if name not in joints:
                raise EngineError(
                    f"{path}: joint {name!r} (body {character.body_names[joint.body]!r}) has no name in MuJoCo's "
                    "view of the file; name every non-root joint so actuators can target it"
                )
            kp = float(joint.stiffness[k])
            kd = float(joint.damping[k]) + implicit_damping(kp, spec)
            limit = float(joint.effort_limit[k])
            gears = np.eye(3) if joint.is_ball else np.array([[1.0, 0.0, 0.0]])
            for g, gear in enumerate(gears):
                suffix = "xyz"[g] if joint.is_ball else ""
                act = ms.add_actuator(name=f"pd_{name}{'_' + suffix if suffix else ''}", target=name)
                act.trntype = mujoco.mjtTrn.mjTRN_JOINT
                act.gear = np.concatenate([gear, np.zeros(3)])
                act.dyntype = mujoco.mjtDyn.mjDYN_NONE
                act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
                act.gainprm = np.concatenate([[kp], np.zeros(len(act.gainprm) - 1)])
                act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
                act.biasprm = np.concatenate([[0.0, -kp, -kd], np.zeros(len(act.biasprm) - 3)])
                act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
                if math.isfinite(limit):
                    act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
                    act.forcerange = np.array([-limit, limit])
                else:
                    act.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE

    if spec.ground:
        floors = [g.name for g in ms.worldbody.geoms if g.type == mujoco.mjtGeom.mjGEOM_PLANE]
        for geom in list(ms.worldbody.geoms):
            if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
                ms.delete(geom)
        _add_ground(ms)
        for pair in ms.pairs:  # explicit contact pairs with the file's floor (Menagerie's scene_mjx.xml)
            if pair.geomname1 in floors:
                pair.geomname1 = GROUND_GEOM
            if pair.geomname2 in floors:
                pair.geomname2 = GROUND_GEOM
        for b, body_name in enumerate(character.body_names):
            if not any(g.body == b for g in character.geoms):
                continue
            sensor = ms.add_sensor(
                name=f"ground_force_{body_name}",
                type=mujoco.mjtSensor.mjSENS_CONTACT,
                objtype=mujoco.mjtObj.mjOBJ_GEOM,
                objname=GROUND_GEOM,
                reftype=mujoco.mjtObj.mjOBJ_BODY,
                refname=body_name,
            )
            # intprm = [data bits (2 = force), reduce (3 = netforce), num slots]
            sensor.intprm = np.concatenate([[2, 3, 1], np.zeros(len(sensor.intprm) - 3, dtype=int)])
    return ms


def implicit_damping(kp: float, spec: EngineSpec) -> float:
    """The damping (N m s / rad) stable PD adds to a PD of gain ``kp`` (N m / rad): ``kp / sim_freq``, or 0
    with ``spec.implicit_pd`` off (module docstring)."""
    return kp / float(spec.sim_freq) if spec.implicit_pd else 0.0


def check_gains(character: Character) -> None:
    """EngineError naming the joints whose PD gain kp is 0 (they would hang limp, silently)."""
    limp = [n for j in character.joints for k, n in enumerate(j.mjcf_joints) if not j.stiffness[k] > 0]
    if limp:
        shown = ", ".join(limp[:6]) + (f" and {len(limp) - 6} more" if len(limp) > 6 else "")
        raise EngineError(
            f"{character.source}: no PD gains for {len(limp)} joint(s) ({shown}): the MJCF has no joint "
            "stiffness and no <position> actuator for them; add either, or set gains with "
            "--set 'joint_gains=[\"<name pattern>: kp kd\"]'"
        )


def _check_ground_contacts(model: mujoco.MjModel, ground: int, body_ids: np.ndarray, source: str) -> None:
    """EngineError when no character geom can touch the ground (contype/conaffinity bits and explicit
    pairs both rule it out): the character would fall through the floor."""
    bodies = set(int(b) for b in body_ids)
    for g in range(model.ngeom):
        if int(model.geom_bodyid[g]) not in bodies:
            continue
        if (model.geom_contype[g] & model.geom_conaffinity[ground]) or (
            model.geom_contype[ground] & model.geom_conaffinity[g]
        ):
            return
    for p in range(model.npair):
        if ground in (int(model.pair_geom1[p]), int(model.pair_geom2[p])):
            return
    raise EngineError(
        f"{source}: no geom of the character can collide with the ground (contype/conaffinity are 0 and no "
        "<pair> names the floor), so it would fall through it; use the scene file that declares the contact "
        "pairs (Menagerie: scene_mjx.xml next to g1_mjx.xml) or give the foot geoms contype/conaffinity"
    )


def _add_ground(ms: mujoco.MjSpec) -> None:
    if any(g.name == GROUND_GEOM for g in ms.geoms):
        raise EngineError(f"the character MJCF already has a geom named {GROUND_GEOM!r}")
    ms.add_texture(
        name="mimic_grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.2, 0.3, 0.4],
        rgb2=[0.1, 0.2, 0.3],
        width=512,
        height=512,
    )
    mat = ms.add_material(name="mimic_grid", texrepeat=[1.0, 1.0], texuniform=True, reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "mimic_grid"
    ms.worldbody.add_geom(
        name=GROUND_GEOM,
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        condim=3,
        friction=[1.0, 0.05, 0.05],
        material="mimic_grid",
    )
    ms.worldbody.add_light(
        name="mimic_light",
        pos=[0.0, 0.0, 5.0],
        dir=[0.0, 0.0, -1.0],
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
    )


def map_character(model: mujoco.MjModel, character: Character) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index tables ``(body_ids, qpos_adr, qvel_adr)`` from the Character's layouts to ``model``'s.

    Bodies are matched by name (unnamed bodies by depth-first position), joints as the ordered joint list
    of their body; the tree structure and joint types are checked. Raises EngineError on any mismatch.
    """
    src = character.source
    nb = character.num_bodies
    body_ids = np.zeros(nb, dtype=np.int64)
    for b, name in enumerate(character.body_names):
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            bid = (
                b + 1
            )  # unnamed in the MJCF: the parser named it by position, MuJoCo orders bodies the same way
        if bid >= model.nbody:
            raise EngineError(f"{src}: body {name!r} has no counterpart in the MuJoCo model")
        body_ids[b] = bid
    for b in range(1, nb):
        if model.body_parentid[body_ids[b]] != body_ids[character.parents[b]]:
            raise EngineError(
                f"{src}: body {character.body_names[b]!r} has a different parent in MuJoCo's model than in the Character"
            )
    root = body_ids[0]
    if model.body_jntnum[root] != 1 or model.jnt_type[model.body_jntadr[root]] != mujoco.mjtJoint.mjJNT_FREE:
        raise EngineError(f"{src}: root body {character.body_names[0]!r} needs exactly one free joint")
    root_j = model.body_jntadr[root]
    qpos_adr: List[int] = list(range(model.jnt_qposadr[root_j], model.jnt_qposadr[root_j] + 7))
    qvel_adr: List[int] = list(range(model.jnt_dofadr[root_j], model.jnt_dofadr[root_j] + 6))
    for joint in character.joints:
        bid = body_ids[joint.body]
        jadr, jnum = int(model.body_jntadr[bid]), int(model.body_jntnum[bid])
        where = f"{src}: joint {joint.name!r} (body {character.body_names[joint.body]!r})"
        if jnum != len(joint.mjcf_joints):
            raise EngineError(
                f"{where}: MuJoCo has {jnum} joints on this body, the Character {len(joint.mjcf_joints)}"
            )
        for k in range(jnum):
            jid = jadr + k
            jtype = model.jnt_type[jid]
            if joint.is_ball:
                if jtype != mujoco.mjtJoint.mjJNT_BALL:
                    raise EngineError(f"{where}: expected a ball joint in MuJoCo's model")
                qpos_adr.extend(range(model.jnt_qposadr[jid], model.jnt_qposadr[jid] + 4))
                qvel_adr.extend(range(model.jnt_dofadr[jid], model.jnt_dofadr[jid] + 3))
            else:
                if jtype != mujoco.mjtJoint.mjJNT_HINGE:
                    raise EngineError(f"{where}: expected hinge joints in MuJoCo's model")
                qpos_adr.append(int(model.jnt_qposadr[jid]))
                qvel_adr.append(int(model.jnt_dofadr[jid]))
    return body_ids, np.asarray(qpos_adr, dtype=np.int64), np.asarray(qvel_adr, dtype=np.int64)


def build_sim_model(character: Character, spec: EngineSpec, integrator: str = "implicitfast") -> SimModel:
    """Compile the simulation model for ``character`` (see the module docstring) and its index tables.

    ``SimModel.character`` is ``character`` with its ``dampratio`` gains resolved."""
    character = resolve_damping_ratios(character)
    ms = build_sim_spec(character, spec, integrator)
    try:
        model = ms.compile()
    except Exception as exc:
        raise EngineError(
            f"{character.source}: MuJoCo failed to compile the simulation model: {exc}"
        ) from None
    body_ids, qpos_adr, qvel_adr = map_character(model, character)

    ctrl_src: List[int] = []
    kp: List[float] = []
    kd: List[float] = []
    limit: List[float] = []
    col = 7
    for joint in character.joints:  # actuators were added in this order
        if joint.is_ball:
            ctrl_src.extend(character.num_qpos + joint.dof_offset + g for g in range(3))
            kp.extend([float(joint.stiffness[0])] * 3)
            kd.extend([float(joint.damping[0])] * 3)
            limit.extend([float(joint.effort_limit[0])] * 3)
        else:
            for k in range(len(joint.mjcf_joints)):
                ctrl_src.append(col + k)
                kp.append(float(joint.stiffness[k]))
                kd.append(float(joint.damping[k]))
                limit.append(float(joint.effort_limit[k]))
        col += joint.qpos_count
    if model.nu != len(ctrl_src):
        raise EngineError(f"{character.source}: built {model.nu} actuators, expected {len(ctrl_src)}")

    ground = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, GROUND_GEOM) if spec.ground else -1
    if ground >= 0:
        _check_ground_contacts(model, ground, body_ids, character.source)
    sensor_adr = np.full(character.num_bodies, -1, dtype=np.int64)
    if spec.ground:
        for b, body_name in enumerate(character.body_names):
            sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, f"ground_force_{body_name}")
            if sid >= 0:
                sensor_adr[b] = model.sensor_adr[sid]
    return SimModel(
        model=model,
        character=character,
        spec=spec,
        body_ids=body_ids,
        qpos_adr=qpos_adr,
        qvel_adr=qvel_adr,
        ctrl_src=np.asarray(ctrl_src, dtype=np.int64),
        kp=np.asarray(kp),
        kd=np.asarray(kd),
        effort_limit=np.asarray(limit),
        kd_implicit=np.asarray([implicit_damping(k, spec) for k in kp]),
        ground_geom=int(ground),
        contact_sensor_adr=sensor_adr,
    )
