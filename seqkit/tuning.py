"""Hyperparameter search over a task's config with keras-tuner.

*What* is searched is a mapping from config fields to hyperparameter specs
(the search space); *how* values are proposed is a keras-tuner Oracle
(Hyperband, Bayesian optimisation or random search); *who runs a trial* is a
keras-tuner Tuner whose HyperModel turns the hyperparameter values into a
config (``dataclasses.replace(cfg, field=value, ...)``) and calls the task's
own ``build_model`` and ``fit``: the model a trial trains is exactly the one
``python -m seqkit train`` builds from the same config.

Search-space format (a mapping; the same in ``Task.SEARCH_SPACE``,
``Task.search_space(cfg)`` and a ``--space`` YAML file)::

    cell: {type: choice, values: [lstm, gru]}          # any YAML values, also null or lists
    learning_rate: {type: float, min: 1.0e-4, max: 3.0e-3, sampling: log}
    units: {type: int, min: 32, max: 256, step: 32}    # width of each layer
    num_layers: {type: int, min: 1, max: 3}            # pseudo-field: len(units)
    bidirectional: {type: boolean}
    regularizer_rate: {type: float, min: 0.05, max: 0.5, when: {regularizer: [zoneout, weight_drop]}}
    dropout: null                                      # remove a field from the space
    fixed: {batch_size: 32}                            # set these fields, do not search them

The state of a search lives in ``OUT/PROJECT`` (keras-tuner's JSON files), so
rerunning the same command after a kill resumes it. See docs/tuning.md.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import math
import os
import random
import time
import typing
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from seqkit import io
from seqkit.config import _coerce, config_to_dict, from_dict, load_yaml
from seqkit.errors import SeqkitError
from seqkit.task import DataArgs, Task

TUNERS = ("hyperband", "bayesian", "random")
SPEC_TYPES = ("choice", "int", "float", "boolean")
NUM_LAYERS = "num_layers"  # pseudo-field: the number of entries of ``units``
_SPEC_KEYS = {
    "choice": {"type", "values", "when"},
    "int": {"type", "min", "max", "step", "sampling", "when"},
    "float": {"type", "min", "max", "step", "sampling", "when"},
    "boolean": {"type", "when"},
}
# Fields that make no sense to search for some tasks, whatever their default space says.
_TASK_EXCLUDES = {"charlm": ("bidirectional",)}  # a language model must not see the future


# --------------------------------------------------------------------------------------------
# search space
# --------------------------------------------------------------------------------------------
def default_space(cfg) -> dict[str, dict[str, Any]]:
    """The common search space of :class:`seqkit.config.RecurrentConfig` fields, centred on ``cfg``.

    Widths, batch size and learning rate are searched around the task's
    defaults (which already reach its quality target), so the same space suits
    a tiny fixture model and a full-size one. ``recurrent_dropout`` is left out
    because it disables the fused fast recurrent layers.
    """
    from seqkit.layers import available_regularizers

    units = [int(u) for u in getattr(cfg, "units", [64])] or [64]
    u = units[0]
    bs = int(getattr(cfg, "batch_size", 64))
    lr = float(getattr(cfg, "learning_rate", 1e-3))
    space: dict[str, dict[str, Any]] = {
        "cell": {"type": "choice", "values": ["lstm", "gru"]},
        NUM_LAYERS: {"type": "int", "min": 1, "max": max(2, len(units))},
        "units": choice_around(u),
        "bidirectional": {"type": "boolean"},
        "dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        "inter_dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        "output_dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        "learning_rate": {"type": "float", "min": lr / 4, "max": lr * 4, "sampling": "log"},
        "batch_size": choice_around(bs),
        "clipnorm": choice_with(getattr(cfg, "clipnorm", 1.0), [0.5, 1.0, 5.0]),
    }
    # Only regularisers every searched cell supports: the others would fail whole trials.
    from seqkit.layers.regularizers import DEMONSTRATION_ONLY  # they exist to show memory loss, not to train

    regs = [
        r
        for r in available_regularizers()
        if r not in DEMONSTRATION_ONLY and all(_supports(cell, r) for cell in space["cell"]["values"])
    ]
    if regs:
        space["regularizer"] = {"type": "choice", "values": [None, *regs]}
        space["regularizer_rate"] = {
            "type": "float",
            "min": 0.05,
            "max": 0.5,
            "step": 0.05,
            "when": {"regularizer": list(regs)},
        }
    fields = {f.name for f in dataclasses.fields(cfg)}
    return {k: v for k, v in space.items() if k in fields or (k == NUM_LAYERS and "units" in fields)}


def choice_around(value: int, minimum: int = 1) -> dict[str, Any]:
    """A choice of half, the same and double ``value``: a width searched around a tuned default."""
    value = int(value)
    return {"type": "choice", "values": sorted({max(minimum, value // 2), value, 2 * value})}


def choice_with(value: Any, values: list) -> dict[str, Any]:
    """A choice of ``values`` that also holds ``value`` (the base config's), so it can be the default."""
    return {"type": "choice", "values": list(values) if value in values else [value, *values]}


def _supports(cell: str, regularizer: str) -> bool:
    from seqkit.layers import build_rnn_layer

    try:
        build_rnn_layer(cell, 2, regularizer=regularizer, regularizer_rate=0.1)
    except (ValueError, TypeError, NotImplementedError):
        return False
    return True


def task_space(task: Task, cfg) -> dict[str, Any]:
    """What the task adds to or removes from the default space (``search_space(cfg)`` or ``SEARCH_SPACE``)."""
    fn = getattr(task, "search_space", None)
    if callable(fn):
        return dict(fn(cfg) or {})
    return dict(getattr(task, "SEARCH_SPACE", None) or {})


def resolve_space(task: Task, cfg, space_file: str | os.PathLike | None = None) -> tuple[dict[str, Any], Any]:
    """Default space, then the task's, then ``space_file``; returns ``(space, cfg with `fixed` applied)``.

    A spec of ``null`` removes the field from the space; ``fixed: {field: value}``
    in the file sets fields on the config and removes them from the space;
    ``replace: true`` in the file discards the default and task spaces.
    """
    space = default_space(cfg)
    for name in _TASK_EXCLUDES.get(task.name, ()):
        space.pop(name, None)
    _merge(space, task_space(task, cfg), source=f"task '{task.name}' search space", cfg=cfg)
    if space_file is not None:
        data = load_yaml(space_file)
        fixed = data.pop("fixed", None) or {}
        if data.pop("replace", False):
            space = {}
        if not isinstance(fixed, dict):
            raise SeqkitError(f"{space_file}: field 'fixed': expected a mapping of config fields")
        _merge(space, data, source=str(space_file), cfg=cfg)
        if fixed:
            cfg = from_dict(type(cfg), fixed, source=f"{space_file}: fixed", base=cfg)
            for name in fixed:
                space.pop(name, None)
                if name == "units":
                    space.pop(NUM_LAYERS, None)
    src = f"{space_file}: search space" if space_file is not None else "search space"
    if NUM_LAYERS in space and "units" in space and _whole_units(space["units"]):
        raise SeqkitError(f"{src}: 'num_layers' cannot be searched with 'units' given as whole stacks")
    for name, spec in space.items():
        for parent in spec.get("when") or {}:
            if parent not in space:
                raise SeqkitError(f"{src}: field '{name}': 'when' names '{parent}', which is not searched")
    return space, cfg


def _merge(space: dict, extra: dict, source: str, cfg) -> None:
    for name, spec in extra.items():
        if spec is None:
            space.pop(name, None)
            continue
        space[name] = check_spec(name, spec, cfg, source)


def check_spec(name: str, spec: Any, cfg, source: str = "search space") -> dict[str, Any]:
    """Validate one spec against the config field it searches; returns a normalised copy."""
    hints = typing.get_type_hints(type(cfg))
    where = f"{source}: field '{name}'"
    if name != NUM_LAYERS and name not in hints:
        raise SeqkitError(f"{where}: not a config field of {type(cfg).__name__}")
    if not isinstance(spec, dict) or spec.get("type") not in SPEC_TYPES:
        raise SeqkitError(f"{where}: expected a mapping with type: {' | '.join(SPEC_TYPES)}")
    spec = dict(spec)
    kind = spec["type"]
    unknown = set(spec) - _SPEC_KEYS[kind]
    if unknown:
        raise SeqkitError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind}")
    when = spec.get("when")
    if when is not None and (not isinstance(when, dict) or not all(isinstance(v, list) for v in when.values())):
        raise SeqkitError(f"{where}: 'when' must map a searched field to a list of its values")
    # The type a single value must have: units are searched per layer.
    tp = int if name in (NUM_LAYERS, "units") else hints[name]
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SeqkitError(f"{where}: 'values' must be a non-empty list")
        if name == "units" and all(isinstance(v, list) for v in values):
            tp = hints["units"]  # whole stacks, e.g. [[64], [128, 128]]
        spec["values"] = [_coerce(v, tp, name, source) for v in values]
    elif kind in ("int", "float"):
        for key in ("min", "max"):
            if not isinstance(spec.get(key), (int, float)) or isinstance(spec.get(key), bool):
                raise SeqkitError(f"{where}: '{key}' must be a number")
        if spec["min"] > spec["max"]:
            raise SeqkitError(f"{where}: min {spec['min']} > max {spec['max']}")
        sampling = spec.get("sampling", "linear")
        if sampling not in ("linear", "log", "reverse_log"):
            raise SeqkitError(f"{where}: sampling must be linear, log or reverse_log")
        if sampling != "linear" and spec["min"] <= 0:
            raise SeqkitError(f"{where}: {sampling} sampling needs min > 0")
        if kind == "int":
            _coerce(int(spec["min"]), tp, name, source)
        else:
            _coerce(float(spec["min"]), tp, name, source)
    else:
        _coerce(True, tp, name, source)
    return spec


