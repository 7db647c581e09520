"""Retargeting: BVH mocap and other characters' clips onto any MJCF character (``mimic motion retarget``).

``load_source`` (BVH / MimicKit .pkl / DeepMimic .txt -> world joint trajectories), ``load_mapping`` /
``select_preset`` (YAML mapping files), ``retarget`` (the batched whole-clip solver), ``quality_report``
and ``plot_report`` (metrics and PNG). Heavy modules are imported lazily by the caller.
"""

from __future__ import annotations
