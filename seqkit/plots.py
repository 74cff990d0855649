"""Plots written into run directories (matplotlib, headless)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from seqkit.io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)


def plot_history(history_csv: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """Learning curves: one panel per metric, train and validation together."""
    import pandas as pd

    try:
        df = pd.read_csv(history_csv)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    if df.empty:
        return None
    metrics = [c for c in df.columns if c != "epoch" and not c.startswith("val_") and c != "learning_rate"]
    if not metrics:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    epochs = df["epoch"] + 1 if "epoch" in df else range(1, len(df) + 1)
    for ax, m in zip(axes[0], metrics):
        ax.plot(epochs, df[m], marker="o", label="train")
        if f"val_{m}" in df:
            ax.plot(epochs, df[f"val_{m}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(m)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion(matrix, labels: Sequence[str], path: str | os.PathLike, title: str = "confusion matrix") -> Path:
    """Confusion matrix with counts; rows are true labels, columns predictions."""
    import numpy as np

    plt = _plt()
    m = np.asarray(matrix)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n + 2, 1.0 + 0.6 * n + 1.5))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    vmax = m.max() if m.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > vmax / 2 else "black")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_bars(values: dict[str, float], path: str | os.PathLike, title: str, ylabel: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(values) + 2), 3.2))
    ax.bar(list(values), list(values.values()))
    for i, v in enumerate(values.values()):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return save_figure(fig, path)
