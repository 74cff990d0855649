"""Multi-process tuning scenarios on the synthetic task: SIGKILL + resume, and a chief with two workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

SPACE = """\
replace: true
units: {type: choice, values: [2, 4]}
learning_rate: {type: float, min: 0.003, max: 0.03, sampling: log}
"""


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _tune_cmd(out, space, trials):
    return [
        sys.executable,
        "-m",
        "seqkit.tuning_toy",
        "tune",
        "toy",
        "--tuner",
        "random",
        "--trials",
        str(trials),
        "--max-epochs",
        "2",
        "--space",
        str(space),
        "--out",
        str(out),
    ]


def _trial_log(out, tuner_id="tuner0"):
    path = out / "tuners" / f"{tuner_id}.json"
    return [e["trial_id"] for e in json.loads(path.read_text())] if path.exists() else []


@pytest.mark.slow
def test_sigkill_during_a_trial_then_rerun_finishes_without_rerunning_finished_trials(tmp_path):
    import pandas as pd

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "tune"
    proc = subprocess.Popen(_tune_cmd(out, space, 3), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        # Kill once trial 0 has finished and trial 1 has started.
        while not (_trial_log(out) == ["0"] and (out / "search" / "trial_1" / "trial.json").exists()):
            assert proc.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "the search did not reach trial 1"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = json.loads((out / "search" / "trial_1" / "trial.json").read_text())
    assert killed["status"] == "RUNNING"

    done = subprocess.run(_tune_cmd(out, space, 3), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # Trial 0 ran once, the killed trial 1 was retried under its own id, trial 2 ran: nothing twice.
    assert _trial_log(out) == ["0", "1", "2"]
    table = pd.read_csv(out / "trials.csv")
    assert list(table["trial_id"]) == [0, 1, 2]
    assert set(table["status"]) == {"COMPLETED"}
    assert (out / "best.yaml").exists() and (out / "best_model.keras").exists()


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_exactly_once(tmp_path):
    import pandas as pd

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "tune"
    cmd = [
        sys.executable,
        "-m",
        "seqkit.tuning_distributed",
        "toy",
        "--workers",
        "2",
        "--module",
        "seqkit.tuning_toy",
        "--timeout",
        "500",
        *_tune_cmd(out, space, 4)[5:],
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:] + (out / "logs" / "chief.log").read_text()[-2000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["role"] == "chief" and summary["completed"] == 4

    by_worker = {t: _trial_log(out, t) for t in ("tuner0", "tuner1")}
    ran = by_worker["tuner0"] + by_worker["tuner1"]
    assert sorted(ran) == ["0", "1", "2", "3"]  # every trial exactly once
    assert all(by_worker.values()), f"a worker ran no trial: {by_worker}"
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["trial_id"].astype(str)) == sorted(ran)
    assert set(table["status"]) == {"COMPLETED"}
    best = table.loc[table["val_loss"].idxmin()]
    assert summary["best_trial"] == str(best["trial_id"])
    assert summary["best_objective"] == pytest.approx(best["val_loss"])
    # subprocess.run returned, so the helper waited for the chief and both workers, which all exited 0.
    for name in ("chief", "tuner0", "tuner1"):
        assert (out / "logs" / f"{name}.log").exists()