def _whole_units(spec: dict[str, Any]) -> bool:
    """``units: {type: choice, values: [[64], [128, 128]]}`` searches whole stacks, not per-layer widths."""
    return spec["type"] == "choice" and isinstance(spec["values"][0], list)


def _label(value: Any) -> str:
    return json.dumps(value)


def _plain_choice(values: list) -> bool:
    """Whether keras-tuner can hold ``values`` directly (one scalar type, no None)."""
    types = {type(v) for v in values}
    return len(types) == 1 and types.pop() in (int, float, str, bool)


def declare(hp, space: dict[str, dict[str, Any]], cfg) -> dict[str, Any]:
    """Declare (or read) every hyperparameter of ``space`` on ``hp``; return the config overrides.

    Inactive conditional hyperparameters leave their field at ``cfg``'s value.
    """
    overrides: dict[str, Any] = {}
    values: dict[str, Any] = {}  # name -> decoded value (for `when`)
    labels: dict[str, dict[Any, Any]] = {}  # name -> decoded value -> value keras-tuner holds

    def one(name: str, spec: dict[str, Any], default: Any) -> Any:
        kind = spec["type"]
        if kind == "choice":
            raw = spec["values"]
            if _plain_choice(raw):
                enc = {v: v for v in raw}
            else:
                enc = {_label(v): v for v in raw}
            labels[name] = {_label(v): k for k, v in enc.items()}
            keys = list(enc)
            d = labels[name].get(_label(default))
            got = hp.Choice(name, keys, default=d if d is not None else keys[0])
            return None if got is None else enc[got]
        if kind == "boolean":
            labels[name] = {_label(True): True, _label(False): False}
            return hp.Boolean(name, default=bool(default) if isinstance(default, bool) else False)
        lo, hi = spec["min"], spec["max"]
        kw = {"sampling": spec.get("sampling", "linear")}
        if spec.get("step") is not None:
            kw["step"] = spec["step"]
        ok = isinstance(default, (int, float)) and not isinstance(default, bool) and lo <= default <= hi
        if kind == "int":
            return hp.Int(name, int(lo), int(hi), default=int(default) if ok else int(lo), **kw)
        return hp.Float(name, float(lo), float(hi), default=float(default) if ok else float(lo), **kw)

    def scoped(name: str, spec: dict[str, Any], default: Any):
        when = spec.get("when") or {}
        if not when:
            return one(name, spec, default)
        # keras-tuner conditions take one parent; nest the scopes for several.
        import contextlib

        with contextlib.ExitStack() as stack:
            for parent, allowed in when.items():
                enc = labels.get(parent)
                parent_values = [enc[_label(v)] for v in allowed if enc and _label(v) in enc] if enc else allowed
                stack.enter_context(hp.conditional_scope(parent, parent_values))
            return one(name, spec, default)

    # Parents first, so `when` can refer to them.
    order = sorted(space, key=lambda n: (bool(space[n].get("when")), n != NUM_LAYERS))
    base_units = list(getattr(cfg, "units", []) or [])
    units_spec = space.get("units")
    whole_units = units_spec is not None and _whole_units(units_spec)
    for name in order:
        spec = space[name]
        if name == "units" and not whole_units:
            continue  # per-layer widths, below
        v = scoped(name, spec, len(base_units) if name == NUM_LAYERS else getattr(cfg, name))
        if not hp.is_active(name):
            continue  # a conditional field whose condition does not hold keeps its config value
        values[name] = v
        if name != NUM_LAYERS:
            overrides[name] = v
    if NUM_LAYERS in space or (units_spec is not None and not whole_units):
        n = int(values.get(NUM_LAYERS) or len(base_units))
        top = int(space[NUM_LAYERS]["max"]) if NUM_LAYERS in space else n
        widths = []
        for i in range(top):
            default = base_units[min(i, len(base_units) - 1)] if base_units else 64
            if units_spec is None:
                w = default
            elif NUM_LAYERS in space:
                with hp.conditional_scope(NUM_LAYERS, list(range(i + 1, top + 1))):
                    w = one(f"units_{i}", units_spec, default)
            else:
                w = one(f"units_{i}", units_spec, default)
            if i < n:
                widths.append(w)
        overrides["units"] = widths
    return overrides


