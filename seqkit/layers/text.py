"""Layers for text classification: region pooling before a recurrent stack, masked pooling after it.

Both honour Keras masks, so padded steps never leak into the result.
"""

from __future__ import annotations

import keras
from keras import ops

_NEG = -1e9


@keras.saving.register_keras_serializable(package="seqkit")
class RegionPooling(keras.layers.Layer):
    """Masked mean (or max) over non-overlapping regions of ``size`` steps.

    ``(batch, time, features)`` -> ``(batch, ceil(time / size), features)``; a
    region is kept in the output mask when any of its steps is real. Feeding
    region vectors of word (and bigram) embeddings to a recurrent layer shortens
    the sequence it has to walk by ``size`` (the idea of region embeddings,
    Johnson & Zhang 2016), which is what makes a BiGRU over whole reviews
    affordable on a CPU.

    Args:
        size: steps per region.
        mode: ``"mean"`` or ``"max"`` over the real steps of a region.
    """

    def __init__(self, size: int = 4, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if mode not in ("mean", "max"):
            raise ValueError(f"mode must be 'mean' or 'max', got {mode!r}")
        self.size = size
        self.mode = mode
        self.supports_masking = True

    def _pool(self, x, kind: str):
        # Pooling with stride == window and "same" padding gives ceil(time / size) regions, symbolically too.
        fn = ops.max_pool if kind == "max" else ops.average_pool
        return fn(x, pool_size=self.size, strides=self.size, padding="same")

    def call(self, inputs, mask=None):
        if mask is None:
            m = ops.ones_like(inputs[..., :1])
        else:
            m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        if self.mode == "max":
            return self._pool(inputs * m + (1.0 - m) * _NEG, "max") * self._pool(m, "max")
        # The same divisor scales both averages, so their ratio is the mean over the real steps.
        return self._pool(inputs * m, "mean") / ops.maximum(self._pool(m, "mean"), 1e-9)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        m = self._pool(ops.expand_dims(ops.cast(mask, "float32"), -1), "max")
        return ops.squeeze(m, -1) > 0.5

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else -(-t // self.size), input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, mode=self.mode)
        return config


@keras.saving.register_keras_serializable(package="seqkit")
class MaskedGlobalPooling(keras.layers.Layer):
    """Pool ``(batch, time, features)`` over real steps -> ``(batch, features * len(modes))``.

    ``modes`` is any of ``"max"`` and ``"mean"`` (concatenated in that order).
    Max and mean pooling of all recurrent outputs carry more of a long review
    than the last state alone.
    """

    def __init__(self, modes: tuple[str, ...] | list[str] = ("max", "mean"), **kwargs):
        super().__init__(**kwargs)
        modes = [modes] if isinstance(modes, str) else list(modes)
        if not modes or any(m not in ("max", "mean") for m in modes):
            raise ValueError(f"modes must be a non-empty list of 'max'/'mean', got {modes}")
        self.modes = modes
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            m = ops.ones(ops.shape(inputs)[:2], dtype=inputs.dtype)
        else:
            m = ops.cast(mask, inputs.dtype)
        m = ops.expand_dims(m, -1)
        out = []
        for mode in self.modes:
            if mode == "max":
                out.append(ops.max(inputs * m + (1.0 - m) * _NEG, axis=1))
            else:
                out.append(ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0))
        return out[0] if len(out) == 1 else ops.concatenate(out, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2] * len(self.modes))

    def get_config(self):
        config = super().get_config()
        config.update(modes=list(self.modes))
        return config
