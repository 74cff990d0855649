"""The surface every task offers, so the CLI, make targets, tuner and tests treat tasks alike.

A task module in ``tasks/`` defines a subclass of :class:`Task` and exposes an
instance as ``TASK``. The generic training loop lives in :mod:`seqkit.training`.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from seqkit.errors import SeqkitError

TASK_NAMES = ("sentiment", "ner", "forecast", "charlm")


@dataclasses.dataclass
class DataArgs:
    """Where the user said the data is (all optional: each task has a standard data set)."""

    data: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None


@dataclasses.dataclass
class Prepared:
    """Data ready for training.

    ``train``/``valid``/``test`` are whatever the task's ``fit``/``evaluate``
    consume (usually ``tf.data.Dataset``). ``info`` is JSON-serialisable and is
    everything ``build_model`` needs besides the config (vocabulary sizes,
    number of classes, ...). ``assets`` is what travels with the model.
    """

    train: Any
    valid: Any
    test: Any = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class Task:
    """Base class of a task: data -> model -> fit -> evaluate -> predict.

    Subclasses set ``name``, ``config_cls`` and ``objective``/``direction``
    (the validation metric the tuner optimises, a key of the Keras fit logs)
    and implement the methods below. ``train`` in :mod:`seqkit.training`
    drives them; a task with an unusual protocol may override ``run``.
    """

    name: str = ""
    config_cls: type = object
    objective: str = "val_loss"
    direction: str = "min"
    monitor: str | None = None  # checkpoint/early-stopping metric; defaults to ``objective``

    # --- data ---------------------------------------------------------------------------
    def prepare(self, cfg, data: DataArgs, for_tuning: bool = False) -> Prepared:
        """Load and preprocess data. With ``for_tuning`` the test set must not be loaded."""
        raise NotImplementedError

    # --- model --------------------------------------------------------------------------
    def build_model(self, cfg, info: dict[str, Any]):
        """The only place the task's model is defined; returns a compiled ``keras.Model``."""
        raise NotImplementedError

    def callbacks(self, cfg, prepared: Prepared) -> list:
        """Task-specific callbacks (e.g. one that logs validation entity F1)."""
        return []

    def fit(self, model, cfg, prepared: Prepared, callbacks: list, epochs: int, initial_epoch: int = 0):
        """Train ``model``; returns the Keras ``History``."""
        return model.fit(
            prepared.train,
            validation_data=prepared.valid,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=2,
        )

    def evaluate(self, model, cfg, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        """Test metrics (and plots into ``run_dir`` when given)."""
        raise NotImplementedError

    def save_assets(self, run_dir: Path, cfg, prepared: Prepared) -> None:
        """Write whatever must travel with ``model.keras`` (vocabularies, scalers) into ``run_dir``."""

    # --- prediction ---------------------------------------------------------------------
    def load(self, run_dir: Path):
        """Return a predictor object for a finished run (one call from Python)."""
        raise NotImplementedError

    def predict_cli(
        self, run_dir: Path, texts: list[str], input_path: str | None, output_path: str | None, as_json: bool
    ) -> None:
        """Implement ``seqkit predict`` for this task (print to stdout / write ``output_path``)."""
        raise SeqkitError(f"task '{self.name}' does not support predict")

    # --- tests --------------------------------------------------------------------------
    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        """Write a tiny data set into ``directory``; return its DataArgs and config overrides for a tiny model."""
        raise NotImplementedError

    def predict_inputs(self, directory: Path) -> list[str]:
        """Raw inputs for the contract test's predict step."""
        return []


def get_task(name: str) -> Task:
    if name not in TASK_NAMES:
        raise SeqkitError(f"unknown task '{name}'; choose one of: {', '.join(TASK_NAMES)}")
    module = importlib.import_module(f"tasks.{name}")
    return module.TASK
