"""Forecasting building blocks: windowing and splits, baselines, walk-forward backtesting, model layers.

Every forecaster, baseline or network, answers the same call
``forecast(values, origins, horizon) -> (len(origins), horizon, channels)``,
where origin ``t`` is the index of the first forecast step and only
``values[:t]`` may be used, so one backtest scores them all alike.
"""

from seqkit.forecasting.backtest import KerasForecaster, backtest
from seqkit.forecasting.baselines import (
    BASELINES,
    ArimaForecaster,
    EtsForecaster,
    Forecaster,
    MeanForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    make_baseline,
)
from seqkit.forecasting.windows import (
    ETT_BORDERS,
    Split,
    ett_split,
    fraction_split,
    make_windows,
    window_dataset,
    window_origins,
)

__all__ = [
    "BASELINES",
    "ETT_BORDERS",
    "ArimaForecaster",
    "EtsForecaster",
    "Forecaster",
    "KerasForecaster",
    "MeanForecaster",
    "NaiveForecaster",
    "SeasonalNaiveForecaster",
    "Split",
    "backtest",
    "ett_split",
    "fraction_split",
    "make_baseline",
    "make_windows",
    "window_dataset",
    "window_origins",
]
