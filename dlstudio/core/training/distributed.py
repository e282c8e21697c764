"""Training as one of several processes started by ``torchrun`` (DistributedDataParallel; torch, no Qt).

torchrun starts N copies of ``dlstudio train`` and tells each its place in the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...).
:func:`from_environment` reads it and joins the process group: gloo on the
CPU, NCCL on CUDA (each process on the GPU of its ``LOCAL_RANK``).

How the processes share one run:

- every process draws the same shuffled order of the training split (same
  seed, same random streams) and takes every N-th sample of it from its rank
  on, the order padded by its first samples to a multiple of N
  (:meth:`Distributed.shard`, as torch's DistributedSampler does), so all
  take the same number of steps; ``batch_size`` is per process;
- gradients are averaged by DistributedDataParallel; loss sums, correct and
  sample counts and the confusion matrix are summed over the processes
  (:meth:`Distributed.sum`), so every process holds the global metrics and
  takes the same decisions (best epoch, early stopping, schedule);
- validation and test are sharded too (each process a contiguous part), then summed;
- only rank 0 writes (run folder, checkpoints, metrics.csv, the project file)
  and prints progress; the others are told the run folder's path.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from dlstudio.core.errors import DlstudioError
from dlstudio.core.training.device import resolve_device

# Set by torchrun in every process it starts.
_ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# How long a process waits for the others in one collective before it gives up (a hung peer).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


class DistributedError(DlstudioError):
    """The distributed environment cannot be used (a bad variable, a missing GPU, a peer that failed)."""


class PeerFailed(DistributedError):
    """Another process could not start the run; rank 0 says why, this process ends without repeating it."""


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether this process was started by torchrun (or anything else that sets its variables)."""
    environ = os.environ if environ is None else environ
    return all(name in environ for name in _ENVIRONMENT)


@dataclass
class Distributed:
    """This process's place among ``world_size`` training processes, and the collectives training needs."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0

    def describe(self, batch_size: int) -> dict[str, Any]:
        """What a run's settings.json records: the processes, the backend, and that ``training.batch_size`` is
        per process (``global_batch_size`` samples make one optimizer step)."""
        return {"world_size": self.world_size, "backend": self.backend, "batch_size": "per process",
                "global_batch_size": batch_size * self.world_size}

    # -- the training split --------------------------------------------------

    def shard_length(self, samples: int) -> int:
        """Samples each process trains on per epoch: the padded order divided by the processes."""
        return -(-samples // self.world_size)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of the epoch's order: every ``world_size``-th index from ``rank`` on, after the
        order is padded with its own first indices to a multiple of ``world_size`` (all shares equally long)."""
        padded = self.shard_length(len(order)) * self.world_size
        if padded > len(order):  # (repeated whole when it is shorter than the padding, as with 1 sample)
            order = order.repeat(-(-padded // len(order)))[:padded]
        return order[self.rank::self.world_size]

    def part(self, samples: int) -> tuple[int, int]:
        """This rank's contiguous part ``[start, stop)`` of a split evaluated in order (validation, test)."""
        per_rank = -(-samples // self.world_size)
        start = min(samples, self.rank * per_rank)
        return start, min(samples, start + per_rank)

    # -- collectives ---------------------------------------------------------

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes, in place (every process gets the sum)."""
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, whether any process raised it (one small collective for all of them)."""
        import torch.distributed as dist

        values = torch.tensor([1 if flag else 0 for flag in flags], dtype=torch.int64, device=self._device())
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(value) for value in values.tolist()]

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small picklable object, e.g. the run folder's path) on every process."""
        import torch.distributed as dist

        holder = [value if self.is_main else None]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every process: they are updated from each
        process's own batches, so without this the processes' models would drift apart in them."""
        import torch.distributed as dist

        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (rank 0's weights copied to all; gradients averaged)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # Buffers are broadcast once per epoch (broadcast_buffers above), not before every forward pass; newer
        # torch names that option forward_sync_buffers (the older name still works there, with a warning).
        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        no_buffer_sync = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=_has_dead_branches(model),
                                       **no_buffer_sync)

    def close(self, finished: bool = False) -> None:
        """Leave the process group (once the run is over, or failed).

        After a finished run every rank first waits for the others (a barrier): a rank that tears its
        connections down while a peer still talks to it can abort the peer's communication threads at exit
        ("terminate called without an active exception"). A failed run skips the barrier: a peer may be gone.
        """
        import gc

        import torch.distributed as dist

        if not dist.is_initialized():
            return
        gc.collect()  # the DistributedDataParallel wrapper holds the group: let it go before the group does
        if finished:
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - a peer went away at the very end: leave anyway
                pass
        dist.destroy_process_group()

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")


def _has_dead_branches(model: torch.nn.Module) -> bool:
    """Whether some trainable layer of ``model`` does not lead to its output (a branch left dangling): then
    DistributedDataParallel must look for parameters without gradients after every step, which costs time,
    so only then. A model that is not a compiled graph is assumed to have some."""
    steps, outputs = getattr(model, "steps", None), getattr(model, "_output_slots", None)
    if steps is None or outputs is None:
        return True
    needed = set(outputs)
    used: set[str] = set()
    for step in reversed(steps):  # steps are in topological order: consumers come after their sources
        if step.output_slot in needed:
            used.add(step.node_id)
            needed.update(step.input_slots)
    modules = dict(model.named_children())
    return any(parameter.requires_grad for step in steps if step.node_id not in used
               for parameter in modules[step.node_id].parameters())


def _integer(environ: dict[str, str] | os._Environ[str], name: str) -> int:
    try:
        value = int(environ[name])
    except ValueError:
        raise DistributedError(f"the environment variable {name} is not a number: {environ[name]!r}") from None
    if value < 0:
        raise DistributedError(f"the environment variable {name} is negative: {value}")
    return value


def from_environment(device: str) -> Distributed | None:
    """Join the process group torchrun set up; None when this process was not started by torchrun.

    ``device`` is the training setting (auto, cpu, cuda): CUDA trains with NCCL, one GPU per process
    (``LOCAL_RANK``'s), anything else with gloo. DistributedError (one line) when the environment does not fit.
    """
    if not launched_by_torchrun():
        return None
    rank, world_size, local_rank = (_integer(os.environ, name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if world_size < 1 or rank >= world_size:
        raise DistributedError(f"rank {rank} does not fit a world of {world_size} process(es)")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not cuda and resolve_device(device).type != "cpu":
        raise DistributedError(f"rank {rank}: training under torchrun runs on CUDA (NCCL) or the CPU (gloo), not "
                               f"on {resolve_device(device).type}: set the device to cpu")
    if cuda:
        if not torch.cuda.is_available():
            raise DistributedError(f"rank {rank}: device 'cuda' was requested but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"rank {rank}: LOCAL_RANK {local_rank} has no GPU (this machine has "
                                   f"{torch.cuda.device_count()}); start at most that many processes per node")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return Distributed(rank, world_size, local_rank, backend)
