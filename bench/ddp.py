"""Distributed training throughput: `dlstudio train` in one process against `torchrun --nproc_per_node=2`.

For each template (on the bundled digits, 1,257 training samples) it trains, with the same global batch:

  1 process          `dlstudio train`, torch's default threads (all cores), batch B
  1 process, 1 thread  `dlstudio train` with OMP_NUM_THREADS=1, batch B/2: what one rank computes per step
  2 processes        `torchrun --standalone --nproc_per_node=2 -m dlstudio train`, 1 thread each, batch B/2 per process

and prints training samples/s (from metrics.csv: the median of the epochs after the first, training only, not
validation) and the DDP overhead per step: a rank's step time under torchrun minus the same step in one
process with one thread (gradient averaging over gloo, the wait for the slower rank, the per-epoch sums).
Each variant runs in its own subprocess, in turn, `--repeats` times; the medians are printed.

    python bench/ddp.py [--templates mlp,lenet5] [--batch 64] [--epochs 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def make_project(folder: Path, template: str, batch: int, epochs: int) -> Path:
    path = folder / f"{template}-{batch}.dlstudio"
    subprocess.run([sys.executable, "-m", "dlstudio", "new", "--template", template, "-o", str(path)], check=True,
                   capture_output=True)
    document = json.loads(path.read_text())
    document["training"].update(batch_size=batch, epochs=epochs, device="cpu", channels_last="off")
    path.write_text(json.dumps(document))
    return path


def train(project: Path, processes: int, threads: int | None) -> float:
    """Training samples/s of one run (all processes together): the median epoch after the first."""
    environment = {key: value for key, value in os.environ.items() if key not in TORCHRUN_VARIABLES}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    done = subprocess.run([*launcher, "-m", "dlstudio", "train", str(project), "--json"], capture_output=True,
                          text=True, env=environment, cwd=project.parent)
    if done.returncode != 0:
        raise SystemExit(f"{project.name} with {processes} process(es) failed:\n{done.stderr[-2000:]}")
    run_dir = project.parent / json.loads(done.stdout)["run_dir"]
    with open(run_dir / "metrics.csv", newline="") as handle:
        rates = [float(row["samples_per_second"]) for row in csv.DictReader(handle)]
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", default="mlp,lenet5")
    parser.add_argument("--batch", type=int, default=64, help="global batch (per process: half of it)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    half = args.batch // 2
    print(f"{os.cpu_count()} CPU cores; global batch {args.batch} ({half} per process under torchrun); "
          f"{args.epochs} epochs on the digits, median of epochs 2..{args.epochs}, median of {args.repeats} runs")
    print(f"{'template':10} {'1 process':>12} {'1 proc 1 thr':>13} {'2 processes':>12} {'2p / 1p':>8} {'2p / 1thr':>9} "
          f"{'step 1 thr':>11} {'step 2p':>9} {'overhead/step':>14}")
    with tempfile.TemporaryDirectory() as folder:
        for template in args.templates.split(","):
            whole = make_project(Path(folder), template, args.batch, args.epochs)
            shared = make_project(Path(folder), template, half, args.epochs)
            rates: dict[str, list[float]] = {"one": [], "one-thread": [], "two": []}
            for _ in range(args.repeats):
                rates["one"].append(train(whole, 1, None))
                rates["one-thread"].append(train(shared, 1, 1))
                rates["two"].append(train(shared, 2, 1))
            one, one_thread, two = (statistics.median(rates[key]) for key in ("one", "one-thread", "two"))
            step_alone = half / one_thread          # seconds per step of batch B/2 in one process, one thread
            step_ranked = 2 * half / two            # seconds per (global) step of two ranks doing B/2 each
            print(f"{template:10} {one:12,.0f} {one_thread:13,.0f} {two:12,.0f} {two / one:8.2f} {two / one_thread:9.2f} "
                  f"{step_alone * 1e3:9.3f}ms {step_ranked * 1e3:7.3f}ms {(step_ranked - step_alone) * 1e3:12.3f}ms")
    print("samples/s: training samples per second of all processes together (validation not counted); "
          "2p / 1thr compares two processes of one thread with one (the same step per process)")


if __name__ == "__main__":
    main()
