"""The kinematic character model: body tree, joints and the DoF layout (engine-independent).

Built from MJCF by ``mimictools.character.mjcf.load_character``. Arrays are numpy float64; use
``mimictools.character.kinematics`` for batched torch math on top of it.

DoF layout (MimicKit's): joints in MJCF depth-first body order, the root free joint excluded.
A body with one hinge has a 1-DoF joint (an angle, radians). A body with three hinges, or one
``ball`` joint, has a 3-DoF *spherical* joint whose DoFs are the exponential map of its local
rotation. A motion frame is ``[root_pos(3), root_rot expmap(3), dofs(num_dofs)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from mimictools.errors import CharacterError


@dataclass(frozen=True, eq=False)
class Joint:
    """One non-root joint, i.e. the DoFs that move one body relative to its parent."""

    name: str
    """Joint name: the MJCF joint name for a hinge/ball; the body name for a hinge triple."""
    body: int
    """Index of the child body this joint moves."""
    kind: str
    """'hinge' (1 DoF, angle) or 'spherical' (3 DoF, exponential map)."""
    dof_offset: int
    """First column of this joint in the DoF vector."""
    dof_count: int
    """1 for hinge, 3 for spherical."""
    mjcf_joints: Tuple[str, ...]
    """MJCF joint names in qpos order: 1 (hinge), 3 (hinge triple) or 1 (ball)."""
    axes: np.ndarray
    """Hinge axes in the body frame, Shape (len(mjcf_joints), 3); for a ball joint the identity rows."""
    range_low: np.ndarray
    """Lower limit per MJCF joint (radians); for a ball, Shape (1,) = 0 and range_high the cone angle. -inf if unlimited."""
    range_high: np.ndarray
    """Upper limit per MJCF joint (radians); +inf if unlimited."""
    stiffness: np.ndarray
    """PD proportional gain per MJCF joint (N m / rad): the joint's ``stiffness``, else its position
    actuator's ``kp`` (see ``gain_source``)."""
    damping: np.ndarray
    """PD derivative gain per MJCF joint (N m s / rad): the joint's ``damping``, else its actuator's ``kv``."""
    effort_limit: np.ndarray
    """Torque limit per MJCF joint (N m): ``actuatorfrcrange``, else the actuator's force/ctrl range x gear
    (inf if none)."""
    armature: np.ndarray
    """Armature per MJCF joint (kg m^2)."""
    damping_ratio: Optional[np.ndarray] = None
    """Per MJCF joint, a ``<position dampratio>`` still to be turned into ``damping`` from the reflected
    inertia (MuJoCo does it at compile time; the MuJoCo engines resolve it). 0 or None: ``damping`` holds."""
    gain_source: Tuple[str, ...] = ()
    """Per MJCF joint, where the PD gains came from: 'joint' (stiffness/damping), 'position actuator',
    'general actuator', 'override' (a config pattern) or 'none' (no gains anywhere)."""

    @property
    def is_ball(self) -> bool:
        """True for an MJCF ``ball`` joint (qpos is a quaternion)."""
        return self.kind == "spherical" and len(self.mjcf_joints) == 1

    @property
    def qpos_count(self) -> int:
        """Number of MuJoCo qpos entries: 4 for a ball, else one per hinge."""
        return 4 if self.is_ball else len(self.mjcf_joints)


@dataclass(frozen=True, eq=False)
class Geom:
    """A collision shape attached to a body, for ground checks. Frame: the body's."""

    name: str
    body: int
    type: str
    """'sphere' | 'capsule' | 'box' | 'cylinder' | 'ellipsoid' | 'mesh' | ... (MJCF names)."""
    size: np.ndarray
    """MJCF ``size`` after ``fromto`` resolution (radius, half-length, ...), metres."""
    pos: np.ndarray
    """Centre in body frame (m), Shape (3,)."""
    quat: np.ndarray
    """Orientation in body frame (wxyz), Shape (4,)."""


@dataclass(frozen=True, eq=False)
class Character:
    """A parsed articulated character. Bodies are in MJCF depth-first order, body 0 is the root."""

    name: str
    source: str
    """Path of the MJCF it came from."""
    body_names: Tuple[str, ...]
    parents: Tuple[int, ...]
    """Parent body index per body; -1 for the root."""
    local_pos: np.ndarray
    """Body origin in the parent frame (m), Shape (num_bodies, 3). Root: its initial position."""
    local_quat: np.ndarray
    """Body orientation in the parent frame (wxyz), Shape (num_bodies, 4)."""
    joints: Tuple[Joint, ...]
    """Non-root joints in DoF order."""
    geoms: Tuple[Geom, ...] = ()

    # ---- derived, cheap -------------------------------------------------------------------
    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    @property
    def num_dofs(self) -> int:
        """Length of the DoF vector (28 for MimicKit's humanoid)."""
        return sum(j.dof_count for j in self.joints)

    @property
    def frame_width(self) -> int:
        """Columns of a MimicKit motion frame: 3 root pos + 3 root exp map + num_dofs."""
        return 6 + self.num_dofs

    @property
    def num_qpos(self) -> int:
        """MuJoCo qpos size: 7 for the free root + each joint's qpos entries."""
        return 7 + sum(j.qpos_count for j in self.joints)

    @property
    def dof_names(self) -> Tuple[str, ...]:
        """A name per DoF column: MJCF hinge names; ``<joint>_x/_y/_z`` for a ball joint."""
        names: list = []
        for j in self.joints:
            if j.is_ball:
                names.extend(f"{j.name}_{a}" for a in "xyz")
            else:
                names.extend(j.mjcf_joints)
        return tuple(names)

    @property
    def hinge_qpos_cols(self) -> Tuple[int, ...]:
        """MuJoCo qpos columns holding hinge angles (every joint but ball joints), in DoF order."""
        cols: list = []
        col = 7
        for j in self.joints:
            if not j.is_ball:
                cols.extend(range(col, col + j.qpos_count))
            col += j.qpos_count
        return tuple(cols)

    def body_index(self, name: str) -> int:
        """Index of body ``name``; CharacterError listing the valid names otherwise."""
        try:
            return self.body_names.index(name)
        except ValueError:
            raise CharacterError(
                f"{self.source}: no body named {name!r}; bodies are: {', '.join(self.body_names)}"
            ) from None

    def body_joint(self, body: int) -> Optional[Joint]:
        """The joint that moves ``body``, or None (root or a welded body)."""
        for j in self.joints:
            if j.body == body:
                return j
        return None
