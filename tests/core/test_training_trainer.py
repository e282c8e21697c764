"""The trainer on tiny models and data: exact resume, NaN stop, pause/stop, early stopping, keep-best, hooks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from core_helpers import chain_graph
from dlstudio.core.compiler import compile_graph
from dlstudio.core.data import DataRequirements, LabeledTensors, prepare_data
from dlstudio.core.graph import Graph
from dlstudio.core.training import (
    BEST,
    LAST,
    Callback,
    TrainConfig,
    Trainer,
    load_checkpoint,
)

# -- tiny models and data -----------------------------------------------------


def mlp_graph() -> Graph:
    return chain_graph([("Input", {"shape": [4]}), ("Linear", {"out_features": 8}), ("ReLU", {}),
                            ("Dropout", {"p": 0.2}), ("Linear", {"out_features": 3}),
                            ("Output", {"task": "classification", "classes": 3})])


def cnn_graph() -> Graph:
    return chain_graph([("Input", {"shape": [1, 6, 6]}), ("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                            ("ReLU", {}), ("Flatten", {}), ("Linear", {"out_features": 3}),
                            ("Output", {"task": "classification", "classes": 3})])


def blobs(shape: tuple[int, ...], n: int = 90, seed: int = 0) -> LabeledTensors:
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn((n, *shape), generator=generator) * 0.5 + y.view(-1, *[1] * len(shape)).float()
    return LabeledTensors(x, y, ["a", "b", "c"])


def build(graph: Graph, data_settings: dict[str, Any] | None = None, init_seed: int = 0) -> tuple[Any, Any]:
    torch.manual_seed(init_seed)
    model = compile_graph(graph)
    requirements = DataRequirements.from_model(model)
    data = prepare_data({"val_fraction": 0.2, "test_fraction": 0.1, **(data_settings or {})}, requirements,
                        data=blobs(requirements.input_shape))
    return model, data


def config(**changes: Any) -> TrainConfig:
    return TrainConfig.from_settings({"batch_size": 16, "epochs": 4, "device": "cpu", **changes})


class StopAt(Callback):
    """Asks for a stop after batch ``batch`` of ``epoch`` (None: at the end of the epoch)."""

    def __init__(self, epoch: int, batch: int | None = None) -> None:
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
        if self.batch is not None and (batch.epoch, batch.batch) == (self.epoch, self.batch):
            trainer.control.stop()

    def on_epoch_end(self, trainer: Trainer, metrics: Any) -> None:
        if self.batch is None and metrics.epoch == self.epoch:
            trainer.control.stop()


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, left), right in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(left, right, atol=1e-6), name


# -- exact resume ------------------------------------------------------------

CASES = {
    "mlp-sgd-onecycle-dropout": (mlp_graph, {}, {"optimizer": "sgd", "learning_rate": 0.05, "schedule": "one-cycle"}),
    "cnn-adam-cosine-augment": (cnn_graph, {"augment_crop_padding": 1, "augment_hflip": True,
                                            "augment_rotation": 10.0, "augment_color_jitter": 0.2},
                                {"optimizer": "adam", "schedule": "cosine"}),
    "mlp-rmsprop-plateau": (mlp_graph, {}, {"optimizer": "rmsprop", "learning_rate": 0.01,
                                            "schedule": "reduce-on-plateau"}),
}


@pytest.mark.parametrize("stop_batch", [None, 3], ids=["at-epoch-end", "mid-epoch"])
@pytest.mark.parametrize("case", list(CASES))
def test_resume_continues_exactly(tmp_path: Path, case: str, stop_batch: int | None) -> None:
    make_graph, data_settings, training = CASES[case]
    model, data = build(make_graph(), data_settings)
    whole = Trainer(model, data, config(**training), run_dir=tmp_path / "whole").fit()
    assert whole.status == "completed" and whole.epochs_completed == 4

    first_model, data = build(make_graph(), data_settings)
    first = Trainer(first_model, data, config(**training), callbacks=[StopAt(2, stop_batch)],
                    run_dir=tmp_path / "part").fit()
    assert first.status == "stopped" and first.epochs_completed == (2 if stop_batch is None else 1)

    # A differently initialized model proves that the weights come from the checkpoint.
    resumed_model, data = build(make_graph(), data_settings, init_seed=99)
    resumed = Trainer(resumed_model, data, config(**training), run_dir=tmp_path / "part").fit(resume=tmp_path / "part")
    assert resumed.status == "completed" and resumed.epochs_completed == 4
    assert_same_weights(model, resumed_model)
    assert [round(m.val_loss, 5) for m in resumed.history] == [round(m.val_loss, 5) for m in whole.history]
    assert resumed.history[-1].train_loss == pytest.approx(whole.history[-1].train_loss, rel=1e-5)
    assert resumed.test_accuracy == whole.test_accuracy


def test_keyboard_interrupt_between_batches_leaves_a_resumable_checkpoint(tmp_path: Path) -> None:
    class Interrupt(Callback):
        def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
            if (batch.epoch, batch.batch) == (2, 2):
                raise KeyboardInterrupt

    model, data = build(mlp_graph())
    whole = Trainer(model, data, config()).fit()
    interrupted_model, data = build(mlp_graph())
    result = Trainer(interrupted_model, data, config(), callbacks=[Interrupt()], run_dir=tmp_path).fit()
    assert result.status == "stopped" and "interrupted" in result.message
    state = load_checkpoint(tmp_path / LAST)
    assert (state["epoch"], state["position"]["batch"]) == (1, 2)
    resumed_model, data = build(mlp_graph(), init_seed=5)
    resumed = Trainer(resumed_model, data, config(), run_dir=tmp_path).fit(resume=tmp_path)
    assert resumed.status == "completed"
    assert_same_weights(model, resumed_model)
    assert resumed.history[-1].val_loss == pytest.approx(whole.history[-1].val_loss, rel=1e-6)


# -- failures and control ------------------------------------------------------


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    class Poison(Callback):
        def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
            if (batch.epoch, batch.batch) == (2, 2):
                with torch.no_grad():
                    next(trainer.model.parameters()).fill_(float("nan"))

    model, data = build(mlp_graph())
    result = Trainer(model, data, config(), callbacks=[Poison()], run_dir=tmp_path).fit()
    assert result.status == "failed"
    assert "nan at epoch 2, batch 3" in result.message and "from epoch 1" in result.message
    assert result.epochs_completed == 1 and result.test_accuracy is None
    kept = load_checkpoint(tmp_path / LAST)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the good weights are put back


def test_pause_holds_batches_until_resume_and_stop_ends_the_run(tmp_path: Path) -> None:
    paused = threading.Event()
    seen: list[tuple[int, int]] = []

    class Recorder(Callback):
        def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
            seen.append((batch.epoch, batch.batch))
            if (batch.epoch, batch.batch) == (1, 2):
                trainer.control.pause()
                paused.set()

    model, data = build(mlp_graph())
    trainer = Trainer(model, data, config(), callbacks=[Recorder()], run_dir=tmp_path)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(trainer.fit()))
    thread.start()
    assert paused.wait(5)
    # While paused, no batch may advance: give the loop ample time to (wrongly) carry on.
    thread.join(0.2)
    assert thread.is_alive() and seen[-1] == (1, 2)
    trainer.control.resume()
    trainer.control.pause()
    trainer.control.stop()  # a stop wakes a paused loop
    thread.join(5)
    assert not thread.is_alive()
    assert results[0].status == "stopped"
    assert load_checkpoint(tmp_path / LAST)["position"]["epoch"] == 1


def test_early_stopping_stops_after_patience_epochs_without_improvement() -> None:
    model, data = build(mlp_graph())
    # A zero learning rate never improves on epoch 1's validation loss.
    result = Trainer(model, data, config(learning_rate=1e-8, epochs=10, early_stopping_patience=2,
                                         optimizer="sgd", momentum=0.0)).fit()
    assert result.status == "early_stopped"
    assert result.epochs_completed == 3 and result.best_epoch == 1
    assert "no better val_loss for 2 epochs" in result.message
    assert result.test_accuracy is not None


def test_keep_best_writes_the_best_epoch_weights_only_loadable(tmp_path: Path) -> None:
    class RecordWeights(Callback):
        def __init__(self) -> None:
            self.weights: dict[int, dict[str, torch.Tensor]] = {}

        def on_epoch_end(self, trainer: Trainer, metrics: Any) -> None:
            self.weights[metrics.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    recorder = RecordWeights()
    model, data = build(mlp_graph())
    result = Trainer(model, data, config(epochs=6, learning_rate=0.05), callbacks=[recorder], run_dir=tmp_path).fit()
    losses = [m.val_loss for m in result.history]
    best_epoch = losses.index(min(losses)) + 1
    assert result.best_epoch == best_epoch
    assert [m.epoch for m in result.history if m.is_best][-1] == best_epoch
    best = torch.load(tmp_path / BEST, weights_only=True)
    assert best["epoch"] == best_epoch and best["meta"]["class_names"] == ["a", "b", "c"]
    for name, tensor in recorder.weights[best_epoch].items():
        assert torch.equal(best["model"][name], tensor)
    torch.load(tmp_path / LAST, weights_only=True)  # the full state too: tensors, dicts, lists, numbers only


def test_hooks_arrive_in_order_with_plain_payloads() -> None:
    calls: list[str] = []

    class Recorder(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            calls.append("fit_start")

        def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
            calls.append(f"epoch_start {epoch}")

        def on_batch_end(self, trainer: Trainer, batch: Any) -> None:
            assert isinstance(batch.loss, float)
            calls.append("batch")

        def on_validation_end(self, trainer: Trainer, metrics: Any) -> None:
            calls.append("validation_end")

        def on_epoch_end(self, trainer: Trainer, metrics: Any) -> None:
            assert sum(map(sum, metrics.confusion)) == len(trainer.data.val)
            assert 0.0 <= metrics.val_accuracy <= 1.0 and metrics.samples_per_second > 0
            calls.append(f"epoch_end {metrics.epoch}")

        def on_fit_end(self, trainer: Trainer, result: Any) -> None:
            calls.append(f"fit_end {result.status}")

    model, data = build(mlp_graph())
    batches = -(-len(data.train) // 32)
    Trainer(model, data, config(epochs=2, batch_size=32), callbacks=[Recorder()]).fit()
    epoch = ["validation_end"]
    assert calls == (["fit_start", "epoch_start 1"] + ["batch"] * batches + epoch + ["epoch_end 1", "epoch_start 2"]
                     + ["batch"] * batches + epoch + ["epoch_end 2", "fit_end completed"])


def test_an_error_in_a_hook_reaches_on_exception_and_propagates() -> None:
    seen: list[BaseException] = []

    class Broken(Callback):
        def on_epoch_end(self, trainer: Trainer, metrics: Any) -> None:
            raise ValueError("callback bug")

        def on_exception(self, trainer: Trainer, error: BaseException) -> None:
            seen.append(error)

    model, data = build(mlp_graph())
    with pytest.raises(ValueError, match="callback bug"):
        Trainer(model, data, config(epochs=1), callbacks=[Broken()]).fit()
    assert len(seen) == 1


@pytest.mark.parametrize("schedule, check", [
    ("step", lambda lrs: lrs[-1] < lrs[0]),
    ("cosine", lambda lrs: lrs[0] > lrs[1] > lrs[2]),
    ("one-cycle", lambda lrs: lrs[1] > lrs[0]),
    ("none", lambda lrs: len(set(lrs)) == 1),
])
def test_learning_rate_schedules(schedule: str, check: Any) -> None:
    model, data = build(mlp_graph())
    result = Trainer(model, data, config(schedule=schedule, epochs=4, learning_rate=0.01)).fit()
    assert check([m.learning_rate for m in result.history]), [m.learning_rate for m in result.history]


def test_reconstruction_trains_against_the_input() -> None:
    graph = chain_graph([("Input", {"shape": [4]}), ("Linear", {"out_features": 2}),
                             ("Linear", {"out_features": 4}),
                             ("Output", {"task": "reconstruction"})])
    model, data = build(graph)
    result = Trainer(model, data, config(epochs=3, learning_rate=0.01)).fit()
    assert result.history[-1].train_accuracy is None and result.test_accuracy is None
    assert result.history[-1].val_loss < result.history[0].val_loss
    assert result.test_loss is not None


def test_channels_last_auto_is_tuned_for_conv_models_and_off_for_others() -> None:
    def long_run(graph: Graph, **changes: Any) -> Trainer:
        # 150 batches an epoch, 300 steps: room to compare layouts (tiny runs stay contiguous, untimed)
        torch.manual_seed(0)
        model = compile_graph(graph)
        data = prepare_data({"val_fraction": 0.0, "test_fraction": 0.0}, DataRequirements.from_model(model),
                            data=blobs(DataRequirements.from_model(model).input_shape, n=600))
        return Trainer(model, data, config(epochs=2, batch_size=4, **changes))

    assert long_run(cnn_graph()).layout_tuner is not None
    assert Trainer(*build(cnn_graph()), config(epochs=1)).layout_tuner is None
    assert long_run(mlp_graph()).layout_tuner is None
    fixed = long_run(cnn_graph(), channels_last="off")
    assert fixed.layout_tuner is None and not fixed.channels_last


def test_a_resumed_run_keeps_the_layout_it_started_with(tmp_path: Path) -> None:
    model, data = build(cnn_graph())
    Trainer(model, data, config(epochs=1, channels_last="on"), run_dir=tmp_path).fit()
    resumed = Trainer(*build(cnn_graph()), config(epochs=2, channels_last="off"), run_dir=tmp_path)
    assert resumed.fit(resume=tmp_path).status == "completed"
    assert resumed.channels_last
    assert resumed.model.state_dict()["conv1.weight"].is_contiguous(memory_format=torch.channels_last)
