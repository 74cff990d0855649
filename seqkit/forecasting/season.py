"""The seasonal period of a series that does not declare one: a calendar candidate, kept if the data show it.

The candidate is the calendar cycle of the frequency (:func:`candidate_period`):
24 for hourly data (and points per day below an hour), 7 for daily, 5 for
business-daily, 52 for weekly, 12 for monthly and 4 for quarterly data; yearly
data and irregular multiples have none. It is kept only when the *training* rows
show it (:func:`check_season`): each target column is detrended by the centred
moving average of one season (classical decomposition, statsmodels
``seasonal_decompose``), and the autocorrelation at lag ``m`` of what remains must
exceed ``1.96 / sqrt(n)`` (the band of a correlogram; ``n`` rows are left after the
moving average) for at least half of the target columns. Detrending first keeps a
trend or a slowly wandering level (a random walk, the 11-year sunspot cycle in
monthly data) from passing as a season. A season needs ``2 m + 2`` training rows
to be checked; fewer, and the period is 1.

How the rule was chosen (``python -m bench.season_rule``, bench/results/season_rule.md;
40 generated series per case): it keeps a 12-step candidate for random walks, AR(1)
and white noise in 0-12.5 % of series, and finds a season with noise 30 % of its
amplitude in 36 training rows 82.5 % of the time, in 60 rows 97.5-100 %, and a
52-step season in 156 rows always. The first differences against Bartlett's bound
(R ``forecast``'s seasonality test, on differences) found the 52-step season never
and the 36-row one 2.5 % of the time: differencing weakens a smooth season and
Bartlett's bound grows with it. The raw autocorrelation mistakes a random walk for
a season (78-100 % from 100 rows). A quasi-cycle near the candidate (an AR(2) with
a ~10-step cycle) passes as a 12-step season, as it does for every rule tried.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

Z = 1.96  # r_m must clear the correlogram's +-1.96/sqrt(n) band


@dataclasses.dataclass(frozen=True)
class SeasonCheck:
    """The outcome of :func:`check_season`: per target column the lag-``period`` autocorrelation and its bound."""

    period: int
    supported: bool
    acf: tuple[float, ...]
    bound: tuple[float, ...]
    reason: str

    def describe(self) -> str:
        if not self.acf:
            return self.reason
        pairs = ", ".join(f"{r:.2f} vs {b:.2f}" for r, b in zip(self.acf, self.bound))
        return f"lag-{self.period} autocorrelation of the detrended training part {pairs} (bound)"


def candidate_period(freq: str | None) -> int:
    """The calendar cycle of a pandas frequency string, in steps (1 when it has none)."""
    if not freq:
        return 1
    off = pd.tseries.frequencies.to_offset(freq)
    n = max(int(off.n), 1)
    per_year = {
        pd.offsets.MonthBegin: 12,
        pd.offsets.MonthEnd: 12,
        pd.offsets.QuarterBegin: 4,
        pd.offsets.QuarterEnd: 4,
        pd.offsets.Week: 52,
    }
    for kind, count in per_year.items():
        if isinstance(off, kind):
            return count // n if count % n == 0 and count // n > 1 else 1
    if isinstance(off, pd.offsets.BusinessDay):
        return 5 if n == 1 else 1
    if isinstance(off, pd.offsets.Day):
        return {1: 7, 7: 52}.get(n, 1)
    if isinstance(off, pd.offsets.Tick):
        day = pd.Timedelta(days=1)
        step = pd.Timedelta(off)
        if step < day and day % step == pd.Timedelta(0):
            return int(day // step)
    return 1


def check_season(train: np.ndarray, period: int) -> SeasonCheck:
    """Whether ``train`` ``(time, channels)`` (or ``(time,)``) shows a season of ``period`` steps."""
    from statsmodels.tsa.seasonal import seasonal_decompose
    from statsmodels.tsa.stattools import acf

    y = np.asarray(train, np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if period <= 1:
        return SeasonCheck(period, False, (), (), "no candidate period")
    if len(y) < 2 * period + 2:
        return SeasonCheck(
            period, False, (), (), f"the training part ({len(y)} rows) is shorter than two seasons of {period} + 2"
        )
    acfs, bounds = [], []
    for c in range(y.shape[1]):
        trend = seasonal_decompose(y[:, c], model="additive", period=period).trend
        x = (y[:, c] - trend)[~np.isnan(trend)]
        if np.ptp(x) == 0:  # nothing left once the trend is removed: no season
            acfs.append(0.0)
        else:
            acfs.append(float(acf(x, nlags=period, fft=True)[period]))
        bounds.append(Z / float(np.sqrt(len(x))))
    passed = sum(r > b for r, b in zip(acfs, bounds))
    return SeasonCheck(period, 2 * passed >= len(acfs), tuple(acfs), tuple(bounds), "")
