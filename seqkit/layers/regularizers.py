"""Recurrent regularisers as Keras cells, selectable with ``recurrent_stack(regularizer=name)``.

Each method is a cell that subclasses ``keras.layers.LSTMCell`` / ``GRUCell`` /
``SimpleRNNCell`` (same weights, same names, same layout: ``kernel``,
``recurrent_kernel``, ``bias``; LSTM gates ``i, f, c, o``), run by
:class:`RegularizedRNN`, a ``keras.layers.RNN`` that draws every random mask
*before* the time loop. Per-sequence masks are drawn once as ``(batch, units)``
and repeated over time; per-step masks are drawn as ``(batch, time, units)``;
both reach the cell as extra input columns, so the loop itself is stateless
(safe under ``jit_compile=True``, ``go_backwards`` and Keras masking). The
weight-drop mask (one per forward pass) is held by the cell for the duration
of the call, as Keras holds its own dropout masks.

At inference (``training=False``) every dropout-style cell computes exactly
the plain Keras cell; zoneout computes its expectation
``h = p * h_prev + (1 - p) * h_new`` (and the same for ``c``).

Registered names (see ``docs/regularizers.md``):

============================  ===========================  =========================  ===========
name                          what is dropped               mask scope                 cells
============================  ===========================  =========================  ===========
``recurrent_dropout``         ``h_{t-1}`` into the gates    sequence (Keras' own)      all
``recurrent_step_dropout``    ``h_{t-1}`` into the gates    step                       all
``rnndrop``                   the cell state ``c_t``        sequence                   lstm
``rnndrop_step``              the cell state ``c_t``        step (memory loss demo)    lstm
``semeniuta``                 the candidate ``g_t``         sequence                   lstm, gru
``weight_drop``               entries of ``recurrent_kernel``  forward pass (batch)    all
``zoneout``                   (keeps ``h``, ``c``)          step                       all
============================  ===========================  =========================  ===========
"""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers.recurrent import register_regularizer

# method -> allowed mask scopes; the first is the default.
SCOPES: dict[str, tuple[str, ...]] = {
    "recurrent_dropout": ("step", "sequence"),
    "rnndrop": ("sequence", "step"),
    "semeniuta": ("sequence", "step"),
    "weight_drop": ("batch",),
    "zoneout": ("step",),
}
CELL_METHODS: dict[str, tuple[str, ...]] = {
    "lstm": ("recurrent_dropout", "rnndrop", "semeniuta", "weight_drop", "zoneout"),
    "gru": ("recurrent_dropout", "semeniuta", "weight_drop", "zoneout"),
    "simple": ("recurrent_dropout", "weight_drop", "zoneout"),
}


def _gate_mask(mask, k: int):
    """Keras keeps one mask per gate (implementation 1) or one for all gates."""
    if mask is None:
        return None
    return mask[k] if isinstance(mask, (list, tuple)) else mask


