"""Crash-safe training: kill + resume, no duplicate history, NaN guard, atomic run directories, safe loading.

The toy task below is tiny (vocabulary 10, 4 GRU units, length 6). Running this file as a
script (``python tests/test_reliability.py train toy ...``) is ``python -m seqkit`` with the
toy task registered, so the SIGKILL test drives the real command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seqkit.task import DataArgs, Prepared
from seqkit.tuning_toy import ToyConfig, ToyTask

CRASH: dict = {"at": None}  # (epoch, batch) at which the in-process run raises, simulating a kill


class Crash(RuntimeError):
    pass


@dataclasses.dataclass
class RelConfig(ToyConfig):
    epochs: int = 3
    n_train: int = 32
    batch_size: int = 8
    run_eagerly: bool = False
    dropout: float = 0.25  # exercises the dropout RNG state across a resume
    nan_labels: bool = False  # one training label is NaN: the loss diverges in epoch 1
    nan_epoch: int = 0  # from this (1-based) epoch the weights blow up (0: never)


class RelTask(ToyTask):
    name = "toy"
    config_cls = RelConfig

    def prepare(self, cfg, data: DataArgs, for_tuning: bool = False) -> Prepared:
        import tensorflow as tf

        prepared = super().prepare(cfg, data, for_tuning)
        if cfg.nan_labels:
            x, y = self._arrays(cfg.n_train, 0)
            y[5] = np.nan
            prepared.train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=cfg.seed)
            prepared.train = prepared.train.batch(cfg.batch_size)
        return prepared

    def callbacks(self, cfg, prepared):
        import keras

        class Inject(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                if cfg.nan_epoch and epoch + 1 == cfg.nan_epoch:
                    var = self.model.trainable_variables[0]
                    var.assign(np.full(var.shape, np.nan, dtype="float32"))

            def on_train_batch_end(self, batch, logs=None):
                if CRASH["at"] == (self.epoch, batch):
                    raise Crash("simulated kill")
                time.sleep(float(os.environ.get("SEQKIT_TEST_BATCH_DELAY", "0")))

        return [Inject()]

    def evaluate(self, model, cfg, prepared, run_dir):
        if CRASH["at"] == "evaluate":
            raise Crash("simulated kill after training")
        metrics = super().evaluate(model, cfg, prepared, run_dir)
        # A fingerprint of the final weights, to compare the workers of a multi-worker run.
        metrics["weights_checksum"] = float(sum(np.abs(w).astype("float64").sum() for w in model.get_weights()))
        return metrics


TASK = RelTask()


def _cfg(**kw) -> RelConfig:
    return RelConfig(**kw)


def _train(out, cfg=None, **kw):
    from seqkit.training import train

    return train(TASK, cfg or _cfg(), DataArgs(), out=out, **kw)


def _weights(run_dir):
    from seqkit.training import load_model

    return load_model(Path(run_dir) / "model.keras").get_weights()


def _history(run_dir) -> list[str]:
    return (Path(run_dir) / "history.csv").read_text().splitlines()


# --- resume -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run of the default toy config, shared by the tests below."""
    out = tmp_path_factory.mktemp("ref") / "run"
    _, metrics = _train(out)
    return out, metrics


def _crash(out, at, cfg=None):
    CRASH["at"] = at
    try:
        with pytest.raises(Crash):
            _train(out, cfg)
    finally:
        CRASH["at"] = None


