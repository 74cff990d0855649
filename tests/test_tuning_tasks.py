"""Every real task through a two-trial search on its fixture (slow: four tasks, a few models each)."""

from __future__ import annotations

import pytest

from seqkit.task import TASK_NAMES

SPACE = """\
replace: true
learning_rate: {type: float, min: 0.001, max: 0.01, sampling: log}
units: {type: choice, values: [4, 8]}
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_tunes_on_its_fixture(tmp_path, name):
    import pandas as pd

    from seqkit.config import from_dict, resolve_config
    from seqkit.task import get_task
    from seqkit.training import load_model
    from seqkit.tuning import tune

    task = get_task(name)
    data, overrides = task.fixture(tmp_path / "data")
    cfg = from_dict(task.config_cls, overrides, source="fixture")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    summary = tune(task, cfg, data, out=tmp_path / "tune", tuner="random", trials=2, max_epochs=1, space_file=space)
    assert summary["completed"] == 2 and summary["objective"] == task.objective
    table = pd.read_csv(tmp_path / "tune" / "trials.csv")
    assert task.objective in table.columns and len(table) == 2
    best = resolve_config(task.config_cls, tmp_path / "tune" / "best.yaml")
    assert best.units in ([4], [8]) and best.epochs == 1
    assert load_model(tmp_path / "tune" / "best_model.keras").count_params() > 0
