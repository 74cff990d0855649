"""Fused recurrent layers for fast CPU training: same weights, same numbers as ``keras.layers``.

``FastLSTM``, ``FastGRU`` and ``FastSimpleRNN`` subclass ``keras.layers.LSTM`` / ``GRU`` /
``SimpleRNN`` and only replace the time loop (``inner_loop``). Weights (``cell.kernel``,
``cell.recurrent_kernel``, ``cell.bias``), their names, their layout (LSTM gates ``i, f, c, o``;
GRU gates ``z, r, h`` with ``reset_after=True``), the config, masking, ``initial_state``,
``return_state``, ``go_backwards``, ``stateful`` and ``Bidirectional`` behave exactly as in Keras,
so a model can switch between the two implementations without retraining.

Why it is faster (see docs/performance.md for the measurements):

* the loop body holds the two step matmuls and the gate arithmetic, which XLA fuses;
* the backward pass is written by hand (``tf.custom_gradient``): the backward loop only
  carries ``dh``/``dc`` and does one matmul per step, and the weight gradients are one
  large matmul each after the loop, instead of TensorFlow's per-step accumulation of
  ``dW`` inside the loop (and the input gradient is one matmul over all steps);
* with several threads the loops run over slices of the batch, one per thread;
* the loop is a plain ``tf.while_loop`` over ``TensorArray``s, so it runs both in graph
  mode and under XLA (``jit_compile=True``), where the gate arithmetic fuses into one kernel.

The fast path is taken when all of these hold, otherwise the layer runs Keras' own loop
(same results, Keras' speed): TensorFlow backend, no GPU visible (on a GPU Keras' cuDNN
kernel is faster), default activations (``tanh`` / ``sigmoid``), ``recurrent_dropout=0``,
``unroll=False``, ``implementation=2`` when ``dropout > 0``, and for GRU ``reset_after=True``.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
from keras import activations

__all__ = ["FAST_LAYERS", "FastGRU", "FastLSTM", "FastSimpleRNN", "fast_path_available"]


def _gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _is(fn, name: str) -> bool:
    return fn is activations.get(name)


def _time_major(x: tf.Tensor, go_backwards: bool) -> tf.Tensor:
    """``(batch, time, ...)`` -> ``(time, batch, ...)``, reversed in time for ``go_backwards``."""
    perm = [1, 0] + list(range(2, x.shape.rank))
    x = tf.transpose(x, perm)
    return tf.reverse(x, [0]) if go_backwards else x


def _step_input(x_tm: tf.Tensor, t, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """Step ``t``'s input projection ``x[t] @ kernel + bias``.

    Done inside the loop rather than as one matmul over all steps before it: the all-steps
    product is a ``(time, batch, g)`` buffer written once and read back step by step, and that
    memory traffic costs more than the per-step matmuls save (forward loop 55 -> 51 ms for
    inputs of 64, 81 -> 75 ms for 256, level at 512; inference under XLA 68 -> 47 ms).
    """
    return tf.matmul(x_tm[t], kernel) + bias


def _projection_grads(dxp: tf.Tensor, x_tm: tf.Tensor, kernel: tf.Tensor):
    """Gradients of the input projection ``x @ kernel + bias`` w.r.t. ``x``, ``kernel``, ``bias``.

    ``dxp`` ``(time, batch, g)`` is the gradient of the projection at every step.
    """
    return tf.einsum("tbg,dg->tbd", dxp, kernel), tf.einsum("tbd,tbg->dg", x_tm, dxp), tf.reduce_sum(dxp, axis=[0, 1])


def _mask_tm(mask, go_backwards: bool, dtype) -> tf.Tensor | None:
    """Keras mask ``(batch, time)`` -> float ``(time, batch, 1)`` in processing order."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    m = tf.cast(mask, dtype)
    if m.shape.rank == 3:
        m = m[..., 0]
    return _time_major(m, go_backwards)[..., None]


def _outputs(states_tm: tf.Tensor, m: tf.Tensor | None, zero_output_for_mask: bool):
    """Keras' output rule for masked steps, vectorised after the loop.

    ``states_tm`` holds the state carried through masked steps. Keras outputs zeros at a
    masked step with ``zero_output_for_mask`` and otherwise the last unmasked output
    (zeros before the first unmasked step, even with a non-zero initial state).
    Returns ``(last_output (batch, units), outputs (batch, time, units))``.
    """
    out = states_tm
    if m is not None:
        keep = m if zero_output_for_mask else tf.cast(tf.cumsum(m, axis=0) > 0, m.dtype)
        out = out * keep
    return out[-1], tf.transpose(out, [1, 0, 2])


