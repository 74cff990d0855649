"""Forecast plots: a forecast against the actual values with the history before it; error by horizon step."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqkit.plots import _plt, save_figure


def plot_forecast(
    path: str | os.PathLike,
    series: np.ndarray,
    origin: int,
    forecast: np.ndarray,
    history: int,
    baseline: np.ndarray | None = None,
    title: str = "forecast",
) -> Path:
    """``series`` 1-D (whole channel); shows ``history`` steps before ``origin`` and the ``len(forecast)`` after."""
    plt = _plt()
    h = len(forecast)
    lo = max(origin - history, 0)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(np.arange(lo, origin), series[lo:origin], color="0.4", label="history")
    ax.plot(np.arange(origin, origin + h), series[origin : origin + h], color="black", label="actual")
    ax.plot(np.arange(origin, origin + h), forecast, color="tab:blue", label="model")
    if baseline is not None:
        ax.plot(np.arange(origin, origin + h), baseline, color="tab:orange", ls="--", label="seasonal naive")
    ax.axvline(origin, color="0.7", ls=":")
    ax.set_xlabel("time step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_error_by_step(path: str | os.PathLike, errors: dict[str, list[float]], title: str = "MSE by step") -> Path:
    """One line per forecaster: error at each horizon step."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, e in errors.items():
        ax.plot(np.arange(1, len(e) + 1), e, label=name, lw=2 if name == "model" else 1)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
