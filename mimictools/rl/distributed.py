"""Training on several processes with torch.distributed: the one place that knows about ranks.

Every process (rank) owns its envs, its device and a full copy of the networks; ranks stay identical by
averaging gradients (one flattened all-reduce per minibatch step) and by merging the observation-normalizer
statistics over all ranks. torchrun (``torch.distributed.run``), ``srun`` under SLURM and ``mimic train --nproc``
start the processes and set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; `init_from_env` reads them. Backend: NCCL on CUDA, gloo on the CPU.

With ``WORLD_SIZE`` unset or 1 there is no process group: `active` is False, nothing here is called on the
training path and a run gives bit-identical results to a plain single-process run.

Collectives time out after ``timeout_s`` (`init_from_env`): a rank that died or hangs makes the others raise
`DistributedError` instead of waiting for ever (gloo also notices a closed connection at once).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Sequence, Tuple, TypeVar

import torch
from torch import Tensor

from mimictools.errors import MimicToolsError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DistributedError",
    "RankInfo",
    "active",
    "all_gather_objects",
    "any_rank",
    "average_gradients",
    "broadcast_object",
    "broadcast_parameters",
    "collective",
    "current",
    "init_from_env",
    "mean_std",
    "merge_moments",
    "rank_info_from_env",
    "rank_seed",
    "sum_across",
    "teardown",
]

DEFAULT_TIMEOUT_S = 300.0
"""Collective timeout (s): long enough for a rank that compiles GPU kernels while another waits, short enough
that a hung peer stops the job in minutes, not the default half hour."""

T = TypeVar("T")


class DistributedError(MimicToolsError):
    """A collective failed: another rank died, hung past the timeout, or the rendezvous could not start."""

    exit_code = 1


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in the job (torchrun's environment variables)."""

    rank: int = 0
    """Global rank, 0 .. world_size - 1 (``RANK``). Rank 0 alone writes logs and checkpoints."""
    local_rank: int = 0
    """Rank on this machine (``LOCAL_RANK``): the CUDA device index it owns."""
    world_size: int = 1
    """Processes in the job, over all machines (``WORLD_SIZE``)."""
    local_world_size: int = 1
    """Processes on this machine (``LOCAL_WORLD_SIZE``)."""

    @property
    def is_writer(self) -> bool:
        """True on rank 0, the only rank that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r}: must be an integer") from None


def rank_info_from_env() -> RankInfo:
    """`RankInfo` from ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``LOCAL_WORLD_SIZE`` (defaults: one process)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank if world > 1 else 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(local_world, 1):
        raise DistributedError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world}, LOCAL_WORLD_SIZE={local_world}: "
            "need 0 <= RANK < WORLD_SIZE and 0 <= LOCAL_RANK < LOCAL_WORLD_SIZE (as torchrun sets them)"
        )
    return RankInfo(rank, local_rank, world, local_world)


