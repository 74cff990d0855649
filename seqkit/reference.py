"""Reference NumPy implementation of SimpleRNN, LSTM and GRU: forward and backpropagation through time.

This module is the oracle the rest of seqkit is tested against and the place to
read how the cells work (see ``docs/reference.md``). It is plain NumPy: short,
exact, one loop over time, no framework. It is not fast.

Layout. Arrays are batched row vectors, the same layout as Keras:

* ``x``: inputs ``(batch, time, input_dim)``; ``hs``: hidden states ``(batch, time, units)``.
* ``W_x``: input kernel ``(input_dim, G * units)``; ``W_h``: recurrent kernel ``(units, G * units)``;
  ``b``: bias ``(G * units,)``, with ``G`` = 1 (SimpleRNN), 4 (LSTM) or 3 (GRU).
* The lectures write column vectors, ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)``; here
  ``W_x = W_xh^T`` and ``W_h = W_hh^T``, so a step is ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``.
* Gate blocks are in Keras order: LSTM ``i, f, g, o`` (Keras calls ``g`` "c"), GRU ``z, r, h``.
  GRU with ``reset_after=True`` (the Keras default) has two biases, ``b`` of shape ``(2, 3 * units)``:
  row 0 is added to ``x_t W_x``, row 1 to ``h_{t-1} W_h``.

So Keras weights load unchanged: ``from_keras(layer)`` and ``to_keras_weights(params)``.

API, per cell (``rnn`` = SimpleRNN, ``lstm``, ``gru``)::

    hs, cache = lstm_forward(x, h0, c0, W_x, W_h, b)
    grads = lstm_backward(dhs, cache, dh_last=None, dc_last=None, truncate=None)
    # grads: dx, dh0, dc0, dW_x, dW_h, db

``dhs`` is dLoss/dh_t for every step (the loss's direct dependence on each output),
``dh_last`` / ``dc_last`` is dLoss/d(final state) (e.g. from ``return_state``).
``truncate=k`` gives truncated BPTT: the gradient does not flow across the
boundaries of the k-step segments (see :func:`truncated_bptt`).

Generic, cell-agnostic versions work on a :class:`Params`::

    hs, state, cache = forward(params, x, state=None)
    grads = backward(dhs, cache, dstate=None, truncate=None)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CELLS",
    "GATES",
    "Params",
    "backward",
    "clip_by_global_norm",
    "clip_by_value",
    "forward",
    "from_keras",
    "from_keras_weights",
    "gate_slices",
    "global_norm",
    "gru_backward",
    "gru_forward",
    "init_params",
    "lstm_backward",
    "lstm_forward",
    "rnn_backward",
    "rnn_forward",
    "sigmoid",
    "to_keras_weights",
    "truncated_bptt",
    "weight_grads",
]

CELLS = ("simple", "lstm", "gru")
# Gate blocks along the last axis of W_x, W_h and b, in Keras order.
GATES = {"simple": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "h")}
_ALIASES = {"simple": "simple", "rnn": "simple", "simplernn": "simple", "lstm": "lstm", "gru": "gru"}
WEIGHT_GRAD_KEYS = ("dW_x", "dW_h", "db")


def _cell_name(cell: str) -> str:
    key = cell.lower().replace("_", "")
    if key not in _ALIASES:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    return _ALIASES[key]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function; written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def gate_slices(cell: str, units: int) -> dict[str, slice]:
    """Column slice of each gate block in ``W_x``, ``W_h`` and ``b``, e.g. ``{"i": slice(0, H), ...}``."""
    names = GATES[_cell_name(cell)]
    return {g: slice(k * units, (k + 1) * units) for k, g in enumerate(names)}


# --------------------------------------------------------------------------------------------------------------------
# Parameters


@dataclasses.dataclass
class Params:
    """Weights of one recurrent layer in Keras layout.

    Attributes:
        cell: ``"simple"``, ``"lstm"`` or ``"gru"``.
        W_x: ``(input_dim, G * units)``.
        W_h: ``(units, G * units)``.
        b: ``(G * units,)``; for GRU with ``reset_after`` ``(2, 3 * units)``.
        reset_after: GRU only: apply the reset gate after the recurrent matmul (Keras default).
    """

    cell: str
    W_x: np.ndarray
    W_h: np.ndarray
    b: np.ndarray
    reset_after: bool = True

    def __post_init__(self) -> None:
        self.cell = _cell_name(self.cell)
        g = len(GATES[self.cell])
        units = self.W_h.shape[0]
        if self.W_h.shape != (units, g * units):
            raise ValueError(f"{self.cell}: W_h must have shape (units, {g} * units), got {self.W_h.shape}")
        if self.W_x.ndim != 2 or self.W_x.shape[1] != g * units:
            raise ValueError(f"{self.cell}: W_x must have shape (input_dim, {g * units}), got {self.W_x.shape}")
        want = (2, g * units) if self.cell == "gru" and self.reset_after else (g * units,)
        if self.b.shape != want:
            raise ValueError(f"{self.cell}: b must have shape {want}, got {self.b.shape}")

    @property
    def units(self) -> int:
        return self.W_h.shape[0]

    @property
    def input_dim(self) -> int:
        return self.W_x.shape[0]

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W_x, W_h, b)``, the positional weight arguments of the ``*_forward`` functions."""
        return self.W_x, self.W_h, self.b

    def astype(self, dtype) -> Params:
        return dataclasses.replace(self, W_x=self.W_x.astype(dtype), W_h=self.W_h.astype(dtype), b=self.b.astype(dtype))


