"""Peak memory of loading and training on image folders, and of a 13000x13000 PNG (prints figures; asserts nothing).

Each case runs in its own subprocess; this script samples the memory of that
process and of every process it starts (DataLoader workers) from /proc every
20 ms and prints the peak of the sum (PSS where the kernel gives it, so pages
the workers share with each other are counted once; else RSS), plus the
subprocess's own ``ru_maxrss``. Cases:

  baseline      import torch and dlstudio, build the model: what any run costs before data
  in-memory     prepare an image folder held in memory (uint8), one training epoch and an evaluation
  streamed-N    the same folder streamed with 2 decoding workers, for two folder sizes: the peak
                must not grow with the file count (only paths and labels do, ~0.2 KB per file),
                which is how the 100,000-file figure is extrapolated
  png-13000     a 690 KB-class 13000x13000 PNG read by the image reader (refused from its header)

    python bench/memory.py [--files 4000] [--size 96] [--keep FOLDER]

Targets (issue 11): in memory, peak <= 1.5 x the decoded uint8 dataset + 1 GB;
streamed, <= 2 GB for a 100,000-file folder.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20

CHILD = r'''
import json, resource, sys, time
from pathlib import Path
case, folder, size, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import torch
torch.set_num_threads(1)
from dlstudio.core.compiler import compile_graph
from dlstudio.core.graph import Graph
from dlstudio.core.data import DataRequirements, prepare_data
from dlstudio.core.training import TrainConfig, Trainer

def model():
    graph, previous = Graph(), None
    for kind, params in [("Input", {"shape": [3, size, size]}), ("Conv2d", {"out_channels": 8, "kernel_size": 3}),
                         ("ReLU", {}), ("MaxPool2d", {"kernel_size": 4}), ("Flatten", {}),
                         ("Linear", {"out_features": 4}), ("Output", {"task": "classification", "classes": 4})]:
        node = graph.add_node(kind, params)
        if previous is not None:
            graph.connect(previous.id, "out", node.id, "in")
        previous = node
    return compile_graph(graph)

info = {}
net = model()
if case in ("in-memory", "streamed"):
    started = time.perf_counter()
    settings = {"source": "folder", "path": folder, "val_fraction": 0.15, "test_fraction": 0.15}
    data = prepare_data(settings, DataRequirements((3, size, size), classes=4),
                        stream_threshold_bytes=(2**62 if case == "in-memory" else 0), num_workers=2)
    info["prepare_s"] = round(time.perf_counter() - started, 1)
    info["streaming"] = data.streaming
    config = TrainConfig.from_settings({"batch_size": 64, "epochs": 1, "device": "cpu", "channels_last": "off"})
    started = time.perf_counter()
    result = Trainer(net, data, config).fit()
    info["fit_s"] = round(time.perf_counter() - started, 1)
    info["status"] = result.status
elif case == "png-13000":
    from dlstudio.core.data.reader import UnreadableImage, read_image
    from dlstudio.core.inspect.preprocess import Preprocessor
    try:
        read_image(folder, 3, size, size)
        info["result"] = "decoded"
    except UnreadableImage as error:
        info["result"] = str(error)
    try:
        Preprocessor((3, size, size), "folder")(folder)
    except Exception as error:
        info["classify"] = str(error)[-90:]
info["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print("RESULT " + json.dumps(info))
'''


def write_folder(root: Path, files: int, size: int) -> None:
    """``files`` RGB PNGs of ``size`` x ``size`` in 4 classes: smooth gradients with noise (cheap to write)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = np.linspace(0, 200, size, dtype=np.float32)
    for index in range(files):
        folder = root / f"class{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = base[None, :, None] + rng.integers(0, 40, (size, 1, 3)) + 10 * (index % 4)
        Image.fromarray(np.broadcast_to(pixels, (size, size, 3)).astype(np.uint8)).save(
            folder / f"{index:06d}.png", compress_level=1)