def config_from_values(cfg, space: dict[str, Any], hp) -> Any:
    """The config a trial trains: ``cfg`` with the fields ``hp`` sets (checked like a YAML file)."""
    overrides = declare(copy.deepcopy(hp), space, cfg)
    return from_dict(type(cfg), overrides, source="search space", base=cfg)


# --------------------------------------------------------------------------------------------
# data, prepared once per distinct value of the fields prepare depends on
# --------------------------------------------------------------------------------------------
class TrialData:
    """The prepared data of each trial, left in the random state ``seqkit train`` would be in.

    ``seqkit train`` runs ``set_seed`` -> ``prepare`` -> ``build_model``; a trial
    does the same, so the best trial's config retrains to the same numbers.
    When ``prepare`` takes more than ``reprepare_seconds`` it runs once per
    distinct value of the fields in ``task.PREPARE_FIELDS`` (default
    ``("batch_size",)``; ``task.rebatch(prepared, batch_size)`` is used instead
    when the task defines it), and each trial restores the Python/NumPy random
    state saved right after it. Reused ``tf.data`` pipelines continue their
    shuffling, so such trials retrain equal only within noise.
    """

    def __init__(self, task: Task, data: DataArgs, reprepare_seconds: float = 5.0):
        self.task, self.data = task, data
        self.reprepare_seconds = reprepare_seconds
        self.cheap: bool | None = None
        self.entries: dict[tuple, tuple[Any, tuple]] = {}
        self.current: tuple[tuple, Any] | None = None

    def key(self, cfg) -> tuple:
        fields = getattr(self.task, "PREPARE_FIELDS", ("batch_size",))
        return tuple(json.dumps(getattr(cfg, f, None), default=str) for f in fields)

    def _prepare(self, cfg):
        prepared = self.task.prepare(cfg, self.data, for_tuning=True)
        if prepared.test is not None:
            # The task broke its contract; the search still never sees the test set.
            warnings.warn(
                f"task '{self.task.name}': prepare(for_tuning=True) loaded a test set; it is dropped", stacklevel=2
            )
            prepared = dataclasses.replace(prepared, test=None)
        return prepared

    def for_trial(self, cfg):
        """Seed, then the trial's prepared data; call right before ``build_model``."""
        from seqkit.seed import seed_from_config

        k = self.key(cfg)
        seed_from_config(cfg)
        if self.cheap is not False:
            t0 = time.perf_counter()
            prepared = self._prepare(cfg)
            if self.cheap is None:
                self.cheap = time.perf_counter() - t0 <= self.reprepare_seconds
                if not self.cheap:
                    self.entries[k] = (prepared, (random.getstate(), np.random.get_state()))
        elif k in self.entries:
            prepared, (py_state, np_state) = self.entries[k]
            random.setstate(py_state)
            np.random.set_state(np_state)
        else:
            rebatch = getattr(self.task, "rebatch", None)
            if rebatch is not None and self.entries:
                base = next(iter(self.entries.values()))[0]
                prepared = rebatch(base, cfg.batch_size)
            else:
                prepared = self._prepare(cfg)
            self.entries[k] = (prepared, (random.getstate(), np.random.get_state()))
        self.current = (k, prepared)
        return prepared

    def for_fit(self, cfg):
        """The data the trial's model was just built with."""
        if self.current is None or self.current[0] != self.key(cfg):
            return self.for_trial(cfg)
        return self.current[1]


