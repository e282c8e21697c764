"""The allocator tuning that keeps training buffers in the heap (glibc on Linux)."""

from __future__ import annotations

import platform
import sys

import pytest

from dlstudio.core.training import host_memory


def test_thresholds_take_effect_on_glibc_and_are_applied_once(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is a glibc function")
    monkeypatch.setattr(host_memory, "_tuned", None)
    calls: list[int] = []
    original = host_memory._apply
    monkeypatch.setattr(host_memory, "_apply", lambda: calls.append(1) or original())
    assert host_memory.tune_host_allocator() is True
    assert host_memory.tune_host_allocator() is True
    assert calls == [1]


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_memory, "_tuned", None)
    monkeypatch.setattr(host_memory.sys, "platform", "darwin")
    assert host_memory.tune_host_allocator() is False
