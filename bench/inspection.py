"""Timings of the inspect core (medians, CPU): classify latency and folder throughput, feature maps, dreams.

  classify, single image   TrainedModel.classify([png]) : read + preprocess + forward + top-k, one image
  classify, folder         classify_paths(folder of 1,000 PNGs), batches of 64 -> images/s
  feature maps             all_feature_maps (every node, one forward with hooks) and feature_maps per node
  dreams                   activation_maximization and deep_dream steps per second

Models are the lenet5 and vgg-mini templates with random weights (speed does not depend on training);
images are the bundled digits fitted to each model's input, written as PNG.

    python bench/inspection.py [--repeats 5] [--images 1000] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
import tempfile
import time
from collections.abc import Callable

import torch

from dlstudio.core.compiler import compile_graph
from dlstudio.core.data.digits import load_digits
from dlstudio.core.data.normalization import Normalization
from dlstudio.core.inspect import (
    Preprocessor,
    TrainedModel,
    activation_maximization,
    all_feature_maps,
    deep_dream,
    feature_maps,
    node_ids,
    save_png,
)
from dlstudio.core.project.templates import load_template


def median_seconds(action: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def trained_template(name: str) -> TrainedModel:
    project = load_template(name)
    torch.manual_seed(0)
    model = compile_graph(project.graph).eval()
    shape = tuple(model.input_shapes[model.input_ids[0]])
    digits = load_digits(shape)
    preprocessor = Preprocessor(shape, "digits", Normalization.fit(digits.x))
    return TrainedModel(model, project.graph, digits.class_names, preprocessor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); medians of {args.repeats} runs")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        lenet = trained_template("lenet5")
        digits = load_digits(lenet.input_shape)
        for index in range(args.images):
            save_png(digits.x[index % len(digits)], folder / f"{index:04d}.png")
        one = folder / "0000.png"
        single = median_seconds(lambda: lenet.classify([one]), max(args.repeats, 50))
        print(f"classify, single image (lenet5, 28x28 PNG): {single * 1e3:.2f} ms per image")
        folder_seconds = median_seconds(lambda: sum(r.ok for r in lenet.classify_paths([folder])), args.repeats)
        print(f"classify, folder of {args.images} PNGs (lenet5): {folder_seconds:.3f} s = "
              f"{args.images / folder_seconds:,.0f} images/s")

    for name in ("lenet5", "vgg-mini"):
        trained = trained_template(name)
        x = trained.preprocess(load_digits(trained.input_shape).x[0])
        nodes = node_ids(trained.model)
        together = median_seconds(lambda: all_feature_maps(trained.model, x), args.repeats)
        one_by_one = median_seconds(lambda: [feature_maps(trained.model, x, n) for n in nodes], args.repeats)
        print(f"feature maps, {name} ({len(nodes)} nodes): all in one pass {together * 1e3:.2f} ms; "
              f"node by node {one_by_one * 1e3:.2f} ms ({one_by_one / len(nodes) * 1e3:.2f} ms per node)")

    dream_cases = (("lenet5", "relu2", 3), ("vgg-mini", "relu6", 5))
    for name, node_id, channel in dream_cases:
        trained = trained_template(name)
        steps = 50

        def maximize() -> None:
            for _ in activation_maximization(trained.model, node_id, channel, trained.normalization, steps=steps,
                                             yield_every=10):
                pass

        seconds = median_seconds(maximize, args.repeats)
        image = trained.preprocessor.raw(load_digits(trained.input_shape).x[0])

        def dream() -> None:
            for _ in deep_dream(trained.model, image, node_id, None, trained.normalization, octaves=3,
                                steps_per_octave=10, yield_every=5):
                pass

        dream_seconds = median_seconds(dream, args.repeats)
        print(f"dream, {name} {node_id}[{channel}]: activation maximization {steps / seconds:,.0f} steps/s; "
              f"DeepDream (3 octaves x 10 steps) {30 / dream_seconds:,.0f} steps/s")


if __name__ == "__main__":
    main()
