"""Defaults `mimic train` resolves (issue 13: mjwarp on a machine without a GPU defaulted to 4096 envs)."""

from __future__ import annotations

from mimictools.app.run import resolve_run


def test_num_envs_default_depends_on_engine_and_device():
    assert resolve_run()[1].num_envs == 32  # the demo: CPU MuJoCo
    assert resolve_run(engine="mjwarp")[1].num_envs == 32  # Warp's CPU device: no faster than MuJoCo
    assert resolve_run(engine="mjwarp", device="cuda")[1].num_envs == 4096
    assert resolve_run(engine="mjwarp", num_envs=8)[1].num_envs == 8
