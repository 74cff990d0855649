"""Embedding and output-head builders shared by the tasks."""

from __future__ import annotations

import keras


def token_embedding(vocab_size: int, dim: int, mask_zero: bool = True, name: str = "token_embedding", **kwargs):
    """``(batch, time)`` int ids -> ``(batch, time, dim)``; id 0 is padding and masked."""
    return keras.layers.Embedding(vocab_size, dim, mask_zero=mask_zero, name=name, **kwargs)


def classification_head(
    x, n_classes: int, hidden: int = 0, dropout: float = 0.0, seed: int | None = None, name="classifier"
):
    """``(batch, features)`` -> class probabilities ``(batch, n_classes)`` (sigmoid for 2 classes: ``(batch, 1)``)."""
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu", name=f"{name}_hidden")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name=f"{name}_dropout")(x)
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name=name)(x)
    return keras.layers.Dense(n_classes, activation="softmax", name=name)(x)


def tagging_head(x, n_tags: int, activation: str | None = "softmax", name="tagger"):
    """``(batch, time, features)`` -> per-step scores ``(batch, time, n_tags)``."""
    return keras.layers.Dense(n_tags, activation=activation, name=name)(x)


def regression_head(x, horizon: int, n_targets: int, name="forecast"):
    """``(batch, features)`` -> ``(batch, horizon, n_targets)`` (direct multi-step output)."""
    y = keras.layers.Dense(horizon * n_targets, name=f"{name}_dense")(x)
    return keras.layers.Reshape((horizon, n_targets), name=name)(y)