class _RegularizedCell:
    """Mask bookkeeping shared by the three cells (mixed into a Keras cell class).

    The subclass defines ``_cell_type`` and ``_noise_units`` (noise columns per
    step, given ``self.units``) and uses :meth:`_split` in its ``call``.
    """

    _cell_type = ""

    def _init_regularizer(self, method: str, rate: float, mask_scope: str | None) -> None:
        if method not in CELL_METHODS[self._cell_type]:
            raise ValueError(
                f"method {method!r} is not available for cell {self._cell_type!r}; "
                f"choose one of {list(CELL_METHODS[self._cell_type])}"
            )
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        mask_scope = mask_scope or SCOPES[method][0]
        if mask_scope not in SCOPES[method]:
            raise ValueError(f"mask_scope for {method!r} must be one of {list(SCOPES[method])}, got {mask_scope!r}")
        self.method = method
        self.rate = rate
        self.mask_scope = mask_scope
        self._dropped_recurrent_kernel = None
        self._input_dim = None

    @property
    def active(self) -> bool:
        return self.rate > 0.0

    @property
    def noise_units(self) -> int:
        """Noise columns the cell reads from each step's input (0 for weight drop)."""
        if self.method == "weight_drop":
            return 0
        if self.method == "zoneout" and self._cell_type == "lstm":
            return 2 * self.units  # independent masks for h and c
        return self.units

    def _uniform(self, shape):
        return keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)

    def draw_noise(self, sequences):
        """Draw this call's masks. ``sequences (batch, time, features)`` -> ``(batch, time, noise_units)`` or None.

        Per-sequence masks are drawn as ``(batch, 1, n)`` and repeated over time,
        so a mask cannot change between steps by construction.
        """
        p = self.rate
        if self.method == "weight_drop":
            # DropConnect (Wan et al. 2013) on the hidden-to-hidden matrix, one mask for the whole batch
            # and every step of this forward pass, as in AWD-LSTM; inverted scaling keeps E[W] unchanged.
            keep = ops.cast(self._uniform(tuple(self.recurrent_kernel.shape)) >= p, self.compute_dtype)
            kernel = ops.cast(self.recurrent_kernel, self.compute_dtype)
            self._dropped_recurrent_kernel = kernel * keep / (1.0 - p)
            return None
        batch, time = ops.shape(sequences)[0], ops.shape(sequences)[1]
        n = self.noise_units
        u = self._uniform((batch, time, n) if self.mask_scope == "step" else (batch, 1, n))
        if self.method == "zoneout":
            noise = ops.cast(u < p, self.compute_dtype)  # 1 = keep the previous value of this unit
        elif self.method == "rnndrop":
            noise = ops.cast(u >= p, self.compute_dtype)  # binary: rescaling a carried state would compound
        else:
            noise = ops.cast(u >= p, self.compute_dtype) / (1.0 - p)
        if self.mask_scope != "step":
            noise = ops.broadcast_to(noise, (batch, time, n))
        return noise

    def clear_noise(self) -> None:
        self._dropped_recurrent_kernel = None

    def _split(self, inputs, training):
        """``inputs`` -> ``(x, noise)``; noise is None at inference or when the rate is 0."""
        active = bool(training) and self.active
        n = self.noise_units
        width = inputs.shape[-1]
        has_noise = n > 0 and width is not None and self._input_dim is not None and width == self._input_dim + n
        x, noise = (inputs[..., : self._input_dim], inputs[..., self._input_dim :]) if has_noise else (inputs, None)
        if active and n > 0 and noise is None:
            raise ValueError(f"{type(self).__name__} must run inside seqkit's RegularizedRNN, which draws its masks")
        if active and self.method == "weight_drop" and self._dropped_recurrent_kernel is None:
            raise ValueError(f"{type(self).__name__} must run inside seqkit's RegularizedRNN, which draws its masks")
        return x, (noise if active else None)

    def _recurrent_kernel(self, active: bool):
        if active and self.method == "weight_drop":
            return self._dropped_recurrent_kernel
        return self.recurrent_kernel

    def _keras_masks(self, x, h, training):
        """Keras' own per-sequence input / recurrent dropout masks (if the cell was given ``dropout`` etc.)."""
        dp = self.get_dropout_mask(x) if training and 0.0 < self.dropout < 1.0 else None
        rdp = self.get_recurrent_dropout_mask(h) if training and 0.0 < self.recurrent_dropout < 1.0 else None
        return dp, rdp

    def _projections(self, x, h, R, n_gates: int, training):
        """Per-gate ``x W_x`` and ``h W_h`` blocks (no bias), applying Keras' per-gate masks when set."""
        dp, rdp = self._keras_masks(x, h, training)
        u = self.units
        if dp is None and rdp is None:
            return ops.split(ops.matmul(x, self.kernel), n_gates, axis=-1), ops.split(
                ops.matmul(h, R), n_gates, axis=-1
            )
        xs, hs = [], []
        for k in range(n_gates):
            xk = x if dp is None else x * _gate_mask(dp, k)
            hk = h if rdp is None else h * _gate_mask(rdp, k)
            xs.append(ops.matmul(xk, self.kernel[:, k * u : (k + 1) * u]))
            hs.append(ops.matmul(hk, R[:, k * u : (k + 1) * u]))
        return xs, hs

    def _regularizer_config(self) -> dict:
        return {"method": self.method, "rate": self.rate, "mask_scope": self.mask_scope}


