"""Tuning machinery on the tiny synthetic task: search space, trial configs, outputs, resume, retrain."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from seqkit import tuning
from seqkit.config import resolve_config
from seqkit.errors import SeqkitError
from seqkit.task import DataArgs
from seqkit.tuning_toy import TASK, ToyConfig, ToyTask

TINY_SPACE = """\
replace: true
units: {type: choice, values: [2, 4]}
learning_rate: {type: float, min: 0.003, max: 0.03, sampling: log}
"""


def _hp():
    import keras_tuner

    return keras_tuner.HyperParameters()


def _space_file(tmp_path, text=TINY_SPACE):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


# --- search space ---------------------------------------------------------------------------
def test_default_space_is_centred_on_the_config_and_only_names_its_fields():
    cfg = ToyConfig(units=[8, 8], batch_size=16, learning_rate=0.01)
    space, _ = tuning.resolve_space(TASK, cfg)
    assert space["units"]["values"] == [4, 8, 16]
    assert space["batch_size"]["values"] == [8, 16, 32]
    assert space["learning_rate"]["min"] == pytest.approx(0.0025)
    assert space["num_layers"]["max"] == 2
    assert space["regularizer"]["values"][0] is None
    assert space["regularizer_rate"]["when"]["regularizer"]
    assert "recurrent_dropout" not in space  # keeps the fused fast path


def test_task_space_and_file_override_fix_and_remove(tmp_path):
    class Task2(ToyTask):
        SEARCH_SPACE = {"embedding_dim": {"type": "int", "min": 2, "max": 8, "step": 2}, "clipnorm": None}

    path = _space_file(tmp_path, "cell: {type: choice, values: [gru]}\ndropout: null\nfixed: {batch_size: 8}\n")
    space, cfg = tuning.resolve_space(Task2(), ToyConfig(), path)
    assert space["embedding_dim"]["max"] == 8
    assert "clipnorm" not in space and "dropout" not in space and "batch_size" not in space
    assert space["cell"]["values"] == ["gru"]
    assert cfg.batch_size == 8


def test_language_model_never_searches_bidirectional():
    class CharLM(ToyTask):
        name = "charlm"

    space, _ = tuning.resolve_space(CharLM(), ToyConfig())
    assert "bidirectional" not in space


@pytest.mark.parametrize(
    "text, message",
    [
        ("unitz: {type: int, min: 1, max: 4}\n", "field 'unitz': not a config field"),
        ("cell: {type: choice, values: [lstm, tcn]}\n", "field 'cell'"),
        ("learning_rate: {type: float, min: 0, max: 1, sampling: log}\n", "needs min > 0"),
        ("dropout: {type: float, min: 0.5, max: 0.1}\n", "min 0.5 > max 0.1"),
        ("dropout: {type: uniform}\n", "expected a mapping with type"),
        ("dropout: {type: float, min: 0, max: 1, stepp: 1}\n", "unknown key"),
        ("replace: true\ndropout: {type: float, min: 0, max: 1, when: {cell: [gru]}}\n", "which is not searched"),
        ("fixed: {batch_size: many}\n", "batch_size"),
    ],
)
def test_bad_space_files_name_file_and_field(tmp_path, text, message):
    path = _space_file(tmp_path, text)
    with pytest.raises(SeqkitError, match=message) as e:
        tuning.resolve_space(TASK, ToyConfig(), path)
    assert str(path) in str(e.value)


# --- hyperparameters -> config --------------------------------------------------------------
def test_declare_maps_values_onto_config_fields():
    cfg = ToyConfig(units=[4])
    space = {
        "num_layers": {"type": "int", "min": 1, "max": 3},
        "units": {"type": "choice", "values": [2, 4]},
        "regularizer": {"type": "choice", "values": [None, "zoneout"]},
        "regularizer_rate": {"type": "float", "min": 0.1, "max": 0.3, "when": {"regularizer": ["zoneout"]}},
        "clipnorm": {"type": "choice", "values": [None, 1.0]},
        "bidirectional": {"type": "boolean"},
    }
    space = {k: tuning.check_spec(k, v, cfg) for k, v in space.items()}
    hp = _hp()
    first = tuning.declare(hp, space, cfg)
    # First build: the config's own values where the space allows them.
    assert first["units"] == [4] and first["regularizer"] is None and "regularizer_rate" not in first
    hp.values.update({"num_layers": 3, "units_1": 2, "units_2": 4, "regularizer": '"zoneout"', "regularizer_rate": 0.2})
    hp.values.update({"clipnorm": "null", "bidirectional": True})
    trial_cfg = tuning.config_from_values(cfg, space, hp)
    assert trial_cfg.units == [4, 2, 4]
    assert (trial_cfg.regularizer, trial_cfg.regularizer_rate) == ("zoneout", 0.2)
    assert trial_cfg.clipnorm is None and trial_cfg.bidirectional is True


@pytest.mark.parametrize("name", ["sentiment", "ner", "forecast", "charlm"])
def test_each_task_searches_its_own_fields_and_its_defaults_are_the_base_config(name):
    """The first trial of a search is the base config: every default of the space must hold it."""
    import keras_tuner

    from seqkit.task import get_task

    own = {
        "sentiment": {"max_length", "truncation", "embedding_dim", "region_size", "pooling"},
        "ner": {"char_encoder", "char_dim", "char_filters", "word_dim", "head", "word_dropout", "lr_decay"},
        "forecast": {
            "input_length",
            "segment_length",
            "norm",
            "decoder",
            "loss",
            "channel_independent",
            "lr_decay",
            "ema_momentum",
        },
        "charlm": {"seq_len", "embedding_dim"},
    }[name]
    task = get_task(name)
    cfg = task.config_cls()
    space, _ = tuning.resolve_space(task, cfg)
    assert own <= set(space)
    # Fields prepare() reads must make a trial prepare its data again.
    assert {"seq_len", "input_length", "segment_length", "max_length", "word_dropout"} & set(space) <= set(
        task.PREPARE_FIELDS
    )
    hps = keras_tuner.HyperParameters()
    tuning.declare(hps, space, cfg)
    assert tuning.config_from_values(cfg, space, hps) == cfg


def test_first_trial_is_the_base_config(tmp_path):
    import pandas as pd

    _tune(tmp_path, trials=2)
    table = pd.read_csv(tmp_path / "tune" / "trials.csv")
    cfg = ToyConfig()
    assert table.loc[0, "units"] == str(cfg.units) and table.loc[0, "learning_rate"] == pytest.approx(cfg.learning_rate)
    assert table.loc[1, "learning_rate"] != pytest.approx(cfg.learning_rate)


def test_whole_stack_choice():
    cfg = ToyConfig()
    space = {"units": tuning.check_spec("units", {"type": "choice", "values": [[2], [4, 4]]}, cfg)}
    hp = _hp()
    tuning.declare(hp, space, cfg)
    hp.values["units"] = "[4, 4]"
    assert tuning.config_from_values(cfg, space, hp).units == [4, 4]


def test_nan_objective_fails_the_trial_and_nan_epochs_rank_last():
    import keras
    import keras_tuner

    h = keras.callbacks.History()
    h.history = {"val_loss": [float("nan"), float("nan")]}
    with pytest.raises(keras_tuner.errors.FailedTrialError):
        tuning._sanitise(h, TASK)
    h.history = {"val_loss": [float("nan"), 0.5]}
    assert tuning._sanitise(h, TASK).history["val_loss"] == [math.inf, 0.5]
    h.history = {"loss": [1.0]}
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="val_loss"):
        tuning._sanitise(h, TASK)


# --- a whole search ---------------------------------------------------------------------------
def _tune(tmp_path, trials=2, **kw):
    cfg = ToyConfig()
    return tuning.tune(
        TASK,
        cfg,
        DataArgs(),
        out=tmp_path / "tune",
        tuner=kw.pop("tuner", "random"),
        trials=trials,
        max_epochs=2,
        space_file=_space_file(tmp_path),
        **kw,
    )


def test_search_writes_table_best_config_and_model_and_best_config_retrains_to_the_same_metric(tmp_path):
    import pandas as pd

    from seqkit import training

    summary = _tune(tmp_path, trials=2)
    out = tmp_path / "tune"
    assert summary["completed"] == 2 and summary["trials"] == 2
    table = pd.read_csv(out / "trials.csv")
    assert list(table["trial_id"]) == [0, 1]
    assert set(table["status"]) == {"COMPLETED"}
    assert {"units", "learning_rate", "val_loss", "epochs", "seconds"} <= set(table.columns)
    assert "| trial_id | status |" in (out / "trials.md").read_text()
    assert (out / "objective.png").stat().st_size > 0
    best_row = table.loc[table["val_loss"].idxmin()]
    assert summary["best_objective"] == pytest.approx(best_row["val_loss"])
    # Plain data: keras-tuner keeps a metric's NumPy scalar, and a float32 is not JSON.
    assert type(summary["best_objective"]) is float
    json.dumps(summary)

    model = training.load_model(out / "best_model.keras")
    assert model.count_params() > 0

    # best.yaml is a complete config that `seqkit train --config` takes as is.
    cfg = resolve_config(ToyConfig, out / "best.yaml")
    assert cfg.learning_rate == pytest.approx(best_row["learning_rate"])
    assert cfg.units == [int(best_row["units"].strip("[]"))]
    assert cfg.epochs == 2
    _, metrics = training.train(TASK, cfg, DataArgs(), out=tmp_path / "run")
    assert metrics["best_val_loss"] == pytest.approx(summary["best_objective"], rel=1e-5)


@pytest.mark.slow
def test_rerun_resumes_finished_trials_are_not_rerun_and_budget_can_grow(tmp_path):
    from seqkit import io

    _tune(tmp_path, trials=1)
    log = tmp_path / "tune" / "tuners" / "tuner0.json"
    assert [e["trial_id"] for e in io.read_json(log)] == ["0"]
    again = _tune(tmp_path, trials=1)
    assert again["trials"] == 1
    assert [e["trial_id"] for e in io.read_json(log)] == ["0"]
    more = _tune(tmp_path, trials=2)
    assert more["trials"] == 2
    assert [e["trial_id"] for e in io.read_json(log)] == ["0", "1"]

    with pytest.raises(SeqkitError, match="different tuner"):
        _tune(tmp_path, trials=2, tuner="bayesian")
    fresh = _tune(tmp_path, trials=1, overwrite=True)
    assert fresh["trials"] == 1
    assert [e["trial_id"] for e in io.read_json(log)] == ["0"]


def test_minutes_budget_stops_starting_trials(tmp_path):
    summary = _tune(tmp_path, trials=5, minutes=1e-6)
    assert summary["trials"] == 1 and summary["completed"] == 1


@pytest.mark.slow
def test_hyperband_runs_and_records_trial_epochs(tmp_path):
    import pandas as pd

    summary = _tune(tmp_path, trials=3, tuner="hyperband")
    table = pd.read_csv(tmp_path / "tune" / "trials.csv")
    assert summary["completed"] == len(table) <= 3
    assert set(table["epochs"]) <= {1, 2}


def test_config_fields_replace_is_the_only_change():
    cfg = ToyConfig()
    space = {"learning_rate": {"type": "float", "min": 0.001, "max": 0.1}}
    hp = _hp()
    tuning.declare(hp, space, cfg)
    hp.values["learning_rate"] = 0.05
    assert tuning.config_from_values(cfg, space, hp) == dataclasses.replace(cfg, learning_rate=0.05)


def test_distributed_helper_reports_a_chief_that_fails_to_start(tmp_path, capsys):
    from seqkit import tuning_distributed

    status = tuning_distributed.main(["toy", "--workers", "2", "--module", "no_such_module_x", "--out", str(tmp_path)])
    assert status == 2
    assert "the chief exited with status 1" in capsys.readouterr().err
    assert (tmp_path / "logs" / "chief.log").exists()
    assert not (tmp_path / "logs" / "tuner0.log").exists()  # no worker was started


def test_a_hyperband_continuation_inherits_its_parents_training_time(tmp_path, monkeypatch):
    """A continued trial must not train longer in total than a fresh run of its config may."""
    import json

    import seqkit.training

    budgets = []

    class RecordingBudget(seqkit.training.TimeBudget):
        def __init__(self, minutes, elapsed_seconds=0.0):
            budgets.append(elapsed_seconds)
            super().__init__(minutes, elapsed_seconds)

    monkeypatch.setattr(seqkit.training, "TimeBudget", RecordingBudget)
    tuning.tune(
        TASK,
        ToyConfig(max_train_minutes=60.0),
        DataArgs(),
        out=tmp_path / "tune",
        tuner="hyperband",
        trials=5,
        max_epochs=3,
        space_file=_space_file(tmp_path),
    )
    trials = {}
    for path in (tmp_path / "tune" / "search").rglob("trial.json"):
        meta = json.loads(path.read_text())
        extra = json.loads((path.parent / "seqkit.json").read_text())
        trials[meta["trial_id"]] = (meta["hyperparameters"]["values"].get("tuner/trial_id"), extra["training_seconds"])
    continued = {t: p for t, (p, _) in trials.items() if p}
    assert continued, "the search should continue at least one trial"
    for trial_id, parent in continued.items():
        assert trials[trial_id][1] > trials[parent][1] > 0
    # Fresh trials start with no time spent; each continuation starts with its parent's.
    assert sorted(budgets) == sorted(
        [0.0] * (len(trials) - len(continued)) + [trials[p][1] for p in continued.values()]
    )
