"""The env's numbers on a seeded rollout (observations, rewards, done flags, reset observations) equal the ones
recorded from the tree before issue 18's op-count work (commit 7843a02: unpacked state, textbook ``quat_mul``,
two reward angle batches), with both reset paths (index: CPU; blend: GPU).

MimicKit's humanoid and spinkick clip on the kinematic stand-in engine (no physics: no chaotic growth of
rounding differences between machines). The golden file was written by running this file as a script on that
tree::

    PYTHONPATH=<tree of 7843a02> python tests/tasks/test_task_step_golden.py --write tests/tasks/data/step_rollout_golden.pt

On the machine that wrote it the new code gives bitwise the same numbers; the tolerances below only leave room
for another CPU's libm (float32 values of order 1: 1e-5), far below what a changed term would move.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict

import pytest
import torch

GOLDEN = Path(__file__).parent / "data" / "step_rollout_golden.pt"
NUM_ENVS, STEPS = 3, 6


def _env(shared: Path, kinematic_engine, blend: bool):
    from mimictools.character.mjcf import load_character
    from mimictools.config.schema import EnvConfig
    from mimictools.motion.library import MotionLib
    from mimictools.tasks.deepmimic import DeepMimicEnv

    char = load_character(shared / "mimickit/data/assets/humanoid/humanoid.xml")
    lib = MotionLib.from_path(shared / "mimickit/data/motions/humanoid/humanoid_spinkick.pkl", char=char)
    env = DeepMimicEnv(
        EnvConfig(), kinematic_engine(char, NUM_ENVS), lib, generator=torch.Generator().manual_seed(3)
    )
    env.reset_by_blend = blend
    return env


def rollout(env) -> Dict[str, torch.Tensor]:
    """Seeded random actions; done envs and a rotating third of the others are reset every step."""
    n = env.num_envs
    gen = torch.Generator().manual_seed(11)
    obs = env.reset_where(torch.ones(n, dtype=torch.bool), torch.zeros(n, env.obs_dim))
    rec = {"reset_obs_0": obs.clone()}
    for t in range(STEPS):
        actions = 0.3 * torch.randn(n, env.action_dim, generator=gen)
        o, r, d, _info = env.step(actions)
        forced = torch.arange(n) % 3 == t % 3
        obs = env.reset_where((d != 0) | forced, o)
        rec[f"obs_{t}"], rec[f"reward_{t}"], rec[f"done_{t}"] = o.clone(), r.clone(), d.clone()
        rec[f"reset_obs_{t + 1}"] = obs.clone()
    return rec


@pytest.mark.parametrize("blend", [False, True], ids=["index", "blend"])
def test_step_numbers_equal_the_recorded_ones(shared_dir, kinematic_engine, blend):
    want = torch.load(GOLDEN, weights_only=True)
    got = rollout(_env(shared_dir, kinematic_engine, blend))
    assert got.keys() == want.keys()
    for key in want:
        if key.startswith("done"):
            assert torch.equal(got[key], want[key]), key
        elif key.startswith("reward"):  # in [0, 1]; a changed term of weight >= 0.1 moves it by far more
            torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
        else:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-5, msg=key)


if __name__ == "__main__":  # write the golden file (see the module docstring)
    import os

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import KinematicEngine  # noqa: E402

    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        raise SystemExit("usage: python tests/tasks/test_task_step_golden.py --write OUT.pt")
    shared = Path(os.environ.get("MIMIC_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
    torch.manual_seed(0)
    out = Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(rollout(_env(shared, KinematicEngine, blend=False)), out)
    print(f"wrote {out}")
