"""`mimic view`: a browser 3D viewer (viser) for clips, datasets, policies and retargeting results.

``geometry`` (MJCF geoms as triangle meshes, from MuJoCo's compiled model) -> ``tracks`` (body poses per
frame by ``mj_kinematics``) + ``faults`` (per-frame, per-body fault marks) -> ``sources`` (clips, policy
episodes, eval recordings, retargeting comparisons as Tracks) -> ``server`` (the viser player, HTML export).
Only ``server`` imports viser, and only inside functions.
"""
