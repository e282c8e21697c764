"""Shared fixtures of the core tests (no QApplication here, ever)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a busy shared machine two threads can be 50x slower.

    Use it per module with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch  # lazily: some core tests check that importing the core does not import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
