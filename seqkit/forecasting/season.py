"""The seasonal period of a series that does not declare one: a calendar candidate, kept if the data show it.

The candidate is the calendar cycle of the frequency (:func:`candidate_period`):
24 for hourly data (and points per day below an hour), 7 for daily, 5 for
business-daily, 52 for weekly, 12 for monthly and 4 for quarterly data; yearly
and irregular multiples have none. It is kept only when the *training* rows show
it (:func:`check_season`): the autocorrelation at lag ``m`` of the first
differences must exceed the one-sided 5 % significance bound of Bartlett's formula,
``r_m > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)`` (statsmodels ``acf`` with
``alpha=0.1``), for at least half of the target columns. Differencing first keeps a
trend or a slowly wandering level (a random walk, the 11-year sunspot cycle in
monthly data) from passing as a 12-month season; the same bound on the raw
series is R ``forecast``'s seasonality test. A season needs ``2 m + 2`` training
rows to be checked (what a seasonal Holt-Winters fit needs); fewer, and the
period is 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

# One-sided 5 % level: the test asks for positive correlation at the seasonal lag only.
ALPHA = 0.10  # statsmodels' acf gives a two-sided interval; its lower end > 0 is the one-sided test at 5 %


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
        return f"lag-{self.period} autocorrelation of the training part's first differences {pairs} (bound)"


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
    from statsmodels.tsa.stattools import acf

    y = np.asarray(train, np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if period <= 1:
        return SeasonCheck(period, False, (), (), "no candidate period")
    if len(y) < 2 * period + 2:
        return SeasonCheck(
            period, False, (), (), f"the training part ({len(y)} rows) is shorter than two seasons of {period} + 2"
        )
    d = np.diff(y, axis=0)
    acfs, bounds = [], []
    for c in range(d.shape[1]):
        if np.ptp(d[:, c]) == 0:  # a constant (or linear) column has no autocorrelation to speak of
            acfs.append(0.0)
            bounds.append(float("inf"))
            continue
        res = acf(d[:, c], nlags=period, alpha=ALPHA, fft=True, result_object=True)
        acfs.append(float(res.acf[period]))
        bounds.append(float(res.acf[period] - res.confint[period, 0]))
    passed = sum(r > b for r, b in zip(acfs, bounds))
    supported = 2 * passed >= len(acfs)
    return SeasonCheck(period, supported, tuple(acfs), tuple(bounds), "")
