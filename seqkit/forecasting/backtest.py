"""Rolling-origin (walk-forward) evaluation shared by networks and baselines."""

from __future__ import annotations

import numpy as np

from seqkit.forecasting.windows import make_windows


class KerasForecaster:
    """Wrap a Keras model mapping ``(B, L, in)`` contexts to ``(B, H, out)`` forecasts as a forecaster.

    Batches go through one compiled call (a ``tf.function`` with a free batch axis, traced once),
    not an eager model call or ``model.predict``, whose per-call overhead dominates small batches.
    """

    name = "model"

    def __init__(self, model, input_length: int, in_cols: list[int], batch_size: int = 512):
        self.model = model
        self.input_length = input_length
        self.in_cols = list(in_cols)
        self.batch_size = batch_size
        self._call = None

    def fit(self, train: np.ndarray) -> KerasForecaster:
        return self  # trained elsewhere

    def predict_windows(self, x: np.ndarray) -> np.ndarray:
        """Forecasts for contexts ``x`` ``(B, input_length, len(in_cols))``."""
        if self._call is None:
            import tensorflow as tf

            spec = tf.TensorSpec((None, *x.shape[1:]), tf.float32)
            self._call = tf.function(lambda t: self.model(t, training=False), input_signature=[spec])
        return self._call(x.astype(np.float32)).numpy()

    def forecast(self, values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        out = []
        for i in range(0, len(origins), self.batch_size):
            x, _ = make_windows(values, origins[i : i + self.batch_size], self.input_length, 0, self.in_cols)
            out.append(self.predict_windows(x))
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
