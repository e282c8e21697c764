"""A wheel built from this tree carries the templates where importlib.resources finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_templates_and_no_tests(tmp_path):
    # No build isolation: uses the setuptools already installed, so no network is needed.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("dlstudio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {name for name in names if name.startswith("dlstudio/resources/templates/")}
    expected = {f"dlstudio/resources/templates/{n}.dlstudio"
                for n in ("mlp", "deep-mlp", "lenet5", "vgg-mini", "resnet-mini", "autoencoder")}
    assert expected <= templates
    assert "dlstudio/core/graph.py" in names
    assert not any(name.startswith("tests/") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dlstudio = dlstudio.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
