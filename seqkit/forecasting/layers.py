"""Layers of the segment-RNN forecaster (serialisable, registered under ``seqkit``).

Ideas borrowed from the strong long-horizon forecasters, where they help an RNN:
instance normalisation (RevIN, Kim et al. 2022, or subtracting the last value,
NLinear / SegRNN), channel independence (PatchTST), segment-wise input
embedding so the RNN runs ``L / seg`` steps instead of ``L``, and parallel
multi-step decoding from position queries (SegRNN, Lin et al. 2023).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="seqkit")
class InstanceNorm(keras.layers.Layer):
    """Normalise each window by its own statistics: ``(B, L, C)`` -> ``[x_norm, loc (B,1,C), scale (B,1,C)]``.

    Args:
        mode: ``"last"`` subtracts the last input value, ``"revin"`` the window
            mean and divides by its standard deviation, ``"none"`` leaves ``x``.
        eps: added to the variance for ``"revin"``.
    """

    def __init__(self, mode: str = "last", eps: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("last", "revin", "none"):
            raise ValueError(f"mode must be last, revin or none, got {mode!r}")
        self.mode = mode
        self.eps = eps

    def call(self, x):
        if self.mode == "last":
            loc = x[:, -1:, :]
            scale = ops.ones_like(loc)
        elif self.mode == "revin":
            loc = ops.mean(x, axis=1, keepdims=True)
            scale = ops.sqrt(ops.var(x, axis=1, keepdims=True) + self.eps)
        else:
            loc = ops.zeros_like(x[:, -1:, :])
            scale = ops.ones_like(loc)
        return [(x - loc) / scale, loc, scale]

    def compute_output_shape(self, input_shape):
        stat = (input_shape[0], 1, input_shape[2])
        return [tuple(input_shape), stat, stat]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "eps": self.eps}


@keras.saving.register_keras_serializable(package="seqkit")
class InstanceDenorm(keras.layers.Layer):
    """Undo :class:`InstanceNorm` on forecasts: ``[y (B,H,k), loc (B,1,C), scale (B,1,C)]`` -> ``(B,H,k)``.

    The forecast's channels are the first input channels (targets come first);
    with ``channels`` only the first ``channels`` of them are kept (covariates
    forecast under channel independence are dropped).
    """

    def __init__(self, channels: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, inputs):
        y, loc, scale = inputs
        k = self.channels or y.shape[-1]
        return y[:, :, :k] * scale[:, :, :k] + loc[:, :, :k]

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0])
        return shape[:-1] + (self.channels or shape[-1],)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="seqkit")
class ChannelsToBatch(keras.layers.Layer):
    """Channel independence: ``(B, L, C)`` -> ``(B*C, L, 1)``, one univariate series per row."""

    def call(self, x):
        length = ops.shape(x)[1]
        return ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, length, 1))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[1], 1)


@keras.saving.register_keras_serializable(package="seqkit")
class BatchToChannels(keras.layers.Layer):
    """Inverse of :class:`ChannelsToBatch` for forecasts: ``(B*C, H, 1)`` -> ``(B, H, C)``."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def call(self, y):
        horizon = ops.shape(y)[1]
        return ops.transpose(ops.reshape(y, (-1, self.channels, horizon)), (0, 2, 1))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="seqkit")
class ParallelDecoderInputs(keras.layers.Layer):
    """Position queries for parallel multi-step decoding (SegRNN's PMF).

    ``h (N, d)`` -> ``[queries (N*M, 1, d), state (N*M, d)]``: every output
    segment ``m`` gets a learnt position embedding as its one decoder input and
    the encoder's final state as its initial state, so all ``M`` segments are
    decoded in one batched recurrent step instead of ``M`` sequential ones.
    """

    def __init__(self, segments: int, **kwargs):
        super().__init__(**kwargs)
        self.segments = int(segments)

    def build(self, input_shape):
        self.position = self.add_weight(
            name="position", shape=(self.segments, int(input_shape[-1])), initializer="random_normal"
        )

    def call(self, h):
        d = ops.shape(h)[-1]
        n = ops.shape(h)[0]
        queries = ops.tile(self.position[None, :, :], (n, 1, 1))  # (N, M, d)
        queries = ops.reshape(queries, (-1, 1, d))
        state = ops.reshape(ops.repeat(h[:, None, :], self.segments, axis=1), (-1, d))
        return [queries, state]

    def compute_output_shape(self, input_shape):
        d = input_shape[-1]
        return [(None, 1, d), (None, d)]

    def get_config(self):
        return {**super().get_config(), "segments": self.segments}


@keras.saving.register_keras_serializable(package="seqkit")
class Segments(keras.layers.Layer):
    """``(N, L, C)`` -> ``(N, ceil(L/seg), seg*C)``; the front is zero-padded when ``seg`` does not divide ``L``."""

    def __init__(self, segment_length: int, **kwargs):
        super().__init__(**kwargs)
        self.segment_length = int(segment_length)

    def call(self, x):
        length, channels = x.shape[1], x.shape[2]
        pad = (-length) % self.segment_length
        if pad:
            x = ops.pad(x, ((0, 0), (pad, 0), (0, 0)))
        n_seg = (length + pad) // self.segment_length
        return ops.reshape(x, (-1, n_seg, self.segment_length * channels))

    def compute_output_shape(self, input_shape):
        length, channels = input_shape[1], input_shape[2]
        n_seg = -(-length // self.segment_length)
        return (input_shape[0], n_seg, self.segment_length * channels)

    def get_config(self):
        return {**super().get_config(), "segment_length": self.segment_length}


@keras.saving.register_keras_serializable(package="seqkit")
class Unsegment(keras.layers.Layer):
    """``(N*M, seg*k)`` decoder outputs -> ``(N, horizon, k)`` (the surplus of the last segment is cut)."""

    def __init__(self, segments: int, horizon: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.segments, self.horizon, self.channels = int(segments), int(horizon), int(channels)

    def call(self, y):
        y = ops.reshape(y, (-1, self.segments * (y.shape[-1] // self.channels), self.channels))
        return y[:, : self.horizon, :]

    def compute_output_shape(self, input_shape):
        return (None, self.horizon, self.channels)

    def get_config(self):
        return {**super().get_config(), "segments": self.segments, "horizon": self.horizon, "channels": self.channels}
