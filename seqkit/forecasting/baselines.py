"""Baseline forecasters, scored by the same backtest as the networks.

All work per channel on the columns ``cols`` of the series. ETS and ARIMA are
fitted with statsmodels on the training rows only; their fixed parameters are
then run forward through the whole series, so the forecast from origin ``t``
is the model's h-step forecast given ``values[:t]`` (what refitting the state,
not the parameters, at every origin would give) at the cost of one filter pass.
"""

from __future__ import annotations

import warnings

import numpy as np


class Forecaster:
    """Interface: ``fit(train)`` on ``(T, all columns)`` training rows, ``forecast(values, origins, H)``."""

    name = "forecaster"

    def __init__(self, cols: list[int]):
        self.cols = list(cols)

    def fit(self, train: np.ndarray) -> Forecaster:
        return self

    def forecast(self, values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError


class NaiveForecaster(Forecaster):
    """Repeat the last observed value."""

    name = "naive"

    def forecast(self, values, origins, horizon):
        last = np.asarray(values)[np.asarray(origins) - 1][:, self.cols]
        return np.repeat(last[:, None, :], horizon, axis=1)


class SeasonalNaiveForecaster(Forecaster):
    """Repeat the last observed season: ``y[t + k] = y[t - m + (k mod m)]``."""

    name = "seasonal_naive"

    def __init__(self, cols, period: int):
        super().__init__(cols)
        self.period = max(int(period), 1)

    def forecast(self, values, origins, horizon):
        m = self.period
        idx = np.asarray(origins)[:, None] - m + (np.arange(horizon) % m)[None, :]
        return np.asarray(values)[idx][:, :, self.cols]


class MeanForecaster(Forecaster):
    """The mean of the last ``window`` observed values (the model's input window)."""

    name = "mean"

    def __init__(self, cols, window: int):
        super().__init__(cols)
        self.window = int(window)

    def forecast(self, values, origins, horizon):
        v = np.asarray(values)[:, self.cols]
        c = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0, dtype=np.float64)])
        o = np.asarray(origins)
        lo = np.maximum(o - self.window, 0)
        mean = (c[o] - c[lo]) / (o - lo)[:, None]
        return np.repeat(mean[:, None, :], horizon, axis=1).astype(np.float32)


class EtsForecaster(Forecaster):
    """Additive damped-trend Holt-Winters (seasonal when ``period`` > 1), statsmodels-fitted per channel.

    The recursion below is statsmodels' ``holtwinters`` one (level, damped trend,
    additive season), run over the whole series with the fitted parameters.
    """

    name = "ets"

    def __init__(self, cols, period: int, max_seasonal_period: int = 52):
        super().__init__(cols)
        self.period = int(period) if 1 < int(period) <= max_seasonal_period else 0
        self.params: list[dict] = []

    def fit(self, train):
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        self.params = []
        for c in self.cols:
            y = np.asarray(train, np.float64)[:, c]
            seasonal = self.period and len(y) >= 2 * self.period + 2
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = ExponentialSmoothing(
                    y,
                    trend="add",
                    damped_trend=True,
                    seasonal="add" if seasonal else None,
                    seasonal_periods=self.period if seasonal else None,
                    initialization_method="estimated",
                ).fit()
            p = res.params
            self.params.append(
                dict(
                    alpha=float(p["smoothing_level"]),
                    beta=float(p["smoothing_trend"]),
                    gamma=float(p["smoothing_seasonal"]) if seasonal else 0.0,
                    phi=float(p["damping_trend"]),
                    l0=float(p["initial_level"]),
                    b0=float(p["initial_trend"]),
                    s0=np.asarray(p["initial_seasons"], np.float64) if seasonal else np.zeros(1),
                    m=self.period if seasonal else 1,
                )
            )
        return self

    @staticmethod
    def _filter(y: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Level ``l[i]``, trend ``b[i]`` after ``i`` observations; season ``s[u]`` for time ``u`` (``len+m``)."""
        n, m = len(y), p["m"]
        alpha, beta, gamma, phi = p["alpha"], p["beta"], p["gamma"], p["phi"]
        lvl = np.empty(n + 1)
        tr = np.empty(n + 1)
        s = np.zeros(n + m)
        lvl[0], tr[0] = p["l0"], p["b0"]
        s[:m] = p["s0"] if m > 1 else 0.0
        for i in range(1, n + 1):
            prev = lvl[i - 1] + phi * tr[i - 1]
            lvl[i] = alpha * (y[i - 1] - s[i - 1]) + (1 - alpha) * prev
            tr[i] = beta * (lvl[i] - lvl[i - 1]) + (1 - beta) * phi * tr[i - 1]
            if m > 1:
                s[i + m - 1] = gamma * (y[i - 1] - prev) + (1 - gamma) * s[i - 1]
        return lvl, tr, s

    def forecast(self, values, origins, horizon):
        o = np.asarray(origins)
        out = np.empty((len(o), horizon, len(self.cols)), np.float32)
        for j, (c, p) in enumerate(zip(self.cols, self.params)):
            y = np.asarray(values, np.float64)[: o.max(), c]
            lvl, tr, s = self._filter(y, p)
            damp = np.cumsum(p["phi"] ** np.arange(1, horizon + 1))
            season = s[o[:, None] + (np.arange(horizon) % p["m"])[None, :]] if p["m"] > 1 else 0.0
            out[:, :, j] = lvl[o][:, None] + damp[None, :] * tr[o][:, None] + season
        return out


class ArimaForecaster(Forecaster):
    """ARIMA(p, d, q) per channel (statsmodels SARIMAX), forecasts from each origin's predicted state."""

    name = "arima"

    def __init__(self, cols, order: tuple[int, int, int] = (2, 1, 2)):
        super().__init__(cols)
        self.order = tuple(order)
        self.results: list = []

    def fit(self, train):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        self.results = []
        for c in self.cols:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = np.asarray(train, np.float64)[:, c]
                self.results.append(SARIMAX(y, order=self.order, trend="n").fit(disp=False))
        return self

    def forecast(self, values, origins, horizon):
        o = np.asarray(origins)
        out = np.empty((len(o), horizon, len(self.cols)), np.float32)
        for j, (c, res) in enumerate(zip(self.cols, self.results)):
            y = np.asarray(values, np.float64)[: o.max(), c]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fr = res.apply(y).filter_results
            # predicted_state[:, t] is E[state_t | y[:t]]: the state an origin-t forecast starts from.
            a = fr.predicted_state[:, o]
            z, tmat = fr.design[:, :, 0], fr.transition[:, :, 0]
            d, cst = fr.obs_intercept[:, 0], fr.state_intercept[:, 0][:, None]
            for k in range(horizon):
                out[:, k, j] = (z @ a)[0] + d[0]
                a = tmat @ a + cst
        return out


BASELINES = ("naive", "seasonal_naive", "mean", "ets", "arima")


def make_baseline(name: str, cols: list[int], period: int, input_length: int) -> Forecaster:
    if name == "naive":
        return NaiveForecaster(cols)
    if name == "seasonal_naive":
        return SeasonalNaiveForecaster(cols, period)
    if name == "mean":
        return MeanForecaster(cols, input_length)
    if name == "ets":
        return EtsForecaster(cols, period)
    if name == "arima":
        return ArimaForecaster(cols)
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
