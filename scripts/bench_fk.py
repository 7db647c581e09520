"""Forward-kinematics throughput: frames/s of ``frames_to_body_poses`` and friends on random frames.

Usage: python scripts/bench_fk.py [--frames 100000] [--device cpu] [--char data/humanoid.xml] [--threads N]
Prints one line per (function, dtype): best of --repeat timed runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from functools import partial
from pathlib import Path

import torch

from mimictools.app.fkcheck import random_frames
from mimictools.character import kinematics as K
from mimictools.character.mjcf import load_character
from mimictools.math.rotations import exp_map_to_quat
from mimictools.paths import bundled_humanoid_xml


def _best(fn, repeat: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--char", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    char = load_character(args.char or bundled_humanoid_xml())
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    print(
        f"# {char.name}: {char.num_bodies} bodies, {char.num_dofs} DoFs; {args.frames} frames; device {dev}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; commit {commit}"
    )
    base = torch.from_numpy(random_frames(char, args.frames, seed=0))
    for dtype in (torch.float32, torch.float64):
        f = base.to(dev, dtype)
        root_pos, root_rot, dof = f[:, :3], exp_map_to_quat(f[:, 3:6]), f[:, 6:]
        local_rot = K.dof_to_local_rot(char, dof)
        qpos = K.dof_to_qpos(char, root_pos, root_rot, dof)
        cases = {
            "frames_to_body_poses": partial(K.frames_to_body_poses, char, f),
            "forward_kinematics": partial(K.forward_kinematics, char, root_pos, root_rot, local_rot),
            "dof_to_local_rot": partial(K.dof_to_local_rot, char, dof),
            "dof_to_qpos": partial(K.dof_to_qpos, char, root_pos, root_rot, dof),
            "qpos_to_dof": partial(K.qpos_to_dof, char, qpos),
        }
        for name, fn in cases.items():
            t = _best(fn, args.repeat, sync)
            print(
                f"{name:22s} {str(dtype).replace('torch.', ''):8s} {t * 1e3:9.2f} ms  {args.frames / t / 1e6:7.2f} M frames/s"
            )


if __name__ == "__main__":
    main()