def _all_grads(dz: tf.Tensor, x_tm: tf.Tensor, h_prev: tf.Tensor, kernel: tf.Tensor):
    """Gradients of ``x``, ``kernel``, ``bias`` and ``recurrent_kernel`` when the input and the
    recurrent projection share the gate gradient ``dz`` ``(time, batch, g)`` (LSTM, SimpleRNN).

    Both weight gradients come from one contraction of ``[x, h_prev]`` with ``dz``: one pass over
    the largest tensor of the backward pass instead of two.
    """
    d = x_tm.shape[-1]
    dw = _weight_grad(tf.concat([x_tm, h_prev], -1), dz)
    return tf.einsum("tbg,dg->tbd", dz, kernel), dw[:d], tf.reduce_sum(dz, axis=[0, 1]), dw[d:]


def _weight_grad(prev_tm: tf.Tensor, dgates_tm: tf.Tensor) -> tf.Tensor:
    """``sum_t prev_t^T @ dgates_t``: one contraction over all ``time * batch`` rows after the loop."""
    # Written as an einsum over (time, batch): under XLA this is markedly faster than a
    # transpose_a matmul of the flattened (time * batch, .) matrices.
    return tf.einsum("tbu,tbg->ug", prev_tm, dgates_tm)


def _tensor_array(dtype, size, width: int) -> tf.TensorArray:
    return tf.TensorArray(dtype, size=size, element_shape=tf.TensorShape([None, width]))


def _mask_step(m, t):
    return None if m is None else m[t]


def _lstm_forward(x, kernel, bias, h0, c0, rk, m, keep: bool = True):
    """Forward LSTM loop; returns the outputs ``H`` ``(time, batch, u)`` and the last cell state.

    With ``keep`` (training) also what the backward loop reads: the cell state each step
    starts from ``CP`` ``(time, batch, u)``, the gate activations ``G`` ``(time, batch, 4u)``
    and ``tanh`` of each step's new cell state ``TC`` ``(time, batch, u)``.
    """
    units = rk.shape[0]
    steps = tf.shape(x)[0]

    def body(t, h, c, hs, *more):
        z = _step_input(x, t, kernel, bias) + tf.matmul(h, rk)
        i = tf.sigmoid(z[:, :units])
        f = tf.sigmoid(z[:, units : 2 * units])
        g = tf.tanh(z[:, 2 * units : 3 * units])
        o = tf.sigmoid(z[:, 3 * units :])
        c_new = f * c + i * g
        tc = tf.tanh(c_new)
        h_new = o * tc
        mt = _mask_step(m, t)
        if mt is not None:
            c_new = c + mt * (c_new - c)
            h_new = h + mt * (h_new - h)
        if not keep:
            return t + 1, h_new, c_new, hs.write(t, h_new)
        cps, gs, tcs = more
        return (
            t + 1,
            h_new,
            c_new,
            hs.write(t, h_new),
            cps.write(t, c),
            gs.write(t, tf.concat([i, f, g, o], -1)),
            tcs.write(t, tc),
        )

    widths = (units, units, 4 * units, units) if keep else (units,)
    loop = (0, h0, c0, *(_tensor_array(h0.dtype, steps, w) for w in widths))
    out = tf.while_loop(lambda t, *_: t < steps, body, loop, maximum_iterations=steps)
    if not keep:
        return out[3].stack(), out[2]
    return out[3].stack(), out[2], out[4].stack(), out[5].stack(), out[6].stack()


