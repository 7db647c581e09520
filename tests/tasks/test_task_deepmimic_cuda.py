"""DeepMimicEnv on CUDA gives what it gives on the CPU (kinematic stand-in engine, synthetic clips).

Needs only the repo (``data/humanoid.xml``), no reference data and no physics engine, so it can run
on the GPU machine as it is.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mimictools.config.schema import EnvConfig
from mimictools.tasks.deepmimic import DeepMimicEnv

pytestmark = pytest.mark.gpu


def _clips(char):
    from mimictools.motion.motion import Motion

    t = np.arange(61, dtype=np.float64) / 30.0
    clips = []
    for loop, speed in ((1, 1.0), (0, 0.5)):
        frames = np.zeros((t.shape[0], char.frame_width))
        frames[:, 0] = speed * t
        frames[:, 2] = 0.9 + 0.02 * np.sin(2 * math.pi * t)
        frames[:, 5] = 0.3 * t  # slow turn about z (exp map)
        frames[:, 6:] = 0.3 * np.sin(2 * math.pi * t[:, None] + np.arange(char.num_dofs)[None, :])
        clips.append((Motion(fps=30.0, loop_mode=loop, frames=frames.astype(np.float32)), 1.0))
    return clips


def _run(char, engine_cls, device, cfg, actions):
    from mimictools.motion.library import MotionLib

    lib = MotionLib(_clips(char), char=char, device=device)
    env = DeepMimicEnv(cfg, engine_cls(char, actions.shape[1], device=device), lib)
    obs = [env.reset()]
    out = []
    for a in actions:
        o, r, d, info = env.step(a.to(device))
        for x in (o, r, d, *info.values()):
            assert x.device.type == torch.device(device).type
        out.append((o.cpu(), r.cpu(), d.cpu(), {k: v.cpu() for k, v in info.items()}))
    return obs, out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("global_obs", [True, False])
def test_cuda_matches_cpu(repo_dir, kinematic_engine, global_obs, monkeypatch):
    from mimictools.character.mjcf import load_character

    char = load_character(repo_dir / "data/humanoid.xml")
    cfg = dataclasses.replace(EnvConfig(), rand_reset=False, global_obs=global_obs, enable_phase_obs=True)
    g = torch.Generator().manual_seed(0)
    actions = 0.3 * torch.randn(8, 6, char.num_dofs, generator=g)
    # Deterministic resets (rand_reset off, and clip 0 / 1 for even / odd envs): the clip draws come from
    # the device's RNG, which differs between CPU and CUDA.
    from mimictools.motion.library import MotionLib

    def alternate(self, u):
        return torch.arange(u.shape[0], device=self.device) % 2

    monkeypatch.setattr(MotionLib, "motion_ids_from_uniform", alternate)
    cpu_obs, cpu = _run(char, kinematic_engine, "cpu", cfg, actions)
    gpu_obs, gpu = _run(char, kinematic_engine, "cuda", cfg, actions)
    torch.testing.assert_close(gpu_obs[0].cpu(), cpu_obs[0], atol=1e-4, rtol=1e-4)
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(cpu, gpu):
        torch.testing.assert_close(o2, o1, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(r2, r1, atol=1e-5, rtol=1e-4)
        assert torch.equal(d2, d1)
        for k in i1:
            torch.testing.assert_close(i2[k], i1[k], atol=1e-4, rtol=1e-4)
