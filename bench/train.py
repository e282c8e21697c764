"""Training throughput: the dlstudio trainer (headless) against hand-written PyTorch loops.

For the lenet5 and mlp templates on 28x28 inputs (60,000 in-memory samples
by default) at batch 64 and 256, it times, in one process:

  reference      a hand-written loop slicing X[idx], y[idx] by a shuffled index (no DataLoader)
  reference-A/A  the same loop again: the noise control (expect 0.95-1.05)
  channels-last  the reference with model and inputs in channels-last layout (conv models only)
  dataloader     DataLoader(TensorDataset, shuffle=True)
  trainer        dlstudio's Trainer, headless (metrics on the device, as in `dlstudio train`)

Variants run interleaved in chunks of a tenth of an epoch, round-robin, so a
slow spell of this shared machine hits them alike (see shared performance
notes). The first epoch is warm-up; a variant's epoch time is the sum over
chunk positions of the median across the measured epochs. Prints samples/s
and ratios to the faster hand-written loop (reference or channels-last).

    python bench/train.py [--epochs 3] [--samples 60000] [--models lenet5,mlp] [--batch-sizes 64,256]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.nn import functional

from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.project import load_template
from dlstudio.core.training import Callback, TrainConfig, Trainer

CHUNKS_PER_EPOCH = 10
Variant = Callable[[], Iterator[None]]  # a generator that yields after every chunk


def chunk_bounds(batches: int) -> list[int]:
    """Batch index where each chunk ends."""
    return [round(batches * (i + 1) / CHUNKS_PER_EPOCH) for i in range(CHUNKS_PER_EPOCH)]


def slicing_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int,
                 channels_last: bool = False) -> Iterator[None]:
    """The reference: shuffle an index each epoch, slice the in-memory tensors."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(x)
    batches = -(-n // batch_size)
    ends = set(chunk_bounds(batches))
    model.train()
    for _ in range(epochs):
        permutation = torch.randperm(n)
        for b in range(batches):
            index = permutation[b * batch_size:(b + 1) * batch_size]
            loss = functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if b + 1 in ends:
                yield


def dataloader_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    epochs: int) -> Iterator[None]:
    from torch.utils.data import DataLoader, TensorDataset

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    ends = set(chunk_bounds(len(loader)))
    model.train()
    for _ in range(epochs):
        for b, (xb, yb) in enumerate(loader):
            loss = functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if b + 1 in ends:
                yield


class _HandOff(Callback):
    """Runs the trainer's thread one chunk at a time: it and the main thread never compute together."""

    def __init__(self, batches: int) -> None:
        self.ends = set(chunk_bounds(batches))
        self.to_main = threading.Semaphore(0)
        self.to_worker = threading.Semaphore(0)

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if batch.batch in self.ends:
            self.to_main.release()
            self.to_worker.acquire()


def trainer_loop(model: torch.nn.Module, data: Any, batch_size: int, epochs: int,
                 callbacks: Sequence[Callback] = (), notes: dict[str, str] | None = None) -> Iterator[None]:
    """dlstudio's Trainer on a thread, one chunk at a time; ``callbacks`` ride along (a GUI-attached variant
    passes its worker's bridge here). ``notes`` receives the layout the trainer chose."""
    config = TrainConfig.from_settings({"optimizer": "adam", "learning_rate": 1e-3, "batch_size": batch_size,
                                        "epochs": epochs, "device": "cpu"})
    handoff = _HandOff(-(-len(data.train) // batch_size))
    started = time.perf_counter()
    trainer = Trainer(model, data, config, callbacks=[*callbacks, handoff])
    if notes is not None:
        notes["layout"] = (f"{'channels-last' if trainer.channels_last else 'contiguous'} "
                           f"(set-up {time.perf_counter() - started:.2f} s)")
    done = threading.Event()

    def work() -> None:
        try:
            trainer.fit()
        finally:
            done.set()
            handoff.to_main.release()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    handoff.to_main.acquire()  # the first chunk has run
    while not done.is_set():
        yield
        handoff.to_worker.release()
        handoff.to_main.acquire()
    thread.join()


def run_case(template: str, batch_size: int, samples: int, epochs: int,
             notes: dict[str, str] | None = None) -> dict[str, float]:
    project = load_template(template)
    torch.manual_seed(0)
    model = compile_graph(project.graph)
    requirements = DataRequirements.from_model(model)
    generator = torch.Generator().manual_seed(0)
    raw = LabeledTensors(torch.rand((samples, *requirements.input_shape), generator=generator),
                         torch.randint(0, 10, (samples,), generator=generator), [str(i) for i in range(10)])
    data = prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, requirements, data=raw)
    x, y = data.train.x, data.train.y
    fresh = lambda: copy.deepcopy(model)  # noqa: E731 - every variant starts from the same weights
    variants: dict[str, Variant] = {
        "reference": lambda: slicing_loop(fresh(), x, y, batch_size, epochs),
        "reference-A/A": lambda: slicing_loop(fresh(), x, y, batch_size, epochs),
    }
    if x.ndim == 4 and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        variants["channels-last"] = lambda: slicing_loop(fresh(), x, y, batch_size, epochs, channels_last=True)
    variants["dataloader"] = lambda: dataloader_loop(fresh(), x, y, batch_size, epochs)
    variants["trainer"] = lambda: trainer_loop(fresh(), data, batch_size, epochs, notes=notes)

    running = {name: make() for name, make in variants.items()}
    times: dict[str, list[list[float]]] = {name: [[] for _ in range(CHUNKS_PER_EPOCH)] for name in variants}
    for epoch in range(epochs):
        for position in range(CHUNKS_PER_EPOCH):
            for name, steps in running.items():
                started = time.perf_counter()
                next(steps)
                if epoch > 0:  # the first epoch warms up caches, allocators and oneDNN kernels
                    times[name][position].append(time.perf_counter() - started)
    for steps in running.values():
        for _ in steps:
            pass
    return {name: samples / sum(statistics.median(chunk) for chunk in chunks) for name, chunks in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first one warm-up (default 3)")
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--models", default="lenet5,mlp")
    parser.add_argument("--batch-sizes", default="64,256")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.samples} samples, "
          f"{args.epochs - 1} measured epoch(s), chunks of 1/{CHUNKS_PER_EPOCH} epoch")
    for template in args.models.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            notes: dict[str, str] = {}
            rates = run_case(template, batch_size, args.samples, args.epochs, notes)
            fastest = max(rates.get("reference", 0.0), rates.get("channels-last", 0.0))
            print(f"\n{template}, batch {batch_size} (ratios to the faster hand-written loop, "
                  f"{fastest:,.0f} samples/s); load average {open('/proc/loadavg').read().split()[0]}")
            for name, rate in rates.items():
                print(f"  {name:14s} {rate:10,.0f} samples/s   {rate / fastest:5.2f}x")
            print(f"  trainer layout: {notes.get('layout', '?')}")


if __name__ == "__main__":
    main()
