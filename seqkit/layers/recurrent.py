"""``recurrent_stack``: the reusable recurrent encoder every task is built from."""

from __future__ import annotations

from collections.abc import Callable

import keras

# name -> builder(cell, units, return_sequences, return_state, go_backwards, recurrent_dropout,
#                 rate, seed, name) -> RNN layer. Filled by seqkit.layers.regularizers.
_REGULARIZER_BUILDERS: dict[str, Callable[..., keras.layers.Layer]] = {}

_KERAS_CELLS = {
    "simple": keras.layers.SimpleRNN,
    "gru": keras.layers.GRU,
    "lstm": keras.layers.LSTM,
}


def register_regularizer(name: str):
    """Register a builder for a recurrent regulariser selectable as ``regularizer=name``."""

    def deco(fn):
        _REGULARIZER_BUILDERS[name] = fn
        return fn

    return deco


def available_regularizers() -> list[str]:
    _load_plugins()
    return sorted(_REGULARIZER_BUILDERS)


def _load_plugins() -> None:
    # Imported lazily: the regulariser module imports this one to register itself.
    try:
        import seqkit.layers.regularizers  # noqa: F401
    except ImportError:  # pragma: no cover - module not present in minimal installs
        pass


def _fast_layer_cls(cell: str):
    try:
        from seqkit.layers import fast
    except ImportError:
        return None
    return getattr(fast, "FAST_LAYERS", {}).get(cell)


def build_rnn_layer(
    cell: str,
    units: int,
    *,
    return_sequences: bool = True,
    return_state: bool = False,
    go_backwards: bool = False,
    recurrent_dropout: float = 0.0,
    regularizer: str | None = None,
    regularizer_rate: float = 0.0,
    implementation: str = "auto",
    seed: int | None = None,
    name: str | None = None,
) -> keras.layers.Layer:
    """One recurrent layer of type ``cell`` (``simple``, ``gru``, ``lstm``).

    ``implementation``: ``keras`` uses ``keras.layers.LSTM``/``GRU``/``SimpleRNN``;
    ``fast`` uses seqkit's fused layers (same weights, same numbers, faster on CPU);
    ``auto`` takes the fast layer when one exists for the options given.
    """
    if cell not in _KERAS_CELLS:
        raise ValueError(f"cell must be one of {sorted(_KERAS_CELLS)}, got {cell!r}")
    common = dict(return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards, name=name)
    if regularizer:
        _load_plugins()
        if regularizer not in _REGULARIZER_BUILDERS:
            raise ValueError(f"unknown regularizer {regularizer!r}; available: {available_regularizers()}")
        return _REGULARIZER_BUILDERS[regularizer](
            cell=cell,
            units=units,
            rate=regularizer_rate,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **common,
        )
    if implementation not in ("auto", "fast", "keras"):
        raise ValueError(f"implementation must be auto, fast or keras, got {implementation!r}")
    if implementation != "keras" and not recurrent_dropout:
        fast_cls = _fast_layer_cls(cell)
        if fast_cls is not None:
            return fast_cls(units, **common)
        if implementation == "fast":
            raise ValueError(f"no fast implementation for cell {cell!r}")
    elif implementation == "fast":
        raise ValueError("implementation='fast' does not support recurrent_dropout; use 'auto' or 'keras'")
    return _KERAS_CELLS[cell](units, recurrent_dropout=recurrent_dropout, seed=seed, **common)


