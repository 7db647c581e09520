"""mimictools: physics-based motion imitation (DeepMimic / MimicKit style).

Layers, one direction of flow (see docs/architecture.md):
motion files -> motion.io -> Motion -> MotionLib;  MJCF -> character -> kinematics;
engines (Engine protocol) -> tasks (pure obs/reward/done) -> rl (PPO) -> eval; cli on top.
"""

from __future__ import annotations

__version__ = "0.1.0"
