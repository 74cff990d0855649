"""The generic training run: config -> data -> model -> fit -> evaluate -> run directory.

Run directory contract (every ``train``): ``config.json`` (resolved config with
its task), ``metrics.json`` (always with ``train_seconds``), ``model.keras``,
``history.csv``, TensorBoard logs under ``logs/``, ``learning_curves.png``, and
whatever the task adds. Everything is written atomically; ``backup/`` holds the
state a killed run resumes from.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from seqkit import io
from seqkit.config import config_to_dict
from seqkit.errors import SeqkitError
from seqkit.plots import plot_history
from seqkit.seed import set_seed
from seqkit.task import DataArgs, Task


class NanGuard(keras.callbacks.Callback):
    """Stop training as soon as the loss is NaN or infinite, and remember where."""

    def __init__(self):
        super().__init__()
        self.where: str | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = f"epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that passes ``minutes`` of training time."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60.0
        self.stopped_at: int | None = None

    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self._t0 >= self.seconds:
            self.stopped_at = epoch
            self.model.stop_training = True


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the best epoch by ``monitor`` in memory and restore them at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)`` it never stops early by itself
    and it ignores epochs whose metrics are not finite.
    """

    def __init__(self, monitor: str, mode: str):
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.best_epoch = value, epoch
            self.weights = self.model.get_weights()

    def restore(self) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)


def strategy_scope(cfg):
    """The ``tf.distribute`` scope ``cfg.distribute`` asks for (none, mirrored, multi_worker via TF_CONFIG)."""
    import tensorflow as tf

    kind = getattr(cfg, "distribute", "none")
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise SeqkitError("distribute=multi_worker needs the TF_CONFIG environment variable (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy().scope()
    return contextlib.nullcontext()


def standard_callbacks(run_dir: Path, task: Task, cfg, resume: bool) -> tuple[list, NanGuard, BestWeights]:
    monitor = task.monitor or task.objective
    nan_guard = NanGuard()
    best = BestWeights(monitor, task.direction)
    cbs: list = [
        nan_guard,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
        best,
    ]
    if getattr(cfg, "max_train_minutes", None):
        cbs.append(TimeBudget(cfg.max_train_minutes))
    if getattr(cfg, "early_stopping", 0):
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=task.direction, patience=cfg.early_stopping))
    return cbs, nan_guard, best


def train(
    task: Task, cfg, data: DataArgs, out=None, overwrite: bool = False, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Train ``task`` with ``cfg`` and write its run directory; returns ``(run_dir, metrics)``."""
    run_dir = io.new_run_dir(task.name, out, overwrite=overwrite, resume=resume)
    if overwrite and not resume:
        for stale in ("backup", "logs", "history.csv", "metrics.json"):
            p = run_dir / stale
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    config = {"task": task.name, **config_to_dict(cfg)}
    if resume and (run_dir / "config.json").exists():
        previous = io.read_json(run_dir / "config.json")
        if previous != config:
            raise SeqkitError(
                f"{run_dir / 'config.json'}: --resume with a different config; use the same command or --overwrite"
            )
    io.write_json(run_dir / "config.json", config)
    set_seed(cfg.seed)

    prepared = task.prepare(cfg, data)
    with strategy_scope(cfg):
        model = task.build_model(cfg, prepared.info)
    callbacks, nan_guard, best = standard_callbacks(run_dir, task, cfg, resume=resume)
    callbacks += task.callbacks(cfg, prepared)
    # Task callbacks (e.g. validation entity F1) must write their logs before BestWeights reads them.
    callbacks.remove(best)
    callbacks.append(best)

    t0 = time.perf_counter()
    history = task.fit(model, cfg, prepared, callbacks, epochs=cfg.epochs)
    train_seconds = time.perf_counter() - t0
    best.restore()
    task.save_assets(run_dir, cfg, prepared)
    io.save_model(model, run_dir / "model.keras")
    plot_history(run_dir / "history.csv", run_dir / "learning_curves.png")
    if nan_guard.where is not None:
        raise SeqkitError(
            f"training diverged: the loss became NaN/Inf at {nan_guard.where}; the last good weights were saved to "
            f"{run_dir / 'model.keras'} (lower learning_rate or clipnorm)"
        )

    metrics = dict(task.evaluate(model, cfg, prepared, run_dir))
    metrics["train_seconds"] = round(train_seconds, 3)
    metrics["epochs"] = len(history.history.get("loss", [])) if history is not None else cfg.epochs
    if best.best is not None:
        metrics[f"best_{best.monitor}"] = best.best
        metrics["best_epoch"] = best.best_epoch + 1
    io.write_json(run_dir / "metrics.json", _plain(metrics))
    return run_dir, metrics


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def load_run(run_dir: str | os.PathLike, task_name: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Check that ``run_dir`` is a finished run (of ``task_name`` if given); return its dir and config."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SeqkitError(f"{run_dir}: model directory not found")
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise SeqkitError(f"{run_dir}: not a seqkit run directory (no config.json)")
    config = io.read_json(cfg_path)
    found = config.get("task") if isinstance(config, dict) else None
    if task_name is not None and found != task_name:
        raise SeqkitError(f"{run_dir}: this model is from task '{found}', not '{task_name}'")
    if not (run_dir / "model.keras").exists():
        raise SeqkitError(f"{run_dir}: no model.keras (the run did not finish)")
    return run_dir, config


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model in Keras' safe mode: no arbitrary code from the file runs."""
    import seqkit.layers  # noqa: F401 - registers seqkit's serialisable layers

    return keras.models.load_model(path, safe_mode=True, compile=False)


def config_from_run(task: Task, config: dict[str, Any]):
    from seqkit.config import from_dict

    data = {k: v for k, v in config.items() if k != "task"}
    return from_dict(task.config_cls, data, source="config.json")
