"""Action bounds for PD position targets in motion DoF space (MimicKit's rule).

Checked against xbpeng/MimicKit ``mimickit/envs/char_env.py`` (``_build_action_bounds_pos``,
``_apply_action``) and ``mimickit/engines/mujoco_engine.py`` (DoF limits: a hinge's ``range``;
``ball`` joints report [-pi, pi] for each of their three DoFs):

- 3-DoF (spherical, exponential-map) joint: symmetric bounds ``+-1.2 * max |limit|`` over the
  joint's three DoFs, the same for all three;
- 1-DoF joint: centred at the middle of its range (at 0 with ``zero_center_action``), half-width
  ``1.4 *`` the larger distance from that centre to a limit.

The bounds are wider than the joint ranges on purpose: the policy's Gaussian is normalised to them
and the PPO agent adds an action-bound loss; the env clips targets to them before the engine (as
MimicKit's ``_apply_action``). MimicKit refuses joints without finite limits; here an unlimited hinge
is treated as ranging over [-pi, pi].
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Tuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from mimictools.character.model import Character

__all__ = ["SPHERICAL_BOUND_SCALE", "HINGE_BOUND_SCALE", "action_bounds"]

SPHERICAL_BOUND_SCALE = 1.2
HINGE_BOUND_SCALE = 1.4


def _dof_limits(joint) -> Tuple[np.ndarray, np.ndarray]:
    """Per-DoF (low, high) limits of one joint in radians, as MimicKit's engines report them."""
    if joint.is_ball:
        return np.full(3, -math.pi), np.full(3, math.pi)
    low = np.asarray(joint.range_low, dtype=np.float64).copy()
    high = np.asarray(joint.range_high, dtype=np.float64).copy()
    unlimited = ~(np.isfinite(low) & np.isfinite(high)) | (low >= high)
    low[unlimited] = -math.pi
    high[unlimited] = math.pi
    return low, high


def action_bounds(char: Character, zero_center_action: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(low, high) bounds of PD targets per DoF (radians). Each Shape (num_dofs,), float32."""
    low = np.zeros(char.num_dofs, dtype=np.float64)
    high = np.zeros(char.num_dofs, dtype=np.float64)
    for j in char.joints:
        j_low, j_high = _dof_limits(j)
        sl = slice(j.dof_offset, j.dof_offset + j.dof_count)
        if j.dof_count == 3:
            scale = SPHERICAL_BOUND_SCALE * max(np.abs(j_low).max(), np.abs(j_high).max())
            low[sl] = -scale
            high[sl] = scale
        else:
            mid = np.zeros_like(j_high) if zero_center_action else 0.5 * (j_high + j_low)
            scale = HINGE_BOUND_SCALE * np.maximum(np.abs(j_high - mid), np.abs(j_low - mid))
            low[sl] = mid - scale
            high[sl] = mid + scale
    return low.astype(np.float32), high.astype(np.float32)