@keras.saving.register_keras_serializable(package="seqkit")
class RegularizedLSTMCell(_RegularizedCell, keras.layers.LSTMCell):
    """``keras.layers.LSTMCell`` with one recurrent regulariser; run it with :class:`RegularizedRNN`.

    Training step (``x`` ``(batch, features)``, ``h, c`` ``(batch, units)``; ``m`` a mask)::

        recurrent_dropout:  gates from  m * h_{t-1}                      (inverted scaling)
        semeniuta:          c_t = f * c_{t-1} + i * (m * g_t)            (inverted scaling)
        rnndrop:            c_t = m * (f * c_{t-1} + i * g_t),  h_t = o * tanh(c_t) / (1 - p)   (m binary)
        weight_drop:        gates from  h_{t-1} (M * W_h) / (1 - p)      (one M per forward pass)
        zoneout:            c_t = d_c * c_{t-1} + (1 - d_c) * c_new,  h_t = d_h * h_{t-1} + (1 - d_h) * h_new

    rnnDrop's mask is binary on ``c`` because an inverted mask on a carried state
    would multiply a kept unit by ``1 / (1 - p)`` at every step; the rescaling is
    applied to the output ``h`` instead, so inference needs no correction.

    Args:
        units: state size.
        method: one of ``recurrent_dropout``, ``rnndrop``, ``semeniuta``, ``weight_drop``, ``zoneout``.
        rate: drop (or zoneout) probability ``p`` in ``[0, 1)``.
        mask_scope: ``"sequence"``, ``"step"`` or ``"batch"`` (see ``SCOPES``); None takes the method's default.
        **kwargs: any ``keras.layers.LSTMCell`` argument (``seed``, ``recurrent_dropout``, initialisers, ...).

    Reference:
        Moon et al. 2015 (rnnDrop); Semeniuta et al. 2016; Merity et al. 2017 (AWD-LSTM); Krueger et al. 2017.
    """

    _cell_type = "lstm"

    def __init__(self, units: int, method: str = "zoneout", rate: float = 0.0, mask_scope: str | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self._init_regularizer(method, rate, mask_scope)

    def build(self, input_shape):
        super().build(input_shape)
        self._input_dim = input_shape[-1]

    def call(self, inputs, states, training=False):
        x, noise = self._split(inputs, training)
        h_tm1, c_tm1 = states[0], states[1]
        p = self.rate
        if not (training and self.active):
            h, (_, c) = super().call(x, states, training=training)
            if self.method == "zoneout" and self.active:
                # Inference uses the expectation of the training-time mix.
                c = p * c_tm1 + (1.0 - p) * c
                h = p * h_tm1 + (1.0 - p) * h
            return h, [h, c]

        u = self.units
        h_in = h_tm1 * noise if self.method == "recurrent_dropout" else h_tm1
        xs, hs = self._projections(x, h_in, self._recurrent_kernel(True), 4, training)
        z = [a + b for a, b in zip(xs, hs)]
        if self.use_bias:
            z = [zk + bk for zk, bk in zip(z, ops.split(self.bias, 4, axis=0))]
        i = self.recurrent_activation(z[0])
        f = self.recurrent_activation(z[1])
        g = self.activation(z[2])
        o = self.recurrent_activation(z[3])
        if self.method == "semeniuta":
            g = g * noise
        c = f * c_tm1 + i * g
        if self.method == "rnndrop":
            c = c * noise
        h = o * self.activation(c)
        if self.method == "rnndrop":
            h = h / (1.0 - p)
        if self.method == "zoneout":
            d_h, d_c = noise[:, :u], noise[:, u:]
            c = d_c * c_tm1 + (1.0 - d_c) * c
            h = d_h * h_tm1 + (1.0 - d_h) * h
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), **self._regularizer_config()}