# --------------------------------------------------------------------------------------------
# keras-tuner pieces
# --------------------------------------------------------------------------------------------
def _kt():
    import keras_tuner

    _atomic_keras_tuner_json()
    return keras_tuner


def _atomic_keras_tuner_json() -> None:
    """Make keras-tuner write its state files atomically.

    keras-tuner writes ``oracle.json``/``trial.json`` in place; a SIGKILL in the
    middle would leave a truncated file and the search could not resume.
    """
    from keras_tuner.src import utils as kt_utils

    if getattr(kt_utils.save_json, "_seqkit_atomic", False):
        return
    original = kt_utils.save_json

    def save_json(path, obj):
        if "://" in str(path):  # remote file systems: keep keras-tuner's own writer
            return original(path, obj)
        text = json.dumps(obj)
        io.write_text(path, text)
        return text

    save_json._seqkit_atomic = True
    kt_utils.save_json = save_json


def make_hypermodel(task: Task, cfg, space: dict[str, Any], cache: TrialData):
    kt = _kt()
    import keras

    from seqkit.training import NanGuard, TimeBudget, around_averaged_weights

    class ConfigHyperModel(kt.HyperModel):
        """``build(hp)`` = ``task.build_model(replace(cfg, **hp))``; ``fit`` = ``task.fit``."""

        def build(self, hp):
            # Declared on hp itself: the first build registers the space with the oracle.
            trial_cfg = from_dict(type(cfg), declare(hp, space, cfg), source="search space", base=cfg)
            prepared = cache.for_trial(trial_cfg)
            return task.build_model(trial_cfg, prepared.info)

        def fit(self, hp, model, *args, callbacks=None, epochs=1, initial_epoch=0, **kwargs):
            trial_cfg = config_from_values(cfg, space, hp)
            prepared = cache.for_fit(trial_cfg)
            guard = NanGuard()
            cbs = [guard, *task.callbacks(trial_cfg, prepared)]
            monitor = task.monitor or task.objective
            if getattr(trial_cfg, "early_stopping", 0):
                cbs.append(
                    keras.callbacks.EarlyStopping(
                        monitor=monitor, mode=task.direction, patience=trial_cfg.early_stopping
                    )
                )
            # A Hyperband continuation resumes its parent's weights: it also inherits the
            # training time the parent spent, so no trial trains longer than a fresh run of
            # its config may (``train --config best.yaml`` then reproduces the best trial).
            carried = float(getattr(self, "_seqkit_carried", 0.0))
            if getattr(trial_cfg, "max_train_minutes", None):
                cbs.append(TimeBudget(trial_cfg.max_train_minutes, elapsed_seconds=carried))
            # The tuner's own callbacks (objective tracking, best-epoch checkpoint) read the
            # logs last, after task callbacks such as validation entity F1 have written them,
            # and see the moving-average weights those judged, if the optimizer keeps them.
            cbs += around_averaged_weights(list(callbacks or []))
            t0 = time.perf_counter()
            history = task.fit(model, trial_cfg, prepared, cbs, epochs=epochs, initial_epoch=initial_epoch)
            self._seqkit_spent = carried + time.perf_counter() - t0
            return _sanitise(history, task)

    return ConfigHyperModel()