def test_resume_after_a_crash_mid_epoch_equals_an_uninterrupted_run(tmp_path, reference):
    from seqkit.training import Checkpoint

    ref_dir, ref = reference
    _crash(tmp_path / "run", (2, 1))  # the middle of epoch 3
    state = Checkpoint.peek(tmp_path / "run" / "backup")
    assert state["epoch"] == 2 and state["best_file"] and state["best"] is not None
    assert not (tmp_path / "run" / "metrics.json").exists()
    _, metrics = _train(tmp_path / "run", resume=True)
    # Weights, optimizer moments, dropout RNG and the tf.data shuffle order are all restored: exact.
    assert metrics["test_loss"] == pytest.approx(ref["test_loss"], abs=1e-6)
    assert metrics["epochs"] == ref["epochs"] == 3
    assert (metrics["best_epoch"], metrics["best_val_loss"]) == pytest.approx((ref["best_epoch"], ref["best_val_loss"]))
    for a, b in zip(_weights(tmp_path / "run"), _weights(ref_dir)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    rows = _history(tmp_path / "run")
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # each epoch once
    assert rows == _history(ref_dir)


def test_same_command_again_resumes_a_killed_run_automatically(tmp_path, capsys, reference):
    _crash(tmp_path / "run", (1, 0))
    _, metrics = _train(tmp_path / "run")  # no resume flag: same config, unfinished -> continue
    assert "resuming" in capsys.readouterr().err
    assert metrics["epochs"] == 3 and _history(tmp_path / "run") == _history(reference[0])


def test_a_run_killed_after_it_stopped_early_trains_no_further_epoch(tmp_path):
    cfg = _cfg(max_train_minutes=1e-9)  # the time budget ends training after the first epoch
    ref_dir = tmp_path / "ref"
    _, ref = _train(ref_dir, cfg)
    _crash(tmp_path / "run", "evaluate", cfg)
    _, got = _train(tmp_path / "run", cfg)
    assert got["epochs"] == ref["epochs"] == 1
    assert _history(tmp_path / "run") == _history(ref_dir)
    for a, b in zip(_weights(tmp_path / "run"), _weights(ref_dir)):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_a_different_config_or_a_finished_run(tmp_path):
    from seqkit.errors import SeqkitError

    _train(tmp_path / "run", _cfg(epochs=1))
    with pytest.raises(SeqkitError, match="already finished"):
        _train(tmp_path / "run", _cfg(epochs=1), resume=True)
    with pytest.raises(SeqkitError, match="different config"):
        _train(tmp_path / "run", _cfg(epochs=2), resume=True)
    with pytest.raises(SeqkitError, match="--overwrite"):
        _train(tmp_path / "run", _cfg(epochs=2))  # finished run, same --out: never silently replaced
    _, metrics = _train(tmp_path / "run", _cfg(epochs=2), overwrite=True)
    assert metrics["epochs"] == 2 and len(_history(tmp_path / "run")) == 3


# --- NaN guard --------------------------------------------------------------------------------
def test_nan_stops_training_and_keeps_the_last_good_weights(tmp_path):
    from seqkit.errors import SeqkitError
    from seqkit.training import Checkpoint

    with pytest.raises(SeqkitError, match=r"NaN/Inf at epoch 3, batch 1.*last good weights") as e:
        _train(tmp_path / "run", _cfg(nan_epoch=3))
    assert "\n" not in str(e.value)
    weights = _weights(tmp_path / "run")
    assert all(np.isfinite(w).all() for w in weights)
    state = Checkpoint.peek(tmp_path / "run" / "backup")
    assert state["epoch"] == 2  # the diverged epoch was never snapshotted
    with np.load(tmp_path / "run" / "backup" / state["best_file"]) as best:  # the best epoch before it
        for i, w in enumerate(weights):
            np.testing.assert_allclose(w, best[f"w{i}"])
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_gradient_clipping_is_on_by_default():
    from seqkit.config import RecurrentConfig

    assert RecurrentConfig().clipnorm == 1.0


# --- atomic outputs ---------------------------------------------------------------------------
def test_run_directory_holds_only_complete_files(reference):
    run_dir = reference[0]
    names = sorted(p.name for p in run_dir.iterdir())
    assert not [n for n in names if ".tmp" in n or n.startswith(".")]
    for name in ("config.json", "metrics.json", "model.keras", "history.csv", "learning_curves.png", "logs"):
        assert name in names
    backup = sorted(p.name for p in (run_dir / "backup").iterdir())
    assert "latest.json" in backup and "epoch-0003" in backup and not [n for n in backup if n.startswith(".")]


def test_an_existing_run_directory_is_never_silently_overwritten(tmp_path):
    from seqkit.errors import SeqkitError

    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SeqkitError, match="not empty"):
        _train(out, _cfg(epochs=1))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# --- safe loading -----------------------------------------------------------------------------
