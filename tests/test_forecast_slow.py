"""Real-data forecasting checks (slow: trains on the shared data sets)."""

from __future__ import annotations

import os

import pytest

from seqkit.config import resolve_config
from seqkit.task import DataArgs

pytestmark = pytest.mark.slow


def _need(name):
    from seqkit.data.registry import resolve
    from seqkit.errors import SeqkitError

    try:
        return resolve(name, download=False)
    except SeqkitError as e:
        pytest.skip(f"{name} not available (set SEQKIT_DATA_DIR): {e}")


def test_airline_model_beats_seasonal_naive(tmp_path):
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig

    _need("airline")
    cfg = resolve_config(ForecastConfig, overrides=["dataset=airline", "epochs=30", "baselines=[seasonal_naive,ets]"])
    _, m = train(TASK, cfg, DataArgs(), out=tmp_path / "run")
    assert m["S"]["12"]["mase"] < m["baselines"]["seasonal_naive"]["S"]["12"]["mase"]


def test_statsmodels_sunspots_demo(tmp_path):
    from tasks.forecast import demo

    m = demo(tmp_path / "demo")
    assert m["S"]["11"]["mase"] < m["baselines"]["naive"]["S"]["11"]["mase"]
    assert os.path.exists(tmp_path / "demo" / "forecast.png")
