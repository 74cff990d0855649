"""Forecasting: window/split arithmetic, metrics, baselines, scaler isolation, data policy, bad input, model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seqkit.data.series import StandardScaler, check_length, read_series_csv
from seqkit.errors import SeqkitError
from seqkit.forecasting import (
    ArimaForecaster,
    EtsForecaster,
    MeanForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    backtest,
    ett_split,
    fraction_split,
    make_windows,
    window_origins,
)
from seqkit.metrics import forecast as fm
from seqkit.task import DataArgs


# --- windows and splits -----------------------------------------------------------------------------
def test_window_origins_hand_computed():
    assert window_origins(0, 20, 4, 1, 5).tolist() == list(range(5, 17))
    assert window_origins(10, 20, 4, 3, 5).tolist() == [10, 13, 16]
    assert window_origins(0, 8, 4, 1, 5).tolist() == []


def test_ett_split_and_window_counts():
    sp = ett_split()
    assert (sp.train, sp.valid, sp.test) == ((0, 8640), (8640, 11520), (11520, 14400))
    L = 720
    for h, n in [(96, 2785), (192, 2689), (336, 2545), (720, 2161)]:
        test = window_origins(*sp.test, h, 1, L)
        assert len(test) == n == 2880 - h + 1  # one window per step, none dropped
        assert test[0] == 11520 and test[-1] + h == 14400
    train = window_origins(*sp.train, 96, 1, L)
    assert train[0] == L and train[-1] == 8640 - 96  # the context starts at row 0; targets stay in train
    valid = window_origins(*sp.valid, 96, 1, L)
    assert valid[0] == 8640 and valid[-1] == 11520 - 96


def test_fraction_split():
    sp = fraction_split(100, 0.1, 0.2)
    assert (sp.train, sp.valid, sp.test) == ((0, 70), (70, 80), (80, 100))


def test_make_windows_indices():
    v = np.arange(20, dtype=float)[:, None] * np.array([[1.0, 10.0]])
    x, y = make_windows(v, np.array([5, 9]), 3, 2, [0, 1], [1])
    assert x.shape == (2, 3, 2) and y.shape == (2, 2, 1)
    assert x[0, :, 0].tolist() == [2, 3, 4] and x[1, :, 1].tolist() == [60, 70, 80]
    assert y[:, :, 0].tolist() == [[50, 60], [90, 100]]


# --- metrics ----------------------------------------------------------------------------------------
def test_metrics_hand_computed():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([2.0, 2.0, 2.0, 2.0])
    assert fm.mae(t, p) == pytest.approx(1.0)
    assert fm.mse(t, p) == pytest.approx(1.5)
    assert fm.rmse(t, p) == pytest.approx(math.sqrt(1.5))
    assert fm.mape(t, p) == pytest.approx(100 * (1 + 0 + 1 / 3 + 2 / 4) / 4)
    assert fm.smape(t, p) == pytest.approx(100 * (2 / 3 + 0 + 2 / 5 + 4 / 6) / 4)
    train = np.array([1.0, 3.0, 2.0, 5.0])
    assert fm.mase(t, p, train, 1) == pytest.approx(1.0 / 2.0)  # scale mean(|2|, |1|, |3|) = 2
    assert fm.mase(t, p, train, 2) == pytest.approx(1.0 / 1.5)  # scale mean(|1|, |2|) = 1.5


def test_mase_per_channel_and_zero_mape():
    t = np.zeros((1, 2, 2))
    p = np.ones((1, 2, 2))
    train = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])  # scales 1 and 2
    assert fm.mase(t, p, train, 1) == pytest.approx((1 + 0.5) / 2)
    assert math.isnan(fm.mape(t, p))
    assert fm.smape(np.zeros(2), np.zeros(2)) == 0.0
    steps = fm.error_by_step(t, p)
    assert steps["mse"] == [1.0, 1.0]


# --- baselines --------------------------------------------------------------------------------------
def test_naive_seasonal_mean_baselines():
    v = np.arange(12, dtype=float)[:, None]
    o = np.array([6, 8])
    assert NaiveForecaster([0]).forecast(v, o, 3)[:, :, 0].tolist() == [[5, 5, 5], [7, 7, 7]]
    sn = SeasonalNaiveForecaster([0], 2).forecast(v, o, 3)[:, :, 0].tolist()
    assert sn == [[4, 5, 4], [6, 7, 6]]
    mean = MeanForecaster([0], 3).forecast(v, o, 2)[:, :, 0]
    np.testing.assert_allclose(mean, [[4, 4], [6, 6]])


def _seasonal_series(n=160, m=12):
    t = np.arange(n)
    rng = np.random.default_rng(0)
    return (3 * np.sin(2 * np.pi * t / m) + 0.05 * t + rng.normal(0, 0.3, n))[:, None]


def test_ets_matches_statsmodels_at_the_end_of_train():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = _seasonal_series()
    f = EtsForecaster([0], 12).fit(y[:120])
    ref = ExponentialSmoothing(
        y[:120, 0],
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=12,
        initialization_method="estimated",
    ).fit()
    np.testing.assert_allclose(f.forecast(y, np.array([120]), 15)[0, :, 0], ref.forecast(15), atol=1e-4)


def test_arima_matches_statsmodels_at_the_end_of_train():
    y = _seasonal_series(100)
    f = ArimaForecaster([0], order=(1, 1, 1)).fit(y[:80])
    np.testing.assert_allclose(f.forecast(y, np.array([80]), 5)[0, :, 0], f.results[0].forecast(5), atol=1e-4)


def test_backtest_shapes_and_truth():
    v = np.arange(30, dtype=float)[:, None]
    o = window_origins(20, 30, 4, 2, 5)
    y_true, y_pred = backtest(NaiveForecaster([0]), v, o, 4, [0])
    assert y_true.shape == y_pred.shape == (4, 4, 1)
    assert y_true[0, :, 0].tolist() == [20, 21, 22, 23]


# --- data, policy, bad input ------------------------------------------------------------------------
def _csv(tmp_path, rows, header="date,a,b", name="s.csv"):
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def _hours(n, start=0):
    return [f"2020-01-01 {h:02d}:00:00" for h in range(start, start + n)]


def test_read_series_and_freq(tmp_path):
    p = _csv(tmp_path, [f"{d},{i},{2 * i}" for i, d in enumerate(_hours(6))])
    s = read_series_csv(p, targets=["b"], covariates=["a"])
    assert s.columns == ["b", "a"] and s.values.shape == (6, 2) and s.freq == "h"
    assert s.values[:, 0].tolist() == [0, 2, 4, 6, 8, 10]


def test_missing_policy(tmp_path):
    hours = _hours(6)
    rows = [f"{d},{float(i)},{float(i)}" for i, d in enumerate(hours) if i != 3]  # 03:00 missing
    p = _csv(tmp_path, rows)
    with pytest.raises(SeqkitError, match=r"s\.csv: 1 missing timestamp\(s\), first 2020-01-01 03:00:00"):
        read_series_csv(p, freq="h")
    s = read_series_csv(p, freq="h", missing="ffill")
    assert s.values[3, 0] == 2.0 and len(s) == 6 and any("missing timestamp" in m for m in s.log)
    s = read_series_csv(p, freq="h", missing="interpolate")
    assert s.values[3, 0] == pytest.approx(3.0)
    nan = _csv(tmp_path, [f"{d},{i},{'' if i == 2 else i}" for i, d in enumerate(hours)], name="n.csv")
    with pytest.raises(SeqkitError, match=r"n\.csv:4: field 'b': 1 missing value"):
        read_series_csv(nan)
    assert read_series_csv(nan, missing="interpolate").values[2, 1] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "rows,kwargs,pattern",
    [
        (["2020-01-01 01:00:00,1,1", "2020-01-01 00:00:00,1,1", "2020-01-01 02:00:00,1,1"], {}, r":3: .*not sorted"),
        (["2020-01-01 00:00:00,1,1", "2020-01-01 00:00:00,1,1", "2020-01-01 01:00:00,1,1"], {}, r":3: .*duplicate"),
        (
            ["2020-01-01 00:00:00,1,x", "2020-01-01 01:00:00,1,1", "2020-01-01 02:00:00,1,1"],
            {},
            r":2: field 'b': non-num",
        ),
        (
            ["2020-01-01 00:00:00,1,1", "2020-01-01 01:00:00,1,1", "2020-01-01 02:00:00,1,1"],
            {"targets": ["zz"]},
            "'zz'",
        ),
        (
            ["yesterday,1,1", "2020-01-01 01:00:00,1,1", "2020-01-01 02:00:00,1,1"],
            {},
            r":2: field 'date': cannot parse",
        ),
    ],
)
def test_bad_inputs(tmp_path, rows, kwargs, pattern):
    p = _csv(tmp_path, rows)
    with pytest.raises(SeqkitError, match=pattern) as e:
        read_series_csv(p, **kwargs)
    assert "s.csv" in str(e.value) and "\n" not in str(e.value)


def test_too_short_series(tmp_path):
    p = _csv(tmp_path, [f"{d},{i},{i}" for i, d in enumerate(_hours(10))])
    s = read_series_csv(p)
    with pytest.raises(SeqkitError, match=r"s\.csv: series has 10 rows, shorter than input_length \+ horizon = 12"):
        check_length(s, 12)
    from tasks.forecast import ForecastConfig, make_plan

    cfg = ForecastConfig(input_length=8, horizons=[4])
    with pytest.raises(SeqkitError, match="s.csv"):
        make_plan(cfg, DataArgs(data=str(p)))


def test_scaler_never_sees_test_rows(tmp_path):
    from tasks.forecast import ForecastConfig, fit_scaler, make_plan, write_fixture_csv

    p = write_fixture_csv(tmp_path / "f.csv", 60)
    cfg = ForecastConfig(targets=["a"], covariates=["b", "c"], input_length=8, horizons=[4], period=6)
    plan = make_plan(cfg, DataArgs(data=str(p)))
    scaler = fit_scaler(plan)
    frame = pd.read_csv(p)
    frame.loc[plan.split.valid[0] :, ["a", "b", "c"]] = 1e6  # poison validation and test rows
    frame.to_csv(p, index=False)
    plan2 = make_plan(cfg, DataArgs(data=str(p)))
    np.testing.assert_allclose(fit_scaler(plan2).mean, scaler.mean)
    np.testing.assert_allclose(fit_scaler(plan2).std, scaler.std)
    tuning = make_plan(cfg, DataArgs(data=str(p)), for_tuning=True)
    assert len(tuning.series) == plan.split.valid[1]  # the tuner never holds test rows


def test_scaler_roundtrip():
    v = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = StandardScaler.fit(v, ["x", "y"])
    s2 = StandardScaler.from_dict(s.to_dict())
    np.testing.assert_allclose(s2.inverse(s2.transform(v)), v, atol=1e-6)
    np.testing.assert_allclose(s.transform(v)[:, 1], [0.0, 0.0])  # constant column: centred, not divided by 0


# --- model ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(decoder="direct", channel_independent=False, norm="revin", skip=True),
        dict(cell="lstm", bidirectional=True, segment=3),
    ],
)
def test_model_shapes_and_save_load(tmp_path, kw):
    import keras

    from seqkit.forecasting.model import build_forecaster
    from tasks.forecast import ForecastConfig

    seg = kw.pop("segment", 4)
    cfg = ForecastConfig(units=[4], **kw)
    model = build_forecaster(cfg, 10, 7, 3, 2, seg)
    x = np.random.default_rng(0).normal(size=(5, 10, 3)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == (5, 7, 2)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(back(x)), y, atol=1e-6)


def test_last_value_norm_makes_the_model_shift_equivariant():
    from seqkit.forecasting.model import build_forecaster
    from tasks.forecast import ForecastConfig

    model = build_forecaster(ForecastConfig(units=[4], norm="last"), 8, 4, 2, 2, 4)
    x = np.random.default_rng(1).normal(size=(3, 8, 2)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x + 100.0)), np.asarray(model(x)) + 100.0, atol=1e-3)


def test_lr_decay_schedules_the_rate_by_epoch_and_rejects_negatives():
    from seqkit.errors import SeqkitError
    from tasks.forecast import ForecastConfig, ForecastTask

    task = ForecastTask()
    assert task.callbacks(ForecastConfig(), None) == []
    (sched,) = task.callbacks(ForecastConfig(learning_rate=2e-3, lr_decay=0.5), None)
    assert [sched.schedule(e, 0.0) for e in (0, 2)] == pytest.approx([2e-3, 1e-3])
    with pytest.raises(SeqkitError, match="lr_decay"):
        ForecastConfig(lr_decay=-0.1).validate("cfg.yaml")


def test_ema_validation_judges_and_saves_the_moving_average(tmp_path):
    """With ``ema_momentum`` the monitored val_mse is the averaged weights' and those are saved."""
    import keras

    from seqkit.config import from_dict
    from seqkit.training import load_model, train
    from tasks.forecast import TASK, ForecastConfig

    data, overrides = TASK.fixture(tmp_path / "data")
    fields = {**overrides, "epochs": 3, "seed": 3, "ema_momentum": 0.5, "early_stopping": 0, "baselines": []}
    cfg = from_dict(ForecastConfig, fields, source="test")
    _, metrics = train(TASK, cfg, data, out=tmp_path / "run")
    model = load_model(tmp_path / "run" / "model.keras")
    model.compile(loss="mae", metrics=[keras.metrics.MeanSquaredError(name="mse")])
    valid = TASK.prepare(cfg, data).valid
    assert model.evaluate(valid, return_dict=True, verbose=0)["mse"] == pytest.approx(metrics["best_val_mse"], rel=1e-4)
    with pytest.raises(SeqkitError, match="ema_momentum"):
        ForecastConfig(ema_momentum=1.0).validate("cfg.yaml")
