"""Every task goes through the same contract: CLI train on a tiny fixture -> files -> load -> predict -> evaluate."""

import json
from pathlib import Path

import numpy as np
import pytest

from seqkit.cli import main
from seqkit.task import TASK_NAMES, get_task


def _data_argv(data) -> list[str]:
    argv = []
    for key in ("data", "train", "valid", "test"):
        value = getattr(data, key)
        if value is not None:
            argv += [f"--{key}", str(value)]
    return argv


def _set_argv(overrides: dict) -> list[str]:
    argv = []
    for k, v in overrides.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    return argv


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_contract(name, tmp_path, capsys):
    task = get_task(name)
    data, overrides = task.fixture(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", name, "--out", str(run), "--seed", "7", *_data_argv(data), *_set_argv(overrides)]) == 0
    for f in ("config.json", "metrics.json", "model.keras", "history.csv"):
        assert (run / f).exists(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_seconds"] > 0
    assert json.loads((run / "config.json").read_text())["task"] == name

    assert task.load(run) is not None
    predict_argv = []
    for item in task.predict_inputs(tmp_path / "data"):
        predict_argv += ["--input", item] if Path(item).exists() else [item]
    capsys.readouterr()
    assert main(["predict", "--model", str(run), *predict_argv]) == 0
    assert capsys.readouterr().out.strip(), "predict printed nothing"

    assert main(["evaluate", "--model", str(run), *_data_argv(data)]) == 0

    # a run directory is never silently overwritten
    assert main(["train", name, "--out", str(run), *_data_argv(data), *_set_argv(overrides)]) == 2

    # No default stops on the clock, so the same seed trains the same model: metrics and every weight.
    assert task.config_cls().max_train_minutes is None, "a default config must budget training in epochs or steps"
    again = tmp_path / "again"
    assert main(["train", name, "--out", str(again), "--seed", "7", *_data_argv(data), *_set_argv(overrides)]) == 0
    assert _without_timings(json.loads((again / "metrics.json").read_text())) == _without_timings(metrics)
    from seqkit.training import load_model

    for a, b in zip(load_model(run / "model.keras").get_weights(), load_model(again / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)


def _without_timings(obj):
    """Metrics minus what measures time or speed (it differs between two runs of the same model)."""
    if isinstance(obj, dict):
        return {
            k: _without_timings(v)
            for k, v in obj.items()
            if not any(t in k for t in ("seconds", "per_s", "per_second"))
        }
    return obj