def init_params(
    cell: str,
    input_dim: int,
    units: int,
    *,
    seed: int = 0,
    scale: float = 0.5,
    reset_after: bool = True,
    dtype=np.float64,
) -> Params:
    """Random weights ``N(0, scale^2 / fan_in)`` (biases too, so tests exercise them)."""
    cell = _cell_name(cell)
    rng = np.random.default_rng(seed)
    g = len(GATES[cell])
    b_shape = (2, g * units) if cell == "gru" and reset_after else (g * units,)
    return Params(
        cell,
        (rng.standard_normal((input_dim, g * units)) * scale / np.sqrt(input_dim)).astype(dtype),
        (rng.standard_normal((units, g * units)) * scale / np.sqrt(units)).astype(dtype),
        (rng.standard_normal(b_shape) * scale).astype(dtype),
        reset_after=reset_after,
    )


def _check_x(x: np.ndarray, W_x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != W_x.shape[0]:
        raise ValueError(f"x must have shape (batch, time, {W_x.shape[0]}), got {x.shape}")
    return x


def _state(s: np.ndarray | None, batch: int, units: int, dtype) -> np.ndarray:
    if s is None:
        return np.zeros((batch, units), dtype)
    s = np.asarray(s, dtype)
    if s.shape != (batch, units):
        raise ValueError(f"initial state must have shape ({batch}, {units}), got {s.shape}")
    return s


def _dtype(*arrays) -> np.dtype:
    return np.result_type(*arrays, np.float32)


def _previous(h0: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """``h_{t-1}`` for every step: ``(batch, time, units)``."""
    return np.concatenate([h0[:, None], hs[:, :-1]], axis=1)


def _zeros_if_none(d: np.ndarray | None, shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype) if d is None else np.asarray(d, dtype)


def _cut(t: int, truncate: int | None) -> bool:
    """Whether the gradient stops between step t-1 and step t (a segment border of truncated BPTT)."""
    if truncate is None:
        return False
    if truncate < 1:
        raise ValueError(f"truncate must be a positive number of steps, got {truncate}")
    return t > 0 and t % truncate == 0


# --------------------------------------------------------------------------------------------------------------------
# SimpleRNN:  a_t = x_t W_x + h_{t-1} W_h + b,  h_t = tanh(a_t)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray | None, W_x: np.ndarray, W_h: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, dict]:
    """SimpleRNN over a sequence. ``x (B, T, D)``, ``h0 (B, H)`` or None -> ``hs (B, T, H)``, cache."""
    x = _check_x(x, W_x)
    B, T, _ = x.shape
    H = W_h.shape[0]
    dt = _dtype(x, W_x, W_h, b)
    h = _state(h0, B, H, dt)
    h0 = h
    hs = np.empty((B, T, H), dt)
    for t in range(T):
        h = np.tanh(x[:, t] @ W_x + h @ W_h + b)
        hs[:, t] = h
    return hs, {"cell": "simple", "x": x, "h0": h0, "hs": hs, "W_x": W_x, "W_h": W_h, "b": b}


def rnn_backward(
    dhs: np.ndarray | None, cache: dict, dh_last: np.ndarray | None = None, truncate: int | None = None
) -> dict[str, np.ndarray]:
    """Gradients of a SimpleRNN. ``dhs (B, T, H)``: dLoss/dh_t from the outputs; ``dh_last (B, H)``: dLoss/dh_T.

    Returns ``dx (B, T, D)``, ``dh0 (B, H)``, ``dW_x``, ``dW_h``, ``db``.
    """
    x, hs, W_x, W_h = cache["x"], cache["hs"], cache["W_x"], cache["W_h"]
    B, T, H = hs.shape
    dhs = _zeros_if_none(dhs, hs.shape, hs.dtype)
    da = np.empty_like(hs)  # dLoss/da_t, the pre-activation
    dh_next = _zeros_if_none(dh_last, (B, H), hs.dtype)
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next
        da[:, t] = dh * (1.0 - hs[:, t] ** 2)
        dh_next = da[:, t] @ W_h.T
        if _cut(t, truncate):
            dh_next = np.zeros_like(dh_next)
    hprev = _previous(cache["h0"], hs)
    return {
        "dx": da @ W_x.T,
        "dh0": dh_next,
        "dW_x": np.einsum("btd,btg->dg", x, da),
        "dW_h": np.einsum("btu,btg->ug", hprev, da),
        "db": da.sum(axis=(0, 1)),
    }


# --------------------------------------------------------------------------------------------------------------------
# LSTM:  [a_i, a_f, a_g, a_o] = x_t W_x + h_{t-1} W_h + b
#        i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
#        c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)


def lstm_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    W_x: np.ndarray,
    W_h: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, dict]:
    """LSTM over a sequence. ``x (B, T, D)``, ``h0, c0 (B, H)`` or None -> ``hs (B, T, H)``, cache.

    The final cell state is ``cache["cs"][:, -1]``.
    """
    x = _check_x(x, W_x)
    B, T, _ = x.shape
    H = W_h.shape[0]
    dt = _dtype(x, W_x, W_h, b)
    h, c = _state(h0, B, H, dt), _state(c0, B, H, dt)
    h0, c0 = h, c
    hs = np.empty((B, T, H), dt)
    cs = np.empty((B, T, H), dt)
    gates = np.empty((B, T, 4 * H), dt)  # activated i, f, g, o
    for t in range(T):
        a = x[:, t] @ W_x + h @ W_h + b
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H : 2 * H])
        g = np.tanh(a[:, 2 * H : 3 * H])
        o = sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs[:, t], cs[:, t] = h, c
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)
    cache = {"cell": "lstm", "x": x, "h0": h0, "c0": c0, "hs": hs, "cs": cs, "gates": gates}
    cache.update(W_x=W_x, W_h=W_h, b=b)
    return hs, cache