@keras.saving.register_keras_serializable(package="seqkit")
class RegularizedGRUCell(_RegularizedCell, keras.layers.GRUCell):
    """``keras.layers.GRUCell`` with one recurrent regulariser; run it with :class:`RegularizedRNN`.

    Training step: as :class:`RegularizedLSTMCell`, with ``semeniuta`` dropping the
    candidate ``hh`` in ``h_t = z * h_{t-1} + (1 - z) * (m * hh)`` and ``zoneout``
    acting on ``h`` only. Both ``reset_after`` variants are supported.

    Args:
        units: state size.
        method: one of ``recurrent_dropout``, ``semeniuta``, ``weight_drop``, ``zoneout``.
        rate: drop (or zoneout) probability in ``[0, 1)``.
        mask_scope: see :class:`RegularizedLSTMCell`.
        **kwargs: any ``keras.layers.GRUCell`` argument.
    """

    _cell_type = "gru"

    def __init__(self, units: int, method: str = "zoneout", rate: float = 0.0, mask_scope: str | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self._init_regularizer(method, rate, mask_scope)

    def build(self, input_shape):
        super().build(input_shape)
        self._input_dim = input_shape[-1]

    def call(self, inputs, states, training=False):
        x, noise = self._split(inputs, training)
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        p = self.rate
        if not (training and self.active):
            h, _ = super().call(x, states, training=training)
            if self.method == "zoneout" and self.active:
                h = p * h_tm1 + (1.0 - p) * h
            return h, ([h] if nested else h)

        u = self.units
        R = self._recurrent_kernel(True)
        h_in = h_tm1 * noise if self.method == "recurrent_dropout" else h_tm1
        if self.use_bias:
            if self.reset_after:
                b_x, b_h = self.bias[0], self.bias[1]
            else:
                b_x, b_h = self.bias, None
        else:
            b_x = b_h = None
        if self.reset_after:
            xs, hs = self._projections(x, h_in, R, 3, training)
            if b_h is not None:
                hs = [hk + bk for hk, bk in zip(hs, ops.split(b_h, 3, axis=0))]
        else:
            # The candidate's recurrent term needs r first: project z, r here and the candidate below.
            dp, rdp = self._keras_masks(x, h_in, training)
            xs = [
                ops.matmul(x if dp is None else x * _gate_mask(dp, k), self.kernel[:, k * u : (k + 1) * u])
                for k in range(3)
            ]
            hs = [
                ops.matmul(h_in if rdp is None else h_in * _gate_mask(rdp, k), R[:, k * u : (k + 1) * u])
                for k in range(2)
            ]
        if b_x is not None:
            xs = [xk + bk for xk, bk in zip(xs, ops.split(b_x, 3, axis=0))]
        z = self.recurrent_activation(xs[0] + hs[0])
        r = self.recurrent_activation(xs[1] + hs[1])
        if self.reset_after:
            hh = self.activation(xs[2] + r * hs[2])
        else:
            h_c = h_in if rdp is None else h_in * _gate_mask(rdp, 2)
            hh = self.activation(xs[2] + ops.matmul(r * h_c, R[:, 2 * u :]))
        if self.method == "semeniuta":
            hh = hh * noise
        h = z * h_tm1 + (1.0 - z) * hh
        if self.method == "zoneout":
            h = noise * h_tm1 + (1.0 - noise) * h
        return h, ([h] if nested else h)

    def get_config(self):
        return {**super().get_config(), **self._regularizer_config()}


@keras.saving.register_keras_serializable(package="seqkit")
class RegularizedSimpleRNNCell(_RegularizedCell, keras.layers.SimpleRNNCell):
    """``keras.layers.SimpleRNNCell`` with ``recurrent_dropout`` (any scope), ``weight_drop`` or ``zoneout``.

    ``h_t = tanh(x_t W_x + (m * h_{t-1}) W_h + b)``: with a per-step mask ``m`` a
    unit's memory survives ``k`` steps with probability ``(1 - p)^k``.
    """

    _cell_type = "simple"

    def __init__(self, units: int, method: str = "zoneout", rate: float = 0.0, mask_scope: str | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self._init_regularizer(method, rate, mask_scope)

    def build(self, input_shape):
        super().build(input_shape)
        self._input_dim = input_shape[-1]

    def call(self, inputs, states, training=False):
        x, noise = self._split(inputs, training)
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        p = self.rate
        if not (training and self.active):
            h, _ = super().call(x, states, training=training)
            if self.method == "zoneout" and self.active:
                h = p * h_tm1 + (1.0 - p) * h
            return h, ([h] if nested else h)

        h_in = h_tm1 * noise if self.method == "recurrent_dropout" else h_tm1
        (xw,), (hw,) = self._projections(x, h_in, self._recurrent_kernel(True), 1, training)
        a = xw + hw
        if self.bias is not None:
            a = a + self.bias
        h = self.activation(a) if self.activation is not None else a
        if self.method == "zoneout":
            h = noise * h_tm1 + (1.0 - noise) * h
        return h, ([h] if nested else h)

    def get_config(self):
        return {**super().get_config(), **self._regularizer_config()}


@keras.saving.register_keras_serializable(package="seqkit")
class RegularizedRNN(keras.layers.RNN):
    """``keras.layers.RNN`` for the regularised cells: draws the cell's masks once per call, before the loop.

    Input ``(batch, time, features)``; outputs as ``keras.layers.RNN``. In training
    the cell's noise ``(batch, time, noise_units)`` is appended to the inputs so
    each step reads its own slice; a per-sequence mask is the same slice at every step.

    Example:
        >>> layer = RegularizedRNN(RegularizedLSTMCell(32, method="zoneout", rate=0.1, seed=0), return_sequences=True)
    """

    def __init__(self, cell, **kwargs):
        if not isinstance(cell, _RegularizedCell):
            raise ValueError(f"RegularizedRNN needs a seqkit regularised cell, got {type(cell).__name__}")
        super().__init__(cell, **kwargs)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if not (training and cell.active):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        noise = cell.draw_noise(sequences)
        if noise is not None:
            sequences = ops.concatenate([sequences, ops.cast(noise, sequences.dtype)], axis=-1)
        try:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        finally:
            cell.clear_noise()


def zoneout_rate(layer) -> float:
    """The zoneout probability of a recurrent layer (0 for any other layer).

    Code that re-implements a layer's inference step from its weights (e.g. a step-by-step
    sampler) must mix ``h = p * h_prev + (1 - p) * h_new`` (and ``c``) with this ``p``; the
    dropout-style regularisers need nothing, their inference step is the plain cell.
    """
    cell = getattr(layer, "cell", None)
    if isinstance(cell, _RegularizedCell) and cell.method == "zoneout":
        return cell.rate
    return 0.0


# Registered to demonstrate why a mask's scope matters, not to be searched by a tuner.
DEMONSTRATION_ONLY = ("recurrent_step_dropout", "rnndrop_step")

_CELLS = {"lstm": RegularizedLSTMCell, "gru": RegularizedGRUCell, "simple": RegularizedSimpleRNNCell}
_KERAS_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple": keras.layers.SimpleRNN}


def _direction_seed(seed: int | None, go_backwards: bool) -> int | None:
    # recurrent_stack gives both directions of a bidirectional layer the same seed; offset the
    # backward one so the two directions do not share their masks.
    if seed is None or not go_backwards:
        return seed
    return seed + 1


def regularized_layer(
    cell: str,
    units: int,
    method: str,
    rate: float,
    *,
    mask_scope: str | None = None,
    recurrent_dropout: float = 0.0,
    seed: int | None = None,
    return_sequences: bool = True,
    return_state: bool = False,
    go_backwards: bool = False,
    name: str | None = None,
) -> RegularizedRNN:
    """A :class:`RegularizedRNN` over the regularised ``cell`` (``"lstm"``, ``"gru"``, ``"simple"``).

    ``recurrent_dropout`` adds Keras' own per-sequence dropout on ``h_{t-1}`` on top of ``method``.
    """
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    cell_layer = _CELLS[cell](
        units,
        method=method,
        rate=rate,
        mask_scope=mask_scope,
        recurrent_dropout=recurrent_dropout,
        seed=_direction_seed(seed, go_backwards),
        name=f"{name or cell}_cell",
    )
    return RegularizedRNN(
        cell_layer, return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards, name=name
    )


def _builder(method: str, mask_scope: str | None = None):
    def build(*, cell, units, rate, recurrent_dropout, seed, return_sequences, return_state, go_backwards, name):
        return regularized_layer(
            cell,
            units,
            method,
            rate,
            mask_scope=mask_scope,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            name=name,
        )

    build.__name__ = f"build_{method}_{mask_scope or 'default'}"
    return build


@register_regularizer("recurrent_dropout")
def build_recurrent_dropout(
    *, cell, units, rate, recurrent_dropout, seed, return_sequences, return_state, go_backwards, name
):
    """Keras' own recurrent dropout (Gal & Ghahramani 2016): one mask per sequence on ``h_{t-1}``."""
    if recurrent_dropout and rate and recurrent_dropout != rate:
        raise ValueError(
            f"regularizer 'recurrent_dropout' with regularizer_rate={rate} conflicts with recurrent_dropout={recurrent_dropout}"
        )
    if cell not in _KERAS_LAYERS:
        raise ValueError(f"cell must be one of {sorted(_KERAS_LAYERS)}, got {cell!r}")
    # A non-zero recurrent_dropout rules out cuDNN anyway; saying so keeps the model XLA-compilable
    # (a Keras LSTM/GRU that might use cuDNN turns jit_compile off for the whole model).
    extra = {} if cell == "simple" else {"use_cudnn": False}
    return _KERAS_LAYERS[cell](
        units,
        recurrent_dropout=rate or recurrent_dropout,
        **extra,
        seed=_direction_seed(seed, go_backwards),
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        name=name,
    )


register_regularizer("recurrent_step_dropout")(_builder("recurrent_dropout", "step"))
register_regularizer("rnndrop")(_builder("rnndrop", "sequence"))
register_regularizer("rnndrop_step")(_builder("rnndrop", "step"))
register_regularizer("semeniuta")(_builder("semeniuta", "sequence"))
register_regularizer("weight_drop")(_builder("weight_drop", "batch"))
register_regularizer("zoneout")(_builder("zoneout", "step"))

__all__ = [
    "CELL_METHODS",
    "DEMONSTRATION_ONLY",
    "SCOPES",
    "RegularizedGRUCell",
    "RegularizedLSTMCell",
    "RegularizedRNN",
    "RegularizedSimpleRNNCell",
    "regularized_layer",
    "zoneout_rate",
]