def active() -> bool:
    """True when a process group of more than one rank is running in this process."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current() -> RankInfo:
    """This process's `RankInfo`: the process group's when one runs, else a single process."""
    if not active():
        return RankInfo()
    info = rank_info_from_env()
    dist = torch.distributed
    return RankInfo(dist.get_rank(), info.local_rank, dist.get_world_size(), info.local_world_size)


def init_from_env(device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> RankInfo:
    """Join the job torchrun described in the environment; a no-op (no process group) for one process.

    ``device``: the run's torch device. "cuda" becomes ``cuda:<LOCAL_RANK>`` (set as the current device) and
    the backend is NCCL; on the CPU it is gloo. Returns this process's `RankInfo`.

    Raises:
        DistributedError: bad rank variables, no MASTER_ADDR/MASTER_PORT, more local ranks than GPUs, or
            a rendezvous that did not complete within ``timeout_s``.
    """
    info = rank_info_from_env()
    if not info.distributed or active():
        return current() if active() else info
    dist = torch.distributed
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={info.world_size} but {', '.join(missing)} not set: start with torchrun or mimic train --nproc"
        )
    cuda = torch.device(device).type == "cuda"
    if cuda:
        count = torch.cuda.device_count()
        if info.local_rank >= count:
            raise DistributedError(
                f"LOCAL_RANK {info.local_rank} needs GPU {info.local_rank}, this machine shows {count}: "
                "use at most one process per GPU (--nproc-per-node)"
            )
        torch.cuda.set_device(info.local_rank)
    _import_before_joining()
    try:
        dist.init_process_group(
            backend="nccl" if cuda else "gloo",
            timeout=datetime.timedelta(seconds=float(timeout_s)),
            rank=info.rank,
            world_size=info.world_size,
        )
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"rank {info.rank}: joining the process group failed: {_first_line(exc)}"
        ) from None
    return info


def _import_before_joining() -> None:
    """Import ``torch._dynamo`` before the process group starts. torch.optim imports it when the first optimizer
    is built, and imported while a group runs (torch 2.13) it keeps that group alive past
    ``destroy_process_group``. Its gloo threads then run on into interpreter exit, where one that drops its last
    work (tensors with Python references) needs the GIL and aborts the process: "terminate called without an
    active exception", about 1 in 500 2-rank runs (docs/testing.md). Imported first, the group and its threads
    end in `teardown`."""
    try:
        import torch._dynamo  # noqa: F401
    except ImportError:  # a torch build without it: nothing to keep alive
        pass


def teardown(barrier: bool = False) -> None:
    """Leave the process group (if one runs in this process).

    ``barrier``: first wait until every rank has got here, so that no rank closes its connections while a peer
    still finishes its last collective (PyTorch's own distributed tests leave their groups this way). Pass it on a
    clean exit only: a rank that failed never arrives. A barrier that fails (a peer already gone) is ignored:
    leaving the group is all that is left to do. (The rare gloo abort at process exit, "terminate called without
    an active exception", came from a group that outlived this call: `_import_before_joining`.)
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    if barrier and dist.get_world_size() > 1:
        try:
            dist.barrier()
        except (RuntimeError, ValueError):  # gloo: RuntimeError; NCCL: DistBackendError (a RuntimeError)
            pass
    dist.destroy_process_group()


def rank_device(device: str, info: RankInfo) -> str:
    """The torch device a rank trains on: ``cuda`` -> ``cuda:<local_rank>`` when distributed, else unchanged."""
    dev = torch.device(device)
    if info.distributed and dev.type == "cuda":
        return f"cuda:{info.local_rank}"
    return device


def rank_seed(seed: int, rank: int) -> int:
    """Seed of ``rank``: the run's seed offset by the global rank (rank 0 keeps the run's seed)."""
    return int(seed) + int(rank)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def collective(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one collective; a failure (a dead peer, a timeout) becomes `DistributedError` naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, ValueError) as exc:  # gloo: RuntimeError; NCCL: DistBackendError (a RuntimeError)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        raise DistributedError(
            f"rank {rank}: {what} failed: another rank died or timed out ({_first_line(exc)}); "
            "rank 0 keeps latest.pt: restart the job with --resume"
        ) from None


# ------------------------------------------------------------------------------------------ collectives


def broadcast_parameters(modules: Sequence[torch.nn.Module]) -> None:
    """Copy rank 0's parameters and buffers into every rank (identical initial networks), in one broadcast."""
    tensors = [t for m in modules for t in list(m.parameters()) + list(m.buffers())]
    if not tensors:
        return
    with torch.no_grad():
        flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
        collective("broadcasting the initial parameters", torch.distributed.broadcast, flat, 0)
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].reshape(t.shape).to(t.dtype))
            offset += n


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Replace each ``p.grad`` by its mean over all ranks: one all-reduce of all gradients flattened together
    (a parameter without a gradient counts as zeros)."""
    params = list(params)
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    collective("the gradient all-reduce", torch.distributed.all_reduce, flat)
    flat /= torch.distributed.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        chunk = flat[offset : offset + n].view_as(g)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += n


def sum_across(x: Tensor) -> Tensor:
    """``x`` summed over all ranks (a new tensor; every rank gets the same values)."""
    out = x.clone()
    collective("an all-reduce of statistics", torch.distributed.all_reduce, out)
    return out


def mean_std(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean and (population) std of all elements of ``x`` over every rank, as if they were one tensor:
    the mean first, then the squared deviations from it (two small all-reduces, float64). 0-d tensors."""
    x64 = x.reshape(-1).to(torch.float64)
    sums = sum_across(
        torch.stack([x64.sum(), torch.tensor(float(x64.numel()), dtype=torch.float64, device=x.device)])
    )
    mean = sums[0] / sums[1]
    sq = sum_across(torch.square(x64 - mean).sum())
    std = torch.sqrt(sq / sums[1]) if float(sums[1]) > 1 else torch.zeros_like(mean)
    return mean.to(x.dtype), std.to(x.dtype)


def merge_moments(count: int, mean: Tensor, m2: Tensor) -> Tuple[int, Tensor, Tensor]:
    """Merge every rank's (count, mean Shape (dim,), sum of squared deviations Shape (dim,)) into the moments
    of all their samples together (Chan's parallel update, in rank order: identical on every rank)."""
    dim = mean.shape[0]
    mine = torch.cat([torch.tensor([float(count)], dtype=torch.float64, device=mean.device), mean, m2])
    world = torch.distributed.get_world_size()
    parts = [torch.empty_like(mine) for _ in range(world)]
    collective("the normalizer all-gather", torch.distributed.all_gather, parts, mine)
    total, t_mean, t_m2 = 0, torch.zeros_like(mean), torch.zeros_like(m2)
    for p in parts:
        n = int(p[0].item())
        if n == 0:
            continue
        b_mean, b_m2 = p[1 : 1 + dim], p[1 + dim :]
        new_total = total + n
        delta = b_mean - t_mean
        t_mean = t_mean + delta * (n / new_total)
        t_m2 = t_m2 + b_m2 + torch.square(delta) * (total * n / new_total)
        total = new_total
    return total, t_mean, t_m2


def any_rank(flags: Sequence[bool], device: Any = "cpu") -> List[bool]:
    """Each flag True on every rank when it is True on at least one (the ranks agree on when to stop).
    ``device``: the rank's training device (NCCL reduces CUDA tensors only)."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    collective("agreeing on when to stop", torch.distributed.all_reduce, t, op=torch.distributed.ReduceOp.MAX)
    return [x > 0 for x in t.tolist()]


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` (picklable, trusted: it comes from our own rank 0) on every rank."""
    box: List[Any] = [obj]
    collective("broadcasting the run settings", torch.distributed.broadcast_object_list, box, 0)
    return box[0]


def all_gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj`` in rank order (e.g. each rank's RNG state for a checkpoint)."""
    out: List[Any] = [None] * torch.distributed.get_world_size()
    collective("gathering the ranks' RNG states", torch.distributed.all_gather_object, out, obj)
    return out
