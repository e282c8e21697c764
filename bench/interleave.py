"""Run benchmark variants interleaved in chunks, each variant in a process of its own.

Why processes: torch's CPU kernels run on OpenMP (GNU libgomp), which keeps one pool of threads per
thread that has run a parallel region. As soon as two threads of a process own such pools, the process has
more OpenMP threads than CPUs, and libgomp stops spin-waiting between parallel regions (its "throttled"
spin count) and sleeps on a futex instead: every training step then pays thousands of wake-ups. On the
2-core machine a hand-written loop ran at 0.70x its own speed on a second thread of the process that had
run it on the main thread (mlp, batch 256), and the trainer, always measured on a thread, looked 22-30%
slower than the hand loop for no fault of its own. In the product a run owns the only pool (the GUI
thread computes nothing; `dlstudio train` trains on its main thread), so each variant here gets a process
whose only pool is its own: the case (model and data) is built on a short-lived thread that takes its pool
with it, the variant's loop runs on the main thread or on the one thread it starts.

The parent computes nothing; it tells one child at a time to run its next chunk, so the variants never
compete for the CPU, and the order turns by one each round so a slow spell hits them alike. Each child
times its own chunks (the pipe's round trip is left out).
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CHUNKS_PER_EPOCH = 10


@dataclass
class Progress:
    """Whether the chunk about to run is measured (not the warm-up epoch, not the final drain): a GUI variant
    counts its event-loop figures only then."""

    measuring: bool = False


@dataclass(frozen=True)
class Variant:
    """How a variant runs in its child: ``make(case, progress, report, *args)`` gives a generator that yields
    after each chunk; or, ``drives`` set, ``make(case, progress, report, chunk_done, *args)`` runs the whole
    variant itself and calls ``chunk_done()`` after each chunk (a trainer's callback does, so the trainer
    runs on the process's main thread as ``dlstudio train`` runs it, with no thread to hand chunks to).

    ``make`` must be a module-level function (it is pickled into the child). ``report`` is a dict the
    child sends back once the variant has run to its end (notes, the GUI's figures).
    """

    name: str
    make: Callable[..., Any]
    args: tuple[Any, ...] = ()
    drives: bool = False


@dataclass
class Timings:
    """Per variant: the chunk times of each position (measured epochs only), and its report."""

    chunks: dict[str, list[list[float]]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def samples_per_second(self, samples: int) -> dict[str, float]:
        """A variant's epoch time is the sum over chunk positions of the median across measured epochs."""
        import statistics

        return {name: samples / sum(statistics.median(times) for times in positions)
                for name, positions in self.chunks.items()}


def run_interleaved(variants: list[Variant], build_case: Callable[..., Any], case_args: tuple[Any, ...],
                    epochs: int) -> Timings:
    """Run every variant for ``epochs`` epochs of CHUNKS_PER_EPOCH chunks; the first epoch is warm-up.

    ``build_case(*case_args)`` (module level, picklable) makes what the variants train on, in each child.
    """
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no pool, no Qt, no CUDA inherited
    children: dict[str, tuple[Any, Any]] = {}
    try:
        for variant in variants:
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, build_case, case_args, variant), daemon=True,
                                      name=f"bench {variant.name}")
            process.start()
            theirs.close()
            children[variant.name] = (process, ours)
        for name, (_, connection) in children.items():
            _receive(connection, name, "ready")
        timings = Timings({name: [[] for _ in range(CHUNKS_PER_EPOCH)] for name in children})
        names = list(children)
        for epoch in range(epochs):
            for position in range(CHUNKS_PER_EPOCH):
                turn = (epoch * CHUNKS_PER_EPOCH + position) % len(names)
                for name in names[turn:] + names[:turn]:
                    connection = children[name][1]
                    connection.send(epoch)
                    seconds = _receive(connection, name, "chunk")
                    if epoch > 0:  # the first epoch warms up caches, allocators and oneDNN kernels
                        timings.chunks[name][position].append(seconds)
        for name, (_, connection) in children.items():
            connection.send(None)
            timings.reports[name] = _receive(connection, name, "report")
        return timings
    finally:
        for process, connection in children.values():
            connection.close()
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def _receive(connection: Any, name: str, expected: str) -> Any:
    try:
        kind, value = connection.recv()
    except EOFError:
        raise RuntimeError(f"the {name} variant's process ended without a word") from None
    if kind == "error":
        raise RuntimeError(f"the {name} variant failed:\n{value}")
    if kind != expected:
        raise RuntimeError(f"the {name} variant said {kind!r} where {expected!r} was due")
    return value


def _voluntary_switches() -> int:
    """Times the threads of this process gave up the CPU to wait (all threads together)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


class _ChunkClock:
    """The child's side of the exchange: times each chunk from the parent's request to ``chunk_done``, then
    waits for the next request. Once the parent has had all the chunks it asked for, ``chunk_done`` returns
    at once and the variant runs to its end untimed."""

    def __init__(self, connection: Any, progress: Progress) -> None:
        self.connection, self.progress = connection, progress
        self.open = True
        self.started = 0.0
        self.switched = 0
        self.switches, self.measured = 0, 0

    def wait_for_request(self) -> None:
        epoch = self.connection.recv()
        if epoch is None:
            self.open = self.progress.measuring = False
            return
        self.progress.measuring = epoch > 0
        self.switched = _voluntary_switches()
        self.started = time.perf_counter()

    def chunk_done(self) -> None:
        if not self.open:
            return
        elapsed = time.perf_counter() - self.started
        if self.progress.measuring:
            self.switches += _voluntary_switches() - self.switched
            self.measured += 1
        self.connection.send(("chunk", elapsed))
        self.wait_for_request()


def _serve(connection: Any, build_case: Callable[..., Any], case_args: tuple[Any, ...], variant: Variant) -> None:
    """The child: build the case off the main thread, then run a chunk per request and say how long it took."""
    try:
        from dlstudio.core.training.host_memory import tune_host_allocator

        tune_host_allocator()  # as the trainer does for its process: every variant gets the same allocator
        built: list[Any] = []

        def build() -> None:
            try:
                built.append(build_case(*case_args))
            except BaseException as error:  # noqa: BLE001 - raised again on the main thread
                built.append(error)

        builder = threading.Thread(target=build)
        builder.start()
        builder.join()  # the builder's OpenMP pool ends with it
        if isinstance(built[0], BaseException):
            raise built[0]
        progress, report = Progress(), {}
        clock = _ChunkClock(connection, progress)
        connection.send(("ready", None))
        clock.wait_for_request()
        if variant.drives:
            variant.make(built[0], progress, report, clock.chunk_done, *variant.args)
        else:
            for _ in variant.make(built[0], progress, report, *variant.args):
                clock.chunk_done()
        if clock.open:
            raise RuntimeError(f"the variant ended after {clock.measured} measured chunks, before the last one")
        # Thousands per chunk mean OpenMP sleeps between kernels (see above): a variant measured unfairly.
        report["switches per chunk"] = clock.switches / max(1, clock.measured)
        connection.send(("report", report))
    except BaseException:  # noqa: BLE001 - whatever failed is told to the parent, which raises it
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()