def _lstm_backward(dH, dc_last, x, kernel, h0, rk, m, H, CP, G, TC, with_weight_grads: bool = True):
    """Backward LSTM loop; returns the gradients of ``x``, ``kernel``, ``bias``, ``h0``, ``c0`` and ``rk``.

    ``dH`` is the gradient of the outputs ``(time, batch, u)``, ``dc_last`` that of the last
    cell state ``(batch, u)``; the rest is the forward loop's record (:func:`_lstm_forward`).
    """
    units = rk.shape[0]
    steps = tf.shape(H)[0]
    h_prev = tf.concat([h0[None], H[:-1]], 0)
    rk_t = tf.transpose(rk)

    def body(s, dh, dc, dzs):
        t = steps - 1 - s
        dh = dh + dH[t]
        gates = G[t]
        i = gates[:, :units]
        f = gates[:, units : 2 * units]
        g = gates[:, 2 * units : 3 * units]
        o = gates[:, 3 * units :]
        # tanh(c) is read from the forward record, not recomputed: the recomputation and the
        # previous-cell select cost more than one more (time, batch, u) buffer.
        tc = TC[t]
        mt = _mask_step(m, t)
        if mt is not None:
            dh_new, dc_new = dh * mt, dc * mt
            # Masked steps pass the state (and so its gradient) through unchanged.
            dh_keep, dc_keep = dh - dh_new, dc - dc_new
        else:
            dh_new, dc_new = dh, dc
        dc_new = dc_new + dh_new * o * (1 - tc * tc)
        # The four gate gradients as one full-width product: XLA then emits one fused kernel
        # instead of one per gate, each recomputing dc_new.
        dz = (
            tf.concat([dc_new, dc_new, dc_new, dh_new], -1)
            * tf.concat([g, CP[t], i, tc], -1)
            * tf.concat([i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)], -1)
        )
        dh_prev = tf.matmul(dz, rk_t)
        dc_prev = dc_new * f
        if mt is not None:
            dh_prev = dh_prev + dh_keep
            dc_prev = dc_prev + dc_keep
        return s + 1, dh_prev, dc_prev, dzs.write(t, dz)

    loop = (0, tf.zeros_like(h0), dc_last, _tensor_array(H.dtype, steps, 4 * units))
    _, dh0, dc0, dzs = tf.while_loop(lambda s, *_: s < steps, body, loop, maximum_iterations=steps)
    if not with_weight_grads:
        return dzs.stack(), dh0, dc0
    dx, dkernel, dbias, drk = _all_grads(dzs.stack(), x, h_prev, kernel)
    return dx, dkernel, dbias, dh0, dc0, drk


def _lstm_dz(dH, dc_last, x, kernel, h0, rk, m, H, CP, G, TC):
    """The backward loop alone: the gate gradients ``dz`` ``(time, batch, 4u)``, ``dh0`` and ``dc0``."""
    return _lstm_backward(dH, dc_last, x, kernel, h0, rk, m, H, CP, G, TC, with_weight_grads=False)


def _all_grads_bf16(dz: tf.Tensor, x_tm: tf.Tensor, h_prev: tf.Tensor, kernel: tf.Tensor):
    """:func:`_all_grads` with the three large products in bfloat16 (``SEQKIT_FAST_BF16_GRADS=1``).

    Run as TensorFlow ops, outside the loops' XLA clusters: oneDNN's bfloat16 matmul uses the
    AVX512-BF16 instructions at about twice the float32 rate, while XLA's CPU code does not.
    The products are rounded to bfloat16 (about 3 significant digits); the bias gradient and
    every loop stay in float32.
    """
    bf = tf.bfloat16
    g = dz.shape[-1]
    d = tf.cast(tf.reshape(dz, [-1, g]), bf)
    flat = lambda a: tf.cast(tf.reshape(a, [-1, a.shape[-1]]), bf)  # noqa: E731
    dkernel = tf.matmul(flat(x_tm), d, transpose_a=True)
    drk = tf.matmul(flat(h_prev), d, transpose_a=True)
    dx = tf.reshape(tf.matmul(d, tf.cast(kernel, bf), transpose_b=True), tf.shape(x_tm))
    f32 = dz.dtype
    return tf.cast(dx, f32), tf.cast(dkernel, f32), tf.reduce_sum(dz, axis=[0, 1]), tf.cast(drk, f32)