def _sanitise(history, task: Task):
    """Fail trials that never produced a finite objective; make NaN epochs the worst, not the best."""
    kt = _kt()
    values = (getattr(history, "history", None) or {}).get(task.objective)
    if values is None:
        raise kt.errors.FailedTrialError(
            f"the fit logs have no '{task.objective}' (the task's objective); got {sorted(history.history)}"
        )
    if not any(math.isfinite(float(v)) for v in values):
        raise kt.errors.FailedTrialError(f"'{task.objective}' was never finite (training diverged)")
    worst = math.inf if task.direction == "min" else -math.inf
    history.history[task.objective] = [float(v) if math.isfinite(float(v)) else worst for v in values]
    return history


def _tuner_mixin(kt, out: Path, clear_session: bool):
    class SeqkitTunerMixin:
        """Per-trial bookkeeping, an optional session clear, and a chief that exits promptly."""

        def _try_build(self, hp):
            if clear_session:
                return super()._try_build(hp)
            model = self._build_hypermodel(hp)  # benchmark only: measure what clearing saves
            return model

        def _parent_training_seconds(self, trial) -> float:
            """Training seconds of the trial this one continues (Hyperband), including its own parent's."""
            parent = trial.hyperparameters.values.get("tuner/trial_id")
            path = Path(self.project_dir) / f"trial_{parent}" / "seqkit.json"
            if not parent or not path.exists():
                return 0.0
            return float(io.read_json(path).get("training_seconds") or 0.0)

        def run_trial(self, trial, *args, **kwargs):
            self.hypermodel._seqkit_carried = self._parent_training_seconds(trial)
            self.hypermodel._seqkit_spent = None
            t0 = time.perf_counter()
            try:
                return super().run_trial(trial, *args, **kwargs)
            finally:
                self._seqkit_seconds = time.perf_counter() - t0

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            seconds = round(getattr(self, "_seqkit_seconds", 0.0), 3)
            tuner_id = self.tuner_id
            extra = {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "seconds": seconds,
                "tuner_id": tuner_id,
                "training_seconds": getattr(self.hypermodel, "_seqkit_spent", None),
            }
            io.write_json(Path(self.project_dir) / f"trial_{trial.trial_id}" / "seqkit.json", extra)
            log = out / "tuners" / f"{tuner_id}.json"
            done = io.read_json(log) if log.exists() else []
            io.write_json(log, [*done, extra])
            writer = getattr(self, "_seqkit_on_trial_end", None)
            if writer is not None:
                writer()
            gc.collect()

        def pre_create_trial(self):
            super().pre_create_trial()
            deadline = getattr(self, "_seqkit_deadline", None)  # set for single-process searches only
            if deadline is not None and time.monotonic() > deadline:
                # Out of time: no new trial (a killed trial waiting for retry still runs); at least one runs.
                n = max(1, len(self.oracle.trials))
                self.oracle.max_trials = min(self.oracle.max_trials or n, n)

        def search(self, *args, **kwargs):
            from keras_tuner.src.distribute import utils as dist_utils

            if dist_utils.is_chief_oracle():
                self.save()
                _serve_chief(self.oracle)
                return
            return super().search(*args, **kwargs)

    return SeqkitTunerMixin


