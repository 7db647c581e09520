"""PD gain overrides per joint name pattern, for robots whose MJCF carries no gains (or the wrong ones).

An override is one string ``"<pattern>: kp kd [torque_limit]"`` (N m/rad, N m s/rad, N m), where
``<pattern>`` is an ``fnmatch`` pattern over MJCF joint names (``*_knee_joint``, ``left_*``, ``*``).
Overrides apply in order, later ones win; a pattern that matches no joint is an error (a typo must not
silently leave gains at zero). Config key: ``joint_gains`` (env config, or ``--set``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from typing import List, Sequence, Tuple

from mimictools.character.model import Character
from mimictools.errors import ConfigError

__all__ = ["apply_joint_gains", "parse_joint_gain"]


def parse_joint_gain(text: str) -> Tuple[str, float, float, float]:
    """``"pattern: kp kd [limit]"`` -> ``(pattern, kp, kd, limit or inf)``; ConfigError when malformed."""
    pattern, sep, rest = str(text).partition(":")
    nums = rest.split()
    try:
        values = [float(x) for x in nums]
    except ValueError:
        values = []
    if not sep or not pattern.strip() or len(values) not in (2, 3):
        raise ConfigError(
            f"joint_gains entry {text!r}: expected '<joint name pattern>: kp kd [torque_limit]', "
            "e.g. '*_knee_joint: 150 4 139'"
        )
    kp, kd = values[0], values[1]
    limit = values[2] if len(values) == 3 else math.inf
    if not (kp > 0 and kd >= 0 and limit > 0) or not all(math.isfinite(v) for v in (kp, kd)):
        raise ConfigError(f"joint_gains entry {text!r}: need kp > 0, kd >= 0, torque_limit > 0")
    return pattern.strip(), kp, kd, limit


def apply_joint_gains(char: Character, overrides: Sequence[str]) -> Character:
    """``char`` with the overrides' gains (and limits) set on the matching MJCF joints (source 'override')."""
    if not overrides:
        return char
    parsed = [parse_joint_gain(o) for o in overrides]
    joints: List = []
    used = [False] * len(parsed)
    for j in char.joints:
        kp, kd, lim = j.stiffness.copy(), j.damping.copy(), j.effort_limit.copy()
        ratio = None if j.damping_ratio is None else j.damping_ratio.copy()
        source = list(j.gain_source) or ["joint"] * len(j.mjcf_joints)
        for k, name in enumerate(j.mjcf_joints):
            for i, (pattern, p_kp, p_kd, p_lim) in enumerate(parsed):
                if fnmatch.fnmatchcase(name, pattern):
                    used[i] = True
                    kp[k], kd[k], source[k] = p_kp, p_kd, "override"
                    if ratio is not None:
                        ratio[k] = 0.0
                    if math.isfinite(p_lim):
                        lim[k] = p_lim
        joints.append(
            dataclasses.replace(
                j, stiffness=kp, damping=kd, effort_limit=lim, damping_ratio=ratio, gain_source=tuple(source)
            )
        )
    for i, ok in enumerate(used):
        if not ok:
            names = [n for j in char.joints for n in j.mjcf_joints]
            raise ConfigError(
                f"joint_gains entry {overrides[i]!r} matches no joint of {char.source} "
                f"(joints: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
            )
    return dataclasses.replace(char, joints=tuple(joints))