def _gru_forward(x, kernel, bias, h0, rk, rb, m):
    """Forward GRU loop; returns ``H`` ``(time, batch, u)`` and ``G`` = ``[z, r, hh, h @ rk_h + b]``."""
    units = rk.shape[0]
    steps = tf.shape(x)[0]

    def body(t, h, hs, gs):
        xt = _step_input(x, t, kernel, bias)
        r_all = tf.matmul(h, rk) + rb
        z = tf.sigmoid(xt[:, :units] + r_all[:, :units])
        r = tf.sigmoid(xt[:, units : 2 * units] + r_all[:, units : 2 * units])
        rh = r_all[:, 2 * units :]
        hh = tf.tanh(xt[:, 2 * units :] + r * rh)
        h_new = z * h + (1 - z) * hh
        mt = _mask_step(m, t)
        if mt is not None:
            h_new = h + mt * (h_new - h)
        return t + 1, h_new, hs.write(t, h_new), gs.write(t, tf.concat([z, r, hh, rh], -1))

    loop = (0, h0, _tensor_array(h0.dtype, steps, units), _tensor_array(h0.dtype, steps, 4 * units))
    _, _, hs, gs = tf.while_loop(lambda t, *_: t < steps, body, loop, maximum_iterations=steps)
    return hs.stack(), gs.stack()


def _gru_backward(dH, x, kernel, h0, rk, m, H, G):
    """Backward GRU loop; returns the gradients of ``x``, ``kernel``, ``bias``, ``h0``, ``rk`` and ``rb``."""
    units = rk.shape[0]
    steps = tf.shape(H)[0]
    h_prev = tf.concat([h0[None], H[:-1]], 0)
    rk_t = tf.transpose(rk)

    def body(s, dh, dxs, drs):
        t = steps - 1 - s
        dh = dh + dH[t]
        gates = G[t]
        z = gates[:, :units]
        r = gates[:, units : 2 * units]
        hh = gates[:, 2 * units : 3 * units]
        rh = gates[:, 3 * units :]
        mt = _mask_step(m, t)
        dh_new = dh if mt is None else dh * mt
        da_h = dh_new * (1 - z) * (1 - hh * hh)
        da_z = dh_new * (h_prev[t] - hh) * z * (1 - z)
        da_r = da_h * rh * r * (1 - r)
        dr = tf.concat([da_z, da_r, da_h * r], -1)
        dh_prev = dh_new * z + tf.matmul(dr, rk_t)
        if mt is not None:
            dh_prev = dh_prev + (dh - dh_new)
        return s + 1, dh_prev, dxs.write(t, tf.concat([da_z, da_r, da_h], -1)), drs.write(t, dr)

    ta = _tensor_array(H.dtype, steps, 3 * units)
    _, dh0, dxs, drs = tf.while_loop(
        lambda s, *_: s < steps, body, (0, tf.zeros_like(h0), ta, ta), maximum_iterations=steps
    )
    dX, dR = dxs.stack(), drs.stack()
    return (*_projection_grads(dX, x, kernel), dh0, _weight_grad(h_prev, dR), tf.reduce_sum(dR, axis=[0, 1]))


def _simple_forward(x, kernel, bias, h0, rk, m):
    """Forward ``tanh`` RNN loop; returns ``H`` and the unmasked new states ``N`` ``(time, batch, u)``."""
    units = rk.shape[0]
    steps = tf.shape(x)[0]

    def body(t, h, hs, ns):
        n = tf.tanh(_step_input(x, t, kernel, bias) + tf.matmul(h, rk))
        mt = _mask_step(m, t)
        h_new = n if mt is None else h + mt * (n - h)
        return t + 1, h_new, hs.write(t, h_new), ns.write(t, n)

    ta = _tensor_array(h0.dtype, steps, units)
    _, _, hs, ns = tf.while_loop(lambda t, *_: t < steps, body, (0, h0, ta, ta), maximum_iterations=steps)
    return hs.stack(), ns.stack()


def _simple_backward(dH, x, kernel, h0, rk, m, H, N):
    """Backward ``tanh`` RNN loop; returns the gradients of ``x``, ``kernel``, ``bias``, ``h0`` and ``rk``."""
    units = rk.shape[0]
    steps = tf.shape(H)[0]
    h_prev = tf.concat([h0[None], H[:-1]], 0)
    rk_t = tf.transpose(rk)

    def body(s, dh, das):
        t = steps - 1 - s
        dh = dh + dH[t]
        n = N[t]
        mt = _mask_step(m, t)
        dh_new = dh if mt is None else dh * mt
        da = dh_new * (1 - n * n)
        dh_prev = tf.matmul(da, rk_t)
        if mt is not None:
            dh_prev = dh_prev + (dh - dh_new)
        return s + 1, dh_prev, das.write(t, da)

    loop = (0, tf.zeros_like(h0), _tensor_array(H.dtype, steps, units))
    _, dh0, das = tf.while_loop(lambda s, *_: s < steps, body, loop, maximum_iterations=steps)
    dx, dkernel, dbias, drk = _all_grads(das.stack(), x, h_prev, kernel)
    return dx, dkernel, dbias, dh0, drk


