"""The generic training run: config -> data -> model -> fit -> evaluate -> run directory.

Run directory contract (every ``train``): ``config.json`` (resolved config with
its task), ``metrics.json`` (always with ``train_seconds``), ``model.keras``,
``history.csv``, TensorBoard logs under ``logs/``, ``learning_curves.png``, and
whatever the task adds. Everything is written atomically; ``backup/`` holds the
end-of-epoch state a killed run resumes from (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import keras
import numpy as np

from seqkit import io
from seqkit.config import config_to_dict
from seqkit.errors import SeqkitError
from seqkit.plots import plot_history
from seqkit.seed import seed_from_config
from seqkit.task import DataArgs, Task

# Keras warns on every fit of a tf.data pipeline that its (default) shuffle=True is ignored:
# the pipelines shuffle themselves, and the CLI promises one line per error on stderr.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed", category=UserWarning)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number (e.g. a string log): nothing to guard


class NanGuard(keras.callbacks.Callback):
    """Stop training as soon as the loss is NaN or infinite, and remember where.

    ``last_good`` holds the weights from the start of the epoch that diverged (the
    end of the last finite epoch), so the run can save those instead of NaNs.
    """

    def __init__(self):
        super().__init__()
        self.where: str | None = None
        self.last_good: list | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.where is None:
            self.last_good = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss) and self.where is None:
            self.where = f"epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True


def _decayed_rate(base: float, decay: float, epoch: int, lr: float | None = None) -> float:
    return base / (1.0 + decay * epoch)


def inverse_time_decay(learning_rate: float, decay: float) -> keras.callbacks.LearningRateScheduler:
    """Epoch ``e`` trains at ``learning_rate / (1 + decay * e)`` (by epoch index, so a resumed run
    or a continued Hyperband trial picks up the rate where it left off)."""
    return keras.callbacks.LearningRateScheduler(partial(_decayed_rate, learning_rate, decay))


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that passes ``minutes`` of training time.

    ``elapsed_seconds`` is training time already spent before this process (a resumed run).
    """

    def __init__(self, minutes: float, elapsed_seconds: float = 0.0):
        super().__init__()
        self.seconds = minutes * 60.0
        self.elapsed_seconds = elapsed_seconds
        self.stopped_at: int | None = None

    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter() - self.elapsed_seconds

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self._t0 >= self.seconds:
            self.stopped_at = epoch
            self.model.stop_training = True


def ema_optimizer_options(ema_epochs: float | None, steps_per_epoch: int) -> dict[str, Any]:
    """Optimizer keywords for a moving average of the weights over about ``ema_epochs`` epochs (none when None).

    Keras' ``ema_momentum`` is per step, so a fixed momentum averages over a fixed number of steps:
    right for one data set, far too long on a small one (where the average still holds the initial
    weights when training ends) and too short on a large one. The horizon ``1 / (1 - momentum)``
    is set to ``ema_epochs`` epochs of this data instead.
    """
    if not ema_epochs:
        return {}
    horizon = max(float(ema_epochs) * max(int(steps_per_epoch), 1), 2.0)
    return {"use_ema": True, "ema_momentum": 1.0 - 1.0 / horizon}


def _moving_averages(model) -> list[tuple[Any, Any]]:
    """(trainable variable, its moving average) when the optimizer keeps averages (``use_ema=True``)."""
    opt = getattr(model, "optimizer", None)
    if opt is None or not getattr(opt, "use_ema", False) or not getattr(opt, "built", False):
        return []
    return list(zip(opt._trainable_variables, opt._model_variables_moving_average))


def evaluation_weights(model) -> list[np.ndarray]:
    """The weights validation judges: the optimizer's moving averages where it keeps them, else the weights."""
    averages = {id(v): a for v, a in _moving_averages(model)}
    return [keras.ops.convert_to_numpy(averages.get(id(v), v)) for v in model.weights]


