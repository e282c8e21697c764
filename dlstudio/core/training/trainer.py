"""The training loop: plain Python with hooks, cooperative control, exact resume (torch, no Qt).

The batch loop is kept lean on purpose (it is benchmarked against a
hand-written loop, see bench/train.py): samples live in memory as tensors
sliced by a shuffled index (or, for data too large for memory, stream from
files in the order of that same index), per-batch losses and correct counts accumulate on
the device and are read back once per epoch (and every NAN_CHECK_EVERY
batches to catch a diverging loss), and hooks nobody overrides are never called.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from dlstudio.core.data.prepare import CLASSIFICATION, PreparedData
from dlstudio.core.safe_io import WriteError
from dlstudio.core.training.callbacks import Callback, overriding
from dlstudio.core.training.checkpoint import BEST, LAST, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from dlstudio.core.training.config import TrainConfig
from dlstudio.core.training.control import TrainControl
from dlstudio.core.training.device import resolve_device, resolve_precision
from dlstudio.core.training.distributed import Distributed
from dlstudio.core.training.host_memory import tune_host_allocator
from dlstudio.core.training.layout import TuningEpoch, layout_format, plan_layout
from dlstudio.core.training.events import BatchEnd, EpochMetrics, FitResult
from dlstudio.core.training.optim import Schedule, make_optimizer, parameter_groups

# A host sync every this many batches to catch a non-finite loss early; on a GPU
# a sync stalls the pipeline, so it must not happen every batch.
NAN_CHECK_EVERY = 32


class _NonFiniteLoss(Exception):
    def __init__(self, epoch: int, batch: int, value: float) -> None:
        super().__init__(f"epoch {epoch}, batch {batch}")
        self.epoch, self.batch, self.value = epoch, batch, value


class _Stopped(Exception):
    """Raised inside the batch loop when the user asked to stop; caught by fit()."""


class _NeverPending:
    """Stands in for the control in a distributed batch loop: there a stop is agreed by all processes at the
    periodic check (a process stopping alone would leave the others waiting for it)."""

    pending = False


class Trainer:
    """Trains ``model`` on ``data`` with ``config``; hooks go to ``callbacks``.

    ``run_dir`` (optional) receives ``last.pt`` after every epoch (full state,
    resumable) and ``best.pt`` (weights of the best epoch by ``config.monitor``).
    ``meta`` is stored in both (class names, normalization, settings...).
    Attributes callbacks may read: ``model``, ``config``, ``control``,
    ``history``, ``epoch`` (epochs completed), ``batches_per_epoch``, ``device``.
    Creating a trainer seeds torch, numpy and ``random`` with ``config.seed``
    and moves the model and the data to the device.

    ``frozen``: node ids (submodules of a compiled graph) whose parameters are not trained
    (``requires_grad=False``, left out of the optimizer) and whose modules stay in eval mode, so
    BatchNorm statistics do not drift. ``pretrained``: node ids that start from pretrained weights;
    those not frozen train at ``learning_rate * pretrained_lr_multiplier`` (a second parameter group).

    ``distributed``: this process's place among torchrun's processes (:mod:`.distributed`), or None for
    the ordinary single-process run. Then the model trains in DistributedDataParallel on this rank's share of
    each epoch, metrics are summed over the processes, a stop is agreed by all of them, ``auto`` memory layout
    on the CPU stays contiguous (timing verdicts could differ between processes) and only a trainer given a
    ``run_dir`` (rank 0's) writes checkpoints.
    """

    def __init__(self, model: torch.nn.Module, data: PreparedData, config: TrainConfig, *,
                 callbacks: Iterable[Callback] = (), control: TrainControl | None = None,
                 run_dir: Path | str | None = None, meta: dict[str, Any] | None = None,
                 frozen: Iterable[str] = (), pretrained: Iterable[str] = (),
                 distributed: Distributed | None = None) -> None:
        self.distributed = distributed
        if distributed is not None and config.sync_batchnorm:
            # Replaces BatchNorm children in place (the same Parameter objects), before frozen modules are looked up.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        children = dict(model.named_children())
        self.frozen = tuple(node_id for node_id in frozen if node_id in children)
        self.pretrained = tuple(node_id for node_id in pretrained if node_id in children)
        self._frozen_modules = tuple(children[node_id] for node_id in self.frozen)
        self.data = data
        self.config = config
        self.callbacks = list(callbacks)
        self.control = control or TrainControl()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.meta = {"class_names": list(data.class_names),
                     "normalization": data.normalization.to_dict() if data.normalization else None,
                     **(meta or {})}
        self.device = resolve_device(config.device)
        if distributed is not None and self.device.type == "cuda":
            self.device = torch.device("cuda", distributed.local_rank)
        tune_host_allocator()
        self.autocast_dtype = resolve_precision(config.precision, self.device)
        self._classify = data.task == CLASSIFICATION
        # Under torchrun each process trains on its share of the split (batch_size is per process).
        samples = len(data.train) if distributed is None else distributed.shard_length(len(data.train))
        self.batches_per_epoch = max(1, math.ceil(samples / config.batch_size))
        # ``auto`` on the CPU: decided while training, or remembered from an earlier run of this network.
        plan = plan_layout(config.channels_last, model, data.sample_shape, self.device, self.autocast_dtype,
                           batches_per_epoch=self.batches_per_epoch, epochs=config.epochs,
                           batch_size=config.batch_size, compiled=config.compile)
        # The model's layout (what checkpoints record); the stored samples follow it once the tuner settles.
        self.channels_last = plan.channels_last
        self._data_channels_last = self.channels_last
        self.layout_tuner = plan.tuner
        self.layout_remembered = plan.remembered
        if distributed is not None and config.channels_last == "auto" and self.device.type == "cpu":
            # Every process must train in one layout; a measured (or remembered) verdict could differ between them.
            self.channels_last = self._data_channels_last = False
            self.layout_tuner = None
        self.history: list[EpochMetrics] = []
        self.epoch = 0
        self.shuffle_generator = torch.Generator().manual_seed(config.seed)
        self._best_value: float | None = None
        self._best_epoch: int | None = None
        self._stale_epochs = 0
        self._position: dict[str, Any] | None = None
        self._next_batch = -1
        # Set when a checkpoint or a run file could not be written (a full disk): the fit failed with its message.
        self.write_failure: WriteError | None = None
        self._hooks = {name: overriding(self.callbacks, name) for name in
                       ("on_fit_start", "on_epoch_start", "on_batch_end", "on_validation_end", "on_epoch_end",
                        "on_fit_end", "on_exception")}
        self._set_up()

    # -- setup ---------------------------------------------------------------

    def _set_up(self) -> None:
        torch.manual_seed(self.config.seed)
        np.random.seed(self.config.seed)
        random.seed(self.config.seed)
        layout = layout_format(self.channels_last)
        self.model.to(self.device, memory_format=layout)
        self._splits = {name: getattr(self.data, name).to(self.device, layout) for name in ("train", "val", "test")}
        self.optimizer = make_optimizer(
            parameter_groups(self.model, self.config, frozen=self.frozen, pretrained=self.pretrained), self.config)
        self.schedule = Schedule(self.optimizer, self.config, self.batches_per_epoch)
        fp16 = self.autocast_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if fp16 else None
        trained: torch.nn.Module = self.model
        if self.distributed is not None:
            trained = self.distributed.wrap(self.model, self.device)
        self._forward: Callable[..., Any] = torch.compile(trained) if self.config.compile else trained
        # Under torchrun evaluation runs the plain model: DistributedDataParallel is for training steps.
        self._eval_forward: Callable[..., Any] = self._forward if self.distributed is None else self.model

    def _use_layout(self, channels_last: bool) -> None:
        """Put the model and the stored samples in a layout (a resumed run keeps the one it started with)."""
        self._set_model_layout(channels_last)
        if self._data_channels_last != channels_last:
            self._data_channels_last = channels_last
            self._splits = {name: split.to(self.device, layout_format(channels_last))
                            for name, split in self._splits.items()}

    def _set_model_layout(self, channels_last: bool) -> None:
        """Switch the model (and its optimizer's per-weight state) only; batches are converted as they come."""
        if channels_last == self.channels_last:
            return
        self.channels_last = channels_last
        layout = layout_format(channels_last)
        self.model.to(memory_format=layout)  # the same Parameter objects: the optimizer keeps them
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    state[key] = value.contiguous(memory_format=layout)

    def _settle_layout(self) -> None:
        """After an epoch's comparison (or when it is dropped): model and samples in the tuner's verdict."""
        if self.layout_tuner is not None:
            self._use_layout(self.layout_tuner.channels_last)

    def _train_mode(self) -> None:
        """The model in training mode, except frozen nodes: they keep eval mode (BatchNorm's running
        statistics, Dropout) as they were given. Once per epoch and after each validation, never per batch."""
        self.model.train()
        for module in self._frozen_modules:
            module.eval()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _loss(self, output: torch.Tensor, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self._classify:
            return functional.cross_entropy(output.float(), y, reduction=reduction)
        return functional.mse_loss(output.float(), x.float(), reduction=reduction)

    # -- state ---------------------------------------------------------------

    @property
    def monitor(self) -> str:
        """The metric early stopping and keep-best watch (lower is better)."""
        return self.config.monitor if len(self.data.val) else "train_loss"

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where training is now."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": capture_rng(self.shuffle_generator),
            "epoch": self.epoch,
            "position": self._position,
            "history": [m.to_dict() for m in self.history],
            "best": {"value": self._best_value, "epoch": self._best_epoch, "stale": self._stale_epochs},
            "config": self.config.to_dict(),
            "channels_last": self.channels_last,
            "meta": self.meta,
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (or a ``last.pt`` loaded with :func:`load_checkpoint`)."""
        self._use_layout(bool(state.get("channels_last", self.channels_last)))
        if self.layout_tuner is not None:
            self.layout_tuner.channels_last = self.channels_last
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"], self.shuffle_generator)
        self.epoch = int(state["epoch"])
        self._position = state["position"]
        self.history = [EpochMetrics.from_dict(m) for m in state["history"]]
        best = state["best"]
        self._best_value, self._best_epoch, self._stale_epochs = best["value"], best["epoch"], best["stale"]

    def _save_last(self) -> None:
        if self.run_dir is not None:
            save_checkpoint(self.state_dict(), self.run_dir / LAST)

    def _save_best(self, metrics: EpochMetrics) -> None:
        if self.run_dir is not None:
            save_checkpoint({"model": self.model.state_dict(), "epoch": metrics.epoch,
                             "metrics": metrics.to_dict(), "meta": self.meta}, self.run_dir / BEST)

    # -- the loop ------------------------------------------------------------

    def fit(self, resume: Path | str | dict[str, Any] | None = None) -> FitResult:
        """Train until ``config.epochs`` epochs are done, early stopping, a stop request or a failure.

        ``resume``: a run folder, a ``last.pt`` path, or a loaded state to continue from.
        A KeyboardInterrupt is treated as a stop request.
        """
        started = time.perf_counter()
        if resume is not None:
            self.load_state_dict(resume if isinstance(resume, dict) else load_checkpoint(resume, self.device))
        result: FitResult
        try:
            self._dispatch("on_fit_start")
            result = self._run_epochs()
        except _Stopped:
            result = self._saved_or_failed(FitResult("stopped", self.epoch, list(self.history), self._best_epoch,
                                                     "stopped by request; resume from the run's last checkpoint"))
        except KeyboardInterrupt as error:
            self._dispatch("on_exception", error)
            if self._position is not None:
                result = self._saved_or_failed(FitResult("stopped", self.epoch, list(self.history), self._best_epoch,
                                                         "interrupted; resume from the run's last checkpoint"))
            else:  # interrupted inside an optimizer step or validation: keep the epoch's checkpoint
                result = FitResult("stopped", self.epoch, list(self.history), self._best_epoch,
                                   f"interrupted; the last checkpoint is from epoch {self.epoch}")
        except _NonFiniteLoss as error:
            result = self._fail_non_finite(error)
        except WriteError as error:  # a checkpoint or a run file (metrics.csv) could not be written
            result = self._fail_write(error)
        except BaseException as error:
            self._dispatch("on_exception", error)
            raise
        finally:
            self._splits["train"].close()  # a streaming split lets its decoding workers go
        if result.status in ("completed", "early_stopped") and len(self.data.test):
            result.test_loss, result.test_accuracy, _ = self.evaluate("test")
        result.seconds = time.perf_counter() - started
        self._dispatch("on_fit_end", result)
        return result

    def _run_epochs(self) -> FitResult:
        config = self.config
        while self.epoch < config.epochs:
            epoch = self.epoch + 1
            self._dispatch("on_epoch_start", epoch)
            learning_rate = float(self.optimizer.param_groups[0]["lr"])
            train_loss, train_accuracy, seconds, samples = self._train_epoch(epoch)
            val_loss, val_accuracy, confusion = self.evaluate("val") if len(self.data.val) else (None, None, None)
            metrics = EpochMetrics(epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate,
                                   seconds, samples / seconds if seconds > 0 else 0.0, confusion)
            self._dispatch("on_validation_end", metrics)
            monitored = val_loss if self.monitor == "val_loss" and val_loss is not None else train_loss
            metrics.is_best = self._best_value is None or monitored < self._best_value
            if metrics.is_best:
                self._best_value, self._best_epoch, self._stale_epochs = monitored, epoch, 0
            else:
                self._stale_epochs += 1
            self.schedule.epoch_step(monitored)
            self.epoch = epoch
            self.history.append(metrics)
            self._save_last()
            if metrics.is_best:
                self._save_best(metrics)
            self._dispatch("on_epoch_end", metrics)
            patience = config.early_stopping_patience
            if patience and self._stale_epochs >= patience:
                return FitResult("early_stopped", self.epoch, list(self.history), self._best_epoch,
                                 f"no better {self.monitor} for {patience} epochs (best: epoch {self._best_epoch})")
            if self._stop_requested():
                return FitResult("stopped", self.epoch, list(self.history), self._best_epoch,
                                 "stopped by request; resume from the run's last checkpoint")
        return FitResult("completed", self.epoch, list(self.history), self._best_epoch)

    def _train_epoch(self, epoch: int) -> tuple[float, float | None, float, int]:
        """One pass over the training split; returns loss, accuracy, seconds and samples trained."""
        train = self._splits["train"]
        n, size, batches = len(train), self.config.batch_size, self.batches_per_epoch
        device = self.device
        if self._position is not None:  # resuming in the middle of this epoch
            position, self._position = self._position, None
            permutation = position["permutation"]
            losses = position["losses"].to(device)
            correct = position["correct"].to(device)
            first = int(position["batch"])
            # Checkpoints written before the sizes were kept: every batch counted as full.
            sizes = list(position.get("sizes") or _full_batch_sizes(n, size))
            if self.distributed is not None and not self.distributed.is_main:
                # The checkpoint holds the sums of all processes so far: counted once, by rank 0.
                losses.zero_()
                correct.zero_()
                sizes = [0] * batches
        else:
            permutation = torch.randperm(n, generator=self.shuffle_generator)
            losses = torch.zeros(batches, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            first = 0
            # Samples each batch really trained on: a streamed batch loses the files that fail to decode.
            sizes = [0] * batches
        self._train_mode()
        forward, optimizer, schedule, scaler = self._forward, self.optimizer, self.schedule, self.scaler
        augment = self.data.augmentation if self.data.augmentation.enabled else None
        generator, control, classify = self.shuffle_generator, self.control, self._classify
        batch_hooks = self._hooks["on_batch_end"]
        loss_of = self._loss
        order, step, check = permutation, size, self._check_finite
        if self.distributed is not None:
            order, step, check = self.distributed.shard(permutation), size * self.distributed.world_size, \
                self._check_together
            control = _NeverPending()  # type: ignore[assignment]
        tuning: TuningEpoch | None = self.layout_tuner.start_epoch(first) if self.layout_tuner is not None else None
        compare_until = tuning.end if tuning is not None else -1
        started = time.perf_counter()
        try:
            # In memory: slices of the stored tensors. Streaming: decoded by workers, in the same order.
            for b, x, y in train.batches(order, first, size):
                if control.pending:
                    if tuning is not None:  # a pause would be timed as training: drop this epoch's comparison
                        tuning, compare_until = None, -1
                        self._settle_layout()
                    if not self._obey_control():
                        self._position = self._where(epoch, b, permutation, losses, correct, sizes)
                        raise _Stopped
                if b < compare_until:
                    wanted = tuning.layout_for(b, time.perf_counter())  # type: ignore[union-attr]
                    if wanted != self.channels_last:
                        self._set_model_layout(wanted)
                elif tuning is not None:
                    tuning.finish(time.perf_counter())
                    tuning, compare_until = None, -1
                    self._settle_layout()
                # While -1, an interrupt would find a half-done step: nothing resumable to save.
                self._next_batch = -1
                if augment is not None:
                    x = augment(x, generator)
                if self.channels_last != self._data_channels_last:  # only while the tuner compares
                    x = x.contiguous(memory_format=layout_format(self.channels_last))
                with self._autocast():
                    output = forward(x)
                    loss = loss_of(output, x, y)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                schedule.batch_step()
                loss = loss.detach()
                losses[b] = loss
                sizes[b] = len(y)
                if classify:
                    correct += (output.detach().argmax(1) == y).sum()
                self._next_batch = b + 1
                if batch_hooks:
                    hooks_started = time.perf_counter() if tuning is not None else 0.0
                    batch = BatchEnd(epoch, b + 1, batches, min(n, (b + 1) * step), loss, losses)
                    for callback in batch_hooks:
                        callback.on_batch_end(self, batch)
                    if tuning is not None:  # the layouts are compared on training steps, not on callbacks
                        tuning.exclude(time.perf_counter() - hooks_started)
                if (b + 1) % NAN_CHECK_EVERY == 0 and check(losses, b + 1 - NAN_CHECK_EVERY, b + 1, epoch):
                    # Under torchrun: every process agreed to stop here.
                    self._position = self._where_together(epoch, b + 1, permutation, losses, correct, sizes)
                    raise _Stopped
        except KeyboardInterrupt:
            # Under torchrun the other processes' part of the epoch cannot be gathered: the epoch's checkpoint stays.
            if self._next_batch >= 0 and self.distributed is None:
                self._position = self._where(epoch, self._next_batch, permutation, losses, correct, sizes)
            raise
        finally:
            self._next_batch = -1
            if tuning is not None:  # the epoch ended inside the comparison (or failed): keep the verdict
                self._settle_layout()
        check(losses, first, batches, epoch)  # a stop asked for now is agreed at the epoch's end
        weights = torch.tensor(sizes, dtype=losses.dtype, device=device)
        if self.distributed is not None:
            return self._epoch_together(losses, weights, correct, sizes, first, started)
        seconds = time.perf_counter() - started
        trained = max(1, sum(sizes))
        train_loss = float((losses * weights).sum()) / trained
        accuracy = float(correct) / trained if classify else None
        return train_loss, accuracy, seconds, sum(sizes[first:])

    # -- under torchrun: what every process must agree on ----------------------

    def _check_together(self, losses: torch.Tensor, start: int, stop: int, epoch: int) -> bool:
        """The periodic check of all processes at once: a non-finite loss on any of them fails every one,
        and True when any was asked to stop (all stop after this batch)."""
        try:
            self._check_finite(losses, start, stop, epoch)
            failure = None
        except _NonFiniteLoss as error:
            failure = error
        non_finite, stop_asked = self.distributed.any(failure is not None,  # type: ignore[union-attr]
                                                      self.control.stop_requested)
        if non_finite:
            raise failure or _NonFiniteLoss(epoch, stop, float("nan"))
        return stop_asked

    def _stop_requested(self) -> bool:
        """Whether to stop after this epoch: asked of this process, or under torchrun of any process."""
        if self.distributed is None:
            return self.control.stop_requested
        return self.distributed.any(self.control.stop_requested)[0]

    def _epoch_together(self, losses: torch.Tensor, weights: torch.Tensor, correct: torch.Tensor, sizes: list[int],
                        first: int, started: float) -> tuple[float, float | None, float, int]:
        """The epoch's loss, accuracy, seconds and samples over all processes; rank 0's buffers to all."""
        distributed = self.distributed
        assert distributed is not None
        totals = torch.stack([(losses * weights).sum().double(), torch.tensor(float(sum(sizes)), device=self.device,
                                                                              dtype=torch.float64),
                              correct.double(), torch.tensor(float(sum(sizes[first:])), device=self.device,
                                                             dtype=torch.float64)])
        loss_sum, trained, right, samples = distributed.sum(totals).tolist()
        if any(True for _ in self.model.buffers()):
            distributed.broadcast_buffers(self.model)
        seconds = time.perf_counter() - started
        trained = max(1.0, trained)
        return loss_sum / trained, (right / trained if self._classify else None), seconds, int(samples)

    def _where_together(self, epoch: int, batch: int, permutation: torch.Tensor, losses: torch.Tensor,
                        correct: torch.Tensor, sizes: list[int]) -> dict[str, Any]:
        """:meth:`_where` with the sums of all processes, so that rank 0's checkpoint resumes all of them."""
        distributed = self.distributed
        assert distributed is not None
        weights = torch.tensor(sizes, dtype=torch.float64, device=self.device)
        sums = distributed.sum(torch.cat([losses.double() * weights, weights, correct.double().view(1)]))
        count = len(sizes)
        loss_sums, totals, right = sums[:count], sums[count:2 * count], sums[2 * count]
        mean_losses = torch.where(totals > 0, loss_sums / totals.clamp(min=1), torch.zeros_like(totals))
        return self._where(epoch, batch, permutation, mean_losses.to(losses.dtype), right.to(correct.dtype),
                           [int(total) for total in totals.tolist()])

    @staticmethod
    def _where(epoch: int, batch: int, permutation: torch.Tensor, losses: torch.Tensor,
               correct: torch.Tensor, sizes: list[int]) -> dict[str, Any]:
        """Where an epoch stands between batches, so that resuming continues it exactly."""
        return {"epoch": epoch, "batch": batch, "permutation": permutation.cpu(), "losses": losses.cpu(),
                "correct": correct.cpu(), "sizes": list(sizes)}

    def _obey_control(self) -> bool:
        """Wait while paused; False when a stop was requested."""
        if not self.control.wait_while_paused():
            return False
        self.control.pending = self.control.paused or self.control.stop_requested
        return True

    def _check_finite(self, losses: torch.Tensor, start: int, stop: int, epoch: int) -> None:
        window = losses[max(0, start):stop]
        if len(window) and not bool(torch.isfinite(window).all()):
            first_bad = int(torch.nonzero(~torch.isfinite(window))[0]) + max(0, start)
            raise _NonFiniteLoss(epoch, first_bad + 1, float(window[first_bad - max(0, start)]))

    def _saved_or_failed(self, result: FitResult) -> FitResult:
        """``result`` once a resumable last.pt is written; a failure saying why if it cannot be."""
        try:
            self._save_last()
        except WriteError as error:
            return self._fail_write(error)
        return result

    def _fail_write(self, error: WriteError) -> FitResult:
        """A full disk (or a refused file) stops the run; the previous checkpoint is kept, never half a new one."""
        self.write_failure = error
        has_last = self.run_dir is not None and (self.run_dir / LAST).is_file()
        kept = "the previous checkpoint is kept" if has_last else "no checkpoint was written"
        return FitResult("failed", self.epoch, list(self.history), self._best_epoch,
                         f"{error.message}; training stopped and {kept}")

    def _fail_non_finite(self, error: _NonFiniteLoss) -> FitResult:
        kept = f"the last good checkpoint is from epoch {self.epoch}" if self.epoch else "no epoch had finished"
        if self.run_dir is not None and (self.run_dir / LAST).is_file():
            # Put the last good weights back, so whoever looks at the model sees a working one.
            self.model.load_state_dict(load_checkpoint(self.run_dir / LAST, self.device)["model"])
        message = (f"the loss became {error.value} at epoch {error.epoch}, batch {error.batch}; training "
                   f"stopped and {kept} (try a lower learning rate)")
        return FitResult("failed", self.epoch, list(self.history), self._best_epoch, message)

    def evaluate(self, split: str = "val") -> tuple[float | None, float | None, list[list[int]] | None]:
        """Mean loss, accuracy and confusion matrix (true x predicted) on ``split``.

        Accuracy and confusion are None for reconstruction; all three are None for an empty split.
        """
        data = self._splits[split]
        n = len(data)
        if n == 0:
            return None, None, None
        classes = len(self.data.class_names)
        evaluated = 0  # below n when streamed files fail to decode: they are skipped, not counted
        loss_sum = torch.zeros((), device=self.device)
        confusion = torch.zeros(classes * classes, dtype=torch.int64, device=self.device) if self._classify else None
        was_training = self.model.training
        self.model.eval()
        # The training batch size: a batch that trained fits in memory (a fixed 512 need not).
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = data.in_order(self.config.batch_size)
        if self.distributed is not None:  # each process its contiguous part of the split
            start, stop = self.distributed.part(n)
            batches = (batch[1:] for batch in data.batches(torch.arange(start, stop), 0, self.config.batch_size))
        with torch.inference_mode():
            for x, y in batches:
                with self._autocast():
                    output = self._eval_forward(x)
                loss_sum += self._loss(output, x, y, reduction="sum")
                evaluated += len(y)
                if confusion is not None:
                    confusion += torch.bincount(y * classes + output.argmax(1), minlength=classes * classes)
        if was_training:
            self._train_mode()
        if self.distributed is not None:
            sums = self.distributed.sum(torch.stack([loss_sum.double(), torch.tensor(
                float(evaluated), dtype=torch.float64, device=self.device)]))
            loss_sum, evaluated = sums[0], int(sums[1])
            if confusion is not None:
                self.distributed.sum(confusion)
        if evaluated == 0:
            return None, None, None
        if not self._classify:
            elements = evaluated * math.prod(self.data.sample_shape)
            return float(loss_sum) / elements, None, None
        matrix = confusion.view(classes, classes).cpu()  # type: ignore[union-attr]
        return float(loss_sum) / evaluated, float(matrix.diagonal().sum()) / evaluated, matrix.tolist()

    def _dispatch(self, hook: str, *args: Any) -> None:
        for callback in self._hooks[hook]:
            getattr(callback, hook)(self, *args)


def _full_batch_sizes(n: int, size: int) -> list[int]:
    """Batch sizes of an epoch of ``n`` samples in batches of ``size`` when no sample is lost."""
    return [min(size, n - start) for start in range(0, n, size)]


def fit(model: torch.nn.Module, data: PreparedData, config: TrainConfig, callbacks: Iterable[Callback] = (), *,
        control: TrainControl | None = None, run_dir: Path | str | None = None,
        resume: Path | str | dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
        frozen: Iterable[str] = (), pretrained: Iterable[str] = ()) -> FitResult:
    """Train ``model`` on ``data``: a shortcut for ``Trainer(...).fit(resume)``."""
    trainer = Trainer(model, data, config, callbacks=callbacks, control=control, run_dir=run_dir, meta=meta,
                      frozen=frozen, pretrained=pretrained)
    return trainer.fit(resume)