# Each loop can run as its own XLA cluster even when the model is not compiled with XLA:
# XLA fuses the gate arithmetic of a step into one kernel and removes the per-op overhead
# of TensorFlow's executor, which dominates at these sizes.
_LOOP_JIT = os.environ.get("SEQKIT_FAST_LOOP_JIT", "1") != "0"
# Opt-in: the LSTM's weight and input gradients in bfloat16 (see _all_grads_bf16). Off by
# default, since the gradients then differ from keras.layers.LSTM's beyond float32 tolerance.
# Read once at import, like SEQKIT_FAST_LOOP_JIT.
_BF16_GRADS = os.environ.get("SEQKIT_FAST_BF16_GRADS", "0") == "1"
_JITTED: dict = {}


def _loop(fn):
    """``fn`` compiled with XLA; its inputs are cut from any tape (``tf.custom_gradient`` owns the gradient)."""
    if _LOOP_JIT:
        if fn not in _JITTED:
            _JITTED[fn] = tf.function(fn, jit_compile=True)
        fn = _JITTED[fn]

    def call(*args):
        # An eager tape watching the inputs would make TensorFlow export the loop's
        # intermediates for its own gradient, which XLA clusters cannot do.
        return fn(*(a if a is None else tf.stop_gradient(a) for a in args))

    return call


# The loops run as several independent loops over slices of the batch, one per thread: the
# rows of a batch do not interact, so TensorFlow's executor runs the slices on different cores
# with no synchronisation inside a step. Splitting each step's small matmul across threads
# instead scales worse (measured in docs/performance.md). ``SEQKIT_FAST_SHARDS`` overrides
# the count (1 turns the split off).
_MIN_SHARD_ROWS = 8