def write_huge_png(path: Path, side: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _memory(pid: int) -> int:
    """PSS (else RSS) of ``pid`` in bytes; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_case(case: str, target: str, size: int, files: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", CHILD, case, target, str(size), str(files)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    while process.poll() is None:
        tree, stack = [], [process.pid]
        while stack:
            pid = stack.pop()
            tree.append(pid)
            stack += _children(pid)
        peak = max(peak, sum(_memory(pid) for pid in tree))
        time.sleep(0.02)
    out, err = process.communicate()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if process.returncode or not lines:
        return {"error": (err.strip().splitlines() or ["no output"])[-1]}
    return {**json.loads(lines[-1][7:]), "peak_tree_mb": round(peak / MB, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=4000, help="images in the folder (streamed: also half of it)")
    parser.add_argument("--size", type=int, default=96, help="image and Input side in pixels (3 channels)")
    parser.add_argument("--keep", type=Path, help="write the folders here and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dlstudio-memory-"))
    big, small = work / f"folder-{args.files}", work / f"folder-{args.files // 2}"
    for folder, count in ((big, args.files), (small, args.files // 2)):
        if not folder.exists():
            write_folder(folder, count, args.size)
    png = work / "huge.png"
    if not png.exists():
        write_huge_png(png, 13000)
    decoded = args.files * 3 * args.size * args.size
    print(f"folder: {args.files} RGB PNGs of {args.size}x{args.size}; decoded uint8 {decoded / MB:.0f} MB "
          f"(float32 would be {4 * decoded / MB:.0f} MB); 13000x13000 PNG of {png.stat().st_size / 1024:.0f} KB")
    baseline = run_case("baseline", "", args.size, 0)
    print(f"baseline (torch + model):           peak {baseline['peak_tree_mb']:7.1f} MB  "
          f"(ru_maxrss {baseline['ru_maxrss_mb']} MB)")
    loaded = {}
    for folder, count in ((small, args.files // 2), (big, args.files)):
        loaded[count] = result = run_case("in-memory", str(folder), args.size, count)
        if "error" in result:
            print(f"in-memory ({count} files): failed: {result['error']}")
            continue
        size = count * 3 * args.size * args.size / MB
        over = result["peak_tree_mb"] - baseline["peak_tree_mb"]
        print(f"in-memory ({count} files, {size:.0f} MB uint8): peak {result['peak_tree_mb']:7.1f} MB = baseline + "
              f"{over:.0f} MB; target 1.5 x {size:.0f} MB + 1024 MB = {1.5 * size + 1024:.0f} MB; "
              f"prepare {result['prepare_s']} s, 1 epoch {result['fit_s']} s")
    if all("error" not in result for result in loaded.values()):
        low, high = (loaded[count]["peak_tree_mb"] for count in sorted(loaded))
        slope = (high - low) / ((args.files - args.files // 2) * 3 * args.size * args.size / MB)
        print(f"in-memory: {slope:.2f} MB of peak per MB of decoded uint8 data (the rest is fixed: torch, model, "
              f"batches)")
    streamed = {}
    for folder, count in ((small, args.files // 2), (big, args.files)):
        streamed[count] = run_case("streamed", str(folder), args.size, count)
        result = streamed[count]
        if "error" in result:
            print(f"streamed ({count} files): failed: {result['error']}")
            continue
        print(f"streamed ({count} files, 2 workers): peak {result['peak_tree_mb']:7.1f} MB "
              f"(main ru_maxrss {result['ru_maxrss_mb']} MB); prepare {result['prepare_s']} s, "
              f"1 epoch {result['fit_s']} s")
    counts = sorted(count for count, result in streamed.items() if "error" not in result)
    if len(counts) == 2:
        low, high = (streamed[count]["peak_tree_mb"] for count in counts)
        per_file = max(0.0, (high - low) / (counts[1] - counts[0]))
        print(f"streamed, extrapolated to 100,000 files: {high + per_file * (100_000 - counts[1]):.0f} MB "
              f"({per_file * 1024:.2f} KB per file from the two sizes; target <= 2048 MB)")
    huge = run_case("png-13000", str(png), args.size, 0)
    print(f"png-13000:                          peak {huge.get('peak_tree_mb', float('nan')):7.1f} MB  "
          f"(was 2.7 GB before the reader's limit): {huge.get('result', huge.get('error'))}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