def lstm_backward(
    dhs: np.ndarray | None,
    cache: dict,
    dh_last: np.ndarray | None = None,
    dc_last: np.ndarray | None = None,
    truncate: int | None = None,
) -> dict[str, np.ndarray]:
    """Gradients of an LSTM. ``dhs (B, T, H)``; ``dh_last``, ``dc_last (B, H)``: dLoss/d(h_T, c_T).

    Returns ``dx``, ``dh0``, ``dc0``, ``dW_x``, ``dW_h``, ``db``.
    """
    x, hs, cs, gates, W_x, W_h = (cache[k] for k in ("x", "hs", "cs", "gates", "W_x", "W_h"))
    B, T, H = hs.shape
    dhs = _zeros_if_none(dhs, hs.shape, hs.dtype)
    cprev = _previous(cache["c0"], cs)
    da = np.empty_like(gates)  # dLoss/d(pre-activation) of i, f, g, o
    dh_next = _zeros_if_none(dh_last, (B, H), hs.dtype)
    # Carries δc_{t+1} ⊙ f_{t+1}: the path from c_t to the loss through c_{t+1}.
    dc_next = _zeros_if_none(dc_last, (B, H), hs.dtype)
    for t in reversed(range(T)):
        i, f, g, o = (gates[:, t, k * H : (k + 1) * H] for k in range(4))
        tanh_c = np.tanh(cs[:, t])
        dh = dhs[:, t] + dh_next
        dc = dh * o * (1.0 - tanh_c**2) + dc_next
        d_i, d_f, d_g, d_o = dc * g, dc * cprev[:, t], dc * i, dh * tanh_c
        da[:, t] = np.concatenate(
            [d_i * i * (1.0 - i), d_f * f * (1.0 - f), d_g * (1.0 - g**2), d_o * o * (1.0 - o)], axis=1
        )
        dh_next = da[:, t] @ W_h.T
        dc_next = dc * f
        if _cut(t, truncate):
            dh_next, dc_next = np.zeros_like(dh_next), np.zeros_like(dc_next)
    hprev = _previous(cache["h0"], hs)
    return {
        "dx": da @ W_x.T,
        "dh0": dh_next,
        "dc0": dc_next,
        "dW_x": np.einsum("btd,btg->dg", x, da),
        "dW_h": np.einsum("btu,btg->ug", hprev, da),
        "db": da.sum(axis=(0, 1)),
    }