def _threads() -> int:
    """Threads TensorFlow runs ops on: its thread settings (API or environment), else the usable cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    intra = tf.config.threading.get_intra_op_parallelism_threads() or int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0)
    inter = tf.config.threading.get_inter_op_parallelism_threads() or int(os.environ.get("TF_NUM_INTEROP_THREADS") or 0)
    return min(intra or cores, inter or cores, cores)


def _shard_count(x_tm: tf.Tensor) -> int:
    """How many batch slices the loops over ``x_tm`` ``(time, batch, in)`` run as."""
    env = os.environ.get("SEQKIT_FAST_SHARDS")
    n = int(env) if env else _threads()
    batch = x_tm.shape[1]
    if batch is not None:
        n = min(n, batch // _MIN_SHARD_ROWS)
    return max(n, 1)


def _sharded(fn, x, states, m, out_axes):
    """``fn(x, states, m)`` over slices of the batch, outputs joined along ``out_axes``.

    ``x`` and ``m`` are time-major (batch axis 1), each state is ``(batch, u)``; ``fn`` returns
    a tuple whose ``k``-th entry has its batch axis at ``out_axes[k]``.
    """
    n = _shard_count(x)
    if n < 2:
        return fn(x, states, m)

    def split():
        b = tf.shape(x)[1]
        sizes = tf.stack([(b * (j + 1)) // n - (b * j) // n for j in range(n)])
        xs = tf.split(x, sizes, axis=1, num=n)
        ss = [tf.split(s, sizes, axis=0, num=n) for s in states]
        ms = [None] * n if m is None else tf.split(m, sizes, axis=1, num=n)
        outs = [fn(xs[j], [s[j] for s in ss], ms[j]) for j in range(n)]
        return tuple(tf.concat([o[k] for o in outs], axis) for k, axis in enumerate(out_axes))

    if x.shape[1] is not None:
        return split()
    # A batch size known only at run time (a model's ``None`` batch axis) is checked then: a
    # small batch (one review, one sentence) runs one loop, since a loop costs time per step
    # even with few rows.
    return tf.cond(tf.shape(x)[1] >= n * _MIN_SHARD_ROWS, split, lambda: tuple(fn(x, states, m)))


def _lstm_loop(x, kernel, bias, h0, c0, rk, m):
    """LSTM over time-major inputs ``x`` ``(time, batch, in)``.

    ``kernel`` ``(in, 4u)``, ``bias`` ``(4u,)``; ``h0``, ``c0`` ``(batch, u)``;
    ``rk`` ``(u, 4u)``; ``m`` ``(time, batch, 1)`` float mask or None.
    Returns ``H`` ``(time, batch, u)``, the states after each step (carried through masked
    steps), and the last cell state ``(batch, u)``.
    """

    def one(x, states, m):
        @tf.custom_gradient
        def run(x, kernel, bias, h0, c0, rk):
            H, c_last, CP, G, TC = _loop(_lstm_forward)(x, kernel, bias, h0, c0, rk, m)

            def grad(dH, dc_last):
                record = (x, kernel, h0, rk, m, H, CP, G, TC)
                if not _BF16_GRADS:
                    return _loop(_lstm_backward)(dH, dc_last, *record)
                dz, dh0, dc0 = _loop(_lstm_dz)(dH, dc_last, *record)
                h_prev = tf.concat([h0[None], H[:-1]], 0)
                dx, dkernel, dbias, drk = _all_grads_bf16(dz, x, h_prev, kernel)
                return dx, dkernel, dbias, dh0, dc0, drk

            return (H, c_last), grad

        return run(x, kernel, bias, *states, rk)

    return _sharded(one, x, [h0, c0], m, (1, 0))


def _lstm_infer(x, kernel, bias, h0, c0, rk, m):
    """Inference LSTM: ``H`` ``(time, batch, u)`` and the last cell state ``(batch, u)``."""
    return _sharded(
        lambda x, states, m: _lstm_forward(x, kernel, bias, *states, rk, m, keep=False), x, [h0, c0], m, (1, 0)
    )


def _gru_loop(x, kernel, bias, h0, rk, rb, m):
    """GRU (``reset_after=True``) over time-major inputs ``x`` ``(time, batch, in)``.

    ``kernel`` ``(in, 3u)``, ``bias`` ``(3u,)`` the input bias; ``rk`` ``(u, 3u)``;
    ``rb`` ``(3u,)`` the recurrent bias; ``m`` as for :func:`_lstm_loop`.
    Returns ``H`` ``(time, batch, u)``.
    """

    def one(x, states, m):
        @tf.custom_gradient
        def run(x, kernel, bias, h0, rk, rb):
            H, G = _loop(_gru_forward)(x, kernel, bias, h0, rk, rb, m)

            def grad(dH):
                return _loop(_gru_backward)(dH, x, kernel, h0, rk, m, H, G)

            return H, grad

        return (run(x, kernel, bias, *states, rk, rb),)

    return _sharded(one, x, [h0], m, (1,))[0]


def _gru_infer(x, kernel, bias, h0, rk, rb, m):
    """Inference GRU: ``H`` ``(time, batch, u)``."""
    return _sharded(lambda x, states, m: _gru_forward(x, kernel, bias, *states, rk, rb, m)[:1], x, [h0], m, (1,))[0]


def _simple_loop(x, kernel, bias, h0, rk, m):
    """``tanh`` SimpleRNN over time-major inputs ``x``; returns ``H`` ``(time, batch, u)``."""

    def one(x, states, m):
        @tf.custom_gradient
        def run(x, kernel, bias, h0, rk):
            H, N = _loop(_simple_forward)(x, kernel, bias, h0, rk, m)

            def grad(dH):
                return _loop(_simple_backward)(dH, x, kernel, h0, rk, m, H, N)

            return H, grad

        return (run(x, kernel, bias, *states, rk),)

    return _sharded(one, x, [h0], m, (1,))[0]


def _simple_infer(x, kernel, bias, h0, rk, m):
    """Inference SimpleRNN: ``H`` ``(time, batch, u)``."""
    return _sharded(lambda x, states, m: _simple_forward(x, kernel, bias, *states, rk, m)[:1], x, [h0], m, (1,))[0]


class _FastMixin:
    """Shared plumbing: when to take the fast path and how to prepare inputs."""

    def _fast_ok(self) -> bool:
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and not self.unroll
            and not cell.recurrent_dropout
            and (not cell.dropout or getattr(cell, "implementation", 2) == 2)
            and _is(cell.activation, "tanh")
            and (not hasattr(cell, "recurrent_activation") or _is(cell.recurrent_activation, "sigmoid"))
            and not _gpu_visible()
        )

    def _inputs_tm(self, sequences, training):
        cell = self.cell
        if training and cell.dropout:
            # Same per-sequence input mask Keras' own loop (and its cuDNN path) applies.
            sequences = sequences * tf.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), 1)
        return _time_major(sequences, self.go_backwards)

    def _weights(self):
        dtype = self.compute_dtype
        cell = self.cell
        kernel, rk = tf.cast(cell.kernel, dtype), tf.cast(cell.recurrent_kernel, dtype)
        if cell.use_bias:
            return kernel, rk, tf.cast(cell.bias, dtype)
        # Without a bias a zero one costs nothing and keeps one code path; its gradient is dropped.
        return kernel, rk, None if isinstance(self, FastGRU) else tf.zeros([rk.shape[-1]], dtype)


@keras.saving.register_keras_serializable(package="seqkit")
class FastLSTM(_FastMixin, keras.layers.LSTM):
    """``keras.layers.LSTM`` with a fused CPU training loop; same arguments, weights and outputs.

    Input ``(batch, time, features)``; output ``(batch, time, units)`` with
    ``return_sequences`` else ``(batch, units)``; with ``return_state`` also ``h``, ``c``
    ``(batch, units)``.

    Example:
        >>> y = FastLSTM(32, return_sequences=True)(keras.Input((None, 8)))
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast_ok():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        kernel, rk, bias = self._weights()
        x = self._inputs_tm(sequences, training)
        m = _mask_tm(mask, self.go_backwards, x.dtype)
        # Inference runs the plain loop (differentiable by TensorFlow, e.g. for saliency),
        # without the custom gradient's bookkeeping.
        loop = _lstm_loop if training else _lstm_infer
        H, c_last = loop(x, kernel, bias, initial_state[0], initial_state[1], rk, m)
        last, outputs = _outputs(H, m, self.zero_output_for_mask)
        return last, outputs, [H[-1], c_last]


