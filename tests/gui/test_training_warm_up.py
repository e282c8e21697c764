"""The first Train does not pay torch's first-use costs: they are paid in the background once samples show."""

from __future__ import annotations

import subprocess
import sys


def test_warm_up_imports_what_the_first_optimizer_would() -> None:
    # In a fresh interpreter (this one has long imported everything): after warm_up_training, creating the
    # first optimizer imports nothing more.
    code = (
        "import sys\n"
        "from dlstudio.core.training.warmup import warm_up_training\n"
        "import torch\n"
        "assert 'torch._dynamo' not in sys.modules\n"
        "warm_up_training()\n"
        "assert 'torch._dynamo' in sys.modules\n"
        "before = set(sys.modules)\n"
        "torch.optim.Adam([torch.zeros(2, requires_grad=True)])\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_window_warms_up_once_when_the_data_panel_first_shows_samples(make_window, qtbot) -> None:
    window = make_window()
    started: list[bool] = []
    original = window.training._run_in_background

    def record(function, *args, on_finished):  # noqa: ANN001 - the wrapped method's signature
        started.append(function.__name__ == "_warm_up_job")
        return original(function, *args, on_finished=on_finished)

    window.training._run_in_background = record
    preview = object()
    window.data_panel.preview_shown.emit(preview)
    window.data_panel.preview_shown.emit(preview)
    assert started.count(True) == 1
    qtbot.waitUntil(lambda: not window.training._tasks, timeout=30_000)
