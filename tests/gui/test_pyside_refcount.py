"""Guard against the PySide6 6.12.0 regression that drops a reference to None on every
void method call (under Python 3.11 the interpreter aborts after a few thousand calls).
pyproject pins PySide6-Essentials below 6.12; this test keeps an upgrade honest."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QWidget


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_void_qt_calls_keep_the_reference_count_of_none(qapp):
    widget = QWidget()
    try:
        widget.setEnabled(True)  # warm up any lazily created bindings
        before = sys.getrefcount(None)
        for _ in range(3000):
            widget.setEnabled(True)  # a void method
            widget.setToolTip("")  # another one, with an argument
        after = sys.getrefcount(None)
    finally:
        widget.deleteLater()
    # Unrelated objects may come and go during the loop; the regression loses 6000 here.
    assert after > before - 100, f"references to None fell from {before} to {after}"