# --------------------------------------------------------------------------------------------------------------------
# GRU (Keras convention: z keeps the old state):
#   z = σ(x_t W_xz + h_{t-1} W_hz + b_z),  r = σ(x_t W_xr + h_{t-1} W_hr + b_r)
#   reset_after=True:  n = tanh(x_t W_xh + b_xh + r ⊙ (h_{t-1} W_hh + b_hh))
#   reset_after=False: n = tanh(x_t W_xh + (r ⊙ h_{t-1}) W_hh + b_h)
#   h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    W_x: np.ndarray,
    W_h: np.ndarray,
    b: np.ndarray,
    reset_after: bool = True,
) -> tuple[np.ndarray, dict]:
    """GRU over a sequence. ``x (B, T, D)``, ``h0 (B, H)`` or None -> ``hs (B, T, H)``, cache.

    ``b`` is ``(2, 3H)`` (input bias, recurrent bias) when ``reset_after`` else ``(3H,)``.
    """
    x = _check_x(x, W_x)
    B, T, _ = x.shape
    H = W_h.shape[0]
    dt = _dtype(x, W_x, W_h, b)
    b_x, b_h = (b[0], b[1]) if reset_after else (b, None)
    h = _state(h0, B, H, dt)
    h0 = h
    hs = np.empty((B, T, H), dt)
    gates = np.empty((B, T, 3 * H), dt)  # activated z, r, n
    inner = np.empty((B, T, H), dt)  # reset_after: h_{t-1} W_hh + b_hh; else r ⊙ h_{t-1}
    for t in range(T):
        ax = x[:, t] @ W_x + b_x
        if reset_after:
            ah = h @ W_h + b_h
            z = sigmoid(ax[:, :H] + ah[:, :H])
            r = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
            inner[:, t] = ah[:, 2 * H :]
            n = np.tanh(ax[:, 2 * H :] + r * inner[:, t])
        else:
            ah = h @ W_h[:, : 2 * H]
            z = sigmoid(ax[:, :H] + ah[:, :H])
            r = sigmoid(ax[:, H : 2 * H] + ah[:, H:])
            inner[:, t] = r * h
            n = np.tanh(ax[:, 2 * H :] + inner[:, t] @ W_h[:, 2 * H :])
        h = z * h + (1.0 - z) * n
        hs[:, t] = h
        gates[:, t] = np.concatenate([z, r, n], axis=1)
    cache = {"cell": "gru", "x": x, "h0": h0, "hs": hs, "gates": gates, "inner": inner, "reset_after": reset_after}
    cache.update(W_x=W_x, W_h=W_h, b=b)
    return hs, cache


