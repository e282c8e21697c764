"""Shared fixtures of the core tests (no QApplication here, ever)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def own_user_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty user data folder (XDG_DATA_HOME): what a run remembers there (the layout
    tuner's verdicts, saved blocks) neither reaches the person's own folder nor leaks into the next test."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))


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


@pytest.fixture
def stop_after_batches():
    """``stop_after_batches(n)``: a training callback that asks for a stop once batch ``n`` of an epoch is done."""
    from dlstudio.core.training import Callback

    class StopAfterBatches(Callback):
        def __init__(self, batches: int) -> None:
            self.batches = batches

        def on_batch_end(self, trainer, batch) -> None:  # noqa: ANN001 - the hook's signature
            if batch.batch == self.batches:
                trainer.control.stop()

    return StopAfterBatches
