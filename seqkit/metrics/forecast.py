"""Point-forecast error metrics.

Every function takes ``y_true`` and ``y_pred`` of the same shape (any shape,
usually ``(windows, horizon, channels)``) and averages over all elements.
MASE follows Hyndman & Koehler (2006): errors are scaled by the in-sample
mean absolute error of the seasonal-naive forecast on the *training* series,
per channel.
"""

from __future__ import annotations

import numpy as np


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    return t, p


def mae(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def mse(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(mse(y_true, y_pred)))


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error in percent; elements with ``y_true == 0`` are left out."""
    t, p = _pair(y_true, y_pred)
    keep = t != 0
    if not keep.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs((t[keep] - p[keep]) / t[keep])))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent, ``200 |y - f| / (|y| + |f|)``; 0/0 counts as 0."""
    t, p = _pair(y_true, y_pred)
    den = np.abs(t) + np.abs(p)
    num = 2.0 * np.abs(t - p)
    ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(100.0 * np.mean(ratio))


def seasonal_naive_scale(train, period: int = 1) -> np.ndarray:
    """In-sample MAE of the seasonal-naive forecast ``y[t-m]`` on ``train`` ``(time, channels)`` -> ``(channels,)``."""
    x = np.asarray(train, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    m = max(int(period), 1)
    if len(x) <= m:
        m = 1  # too short for the seasonal lag: fall back to the one-step naive scale
    if len(x) <= m:
        raise ValueError(f"MASE needs a training series longer than {m} steps, got {len(x)}")
    return np.mean(np.abs(x[m:] - x[:-m]), axis=0)


def mase(y_true, y_pred, train, period: int = 1) -> float:
    """Mean absolute scaled error; ``y_*`` ``(..., channels)``, ``train`` ``(time, channels)`` (or 1-D for one channel)."""
    t, p = _pair(y_true, y_pred)
    scale = seasonal_naive_scale(train, period)
    if t.ndim == 0 or t.shape[-1] != scale.shape[0]:
        t, p = t[..., None], p[..., None]
    scale = np.where(scale > 0, scale, np.nan)
    return float(np.nanmean(np.abs(t - p) / scale))


def all_metrics(y_true, y_pred, train=None, period: int = 1) -> dict[str, float]:
    """Every metric above (MASE only when ``train`` is given)."""
    out = {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mse": mse(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "smape": smape(y_true, y_pred),
    }
    if train is not None:
        out["mase"] = mase(y_true, y_pred, train, period)
    return out


def error_by_step(y_true, y_pred) -> dict[str, list[float]]:
    """MAE and MSE per horizon step for ``(windows, horizon, channels)`` arrays."""
    t, p = _pair(y_true, y_pred)
    axes = tuple(i for i in range(t.ndim) if i != 1)
    return {
        "mae": np.mean(np.abs(t - p), axis=axes).tolist(),
        "mse": np.mean((t - p) ** 2, axis=axes).tolist(),
    }