class _Held:
    """A reference Keras neither tracks as a sublayer nor walks when saving."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def bidirectional_layer(
    forward: keras.layers.Layer, backward: keras.layers.Layer | None = None, **kwargs
) -> keras.layers.Bidirectional:
    """``keras.layers.Bidirectional(forward, backward_layer=backward, **kwargs)`` that is safe to build while a model loads.

    Bidirectional keeps a clone of ``forward`` (made by serialising it), not ``forward`` itself.
    While a model is deserialised, Keras notes every serialised object by ``id()`` so that
    objects shared in the saved model come back shared. A template freed after use can give
    its ``id()`` to a later template, whose clone then comes back as an earlier layer or cell:
    two layers of the loaded model share one set of weights and the other set is never loaded.
    Holding the template for the wrapper's lifetime keeps its ``id()`` unique.
    """
    layer = keras.layers.Bidirectional(forward, backward_layer=backward, **kwargs)
    layer._seqkit_template = _Held(forward)
    return layer


def _dropout_layer(rate: float, mask: str, seed: int | None, name: str):
    if mask == "sequence":
        # One mask per sequence and feature, shared by every time step (variational / locked dropout).
        return keras.layers.SpatialDropout1D(rate, seed=seed, name=name)
    return keras.layers.Dropout(rate, seed=seed, name=name)


@keras.saving.register_keras_serializable(package="seqkit")
class RecurrentStack(keras.layers.Layer):
    """Stacked (optionally bidirectional) recurrent layers with dropout between them.

    Input ``(batch, time, features)``; output ``(batch, time, units[-1] * d)`` when
    ``return_sequences`` else ``(batch, units[-1] * d)``, where ``d`` is 2 for a
    bidirectional stack with ``merge_mode="concat"``. Keras masks (from
    ``Embedding(mask_zero=True)`` or ``Masking``) are honoured by every layer.

    With ``return_state=True`` the call returns ``(outputs, states)``, where
    ``states`` is a flat list of each layer's final states (for LSTM ``[h, c]``
    per layer), and ``initial_state`` accepts the same flat list: this is what
    truncated BPTT and step-by-step sampling use.

    Args:
        cell: ``"simple"``, ``"gru"`` or ``"lstm"``.
        units: units per stacked layer, e.g. ``[256, 256]``.
        return_sequences: whether the last layer returns every step.
        bidirectional: wrap each layer in ``keras.layers.Bidirectional``.
        merge_mode: how the two directions are merged.
        dropout: dropout on the stack's input.
        recurrent_dropout: Keras' per-sequence dropout on the hidden state (Gal & Ghahramani 2016).
        inter_dropout: dropout between stacked layers.
        output_dropout: dropout on the stack's output.
        dropout_mask: ``"sequence"`` (one mask for all steps) or ``"step"`` (redrawn per step)
            for the three non-recurrent dropouts above.
        regularizer: a registered recurrent regulariser (see ``available_regularizers()``).
        regularizer_rate: its rate.
        implementation: ``"auto"``, ``"fast"`` or ``"keras"``.
        seed: seed for every random mask.

    Example:
        >>> x = keras.Input((None, 8))
        >>> y = recurrent_stack("lstm", [32, 32], bidirectional=True)(x)
    """

    def __init__(
        self,
        cell: str = "lstm",
        units: list[int] | tuple[int, ...] | int = (128,),
        return_sequences: bool = False,
        return_state: bool = False,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        inter_dropout: float = 0.0,
        output_dropout: float = 0.0,
        dropout_mask: str = "sequence",
        regularizer: str | None = None,
        regularizer_rate: float = 0.0,
        implementation: str = "auto",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, int):
            units = [units]
        units = [int(u) for u in units]
        if not units or any(u <= 0 for u in units):
            raise ValueError(f"units must be a non-empty list of positive integers, got {units}")
        if dropout_mask not in ("sequence", "step"):
            raise ValueError(f"dropout_mask must be 'sequence' or 'step', got {dropout_mask!r}")
        if return_state and bidirectional:
            raise ValueError("return_state is only supported for unidirectional stacks")
        self.cell = cell
        self.units = units
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.inter_dropout = inter_dropout
        self.output_dropout = output_dropout
        self.dropout_mask = dropout_mask
        self.regularizer = regularizer
        self.regularizer_rate = regularizer_rate
        self.implementation = implementation
        self.seed = seed
        self.supports_masking = True

        def sub_seed(i: int) -> int | None:
            return None if seed is None else seed + 1000 * (i + 1)

        self.input_drop = _dropout_layer(dropout, dropout_mask, sub_seed(100), "input_dropout") if dropout else None
        self.rnns = []
        self.drops = []
        for i, u in enumerate(units):
            last = i == len(units) - 1
            rs = True if not last else return_sequences
            kw = dict(
                return_sequences=rs,
                return_state=return_state,
                recurrent_dropout=recurrent_dropout,
                regularizer=regularizer,
                regularizer_rate=regularizer_rate,
                implementation=implementation,
                seed=sub_seed(i),
            )
            if bidirectional:
                fwd = build_rnn_layer(cell, u, name=f"{cell}_{i}_fw", **kw)
                bwd = build_rnn_layer(cell, u, go_backwards=True, name=f"{cell}_{i}_bw", **kw)
                layer = bidirectional_layer(fwd, bwd, merge_mode=merge_mode, name=f"bi_{cell}_{i}")
            else:
                layer = build_rnn_layer(cell, u, name=f"{cell}_{i}", **kw)
            self.rnns.append(layer)
            if not last:
                self.drops.append(
                    _dropout_layer(inter_dropout, dropout_mask, sub_seed(200 + i), f"inter_dropout_{i}")
                    if inter_dropout
                    else None
                )
        self.output_drop = None
        if output_dropout:
            mask = dropout_mask if return_sequences else "step"
            self.output_drop = _dropout_layer(output_dropout, mask, sub_seed(300), "output_dropout")

    @property
    def states_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, layer in enumerate(self.rnns):
            if not layer.built:
                layer.build(shape)
            width = self.units[i] * (2 if self.bidirectional and self.merge_mode == "concat" else 1)
            shape = shape[:-1] + (width,)
        self.built = True

    def call(self, inputs, initial_state=None, mask=None, training=None):
        x = inputs
        if self.input_drop is not None:
            x = self.input_drop(x, training=training)
        states_out = []
        k = self.states_per_layer
        for i, layer in enumerate(self.rnns):
            kwargs = {"mask": mask, "training": training}
            if initial_state is not None:
                kwargs["initial_state"] = list(initial_state[i * k : (i + 1) * k])
            out = layer(x, **kwargs)
            if self.return_state:
                x, *st = out
                states_out.extend(st)
            else:
                x = out
            if i < len(self.drops) and self.drops[i] is not None:
                x = self.drops[i](x, training=training)
        if self.output_drop is not None:
            x = self.output_drop(x, training=training)
        if self.return_state:
            return x, states_out
        return x

    def compute_mask(self, inputs, mask=None):
        if self.return_state:
            return None
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        d = 2 if self.bidirectional and self.merge_mode == "concat" else 1
        width = self.units[-1] * d
        out = (input_shape[0], input_shape[1], width) if self.return_sequences else (input_shape[0], width)
        if self.return_state:
            states = []
            for u in self.units:
                states.extend([(input_shape[0], u)] * self.states_per_layer)
            return out, states
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell,
            units=list(self.units),
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            bidirectional=self.bidirectional,
            merge_mode=self.merge_mode,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            inter_dropout=self.inter_dropout,
            output_dropout=self.output_dropout,
            dropout_mask=self.dropout_mask,
            regularizer=self.regularizer,
            regularizer_rate=self.regularizer_rate,
            implementation=self.implementation,
            seed=self.seed,
        )
        return config


def recurrent_stack(cell: str = "lstm", units=(128,), **kwargs) -> RecurrentStack:
    """Build a :class:`RecurrentStack`; see its docstring for the arguments."""
    return RecurrentStack(cell=cell, units=units, **kwargs)


def recurrent_stack_from_config(cfg, return_sequences: bool = False, **overrides) -> RecurrentStack:
    """Build the stack from a task config (any object with :class:`seqkit.config.RecurrentConfig` fields)."""
    kwargs = dict(
        cell=cfg.cell,
        units=list(cfg.units),
        return_sequences=return_sequences,
        bidirectional=cfg.bidirectional,
        merge_mode=cfg.merge_mode,
        dropout=cfg.dropout,
        recurrent_dropout=cfg.recurrent_dropout,
        inter_dropout=cfg.inter_dropout,
        output_dropout=cfg.output_dropout,
        dropout_mask=cfg.dropout_mask,
        regularizer=cfg.regularizer,
        regularizer_rate=cfg.regularizer_rate,
        implementation=cfg.implementation,
        seed=cfg.seed,
    )
    kwargs.update(overrides)
    return RecurrentStack(**kwargs)
