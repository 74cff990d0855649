"""Every task goes through the same contract: CLI train on a tiny fixture -> files -> load -> predict -> evaluate."""

import json
from pathlib import Path

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