@contextlib.contextmanager
def averaged_weights(model):
    """Run the body with the moving-average weights in the model, then put the trained weights back.

    A no-op without ``use_ema``. Unlike ``keras.callbacks.SwapEMAWeights`` the model never
    holds the averages outside the body, so an end-of-epoch checkpoint stores the trained
    weights and the optimizer stores the averages, and a resumed run continues exactly.
    """
    pairs = _moving_averages(model)
    trained = [keras.ops.convert_to_numpy(v) for v, _ in pairs]
    try:
        for v, a in pairs:
            v.assign(a)
        yield
    finally:
        for (v, _), w in zip(pairs, trained):
            v.assign(w)


def around_averaged_weights(callbacks: list) -> list:
    """``callbacks`` framed so that their ``on_epoch_end`` runs with the moving averages in the model.

    Keras runs a hook over the callbacks in list order, so a callback before them swaps the
    averages in at the end of each epoch and one after them puts the trained weights back. A
    checkpoint among them (keras-tuner's best-epoch one) then saves the weights the objective
    judged. A no-op without ``use_ema``.
    """
    held: list = []

    class SwapIn(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            body = averaged_weights(self.model)
            body.__enter__()
            held.append(body)

    class SwapBack(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            while held:
                held.pop().__exit__(None, None, None)

    return [SwapIn(), *callbacks, SwapBack()]


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the best epoch by ``monitor`` in memory and restore them at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)`` it never stops early by itself
    and it ignores epochs whose monitored value or loss is not finite. With an optimizer
    that keeps moving averages it keeps those (the weights validation judged). A
    :class:`Checkpoint` persists ``best``/``best_epoch``/``weights`` so they survive a resume.
    """

    def __init__(self, monitor: str, mode: str):
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None or not _finite(value) or not _finite(logs.get("loss", 0.0)):
            return
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.best_epoch = value, epoch
            self.weights = evaluation_weights(self.model)

    def restore(self) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv`` rewritten atomically after every epoch (one row per epoch, ``epoch`` 0-based).

    Unlike ``CSVLogger`` (which appends) the file never holds a half-written row, and
    after a resume it holds each epoch once: the rows come from the checkpoint.
    """

    def __init__(self, path: str | os.PathLike, rows: list[dict] | None = None):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict] = list(rows or [])

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        row.update({k: _plain(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        self.rows = [r for r in self.rows if r.get("epoch") != epoch] + [row]
        self.write()

    def write(self) -> None:
        keys = ["epoch"] + sorted({k for r in self.rows for k in r} - {"epoch"})
        lines = [",".join(keys)]
        for r in self.rows:
            lines.append(",".join("" if r.get(k) is None else str(_plain(r[k])) for k in keys))
        io.write_text(self.path, "\n".join(lines) + "\n")


def _seed_generators(model) -> list:
    """Keras ``SeedGenerator`` states (dropout masks): ``save_weights`` does not include them."""
    states = []
    for layer in model._flatten_layers():
        for gen in getattr(layer, "_seed_generators", []) or []:
            states.append(gen.state)
    return states


class Checkpoint(keras.callbacks.Callback):
    """End-of-epoch snapshot of everything a killed run needs to continue exactly.

    Each snapshot is a fresh folder ``directory/epoch-NNNN`` (weights with the
    optimizer state and its moving averages, dropout RNG states, NumPy/Python RNG
    states, best weights, history rows, early-stopping counters, whether training
    had stopped, training time) made visible by an atomic rewrite of
    ``directory/latest.json``; a kill at any instant leaves either the previous or
    the new snapshot, never a mix. Unlike Keras' ``BackupAndRestore`` (which records
    the batch but restarts the epoch from batch 0 on the partially trained
    weights) it only snapshots whole epochs, so a resumed run replays the
    interrupted epoch from the same state. The tasks' shuffles and input noise need
    no saving: they are drawn from :class:`seqkit.data.pipeline.EpochRandom`, a
    function of the seed and the epoch.

    Place it after every other callback so it snapshots what they have updated.
    """

    def __init__(self, directory: str | os.PathLike, best: BestWeights | None = None, history=None):
        super().__init__()
        self.directory = Path(directory)
        self.best, self.history = best, history
        self.watched: list = []
        self.restored: dict | None = None
        self.elapsed_seconds = 0.0
        self._best_saved: tuple | None = None

    # --- reading ----------------------------------------------------------------------
    @staticmethod
    def peek(directory: str | os.PathLike) -> dict | None:
        """The state of the latest snapshot in ``directory`` (with ``path``), or None."""
        directory = Path(directory)
        pointer = directory / "latest.json"
        if not pointer.exists():
            return None
        snap = directory / io.read_json(pointer)["snapshot"]
        state = io.read_json(snap / "state.json")
        state["path"] = str(snap)
        return state

    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter()
        state = self.peek(self.directory)
        if state is None:
            return
        snap, model = Path(state["path"]), self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(snap / "model.weights.h5")
        with np.load(snap / "rng.npz", allow_pickle=False) as rng:
            for i, var in enumerate(_seed_generators(model)):
                if f"seed_{i}" in rng:
                    var.assign(rng[f"seed_{i}"])
            np.random.set_state(("MT19937", rng["np_keys"], int(rng["np_pos"]), 0, 0.0))
        py = state["python_random"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        if self.best is not None and state.get("best_file"):
            with np.load(snap.parent / state["best_file"], allow_pickle=False) as f:
                self.best.weights = [f[f"w{i}"] for i in range(len(f.files))]
            self.best.best, self.best.best_epoch = state["best"], state["best_epoch"]
            self._best_saved = (state["best_epoch"], state["best_file"])
        if self.history is not None:
            self.history.rows = list(state["history"])
            self.history.write()
        for cb, saved in zip(self._early_stoppers(), state.get("early_stopping", [])):
            cb.wait, cb.best, cb.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
        self.elapsed_seconds = float(state.get("train_seconds", 0.0))
        model._initial_epoch = int(state["epoch"])
        if state.get("stopped"):
            # Early stopping or the time budget had ended training before the kill: train no further epoch.
            model._initial_epoch = max(model._initial_epoch, int(self.params.get("epochs") or 0))
        self.restored = state

    # --- writing ----------------------------------------------------------------------
    def _early_stoppers(self) -> list:
        return [cb for cb in self.watched if isinstance(cb, keras.callbacks.EarlyStopping)]

    def train_seconds(self) -> float:
        return self.elapsed_seconds + time.perf_counter() - self._t0

    def on_epoch_end(self, epoch, logs=None):
        if not _finite((logs or {}).get("loss", 0.0)):
            return  # never snapshot diverged weights: the previous snapshot stays the resume point
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.directory))
        model = self.model
        model.save_weights(tmp / "model.weights.h5")
        np_state = np.random.get_state()
        seeds = {f"seed_{i}": np.asarray(v) for i, v in enumerate(_seed_generators(model))}
        np.savez(tmp / "rng.npz", np_keys=np_state[1], np_pos=np.int64(np_state[2]), **seeds)
        best_file = None
        if self.best is not None and self.best.weights is not None:
            if self._best_saved is not None and self._best_saved[0] == self.best.best_epoch:
                best_file = self._best_saved[1]
            else:
                best_file = f"best-{self.best.best_epoch + 1:04d}.npz"
                with io.atomic_path(self.directory / best_file) as p:
                    with open(p, "wb") as f:
                        np.savez(f, **{f"w{i}": w for i, w in enumerate(self.best.weights)})
                self._best_saved = (self.best.best_epoch, best_file)
        py = random.getstate()
        state = {
            "epoch": epoch + 1,
            "history": self.history.rows if self.history is not None else [],
            "best": self.best.best if self.best is not None else None,
            "best_epoch": self.best.best_epoch if self.best is not None else None,
            "best_file": best_file,
            "early_stopping": [
                {"wait": cb.wait, "best": _plain(cb.best), "best_epoch": cb.best_epoch} for cb in self._early_stoppers()
            ],
            "train_seconds": self.train_seconds(),
            "python_random": [py[0], list(py[1]), py[2]],
            "stopped": bool(model.stop_training),
        }
        (tmp / "state.json").write_text(json.dumps(_plain(state)))
        target = self.directory / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        io.write_json(self.directory / "latest.json", {"snapshot": name, "epoch": epoch + 1})
        # Only now is the old snapshot unreachable; clean it (and any debris of a killed save). Other
        # folders are not ours (forecast keeps the snapshots of its other models in backup/models/).
        for p in self.directory.iterdir():
            if p.name in (name, "latest.json", best_file):
                continue
            if p.is_dir() and not p.name.startswith(("epoch-", ".tmp-")):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def replay_shuffle(dataset, epochs_done: int) -> None:
    """Advance a ``tf.data`` pipeline's reshuffle counter to where ``epochs_done`` epochs of ``fit`` left it.

    ``Dataset.shuffle`` draws a new order for every iterator created on the
    dataset. ``fit`` creates two iterators per epoch when the number of batches is
    known (one used, one spare made at the end of the epoch) and one per epoch
    otherwise, so creating the same number here makes the next epoch of a
    resumed run see the order the uninterrupted run would have seen. Python
    generators with their own RNG (``from_generator``) are not affected.
    """
    import tensorflow as tf

    if epochs_done <= 0 or not isinstance(dataset, tf.data.Dataset):
        return
    known = int(dataset.cardinality()) >= 0
    for _ in range(2 * epochs_done if known else epochs_done):
        iter(dataset)


_STRATEGY = None


def make_strategy(cfg):
    """The ``tf.distribute`` strategy ``cfg.distribute`` asks for, created once per process (or None).

    ``multi_worker`` reads the cluster from ``TF_CONFIG``; it must be created before any
    other TensorFlow operation, so :func:`train` calls this first.
    """
    global _STRATEGY
    import tensorflow as tf

    kind = getattr(cfg, "distribute", "none")
    if kind == "none":
        return None
    if _STRATEGY is not None:
        return _STRATEGY
    if kind == "mirrored":
        _STRATEGY = tf.distribute.MirroredStrategy()
    elif kind == "multi_worker":
        _cluster()  # validate TF_CONFIG with a clear message
        _patch_multi_worker_reduce()
        try:
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as e:
            raise SeqkitError(f"distribute=multi_worker: cannot start the worker ({str(e).splitlines()[0]})") from None
    return _STRATEGY


def _patch_multi_worker_reduce() -> None:
    """Keras 3.15 all-reduces scalar fit logs across workers with ``axis=0``, which TF rejects.

    Under ``MultiWorkerMirroredStrategy`` every ``fit`` step fails with "Invalid reduction
    dimension 0 for input with 0 dimensions". Scalars are reduced with ``axis=None`` instead;
    everything else keeps Keras' behaviour. Applied only when a multi-worker strategy is made.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_seqkit_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):

            def one(v):
                rank = getattr(v, "shape", None)
                if rank is not None and v.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            from keras.src import tree

            return tree.map_structure(one, values)
        return original(values, strategy, reduction)

    reduce_per_replica._seqkit_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def strategy_scope(cfg):
    """The ``tf.distribute`` scope ``cfg.distribute`` asks for (none, mirrored, multi_worker via TF_CONFIG)."""
    strategy = make_strategy(cfg)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _cluster() -> tuple[str, int, bool]:
    """``(task_type, index, is_chief)`` from ``TF_CONFIG``."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise SeqkitError("distribute=multi_worker needs the TF_CONFIG environment variable (see docs/reliability.md)")
    try:
        conf = json.loads(raw)
        cluster, task = conf["cluster"], conf["task"]
        kind, index = str(task["type"]), int(task["index"])
        cluster[kind][index]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise SeqkitError(f"TF_CONFIG: not a valid cluster description ({type(e).__name__}: {e})") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return kind, index, chief


def _shard_by_data(dataset):
    """In-memory pipelines cannot be sharded by file; shard every worker's batches by element instead."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def standard_callbacks(run_dir: Path, task: Task, cfg, resume: bool) -> tuple[list, NanGuard, BestWeights]:
    """NaN guard, TensorBoard, optional time budget / early stopping, then best weights, history and checkpoint.

    ``resume`` is kept for compatibility: the checkpoint itself decides whether there is a state to restore.
    """
    monitor = task.monitor or task.objective
    nan_guard = NanGuard()
    best = BestWeights(monitor, task.direction)
    history = HistoryCSV(run_dir / "history.csv")
    state = Checkpoint.peek(run_dir / "backup")
    elapsed = float(state.get("train_seconds", 0.0)) if state else 0.0
    cbs: list = [
        nan_guard,
        # TensorBoard appends event records by design; a reader skips a record cut short by a kill.
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
    ]
    if getattr(cfg, "max_train_minutes", None):
        cbs.append(TimeBudget(cfg.max_train_minutes, elapsed_seconds=elapsed))
    if getattr(cfg, "early_stopping", 0):
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=task.direction, patience=cfg.early_stopping))
    cbs += [best, history, Checkpoint(run_dir / "backup", best=best, history=history)]
    return cbs, nan_guard, best


def order_callbacks(callbacks: list) -> list:
    """Task callbacks (e.g. validation entity F1) must write their logs before these read them."""
    last = (BestWeights, HistoryCSV, Checkpoint)
    ordered = [cb for cb in callbacks if not isinstance(cb, last)]
    for kind in last:
        ordered += [cb for cb in callbacks if isinstance(cb, kind)]
    for cb in ordered:
        if isinstance(cb, Checkpoint):
            cb.watched = ordered
    return ordered


def _unfinished_run(run_dir: Path, config: dict) -> bool:
    """True when ``run_dir`` holds a killed run of exactly this config (config.json equal, no metrics.json)."""
    try:
        return (
            (run_dir / "config.json").exists()
            and not (run_dir / "metrics.json").exists()
            and io.read_json(run_dir / "config.json") == config
        )
    except SeqkitError:
        return False


def _clean(run_dir: Path) -> None:
    for stale in ("backup", "logs", "history.csv", "metrics.json", "model.keras", "learning_curves.png"):
        p = run_dir / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def train(
    task: Task, cfg, data: DataArgs, out=None, overwrite: bool = False, resume: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Train ``task`` with ``cfg`` and write its run directory; returns ``(run_dir, metrics)``.

    An existing ``out`` is reused only with ``overwrite`` (start again), ``resume``
    (continue from the last end-of-epoch snapshot), or automatically when it holds
    an unfinished run of the same config (the same command run again after a kill).
    Under ``distribute=multi_worker`` only the chief writes ``out``; other workers
    write to ``out/.worker-<index>`` (removed when they finish).
    """
    strategy = make_strategy(cfg)  # first: a multi-worker strategy must exist before any TF op
    config = {"task": task.name, **config_to_dict(cfg)}
    chief, worker_dir = True, None
    if getattr(cfg, "distribute", "none") == "multi_worker":
        kind, index, chief = _cluster()
        if not chief:
            base = Path(out) if out is not None else Path(tempfile.gettempdir())
            worker_dir = base / f".worker-{kind}-{index}"
            out = worker_dir
    out_path = Path(out) if out is not None else None
    if out_path is not None and not (resume or overwrite) and _unfinished_run(out_path, config):
        resume = True
        print(f"seqkit: {out_path} holds an unfinished run of this config; resuming it", file=sys.stderr)
    # Check everything the user can get wrong (run directory, config, data) before writing anything.
    run_dir = io.check_run_dir(task.name, out, overwrite=overwrite, resume=resume)
    if resume and (run_dir / "config.json").exists():
        if io.read_json(run_dir / "config.json") != config:
            raise SeqkitError(
                f"{run_dir / 'config.json'}: --resume with a different config; use the same command or --overwrite"
            )
        if (run_dir / "metrics.json").exists():
            raise SeqkitError(f"{run_dir}: this run already finished (metrics.json); use --overwrite to train again")
    seed_from_config(cfg)
    prepared = task.prepare(cfg, data)

    run_dir.mkdir(parents=True, exist_ok=True)
    if overwrite and not resume:
        _clean(run_dir)
    state = Checkpoint.peek(run_dir / "backup") if resume else None
    if not resume:
        _clean_backup(run_dir)
    io.write_json(run_dir / "config.json", config)
    if strategy is not None and cfg.distribute == "multi_worker":
        prepared.train, prepared.valid = _shard_by_data(prepared.train), _shard_by_data(prepared.valid)
    with strategy_scope(cfg):
        model = task.build_model(cfg, prepared.info)
    callbacks, nan_guard, best = standard_callbacks(run_dir, task, cfg, resume=resume)
    callbacks = order_callbacks(callbacks + list(task.callbacks(cfg, prepared)))
    checkpoint = next(cb for cb in callbacks if isinstance(cb, Checkpoint))
    if state is not None:
        print(f"seqkit: resuming {run_dir} after epoch {state['epoch']}", file=sys.stderr)
        replay_shuffle(prepared.train, int(state["epoch"]))

    if strategy is not None:
        # Keras 3.15's fit pre-builds a model that remembers its strategy by all-reducing the first
        # batch, which fails for integer inputs under MultiWorkerMirroredStrategy. Forgetting the
        # strategy and fitting inside its scope keeps fit distributed and builds in the first step.
        model._distribute_strategy = None
    with strategy_scope(cfg):
        history = task.fit(model, cfg, prepared, callbacks, epochs=cfg.epochs)
    train_seconds = checkpoint.train_seconds()
    if nan_guard.where is not None and best.weights is None and nan_guard.last_good is not None:
        model.set_weights(nan_guard.last_good)
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
    epochs = len(history.history.get("loss", [])) if history is not None else cfg.epochs
    metrics["epochs"] = epochs + (int(state["epoch"]) if state is not None else 0)
    if best.best is not None:
        metrics[f"best_{best.monitor}"] = best.best
        metrics["best_epoch"] = best.best_epoch + 1
    io.write_json(run_dir / "metrics.json", _plain(metrics))
    if worker_dir is not None:
        shutil.rmtree(worker_dir, ignore_errors=True)
    return run_dir, metrics


def _clean_backup(run_dir: Path) -> None:
    backup = run_dir / "backup"
    if backup.exists():
        shutil.rmtree(backup)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.ndim == 0:
        return obj.item()
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "numpy") and not isinstance(obj, (int, float, str)):
        try:
            return _plain(np.asarray(obj.numpy()))
        except Exception:  # pragma: no cover - not a tensor after all
            return obj
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
    if found is None:
        raise SeqkitError(f"{cfg_path}: field 'task': missing (not a seqkit run directory)")
    if task_name is not None and found != task_name:
        raise SeqkitError(f"{run_dir}: this model is from task '{found}', not '{task_name}'")
    if not (run_dir / "model.keras").exists():
        raise SeqkitError(f"{run_dir}: no model.keras (the run did not finish)")
    return run_dir, config


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model in Keras' safe mode: no arbitrary code from the file runs.

    A file that needs unsafe deserialisation (a ``Lambda`` layer's pickled code), is
    not a Keras archive, or is truncated raises :class:`SeqkitError` naming the file.
    """
    import zipfile

    import seqkit.forecasting.layers  # noqa: F401 - registers the forecasting layers
    import seqkit.layers  # noqa: F401 - registers seqkit's serialisable layers

    path = Path(path)
    if not path.exists():
        raise SeqkitError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise SeqkitError(f"{path}: not a Keras model archive (truncated or corrupted)")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as e:
        text = " ".join(str(e).split())
        if "safe_mode" in text or "unsafe" in text.lower() or "lambda" in text.lower():
            raise SeqkitError(
                f"{path}: refused to load: the model contains code (e.g. a Lambda layer) that safe mode does not run"
            ) from None
        raise SeqkitError(f"{path}: cannot load the model: {text[:200]}") from None
    except (OSError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise SeqkitError(
            f"{path}: cannot load the model ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None


def config_from_run(task: Task, config: dict[str, Any]):
    from seqkit.config import from_dict

    data = {k: v for k, v in config.items() if k != "task"}
    return from_dict(task.config_cls, data, source="config.json")
