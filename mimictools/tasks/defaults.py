"""Task defaults that fit any character: key bodies, contact bodies, joint error weights, init pose.

MimicKit's configs name bodies of its humanoid (``head``, ``right_hand``, ...) and hold a 14-value
``joint_err_w``; a robot has other bodies. `fit_env_to_character` keeps every value that fits the
character or that the user named (an env config file of their own, or ``--set``: those are checked
later and fail loudly), and derives the others from the body tree at the rest pose:

- ``contact_bodies``: the feet, i.e. the leaf bodies (no children) whose origin at the rest pose lies
  within ``FOOT_BAND_M`` of the lowest body origin;
- ``key_bodies``: every leaf body (end effectors: hands, feet, a head) plus the highest body that carries
  two or more leaves (the torso), as MimicKit's humanoid tracks head, hands and feet;
- ``joint_err_w``: 1.0 per non-root body (MimicKit's default when the key is absent);
- ``init_pose``: the root at its MJCF position, identity rotation, all DoFs 0 (``6 + num_dofs`` values).

MimicKit's humanoid keeps MimicKit's values (they fit). Each derived value is reported as one line so the
CLI can print it; the resolved config written next to the run holds it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, List, Set, Tuple

import numpy as np

from mimictools.character.model import Character
from mimictools.config.schema import EnvConfig
from mimictools.errors import ConfigError

__all__ = [
    "FOOT_BAND_M",
    "derive_contact_bodies",
    "derive_key_bodies",
    "fit_env_to_character",
    "rest_body_pos",
]

FOOT_BAND_M = 0.1
"""Leaf bodies whose rest-pose origin is at most this far (m) above the lowest body origin are feet."""

FITTED_KEYS = ("key_bodies", "contact_bodies", "joint_err_w", "init_pose")


def rest_body_pos(char: Character) -> np.ndarray:
    """World body origins (m) at the rest pose (root at its MJCF position, DoFs 0). Shape (num_bodies, 3)."""
    import torch

    from mimictools.character.kinematics import frames_to_body_poses

    frame = torch.zeros(char.frame_width, dtype=torch.float64)
    frame[0:3] = torch.as_tensor(char.local_pos[0])
    pos, _ = frames_to_body_poses(char, frame)
    return pos.numpy()


def _leaves(char: Character) -> List[int]:
    return [b for b in range(1, char.num_bodies) if b not in char.parents]


def derive_contact_bodies(char: Character) -> Tuple[str, ...]:
    """Leaf bodies within ``FOOT_BAND_M`` of the lowest body origin at the rest pose (the feet)."""
    z = rest_body_pos(char)[:, 2]
    feet = [b for b in _leaves(char) if z[b] <= z.min() + FOOT_BAND_M]
    return tuple(char.body_names[b] for b in feet)


def derive_key_bodies(char: Character) -> Tuple[str, ...]:
    """Leaf bodies (end effectors) plus the highest body at the rest pose that carries two or more leaves
    (the torso that holds both arms, the G1's stand-in for a head; a single chain: its highest leaf)."""
    z = rest_body_pos(char)[:, 2]
    leaves = _leaves(char)
    carried = [0] * char.num_bodies
    for leaf in leaves:
        b = char.parents[leaf]
        while b > 0:
            carried[b] += 1
            b = char.parents[b]
    candidates = [b for b in range(1, char.num_bodies) if carried[b] >= 2] or leaves
    keys = list(leaves)
    if candidates:
        top = max(candidates, key=lambda b: (round(float(z[b]), 6), b))  # ties: the deeper body
        if top not in keys:
            keys.append(top)
    return tuple(char.body_names[b] for b in sorted(keys))


def _explicit_env_keys(keys: Iterable[str]) -> Set[str]:
    """Env key names among config keys / ``--set`` strings (``key=value``, ``env.key=value``)."""
    out = set()
    for k in keys:
        name = k.split("=", 1)[0].strip()
        out.add(name[4:] if name.startswith("env.") else name)
    return out


def fit_env_to_character(
    env: EnvConfig, char: Character, explicit: Iterable[str] = ()
) -> Tuple[EnvConfig, List[str]]:
    """``(env fitted to char, one line per derived value)``; see the module docstring.

    ``explicit``: env keys the user named (keys of their env YAML, ``--set`` strings); those are kept as
    given. An ``init_pose`` the user named must have 3 or ``6 + num_dofs`` values (ConfigError otherwise).
    """
    named = _explicit_env_keys(explicit)
    names = set(char.body_names)
    changes = {}
    notes: List[str] = []
    if "key_bodies" not in named and not set(env.key_bodies) <= names:
        changes["key_bodies"] = derive_key_bodies(char)
        notes.append(f"key_bodies = {list(changes['key_bodies'])} (end effectors + torso)")
    if "contact_bodies" not in named and not set(env.contact_bodies) <= names:
        changes["contact_bodies"] = derive_contact_bodies(char)
        notes.append(f"contact_bodies = {list(changes['contact_bodies'])} (lowest leaf bodies: the feet)")
    n_w = char.num_bodies - 1
    if "joint_err_w" not in named and env.joint_err_w is not None and len(env.joint_err_w) != n_w:
        changes["joint_err_w"] = (1.0,) * n_w
        notes.append(f"joint_err_w = 1.0 for each of the {n_w} non-root bodies")
    pose = env.init_pose
    if pose is not None and len(pose) not in (3, char.frame_width):
        if "init_pose" in named:
            raise ConfigError(
                f"init_pose has {len(pose)} values; {char.source} needs 3 (root position) or "
                f"{char.frame_width} (3 root pos + 3 root rot + {char.num_dofs} DoFs)"
            )
        root = tuple(float(x) for x in char.local_pos[0])
        changes["init_pose"] = root + (0.0,) * (char.frame_width - 3)
        notes.append(
            f"init_pose = root at ({', '.join(f'{x:g}' for x in root)}) m, no rotation, DoFs 0 "
            f"({char.frame_width} values: the MJCF rest pose)"
        )
    return (replace(env, **changes) if changes else env), notes