def _serve_chief(oracle, poll: float = 0.2) -> None:
    """keras-tuner's ``oracle_chief.start_server``, but polling every ``poll`` s instead of every 20 s."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief

    ip_addr, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(f"{ip_addr}:{port}"):
        raise SeqkitError(f"tune chief: cannot listen on {ip_addr}:{port} (port in use?)")
    server.start()
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=2)


def make_tuner(
    kind: str,
    hypermodel,
    task: Task,
    cfg,
    out: Path,
    project: str,
    trials: int,
    max_epochs: int,
    overwrite: bool,
    clear_session: bool = True,
):
    """The keras-tuner Tuner of ``kind`` with seqkit's bookkeeping, in ``out/project``."""
    kt = _kt()
    objective = kt.Objective(task.objective, direction=task.direction)
    base = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization, "random": kt.RandomSearch}[kind]
    cls = type(f"Seqkit{base.__name__}", (_tuner_mixin(kt, out, clear_session), base), {})
    common = dict(
        objective=objective,
        seed=cfg.seed,
        directory=str(out),
        project_name=project,
        overwrite=overwrite,
        # Some corners of a space fail (e.g. a regulariser a cell does not support); keep searching.
        max_consecutive_failed_trials=5,
    )
    if kind == "hyperband":
        # Brackets repeat until --trials or --minutes ends the search.
        tuner = cls(hypermodel, max_epochs=max_epochs, factor=3, hyperband_iterations=10**6, **common)
    elif kind == "bayesian":
        tuner = cls(hypermodel, max_trials=trials, num_initial_points=max(2, trials // 3), **common)
    else:
        tuner = cls(hypermodel, max_trials=trials, **common)
    oracle = getattr(tuner.oracle, "_oracle", tuner.oracle)
    # Hyperband stops after its brackets, --trials caps it further; a resumed search may raise the budget.
    oracle.max_trials = trials
    _base_config_first(kt, oracle)
    return tuner


def _base_config_first(kt, oracle) -> None:
    """Make the first trial of a search the base config itself (every hyperparameter at its default).

    The defaults of the declared hyperparameters are the base config's values, so the
    search's best is never worse than the config it started from, at the same training
    budget. After that trial (or when resuming a search that has run it) sampling is the
    oracle's own.
    """
    sample = oracle._random_values

    def base_values():
        hps = kt.HyperParameters()
        for hp in oracle.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.default
        if oracle._duplicate(hps.values):
            return sample()
        return hps.values

    oracle._random_values = base_values


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def baseline_objective(task: Task, cfg, data: DataArgs, epochs: int | None = None) -> float | None:
    """The validation objective of ``cfg`` itself, trained the way a trial is (for "tuned vs default")."""
    import keras

    from seqkit.training import BestWeights, NanGuard, TimeBudget

    cache = TrialData(task, data)
    keras.backend.clear_session()
    prepared = cache.for_trial(cfg)
    model = task.build_model(cfg, prepared.info)
    best = BestWeights(task.objective, task.direction)
    cbs = [NanGuard(), *task.callbacks(cfg, prepared)]
    if getattr(cfg, "early_stopping", 0):
        cbs.append(
            keras.callbacks.EarlyStopping(monitor=task.objective, mode=task.direction, patience=cfg.early_stopping)
        )
    if getattr(cfg, "max_train_minutes", None):
        cbs.append(TimeBudget(cfg.max_train_minutes))
    task.fit(model, cfg, prepared, [*cbs, best], epochs=int(epochs or cfg.epochs))
    return best.best


def trial_rows(tuner, cfg, space: dict[str, Any], max_epochs: int) -> list[dict[str, Any]]:
    """One row per trial: id, status, searched fields (as config values), epochs, objective, seconds."""
    rows = []
    for trial_id in sorted(tuner.oracle.trials):
        trial = tuner.oracle.trials[trial_id]
        row: dict[str, Any] = {"trial_id": trial_id, "status": trial.status}
        try:
            overrides = declare(copy.deepcopy(trial.hyperparameters), space, cfg)
        except Exception:  # a trial from an older space: show its raw values
            overrides = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        for k, v in overrides.items():
            row[k] = json.dumps(v) if isinstance(v, list) else v
        hpv = trial.hyperparameters.values
        row["epochs"] = hpv.get("tuner/epochs", max_epochs)
        row["objective"] = trial.score
        row["best_epoch"] = None if trial.best_step is None or trial.score is None else int(trial.best_step) + 1
        extra = Path(tuner.project_dir) / f"trial_{trial_id}" / "seqkit.json"
        row["seconds"] = io.read_json(extra).get("seconds") if extra.exists() else None
        rows.append(row)
    return rows


def _md(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.5g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(out: Path, rows: list[dict[str, Any]], objective: str) -> None:
    import pandas as pd

    columns = ["trial_id", "status"]
    for r in rows:
        columns += [k for k in r if k not in columns and k not in ("epochs", "objective", "best_epoch", "seconds")]
    columns += ["epochs", "best_epoch", "seconds", "objective"]
    df = pd.DataFrame(rows, columns=columns).rename(columns={"objective": objective})
    with io.atomic_path(out / "trials.csv") as tmp:
        df.to_csv(tmp, index=False)
    named = [{**r, objective: r.get("objective")} for r in rows]
    io.write_text(out / "trials.md", _md(named, [c if c != "objective" else objective for c in columns]))


def plot_trials(rows: list[dict[str, Any]], path: Path, objective: str, direction: str) -> Path | None:
    from seqkit.plots import _plt, save_figure

    done = [(i, r["objective"]) for i, r in enumerate(rows) if r.get("objective") is not None]
    if not done:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    xs, ys = zip(*done)
    ax.plot(xs, ys, "o", label="trial")
    best, run = [], None
    for y in ys:
        run = y if run is None else (min(run, y) if direction == "min" else max(run, y))
        best.append(run)
    ax.step(xs, best, where="post", label="best so far")
    ax.set_xticks(range(len(rows)), [r["trial_id"] for r in rows], rotation=90 if len(rows) > 12 else 0)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective} ({direction})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def best_config(tuner, cfg, space: dict[str, Any], max_epochs: int):
    """The best trial and its full config (``epochs`` = the epochs it trained)."""
    best = tuner.oracle.get_best_trials(1)
    if not best:
        return None, None
    trial = best[0]
    trial_cfg = config_from_values(cfg, space, trial.hyperparameters)
    epochs = int(trial.hyperparameters.values.get("tuner/epochs", max_epochs))
    return trial, dataclasses.replace(trial_cfg, epochs=epochs)


def _save_model(model, path: Path) -> Path:
    """Save ``model`` to ``path`` atomically (the temporary name keeps the ``.keras`` suffix Keras requires)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_best_yaml(path: Path, task: Task, cfg) -> Path:
    """``best.yaml`` that ``seqkit train TASK --config best.yaml`` accepts unchanged."""
    import yaml

    body = yaml.safe_dump({"task": task.name, **config_to_dict(cfg)}, sort_keys=False)
    return io.write_text(path, f"# best configuration found by `seqkit tune {task.name}`\n{body}")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def _check_project(path: Path, state: dict[str, Any], overwrite: bool) -> None:
    """Refuse to resume a search with another task, tuner, config or space (keras-tuner would mix them)."""
    if path.exists() and not overwrite:
        previous = io.read_json(path)
        changed = sorted(
            k for k in state if k != "trials" and previous.get(k) != json.loads(json.dumps(state[k], default=str))
        )
        if changed:
            raise SeqkitError(
                f"{path}: this search was started with a different {', '.join(changed)}; rerun the same command "
                "to resume it, or pass --overwrite or another --project"
            )
    io.write_json(path, state)


def _plain_score(score) -> float | None:
    """A trial score as a Python float: keras-tuner keeps the metric's NumPy scalar (float32 is not JSON)."""
    return None if score is None else float(score)


def tune(
    task: Task,
    cfg,
    data: DataArgs,
    out: str | os.PathLike,
    tuner: str = "hyperband",
    trials: int = 10,
    max_epochs: int | None = None,
    space_file: str | os.PathLike | None = None,
    project: str = "search",
    overwrite: bool = False,
    minutes: float | None = None,
    clear_session: bool = True,
) -> dict[str, Any]:
    """Search ``task``'s config space; write the trial table, ``best.yaml`` and ``best_model.keras`` into ``out``.

    Rerunning with the same arguments resumes a killed search. Under
    keras-tuner's distributed environment variables (``KERASTUNER_TUNER_ID``,
    ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) the chief serves the
    oracle and writes the results; workers only run trials. With ``minutes``
    no trial starts after that much search time (single-process searches).
    """
    if tuner not in TUNERS:
        raise SeqkitError(f"--tuner must be one of {', '.join(TUNERS)}, got {tuner!r}")
    if trials < 1:
        raise SeqkitError(f"--trials must be at least 1, got {trials}")
    max_epochs = int(max_epochs or cfg.epochs)
    if max_epochs < 1:
        raise SeqkitError(f"--max-epochs must be at least 1, got {max_epochs}")
    out = Path(out)
    from keras_tuner.src.distribute import utils as dist_utils

    distributed = dist_utils.has_chief_oracle()
    chief = dist_utils.is_chief_oracle()
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    if distributed and not chief:
        overwrite = False  # only the chief may clear the shared search directory
    space, cfg = resolve_space(task, cfg, space_file)
    if not space:
        raise SeqkitError("the search space is empty (every field was removed or fixed)")

    if overwrite:
        import shutil

        for stale in ("tuners", "trials.csv", "trials.md", "best.yaml", "best_model.keras", "objective.png"):
            p = out / stale
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    state = {
        "task": task.name,
        "tuner": tuner,
        "trials": trials,
        "max_epochs": max_epochs,
        "config": config_to_dict(cfg),
        "space": space,
    }
    if not distributed or chief:
        if overwrite and (out / project).exists():
            import shutil

            shutil.rmtree(out / project)
        _check_project(out / project / "seqkit_search.json", state, overwrite=False)

    cache = TrialData(task, data)
    hypermodel = make_hypermodel(task, cfg, space, cache)
    t0 = time.perf_counter()
    kt_tuner = make_tuner(
        tuner, hypermodel, task, cfg, out, project, trials, max_epochs, overwrite=False, clear_session=clear_session
    )

    def write_results(final: bool) -> dict[str, Any]:
        rows = trial_rows(kt_tuner, cfg, space, max_epochs)
        write_table(out, rows, task.objective)
        plot_trials(rows, out / "objective.png", task.objective, task.direction)
        summary: dict[str, Any] = {
            "task": task.name,
            "tuner": tuner,
            "objective": task.objective,
            "direction": task.direction,
            "trials": len(rows),
            "completed": sum(r["status"] == "COMPLETED" for r in rows),
            "table": str(out / "trials.csv"),
        }
        best_trial, best_cfg = best_config(kt_tuner, cfg, space, max_epochs)
        if best_trial is not None:
            write_best_yaml(out / "best.yaml", task, best_cfg)
            summary.update(
                best_trial=best_trial.trial_id,
                best_objective=_plain_score(best_trial.score),
                best_config=str(out / "best.yaml"),
            )
            if final:
                try:
                    model = kt_tuner.load_model(best_trial)
                except (OSError, FileNotFoundError, ValueError) as e:
                    # Workers on other machines keep their checkpoints; the chief may not see them.
                    summary["best_model_error"] = f"{type(e).__name__}: {e}"
                else:
                    _save_model(model, out / "best_model.keras")
                    summary["best_model"] = str(out / "best_model.keras")
        return summary

    if not distributed:
        kt_tuner._seqkit_on_trial_end = lambda: write_results(final=False)
        if minutes:
            kt_tuner._seqkit_deadline = time.monotonic() + 60.0 * minutes
    kt_tuner.search(epochs=max_epochs, verbose=2)
    if distributed and not chief:
        log = out / "tuners" / f"{tuner_id}.json"
        ran = [e["trial_id"] for e in io.read_json(log)] if log.exists() else []
        return {"task": task.name, "role": "worker", "tuner_id": tuner_id, "trials_run": ran}
    summary = write_results(final=True)
    if summary["completed"] == 0:
        raise SeqkitError(f"tune {task.name}: no trial finished; see the messages in {out / 'trials.md'}")
    summary["search_seconds"] = round(time.perf_counter() - t0, 3)
    summary["role"] = "chief" if chief else "single"
    io.write_json(out / "summary.json", summary)
    return summary
