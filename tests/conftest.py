"""Test collection shared by every tier.

tests/xwindow holds real-window checks: they need Qt's xcb platform under Xvfb, and Qt's
platform is fixed per process while the rest of the suite runs offscreen. So the main run
leaves that folder out; tests/gui/test_real_window.py runs it in its own process with
QT_QPA_PLATFORM=xcb (where this conftest lets it in).
"""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("QT_QPA_PLATFORM") == "xcb" else ["xwindow"]