def gru_backward(
    dhs: np.ndarray | None, cache: dict, dh_last: np.ndarray | None = None, truncate: int | None = None
) -> dict[str, np.ndarray]:
    """Gradients of a GRU. ``dhs (B, T, H)``; ``dh_last (B, H)``: dLoss/dh_T.

    Returns ``dx``, ``dh0``, ``dW_x``, ``dW_h``, ``db`` (``db`` has the shape of ``b``).
    """
    x, hs, gates, inner, W_x, W_h = (cache[k] for k in ("x", "hs", "gates", "inner", "W_x", "W_h"))
    reset_after = cache["reset_after"]
    B, T, H = hs.shape
    dhs = _zeros_if_none(dhs, hs.shape, hs.dtype)
    hprev = _previous(cache["h0"], hs)
    dax = np.empty_like(gates)  # dLoss/d(x_t W_x + b_x), blocks z, r, n
    dah = np.empty_like(gates)  # dLoss/d(h_{t-1} W_h (+ b_h)), or for reset_after=False: z, r, and n's (r ⊙ h) W_hh
    dh_next = _zeros_if_none(dh_last, (B, H), hs.dtype)
    for t in reversed(range(T)):
        z, r, n = (gates[:, t, k * H : (k + 1) * H] for k in range(3))
        hp = hprev[:, t]
        dh = dhs[:, t] + dh_next
        dz = dh * (hp - n)
        da_n = dh * (1.0 - z) * (1.0 - n**2)
        dh_prev = dh * z
        if reset_after:
            dr = da_n * inner[:, t]
            d_inner = da_n * r
        else:
            d_rh = da_n @ W_h[:, 2 * H :].T
            dr = d_rh * hp
            dh_prev = dh_prev + d_rh * r
            d_inner = da_n
        da_z, da_r = dz * z * (1.0 - z), dr * r * (1.0 - r)
        dax[:, t] = np.concatenate([da_z, da_r, da_n], axis=1)
        dah[:, t] = np.concatenate([da_z, da_r, d_inner], axis=1)
        if reset_after:
            dh_next = dh_prev + dah[:, t] @ W_h.T
        else:
            dh_next = dh_prev + dah[:, t, : 2 * H] @ W_h[:, : 2 * H].T
        if _cut(t, truncate):
            dh_next = np.zeros_like(dh_next)
    if reset_after:
        dW_h = np.einsum("btu,btg->ug", hprev, dah)
        db = np.stack([dax.sum(axis=(0, 1)), dah.sum(axis=(0, 1))])
    else:
        dW_h = np.concatenate(
            [np.einsum("btu,btg->ug", hprev, dah[..., : 2 * H]), np.einsum("btu,btg->ug", inner, dah[..., 2 * H :])],
            axis=1,
        )
        db = dax.sum(axis=(0, 1))
    return {
        "dx": dax @ W_x.T,
        "dh0": dh_next,
        "dW_x": np.einsum("btd,btg->dg", x, dax),
        "dW_h": dW_h,
        "db": db,
    }


# --------------------------------------------------------------------------------------------------------------------
# Cell-agnostic entry points


def forward(params: Params, x: np.ndarray, state: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, tuple, dict]:
    """Run ``params`` over ``x (B, T, D)`` from ``state`` (``(h,)`` or, for LSTM, ``(h, c)``; None = zeros).

    Returns ``hs (B, T, H)``, the final state (same form as ``state``) and the cache for :func:`backward`.
    """
    state = tuple(state) if state is not None else ()
    h0 = state[0] if state else None
    if params.cell == "lstm":
        c0 = state[1] if len(state) > 1 else None
        hs, cache = lstm_forward(x, h0, c0, *params.weights())
        return hs, (hs[:, -1], cache["cs"][:, -1]), cache
    if params.cell == "gru":
        hs, cache = gru_forward(x, h0, *params.weights(), reset_after=params.reset_after)
    else:
        hs, cache = rnn_forward(x, h0, *params.weights())
    return hs, (hs[:, -1],), cache


