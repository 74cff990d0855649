"""Shared test helpers (used by seqkit's own tests; handy for users' custom layers too)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def run_layer_test(
    make_layer: Callable[[], Any],
    input_shape: tuple[int, ...],
    input_dtype: str = "float32",
    mask: np.ndarray | None = None,
    atol: float = 1e-6,
    seed: int = 0,
) -> dict[str, Any]:
    """Check a layer the same way everywhere.

    1. ``get_config`` round trip (``from_config(get_config())`` has the same config);
    2. a symbolic call in the functional API;
    3. an eager call whose shape matches the symbolic one;
    4. one ``fit`` step that changes the weights;
    5. ``.keras`` save/load gives identical predictions.

    ``input_shape`` includes the batch dimension. Returns the outputs for further checks.
    """
    import keras

    rng = np.random.default_rng(seed)
    if input_dtype.startswith("int"):
        x = rng.integers(1, 10, size=input_shape).astype(input_dtype)
    else:
        x = rng.normal(size=input_shape).astype(input_dtype)
    if mask is not None:
        x = x * mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)).astype(x.dtype)

    layer = make_layer()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "get_config round trip changed the config"

    inputs = keras.Input(shape=input_shape[1:], dtype=input_dtype)
    h = inputs
    if mask is not None:
        h = keras.layers.Masking(mask_value=0.0)(h)
    y = layer(h)
    if isinstance(y, (list, tuple)):
        y = y[0]
    flat = keras.layers.Flatten()(y) if len(y.shape) > 2 else y
    out = keras.layers.Dense(1)(flat)
    model = keras.Model(inputs, out)

    eager = np.asarray(model(x, training=False))
    assert eager.shape == (input_shape[0], 1)

    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, rng.normal(size=(input_shape[0], 1)).astype("float32"), epochs=1, batch_size=input_shape[0], verbose=0)
    after = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), "one fit step did not change any weight"

    pred = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), pred, atol=atol)
    return {"model": model, "x": x, "pred": pred}