def test_a_model_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    from seqkit.errors import SeqkitError
    from seqkit.training import load_model

    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(SeqkitError, match=r"evil.keras: refused to load") as e:
        load_model(path)
    assert "\n" not in str(e.value)


def test_a_truncated_model_file_is_a_one_line_error(tmp_path, reference):
    from seqkit.errors import SeqkitError
    from seqkit.training import load_model

    data = (reference[0] / "model.keras").read_bytes()
    bad = tmp_path / "cut.keras"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqkitError, match="cut.keras"):
        load_model(bad)


# --- a real kill through the command line ------------------------------------------------------
def _cli(out, *extra, env=None):
    return [sys.executable, __file__, "train", "toy", "--out", str(out), "--set", "epochs=4", *extra]


def _env(**kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **kw)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_from_the_command_line(tmp_path):
    ref = subprocess.run(_cli(tmp_path / "ref"), env=_env(), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen(_cli(tmp_path / "run"), env=_env(SEQKIT_TEST_BATCH_DELAY="0.05"))
    latest = tmp_path / "run" / "backup" / "latest.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.15)  # a few batches into the next epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "metrics.json").exists()
    r = subprocess.run(_cli(tmp_path / "run", "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "run" / "metrics.json").read_text())
    want = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert got["epochs"] == want["epochs"] == 4
    assert got["test_loss"] == pytest.approx(want["test_loss"], abs=1e-6)
    assert _history(tmp_path / "run") == _history(tmp_path / "ref")


@pytest.mark.slow
def test_cli_nan_exits_2_with_one_line(tmp_path):
    r = subprocess.run(
        _cli(tmp_path / "run", "--set", "nan_labels=true"), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2, r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "training diverged" in err[0] and "Traceback" not in r.stderr
    assert all(np.isfinite(w).all() for w in _weights(tmp_path / "run"))


# --- the four tasks: SIGKILL after the first snapshot, the same command again, compare weights ----------
def _task_argv(name: str, out: Path, data, overrides: dict) -> list[str]:
    argv = [sys.executable, "-m", "seqkit", "train", name, "--out", str(out)]
    for key in ("data", "train", "valid", "test"):
        if getattr(data, key) is not None:
            argv += [f"--{key}", str(getattr(data, key))]
    for k, v in overrides.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    return argv


def _task_run(name: str, directory: Path) -> tuple[list[str], list[str]]:
    """The command that trains ``name`` on its fixture for 3 epochs into ``directory/ref`` and ``directory/run``."""
    from seqkit.task import get_task

    data, overrides = get_task(name).fixture(directory / "data")
    overrides = {**overrides, "epochs": 3, "seed": 7}
    if name == "forecast":
        overrides["horizons"] = [4, 2]  # the run trains a second model (M/2) inside evaluate
    return _task_argv(name, directory / "ref", data, overrides), _task_argv(name, directory / "run", data, overrides)


def _kill_after_first_snapshot(argv: list[str], latest: Path) -> int:
    """Start ``argv``, SIGKILL it as soon as ``latest`` (a snapshot pointer) records a finished epoch.

    The process is stopped first, so the epoch it is killed after is the one read here.
    """
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    epoch = 0
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                epoch = json.loads(latest.read_text())["epoch"]
            except (FileNotFoundError, ValueError):
                epoch = 0
            if epoch >= 1:
                os.kill(proc.pid, signal.SIGSTOP)
                epoch = json.loads(latest.read_text())["epoch"]
                break
            time.sleep(0.002)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]!r}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return epoch


def _all_weights(run_dir: Path) -> dict[str, list[np.ndarray]]:
    """Every array a finished run leaves: each saved model's weights (``model.keras``, forecast's
    ``models/*.keras``) and each last end-of-epoch snapshot's weights and optimizer state. The
    snapshots matter because the saved model is the best epoch's, which may predate the kill."""
    from seqkit.training import load_model

    arrays = {}
    for path in sorted([run_dir / "model.keras", *run_dir.glob("models/*.keras")]):
        arrays[str(path.relative_to(run_dir))] = load_model(path).get_weights()
    for latest in sorted(run_dir.glob("backup/**/latest.json")):
        h5 = latest.parent / json.loads(latest.read_text())["snapshot"] / "model.weights.h5"
        arrays[str(h5.relative_to(run_dir))] = _h5_arrays(h5)
    return arrays


def _h5_arrays(path: Path) -> list[np.ndarray]:
    import h5py

    found: list[np.ndarray] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, item: found.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


_REFERENCES: dict[str, Path] = {}


def _reference(name: str, argv: list[str]) -> Path:
    """An uninterrupted run of ``argv`` (made once per task for this module)."""
    if name not in _REFERENCES:
        r = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        _REFERENCES[name] = Path(argv[argv.index("--out") + 1])
    return _REFERENCES[name]


@pytest.mark.slow  # three runs of a few epochs through the command line: about 100 s per case on 2 busy cores
@pytest.mark.parametrize(
    ("name", "killed_in"),
    [
        ("sentiment", "backup"),
        ("ner", "backup"),
        ("forecast", "backup"),
        ("forecast", "backup/models/M_2"),
        ("charlm", "backup"),
    ],
)
def test_a_killed_task_run_resumes_to_the_weights_of_an_uninterrupted_run(name, killed_in, tmp_path):
    """SIGKILL ``python -m seqkit train`` after its first end-of-epoch snapshot, run the same command again:
    every array it saves equals an uninterrupted run's (forecast: also when killed while training M/2)."""
    ref_argv, run_argv = _task_run(name, tmp_path)
    ref = _reference(name, ref_argv)
    killed_after = _kill_after_first_snapshot(run_argv, tmp_path / "run" / killed_in / "latest.json")
    assert 1 <= killed_after < 3, killed_after  # killed mid-training, not after it
    assert not (tmp_path / "run" / "metrics.json").exists()
    again = subprocess.run(run_argv, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming" in again.stderr
    want, got = _all_weights(ref), _all_weights(tmp_path / "run")
    assert list(got) == list(want)
    assert len([k for k in want if k.endswith(".keras")]) == (2 if name == "forecast" else 1)
    for key in want:
        assert len(got[key]) == len(want[key]) > 0, key
        for i, (a, b) in enumerate(zip(got[key], want[key])):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=f"{key}: array {i}")
    assert _history(tmp_path / "run") == _history(ref)


# --- multi-worker training ----------------------------------------------------------------------
def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_loopback_finish_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "run"
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        cmd = [sys.executable, __file__, "train", "toy", "--out", str(out), "--set", "distribute=multi_worker"]
        procs.append(
            subprocess.Popen(
                cmd, env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-2000:]
        results.append(json.loads(stdout[stdout.index("{") :]))
    chief, worker = results
    assert chief["weights_checksum"] == pytest.approx(worker["weights_checksum"], rel=1e-6)
    assert chief["test_loss"] == pytest.approx(worker["test_loss"], rel=1e-6)
    assert chief["epochs"] == worker["epochs"] == 3
    # Only the chief wrote the run directory; the worker's scratch folder is gone.
    assert json.loads((out / "metrics.json").read_text())["weights_checksum"] == chief["weights_checksum"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def register_toy() -> None:
    """Make ``toy`` a task name the command line accepts (only in this process)."""
    import seqkit.cli
    import seqkit.task

    names = (*seqkit.task.TASK_NAMES, "toy")
    seqkit.task.TASK_NAMES = seqkit.cli.TASK_NAMES = names
    sys.modules["tasks.toy"] = sys.modules[__name__]


if __name__ == "__main__":
    register_toy()
    from seqkit.cli import main

    sys.exit(main(sys.argv[1:]))