def backward(
    dhs: np.ndarray | None,
    cache: dict,
    dstate: Sequence[np.ndarray | None] | None = None,
    truncate: int | None = None,
) -> dict[str, np.ndarray]:
    """Backpropagation through time for a cache from :func:`forward` (or any ``*_forward``).

    ``dstate``: dLoss/d(final state), same form as the state. Returns ``dx``, ``dh0`` (LSTM: ``dc0``),
    ``dW_x``, ``dW_h``, ``db``.
    """
    dstate = tuple(dstate) if dstate is not None else ()
    dh = dstate[0] if dstate else None
    if cache["cell"] == "lstm":
        dc = dstate[1] if len(dstate) > 1 else None
        return lstm_backward(dhs, cache, dh, dc, truncate=truncate)
    if cache["cell"] == "gru":
        return gru_backward(dhs, cache, dh, truncate=truncate)
    return rnn_backward(dhs, cache, dh, truncate=truncate)


def weight_grads(grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only the weight gradients ``dW_x``, ``dW_h``, ``db`` (what an optimiser and clipping see)."""
    return {k: grads[k] for k in WEIGHT_GRAD_KEYS}


def truncated_bptt(
    params: Params,
    x: np.ndarray,
    k: int,
    loss_and_grad: Callable[[int, np.ndarray], tuple[float, np.ndarray]],
    state: Sequence[np.ndarray] | None = None,
) -> tuple[float, dict[str, np.ndarray], tuple]:
    """Truncated BPTT: run forward over ``x`` in segments of ``k`` steps, backpropagate within each segment only.

    The state is carried forward from one segment to the next (the forward pass "runs on"), but no
    gradient crosses a segment border, so each backward pass is at most ``k`` steps long. Weight
    gradients are summed over segments. This equals ``backward(..., truncate=k)`` on the whole sequence;
    with ``k >= T`` it is full BPTT.

    ``loss_and_grad(t0, hs)`` gets the hidden states ``(B, k, H)`` of the segment starting at step ``t0`` and
    returns its loss and dLoss/dhs.

    Returns the summed loss, the gradients (``dx`` for all steps, ``dh0``/``dc0`` from the first segment, summed
    ``dW_x``, ``dW_h``, ``db``) and the final state.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of steps, got {k}")
    T = x.shape[1]
    total = 0.0
    grads: dict[str, Any] = {key: None for key in WEIGHT_GRAD_KEYS}
    dxs = []
    first: dict[str, np.ndarray] = {}
    for t0 in range(0, T, k):
        hs, new_state, cache = forward(params, x[:, t0 : t0 + k], state)
        loss, dhs = loss_and_grad(t0, hs)
        g = backward(dhs, cache)
        total += float(loss)
        for key in WEIGHT_GRAD_KEYS:
            grads[key] = g[key] if grads[key] is None else grads[key] + g[key]
        dxs.append(g["dx"])
        if t0 == 0:
            first = {key: g[key] for key in ("dh0", "dc0") if key in g}
        state = new_state
    grads.update(first, dx=np.concatenate(dxs, axis=1))
    return total, grads, tuple(state)


# --------------------------------------------------------------------------------------------------------------------
# Gradient clipping


def global_norm(grads: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> float:
    """``sqrt(sum of squares)`` over every array in ``grads``."""
    values = grads.values() if isinstance(grads, Mapping) else grads
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in values)))


