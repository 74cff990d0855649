"""The segment-RNN forecaster: instance norm -> (channel independence) -> segment embedding -> recurrent
encoder over the input window -> direct or parallel seq2seq head (+ optional linear skip) -> denorm."""

from __future__ import annotations

import math

import keras

from seqkit.forecasting.layers import (
    BatchToChannels,
    ChannelsToBatch,
    InstanceDenorm,
    InstanceNorm,
    ParallelDecoderInputs,
    Segments,
    Unsegment,
)
from seqkit.layers import build_rnn_layer, recurrent_stack_from_config


def build_forecaster(cfg, input_length: int, horizon: int, n_inputs: int, n_targets: int, segment_length: int):
    """``(B, input_length, n_inputs)`` contexts -> ``(B, horizon, n_targets)`` forecasts (uncompiled).

    ``cfg`` needs the :class:`seqkit.config.RecurrentConfig` fields plus ``norm``,
    ``channel_independent``, ``decoder`` (``"direct"`` or ``"pmf"``), ``skip``,
    ``embed_dim`` and ``head_dropout``. Bidirectional encoders only ever see the
    input window; the future is produced by the head.
    """
    seg = max(1, min(int(segment_length), input_length))
    x_in = keras.Input((input_length, n_inputs), name="context")
    x, loc, scale = InstanceNorm(cfg.norm, name="instance_norm")(x_in)
    if cfg.channel_independent:
        z = ChannelsToBatch(name="channels_to_batch")(x)  # (B*C, L, 1)
        k = 1
    else:
        z = x
        k = n_targets
    s = Segments(seg, name="segments")(z)
    e = keras.layers.Dense(cfg.embed_dim or cfg.units[0], activation="relu", name="segment_embedding")(s)
    h = recurrent_stack_from_config(cfg, return_sequences=False, name="encoder")(e)
    width = cfg.units[-1] * (2 if cfg.bidirectional and cfg.merge_mode == "concat" else 1)
    if cfg.decoder == "pmf":
        m = math.ceil(horizon / seg)
        queries, state = ParallelDecoderInputs(m, name="position_queries")(h)
        dec = build_rnn_layer(cfg.cell, width, return_sequences=False, implementation="keras", name="decoder")
        # An LSTM decoder starts both h and c from the encoder summary.
        o = dec(queries, initial_state=[state, state] if cfg.cell == "lstm" else [state])
        if cfg.head_dropout:
            o = keras.layers.Dropout(cfg.head_dropout, seed=cfg.seed, name="head_dropout")(o)
        o = keras.layers.Dense(seg * k, name="segment_out")(o)
        y = Unsegment(m, horizon, k, name="unsegment")(o)
    else:
        o = h
        if cfg.head_dropout:
            o = keras.layers.Dropout(cfg.head_dropout, seed=cfg.seed, name="head_dropout")(o)
        y = keras.layers.Reshape((horizon, k), name="direct")(keras.layers.Dense(horizon * k, name="direct_dense")(o))
    if cfg.skip:
        flat = keras.layers.Flatten(name="skip_flatten")(z)
        lin = keras.layers.Dense(horizon * k, name="linear_skip")(flat)
        y = keras.layers.Add(name="add_skip")([y, keras.layers.Reshape((horizon, k), name="skip_reshape")(lin)])
    if cfg.channel_independent:
        y = BatchToChannels(n_inputs, name="batch_to_channels")(y)
    y = InstanceDenorm(n_targets, name="forecast")([y, loc, scale])
    return keras.Model(x_in, y, name="segrnn_forecaster")
