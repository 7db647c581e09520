"""``--nproc N``: start N local ranks exactly as ``torchrun --standalone --nproc-per-node N`` does.

The launch is torch's own (``torch.distributed.run``: its argument parser, its elastic agent, a c10d rendezvous on
a free local port); nothing here is a scheme of our own. The agent forwards SIGTERM/SIGINT to every rank and,
when one rank fails, stops the others (SIGTERM, then SIGKILL after its grace period). ``max_restarts`` is 0: a
failed job is restarted by the user or the cluster with ``--resume``. Each rank reads ``RANK``/``LOCAL_RANK``/
``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` from its environment (`mimictools.rl.distributed.init_from_env`).
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Dict, List, Sequence

__all__ = ["launch_function", "launch_module", "torchrun_args"]


def torchrun_args(nproc: int) -> List[str]:
    """torchrun's options for ``nproc`` ranks on this machine (what ``--nproc`` stands for)."""
    return ["--standalone", "--nnodes", "1", "--nproc-per-node", str(int(nproc)), "--max-restarts", "0"]


def _quiet_threads() -> None:
    # torchrun sets OMP_NUM_THREADS=1 for several ranks and warns about it; say it once ourselves
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def launch_module(nproc: int, module_args: Sequence[str]) -> int:
    """Run ``python -m <module_args...>`` as ``nproc`` ranks (``torchrun ... -m <module_args>``); wait for all.

    Returns:
        0 when every rank exited 0; 128 + the signal number when this process got SIGTERM/SIGINT (the agent
        passes it on to every rank, which stop at the end of their iteration and save ``latest.pt``, with 30 s
        of grace before SIGKILL); else the exit code of the first rank that failed (1 when it died of a signal).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    _quiet_threads()
    args = parse_args(torchrun_args(nproc) + ["--module"] + list(module_args))
    try:
        run(args)
    except SignalException as exc:  # SIGTERM/SIGINT here: the agent passed it on to the ranks, which saved
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        _rank, failure = exc.get_first_failure()
        code = int(failure.exitcode)
        return code if code > 0 else 1
    return 0


def launch_function(nproc: int, fn: Callable[..., Any], *args: Any) -> Dict[int, Any]:
    """Run ``fn(*args)`` in ``nproc`` fresh local ranks (torchrun's configuration, spawned processes: ``fn``
    must be a module-level function). Returns every rank's return value by global rank.

    Raises:
        RuntimeError: a rank failed (torch's ``ChildFailedError`` names it and its error).
    """
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    _quiet_threads()
    # what torchrun's run() makes of --standalone: a c10d rendezvous on a free local port
    local = [
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(int(nproc)),
        "--max-restarts",
        "0",
        "--rdzv-backend",
        "c10d",
    ]
    local += ["--rdzv-endpoint", "localhost:0", "--rdzv-id", str(uuid.uuid4()), "--module", "mimictools"]
    config, _cmd, _cmd_args = config_from_args(parse_args(local))
    return dict(elastic_launch(config, fn)(*args))
