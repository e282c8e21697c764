"""The real-window smoke test: tests/xwindow in its own process, on Qt's xcb platform under Xvfb.

Qt's platform is fixed per process and this suite runs offscreen, so the real-window tests run
in a child pytest with QT_QPA_PLATFORM=xcb; pytest-xvfb starts a private 1920x1200x24 X display
for it (the window is 1600x1000). The child's whole output is shown when it fails.

Without Xvfb the test fails on CI (.ci/run installs it, so a missing Xvfb there is a broken
setup) and is skipped elsewhere, with how to install it: a developer's machine without Xvfb
still runs the rest of the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 240


@pytest.mark.timeout(CHILD_TIMEOUT_S + 30)
def test_every_action_of_a_real_window_under_xvfb():
    if shutil.which("Xvfb") is None:
        message = "Xvfb is not installed (Debian: apt-get install xvfb xauth); the real-window tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    command = [sys.executable, "-m", "pytest", "tests/xwindow", "-p", "xvfb", "-p", "no:cacheprovider", "-q",
               "-rA", "-o", "xvfb_width=1920", "-o", "xvfb_height=1200", "-o", "xvfb_colordepth=24"]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        output = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        pytest.fail(f"the real-window tests ran over {CHILD_TIMEOUT_S} s:\n{output}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(f"the real-window tests failed (exit {result.returncode}): {' '.join(command[1:])}\n"
                    f"{result.stdout}\n{result.stderr}", pytrace=False)
