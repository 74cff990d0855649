"""Data as users bring it: any datetime resolution, gaps, zones across DST, short and seasonal series,
stray byte-order marks and zero-width characters. Every fixture is generated here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqkit.data.series import _infer_freq, read_series_csv
from seqkit.errors import SeqkitError
from seqkit.forecasting import fraction_split
from seqkit.forecasting.season import candidate_period, check_season
from seqkit.task import DataArgs

ROOT = Path(__file__).resolve().parents[1]
UNITS = ["s", "ms", "us", "ns"]


def _write_series(path: Path, dates, values, fmt: str | None = "%Y-%m-%d") -> Path:
    stamps = dates.strftime(fmt) if fmt else dates.astype(str)
    pd.DataFrame({"date": stamps, "y": np.round(values, 4)}).to_csv(path, index=False)
    return path


def _seasonal(n: int, period: int, seed: int = 0, noise: float = 0.5) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 0.3 * t + 10 * np.sin(2 * np.pi * t / period) + noise * rng.normal(size=n)


def _random_walk(n: int, seed: int = 0) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(seed).normal(size=n))


# --- frequency at every resolution -----------------------------------------------------------------
def test_daily_series_with_two_missing_dates(tmp_path):
    dates = pd.date_range("1981-01-01", "1990-12-31", freq="D")
    keep = np.ones(len(dates), bool)
    keep[[4, 1000]] = False  # 1981-01-05 and 1983-09-28
    p = _write_series(tmp_path / "daily.csv", dates[keep], _seasonal(len(dates), 7)[keep])
    with pytest.raises(SeqkitError, match=r"daily\.csv: 2 missing timestamp\(s\), first 1981-01-05;"):
        read_series_csv(p)
    s = read_series_csv(p, missing="interpolate")
    assert s.freq == "D" and len(s) == len(dates) and s.missing_timestamps == 2
    assert s.log[0].startswith("2 missing timestamp(s) inserted (first 1981-01-05)")
    assert s.filled_values == 2 and np.isfinite(s.values).all()


GRIDS = [
    ("D", "D"),
    ("B", "B"),
    ("W-SUN", "7D"),
    ("MS", "MS"),
    ("ME", "ME"),
    ("QS-JAN", "QS-JAN"),
    ("QE-DEC", "QE-DEC"),
    ("YS-JAN", "YS-JAN"),
    ("YE-DEC", "YE-DEC"),
    ("h", "h"),
    ("15min", "15min"),
]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("freq,expected", GRIDS)
def test_freq_inferred_with_and_without_gaps_at_every_unit(freq, expected, unit):
    full = pd.date_range("2001-01-01", periods=120, freq=freq).as_unit(unit)
    assert pd.date_range(full[0], full[-1], freq=_infer_freq(full, "x")).equals(full)
    gappy = full.delete([7, 50, 51])
    inferred = _infer_freq(gappy, "x")
    grid = pd.date_range(gappy[0], gappy[-1], freq=inferred)
    assert grid.equals(full), (inferred, expected)  # the gaps are exactly the three deleted points
    assert len(grid) - len(gappy) == 3


@pytest.mark.parametrize(
    "freq,fmt",
    [("s", "%Y-%m-%d %H:%M:%S"), ("ms", "%Y-%m-%d %H:%M:%S.%f")],
)
def test_second_and_millisecond_timestamps(tmp_path, freq, fmt):
    dates = pd.date_range("2020-01-01", periods=50, freq=freq)
    s = read_series_csv(_write_series(tmp_path / "fast.csv", dates, np.arange(50.0), fmt))
    assert s.freq == freq and len(s) == 50 and s.missing_timestamps == 0
    p = _write_series(tmp_path / "gap.csv", dates.delete([10]), np.delete(np.arange(50.0), 10), fmt)
    with pytest.raises(SeqkitError, match=r"gap\.csv: 1 missing timestamp"):
        read_series_csv(p)
    assert read_series_csv(p, missing="interpolate").values[10, 0] == pytest.approx(10.0)


@pytest.mark.parametrize("start", ["2021-03-27", "2021-10-30"])  # clocks forward, clocks back
def test_zone_aware_hourly_series_across_dst(tmp_path, start):
    dates = pd.date_range(start, periods=72, freq="h", tz="Europe/Berlin")
    p = _write_series(tmp_path / "tz.csv", dates, np.arange(72.0), fmt=None)
    assert len({d[-6:] for d in pd.read_csv(p)["date"]}) == 2  # two UTC offsets in the file
    s = read_series_csv(p)
    assert s.freq == "h" and len(s) == 72 and s.missing_timestamps == 0
    assert s.values[:, 0].tolist() == list(range(72))


def test_zone_aware_daily_series_keeps_local_days(tmp_path):
    dates = pd.date_range("2021-03-20", periods=20, freq="D", tz="Europe/Berlin")
    s = read_series_csv(_write_series(tmp_path / "d.csv", dates, np.arange(20.0), fmt=None))
    assert s.freq == "D" and len(s) == 20 and s.dates[8] == pd.Timestamp("2021-03-28")


# --- seasonal period --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "freq,period",
    [("h", 24), ("30min", 48), ("D", 7), ("B", 5), ("W-SUN", 52), ("7D", 52), ("MS", 12), ("ME", 12)]
    + [("QS-JAN", 4), ("QE-DEC", 4), ("YS-JAN", 1), ("2D", 1), ("7h", 1), (None, 1)],
)
def test_candidate_period_from_frequency(freq, period):
    assert candidate_period(freq) == period


def test_season_check_keeps_only_what_the_data_show():
    assert check_season(_seasonal(120, 12), 12).supported
    # A trend or a wandering level is not a season: the check runs on first differences.
    assert not check_season(_random_walk(300), 12).supported
    assert not check_season(np.random.default_rng(1).normal(size=300), 12).supported
    short = check_season(_seasonal(20, 12), 12)
    assert not short.supported and "shorter than two seasons" in short.reason


def _plan(path: Path, **overrides):
    from tasks.forecast import ForecastConfig, make_plan

    return make_plan(ForecastConfig(**overrides), DataArgs(data=str(path)))


@pytest.mark.parametrize(
    "n,freq,season,period,horizon,input_length",
    [
        (108, "MS", 12, 12, 12, 36),  # 74 training rows: 27 windows at L=36
        (100, "MS", 12, 12, 12, 36),  # 68 training rows: 21 windows at L=36
        (76, "MS", 12, 12, 12, 24),  # 49 training rows: L=36 would leave 2 (< H) windows, L=24 leaves 14
        (60, "MS", 12, 12, 12, 12),  # 36 training rows: one horizon of context
        (60, "QS-JAN", 4, 4, 4, 12),
        (260, "W-SUN", 52, 52, 52, 52),
        (100, "W-SUN", 52, 1, 12, 36),  # too short to hold out and check 52 weeks: no season
        (200, "D", 7, 7, 7, 21),
    ],
)
def test_period_horizon_and_input_length_derived_from_the_data(
    tmp_path, n, freq, season, period, horizon, input_length
):
    dates = pd.date_range("2000-01-01", periods=n, freq=freq)
    plan = _plan(_write_series(tmp_path / "s.csv", dates, _seasonal(n, season)))
    assert (plan.period, plan.period_source) == (period, "inferred")
    assert plan.horizons == [horizon] and plan.input_length == input_length
    sp = plan.split
    assert sp.valid[1] - sp.valid[0] >= horizon and sp.test[1] - sp.test[0] >= horizon
    assert sp.train[1] >= plan.input_length + horizon  # at least one training window


def test_unseasonal_monthly_series_gets_period_1_and_a_given_period_is_kept(tmp_path):
    dates = pd.date_range("2000-01-01", periods=120, freq="MS")
    p = _write_series(tmp_path / "rw.csv", dates, _random_walk(120))
    plan = _plan(p)
    assert plan.period == 1 and plan.horizons == [12] and "not in the data" in plan.notes[0]
    plan = _plan(p, period=12)
    assert (plan.period, plan.period_source) == (12, "given")


def test_registered_data_sets_keep_their_declared_period():
    from tasks.forecast import DATASETS, ForecastConfig, _defaults

    for name in ("airline", "sunspots", "statsmodels_sunspots"):
        assert _defaults(ForecastConfig(dataset=name), explicit_csv=False)["period"] == DATASETS[name]["period"]


def test_period_check_never_reads_validation_or_test_rows(tmp_path):
    n = 108
    dates = pd.date_range("2000-01-01", periods=n, freq="MS")
    values = _seasonal(n, 12)
    plan = _plan(_write_series(tmp_path / "a.csv", dates, values))
    values[plan.split.train[1] :] = np.random.default_rng(5).normal(size=n - plan.split.train[1]) * 1e3
    poisoned = _plan(_write_series(tmp_path / "b.csv", dates, values))
    assert poisoned.period == plan.period == 12 and poisoned.notes[0] == plan.notes[0]


# --- splits for short series ------------------------------------------------------------------------
def test_split_holds_out_whole_horizons():
    assert fraction_split(100, 0.1, 0.2) == fraction_split(100, 0.1, 0.2, 4, 8)  # fractions suffice
    sp = fraction_split(60, 0.1, 0.2, 12, 24)
    assert (sp.train, sp.valid, sp.test) == ((0, 36), (36, 48), (48, 60))
    sp = fraction_split(88, 0.1, 0.2, 12, 60)  # a long given context: the test part gives back rows too
    assert (sp.train, sp.valid, sp.test) == ((0, 60), (60, 72), (72, 88))
    with pytest.raises(ValueError, match=r"series has 47 rows, fewer than the 48 needed"):
        fraction_split(47, 0.1, 0.2, 12, 24)


def test_too_short_series_names_the_minimum_length(tmp_path):
    dates = pd.date_range("2000-01-01", periods=40, freq="MS")
    p = _write_series(tmp_path / "short.csv", dates, _random_walk(40))
    with pytest.raises(SeqkitError, match=r"short\.csv: series has 40 rows, fewer than the 48 needed") as e:
        _plan(p)
    assert "\n" not in str(e.value)


def test_short_series_train_with_more_steps_per_epoch():
    from tasks.forecast import MIN_STEPS_PER_EPOCH, epoch_shape

    assert epoch_shape(8000, 128) == (128, 1)  # long series: as configured
    batch, passes = epoch_shape(54, 128)
    assert batch == 8 and -(-54 * passes // batch) >= MIN_STEPS_PER_EPOCH
    assert epoch_shape(3000, 128) == (93, 1)  # smaller batches first
    assert epoch_shape(10, 4)[0] == 4  # never a larger batch than configured


# --- training end to end ----------------------------------------------------------------------------
def test_monthly_csv_trains_from_the_command_line_and_reports_the_period(tmp_path):
    n = 100
    dates = pd.date_range("2010-01-01", periods=n, freq="MS")
    p = _write_series(tmp_path / "sales.csv", dates, _seasonal(n, 12))
    out = tmp_path / "run"
    # Only the model's size is set (to keep the test fast): period, horizon, context and split come from the data.
    args = ["train", "forecast", "--data", str(p), "--out", str(out), "--set", "units=[4]", "--set", "epochs=1"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-m", "seqkit", *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "period 12 (inferred)" in r.stdout and "period 12 inferred from the frequency MS" in r.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["period"], metrics["period_source"], metrics["freq"]) == (12, "inferred", "MS")
    assert metrics["input_length"] == 36 and "12" in metrics["S"]
    assert metrics["baselines"]["seasonal_naive"]["S"]["12"]["mase"] != metrics["baselines"]["naive"]["S"]["12"]["mase"]
    assert json.loads((out / "series.json").read_text())["period_source"] == "inferred"


def test_gaps_filled_on_request_are_counted_in_metrics(tmp_path):
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig

    dates = pd.date_range("2020-01-01", periods=120, freq="D")
    p = _write_series(tmp_path / "d.csv", dates.delete([30, 31]), _seasonal(120, 7)[2:])
    cfg = ForecastConfig(
        missing="interpolate", units=[4], epochs=1, cell="simple", decoder="direct", baselines=["seasonal_naive"]
    )
    _, metrics = train(TASK, cfg, DataArgs(data=str(p)), out=tmp_path / "run")
    assert metrics["missing_timestamps"] == 2 and metrics["period"] == 7
    assert metrics["data_log"][0].startswith("2 missing timestamp(s) inserted (first 2020-01-31)")


# --- zero-width lines -------------------------------------------------------------------------------
def test_conll_file_ending_with_a_bom_line(tmp_path):
    from seqkit.data.conll import read_conll

    p = tmp_path / "t.txt"
    p.write_text("\ufeffEU\tB-ORG\nrejects\tO\n\u200b\nPeter\tB-PER\n \u2060 \n\ufeff\n", encoding="utf-8")
    sents = read_conll(p)
    assert [s.tokens for s in sents] == [["\ufeffEU", "rejects"], ["Peter"]]  # a BOM inside a token is text


def test_text_corpus_with_a_zero_width_line(tmp_path):
    from seqkit.data.corpus import CharVocab, read_text

    p = tmp_path / "c.txt"
    p.write_text("\ufeffto be\n\u200b\u200c\u200d\nor not\u200bto\n\ufeff\n", encoding="utf-8")
    text = read_text(p)
    assert text == "to be\n\nor not\u200bto\n\n"
    assert "\ufeff" not in CharVocab.build(text).chars


def test_csv_readers_skip_zero_width_lines(tmp_path):
    from seqkit.data.text import load_texts

    p = tmp_path / "r.csv"
    p.write_text("\ufefftext,label\ngood film,pos\n\u200b\nbad \ufeff film,neg\n\ufeff\n", encoding="utf-8")
    data = load_texts(p)
    assert data.texts == ["good film", "bad \ufeff film"] and data.labels == ["pos", "neg"]
    s = tmp_path / "s.csv"
    s.write_text("date,y\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n\ufeff\n", encoding="utf-8")
    assert read_series_csv(s).values[:, 0].tolist() == [1, 2, 3]
