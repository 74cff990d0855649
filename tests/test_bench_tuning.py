"""The tuning benchmark's seed confirmation: merging runs from several processes and the verdict."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bt(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT))
    import bench.common
    import bench.tuning

    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    monkeypatch.setattr(bench.tuning, "RESULTS", tmp_path)
    monkeypatch.setattr(bench.common, "environment", lambda: {"date": "today", "command": "test"})
    return bench.tuning


def _confirm(kind, runs):
    return {
        "confirm": {
            "task": "forecast",
            "objective": "val_mse",
            "direction": "min",
            "trial_epochs": 10,
            "runs": {kind: runs},
        }
    }


def test_confirm_runs_from_two_processes_merge_and_compare_means(bt, tmp_path):
    bt._merge_and_write(_confirm("default", {"1": 0.64, "2": 0.62}))
    bt._merge_and_write(_confirm("best", {"1": 0.61, "2": 0.63}))
    data = json.loads((tmp_path / "tuning.json").read_text())
    assert data["confirm"]["forecast"]["runs"] == {"default": {"1": 0.64, "2": 0.62}, "best": {"1": 0.61, "2": 0.63}}
    (row,) = bt._confirm_rows(data)
    assert row["default mean"] == pytest.approx(0.63)
    assert row["best mean"] == pytest.approx(0.62)
    assert row["best - default"] == pytest.approx(-0.01)
    assert row["improved"] is True


def test_a_worse_best_is_not_called_an_improvement(bt):
    data = {"confirm": {"ner": {**_confirm("default", {"1": 0.90})["confirm"], "direction": "max"}}}
    data["confirm"]["ner"]["runs"]["best"] = {"1": 0.89}
    (row,) = bt._confirm_rows(data)
    assert row["improved"] is False


def test_a_new_search_drops_the_confirmation_of_the_old_best(bt, tmp_path):
    bt._merge_and_write(_confirm("best", {"1": 0.61}))
    bt._merge_and_write(
        {
            "quality": {
                "minutes": 1,
                "tuner": "hyperband",
                "rows": [{"task": "forecast", "best_yaml": "task: forecast\n"}],
            }
        }
    )
    data = json.loads((tmp_path / "tuning.json").read_text())
    assert "forecast" not in data.get("confirm", {})


def test_confirm_trains_the_saved_best_and_the_default_at_trial_length(bt, tmp_path, monkeypatch):
    import seqkit.tuning

    (tmp_path / "forecast").mkdir()
    # A best.yaml as the tuner writes it: the task's name and the epochs of the trial's bracket.
    (tmp_path / "forecast" / "best.yaml").write_text("task: forecast\nunits: [512]\nepochs: 4\n")
    monkeypatch.setattr(bt, "WORK", tmp_path)
    seen = []

    def fake_objective(task, cfg, data, epochs=None):
        seen.append((cfg.units, cfg.seed, cfg.epochs, epochs))
        return 0.6 if cfg.units == [512] else 0.7

    monkeypatch.setattr(seqkit.tuning, "baseline_objective", fake_objective)
    out = bt.confirm("forecast", ["default", "best"], [1, 2])
    assert seen == [([128], 1, 10, 10), ([128], 2, 10, 10), ([512], 1, 10, 10), ([512], 2, 10, 10)]
    assert out["runs"] == {"default": {"1": 0.7, "2": 0.7}, "best": {"1": 0.6, "2": 0.6}}


def test_confirm_without_a_search_says_what_to_run(bt, tmp_path, monkeypatch):
    monkeypatch.setattr(bt, "WORK", tmp_path)
    with pytest.raises(SystemExit, match="--quality --tasks forecast"):
        bt.confirm("forecast", ["best"], [1])


def test_a_changed_base_config_has_its_own_search_directory_default_and_row(bt, tmp_path, monkeypatch):
    import seqkit.tuning

    sets = bt._overrides(["forecast:settings=[S]", "forecast:units=[64]"])
    assert sets == {"forecast": ["settings=[S]", "units=[64]"]}
    work = tmp_path / "forecast-settings__S__units__64"
    work.mkdir()
    (work / "best.yaml").write_text("task: forecast\nsettings: [S]\nunits: [256]\nepochs: 4\n")
    monkeypatch.setattr(bt, "WORK", tmp_path)
    seen = []

    def fake_objective(task, cfg, data, epochs=None):
        seen.append((cfg.settings, cfg.units))
        return 0.05

    monkeypatch.setattr(seqkit.tuning, "baseline_objective", fake_objective)
    out = bt.confirm("forecast", ["default", "best"], [1], sets["forecast"])
    # The default is the task's default with the same changes, not the plain default.
    assert seen == [(["S"], [64]), (["S"], [256])]
    assert out["task"] == "forecast settings=[S] units=[64]"
    with pytest.raises(SystemExit, match=r"--set forecast:settings=\[S\]"):
        bt.confirm("forecast", ["best"], [1], ["settings=[S]"])
    with pytest.raises(SystemExit, match="TASK:KEY=VALUE"):
        bt._overrides(["settings=[S]"])


def test_a_search_of_another_space_keeps_its_own_directory_and_row(bt):
    assert bt._variant(["settings=[S]"], "") == "settings=[S] space=task"
    assert bt._variant([], "bench/spaces/forecast_structure.yaml") == "space=forecast_structure"
    assert bt._variant(["settings=[S]"]) == "settings=[S]"
    assert bt._work_dir("forecast", "settings=[S] space=task").name == "forecast-settings__S__space_task"
    with pytest.raises(SystemExit, match="--space forecast= "):
        bt.confirm("forecast", ["best"], [1], ["settings=[S]"], "")
