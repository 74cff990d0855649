"""Rolling-origin (walk-forward) evaluation shared by networks and baselines."""

from __future__ import annotations

import numpy as np

from seqkit.forecasting.windows import make_windows


class KerasForecaster:
    """Wrap a Keras model mapping ``(B, L, in)`` contexts to ``(B, H, out)`` forecasts as a forecaster."""

    name = "model"

    def __init__(self, model, input_length: int, in_cols: list[int], batch_size: int = 512):
        self.model = model
        self.input_length = input_length
        self.in_cols = list(in_cols)
        self.batch_size = batch_size

    def fit(self, train: np.ndarray) -> KerasForecaster:
        return self  # trained elsewhere

    def forecast(self, values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        out = []
        for i in range(0, len(origins), self.batch_size):
            x, _ = make_windows(values, origins[i : i + self.batch_size], self.input_length, 0, self.in_cols)
            out.append(np.asarray(self.model(x.astype(np.float32), training=False)))
        y = np.concatenate(out, axis=0) if out else np.zeros((0, horizon, 0), np.float32)
        return y[:, :horizon]


def backtest(
    forecaster, values: np.ndarray, origins: np.ndarray, horizon: int, out_cols: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast from every origin; returns ``(y_true, y_pred)``, both ``(len(origins), horizon, len(out_cols))``.

    ``values`` is the whole series (inputs first); a forecaster only uses ``values[:t]`` for origin ``t``.
    """
    _, y_true = make_windows(values, origins, 0, horizon, None, out_cols)
    if y_true is None:
        raise ValueError("an origin's horizon runs past the end of the series")
    y_pred = forecaster.forecast(values, origins, horizon)
    return y_true, np.asarray(y_pred)[..., : len(out_cols)]