def clip_by_global_norm(grads, max_norm: float):
    """Scale all gradients by ``max_norm / max(norm, max_norm)``, as ``tf.clip_by_global_norm`` does.

    ``grads`` is a dict or a list of arrays (pass :func:`weight_grads`, not ``dx``). Returns
    ``(clipped, norm)`` with ``clipped`` of the same kind and ``norm`` the norm before clipping.
    The direction of the update is kept; only its length is capped.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    norm = global_norm(grads)
    scale = max_norm / max(norm, max_norm)
    if isinstance(grads, Mapping):
        return {k: g * scale for k, g in grads.items()}, norm
    return [g * scale for g in grads], norm


def clip_by_value(grads, limit: float):
    """Clip every element into ``[-limit, limit]`` (min-char-rnn's ``np.clip(d, -5, 5)``).

    Cheaper than global-norm clipping but changes the direction of the update.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    if isinstance(grads, Mapping):
        return {k: np.clip(g, -limit, limit) for k, g in grads.items()}
    return [np.clip(g, -limit, limit) for g in grads]


# --------------------------------------------------------------------------------------------------------------------
# Keras conversion


def _infer_cell(W_h: np.ndarray) -> str:
    units, cols = W_h.shape
    by_gates = {1: "simple", 4: "lstm", 3: "gru"}
    if units == 0 or cols % units or cols // units not in by_gates:
        raise ValueError(f"recurrent kernel of shape {W_h.shape} is not a SimpleRNN, LSTM or GRU kernel")
    return by_gates[cols // units]


def from_keras_weights(
    weights: Sequence[Any], cell: str | None = None, *, reset_after: bool | None = None, dtype=np.float64
) -> Params:
    """:class:`Params` from ``[kernel, recurrent_kernel(, bias)]`` in Keras layout (``layer.get_weights()``).

    ``cell`` is inferred from the recurrent kernel's shape when None. Without a bias (``use_bias=False``)
    the bias is zero. ``reset_after`` (GRU) is inferred from the bias shape when None (True without a bias).
    """
    if len(weights) not in (2, 3):
        raise ValueError(f"expected [kernel, recurrent_kernel] or [kernel, recurrent_kernel, bias], got {len(weights)}")
    W_x, W_h = (np.asarray(w, dtype) for w in weights[:2])
    cell = _cell_name(cell) if cell is not None else _infer_cell(W_h)
    units = W_h.shape[0]
    g = len(GATES[cell])
    b = np.asarray(weights[2], dtype) if len(weights) == 3 else None
    if cell == "gru":
        if reset_after is None:
            reset_after = b is None or b.ndim == 2
        if b is None:
            b = np.zeros((2, g * units) if reset_after else (g * units,), dtype)
    elif b is None:
        b = np.zeros((g * units,), dtype)
    return Params(cell, W_x, W_h, b, reset_after=bool(reset_after) if cell == "gru" else True)


def from_keras(layer, dtype=np.float64) -> Params:
    """:class:`Params` from a built Keras ``SimpleRNN``/``LSTM``/``GRU`` layer or cell (or any layer with their weights).

    Raises ``ValueError`` for options the reference does not model (other activations, ``go_backwards``).
    Dropout is ignored: the reference computes the inference-time function.
    """
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    for key, want in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        got = config.get(key, want)
        if isinstance(got, dict):  # a serialised activation object
            got = got.get("config", {}).get("name", got.get("class_name"))
        if got != want:
            raise ValueError(f"{layer.name}: the reference implements {key}={want!r}, got {got!r}")
    if config.get("go_backwards"):
        raise ValueError(f"{layer.name}: go_backwards=True is not supported; reverse the inputs instead")
    cell = None
    name = type(getattr(layer, "cell", layer)).__name__.lower()
    for prefix, c in (("simplernn", "simple"), ("lstm", "lstm"), ("gru", "gru")):
        if name.startswith(prefix):
            cell = c
    return from_keras_weights(layer.get_weights(), cell, reset_after=config.get("reset_after"), dtype=dtype)


def to_keras_weights(params: Params, use_bias: bool = True, dtype=np.float32) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` for ``layer.set_weights`` (no bias when ``use_bias=False``)."""
    out = [params.W_x, params.W_h] + ([params.b] if use_bias else [])
    return [np.asarray(w, dtype) for w in out]
