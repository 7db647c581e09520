"""Run in a subprocess by test_hostile_inputs: load every crafted file under an address-space limit of
(current size + 1 GiB) and print one JSON line per file with the outcome and the peak RSS growth."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crafted  # noqa: E402

from mimictools.errors import MimicToolsError  # noqa: E402


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def main(folder: str) -> None:
    loaders = crafted.loaders()
    import torch

    torch.set_num_threads(1)
    files = crafted.crafted_files(Path(folder) / "files")
    warm = Path(folder) / "warm.bvh"  # torch's first ops map its kernels: not the input's doing
    warm.write_text(
        "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n"
        "JOINT a\n{\nOFFSET 0 1 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n}\n}\n"
        "MOTION\nFrames: 2\nFrame Time: 0.01\n0 0 0 1 2 3\n0 0 0 1 2 3\n"
    )
    loaders["bvh"](warm)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    limit = _vm_bytes() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for name, path, kind in files:
        try:
            loaders[kind](path)
            outcome, msg = "loaded", ""
        except MimicToolsError as exc:
            outcome, msg = "our_error", str(exc)
        except BaseException as exc:  # noqa: BLE001 - what we are looking for
            outcome, msg = type(exc).__name__, str(exc)[:200]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        vm = _vm_bytes() - limit + (1 << 30)
        print(
            json.dumps(
                {"name": name, "outcome": outcome, "msg": msg[:300], "rss_growth": rss - base_rss, "vm": vm}
            )
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