@keras.saving.register_keras_serializable(package="seqkit")
class FastGRU(_FastMixin, keras.layers.GRU):
    """``keras.layers.GRU`` (``reset_after=True``) with a fused CPU training loop.

    Same arguments, weights (``bias`` is ``(2, 3 * units)``: input and recurrent bias)
    and outputs as Keras. Input ``(batch, time, features)``; output ``(batch, time, units)``
    or ``(batch, units)``; with ``return_state`` also ``h`` ``(batch, units)``.
    """

    def _fast_ok(self) -> bool:
        return self.cell.reset_after and super()._fast_ok()

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast_ok():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        kernel, rk, bias = self._weights()
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        if bias is None:
            in_bias = rec_bias = tf.zeros([rk.shape[-1]], rk.dtype)
        else:
            in_bias, rec_bias = bias[0], bias[1]
        x = self._inputs_tm(sequences, training)
        m = _mask_tm(mask, self.go_backwards, x.dtype)
        if training:
            H = _gru_loop(x, kernel, in_bias, h0, rk, rec_bias, m)
        else:
            H = _gru_infer(x, kernel, in_bias, h0, rk, rec_bias, m)
        last, outputs = _outputs(H, m, self.zero_output_for_mask)
        return last, outputs, [H[-1]]


@keras.saving.register_keras_serializable(package="seqkit")
class FastSimpleRNN(_FastMixin, keras.layers.SimpleRNN):
    """``keras.layers.SimpleRNN`` (``tanh``) with a fused CPU training loop; same weights and outputs."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast_ok():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        kernel, rk, bias = self._weights()
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        x = self._inputs_tm(sequences, training)
        m = _mask_tm(mask, self.go_backwards, x.dtype)
        if training:
            H = _simple_loop(x, kernel, bias, h0, rk, m)
        else:
            H = _simple_infer(x, kernel, bias, h0, rk, m)
        last, outputs = _outputs(H, m, self.zero_output_for_mask)
        return last, outputs, [H[-1]]


def fast_path_available(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` (a Fast* layer) will run the fused loop with its current options and devices."""
    return isinstance(layer, _FastMixin) and layer._fast_ok()


FAST_LAYERS = {"lstm": FastLSTM, "gru": FastGRU, "simple": FastSimpleRNN}
