"""Acceptance check for ``dlstudio classify``: a lenet5 run's held-out test split, written as PNG files and
classified through the command, must reproduce the run's test accuracy (within one image).

1. ``dlstudio new --template lenet5`` and ``dlstudio train --json`` (digits; the template's 15 epochs).
2. The run's test split is rebuilt with ``prepare_data`` from the run's own data settings (same split
   seed), un-normalized to raw [0, 1] pixels, and written as 8-bit PNGs named ``<index>_<label>.png``.
3. ``dlstudio classify RUN FOLDER --json`` with the last checkpoint (the weights the trainer's test
   accuracy was measured with) and with the best checkpoint (the default); accuracy = top-1 == label.

    python bench/classify_check.py [--epochs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def dlstudio(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dlstudio", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"dlstudio {args[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def accuracy_of(output: str) -> tuple[int, int]:
    items = json.loads(output)
    correct = sum(bool(item["top"]) and item["top"][0]["label"] == Path(item["file"]).stem.split("_")[1]
                  for item in items)
    return correct, len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="override the template's epochs")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)
        project = work / "lenet5.dlstudio"
        dlstudio("new", "--template", "lenet5", "-o", str(project), "--force")
        train_args = ["train", str(project), "--json"] + (["--epochs", str(args.epochs)] if args.epochs else [])
        summary = json.loads(dlstudio(*train_args))
        run_dir = Path(summary["run_dir"])

        from dlstudio.core.inspect import load_trained, save_png

        trained = load_trained(run_dir, which="last", device="cpu")
        test = trained.prepare_data().test
        folder = work / "test-images"
        folder.mkdir(exist_ok=True)
        raw = trained.preprocessor.denormalize(test.x)
        for index, (image, label) in enumerate(zip(raw, test.y.tolist())):
            save_png(image, folder / f"{index:04d}_{trained.class_names[label]}.png")
        best = load_trained(run_dir, which="best", device="cpu")
        best_on_tensors = sum(p.label == best.class_names[y] for p, y in
                              zip(best.classify(test.x, top_k=1), test.y.tolist()))

        last_correct, n = accuracy_of(dlstudio("classify", str(run_dir), str(folder), "--json", "--checkpoint", "last"))
        best_correct, _ = accuracy_of(dlstudio("classify", str(project), str(folder), "--json"))
        run_correct = round(summary["test_accuracy"] * n)
        print(f"lenet5 on digits: {summary['epochs']} epochs, {n} held-out test images written as PNG")
        print(f"  run's test accuracy (trainer, last weights):   {summary['test_accuracy']:.4f}  ({run_correct}/{n})")
        print(f"  dlstudio classify PNGs, --checkpoint last:     {last_correct / n:.4f}  ({last_correct}/{n})"
              f"  difference {last_correct - run_correct:+d} image(s)")
        print(f"  best checkpoint on the split's tensors:         {best_on_tensors / n:.4f}  ({best_on_tensors}/{n})")
        print(f"  dlstudio classify PNGs, project (best, default): {best_correct / n:.4f}  ({best_correct}/{n})"
              f"  difference {best_correct - best_on_tensors:+d} image(s)")
        ok = abs(last_correct - run_correct) <= 1 and abs(best_correct - best_on_tensors) <= 1
        print("PASS: within one image" if ok else "FAIL: more than one image apart")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
