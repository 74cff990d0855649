"""Fused recurrent layers for fast CPU training: same weights, same numbers as ``keras.layers``.

``FastLSTM``, ``FastGRU`` and ``FastSimpleRNN`` subclass ``keras.layers.LSTM`` / ``GRU`` /
``SimpleRNN`` and only replace the time loop (``inner_loop``). Weights (``cell.kernel``,
``cell.recurrent_kernel``, ``cell.bias``), their names, their layout (LSTM gates ``i, f, c, o``;
GRU gates ``z, r, h`` with ``reset_after=True``), the config, masking, ``initial_state``,
``return_state``, ``go_backwards``, ``stateful`` and ``Bidirectional`` behave exactly as in Keras,
so a model can switch between the two implementations without retraining.

Why it is faster (see docs/performance.md for the measurements):

* the input projection ``x @ kernel + bias`` is one matmul over all time steps, done
  time-major, instead of one small matmul per step;
* the loop body holds only ``h @ recurrent_kernel`` and the gate arithmetic;
* the backward pass is written by hand (``tf.custom_gradient``): the backward loop only
  carries ``dh``/``dc`` and does one matmul per step, and the weight gradients are one
  large matmul each after the loop, instead of TensorFlow's per-step accumulation of
  ``dW`` inside the loop;
* the loop is a plain ``tf.while_loop`` over ``TensorArray``s, so it runs both in graph
  mode and under XLA (``jit_compile=True``), where the gate arithmetic fuses into one kernel.

The fast path is taken when all of these hold, otherwise the layer runs Keras' own loop
(same results, Keras' speed): TensorFlow backend, no GPU visible (on a GPU Keras' cuDNN
kernel is faster), default activations (``tanh`` / ``sigmoid``), ``recurrent_dropout=0``,
``unroll=False``, ``implementation=2`` when ``dropout > 0``, and for GRU ``reset_after=True``.
"""

from __future__ import annotations

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


def _project(x_tm: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None) -> tf.Tensor:
    """One matmul for every step: ``(time, batch, in) @ (in, g) + bias -> (time, batch, g)``."""
    shape = tf.shape(x_tm)
    flat = tf.matmul(tf.reshape(x_tm, [-1, x_tm.shape[-1]]), kernel)
    if bias is not None:
        flat = flat + bias
    return tf.reshape(flat, tf.concat([shape[:2], [kernel.shape[-1]]], 0))


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


def _weight_grad(prev_tm: tf.Tensor, dgates_tm: tf.Tensor) -> tf.Tensor:
    """``sum_t prev_t^T @ dgates_t`` as one matmul over all ``time * batch`` rows."""
    units, gates = prev_tm.shape[-1], dgates_tm.shape[-1]
    return tf.matmul(tf.reshape(prev_tm, [-1, units]), tf.reshape(dgates_tm, [-1, gates]), transpose_a=True)


def _tensor_array(dtype, size, width: int) -> tf.TensorArray:
    return tf.TensorArray(dtype, size=size, element_shape=tf.TensorShape([None, width]))


def _lstm_loop(xp, h0, c0, rk, m):
    """LSTM recurrence over pre-projected inputs.

    ``xp`` ``(time, batch, 4u)`` = ``x @ kernel + bias``; ``h0``, ``c0`` ``(batch, u)``;
    ``rk`` ``(u, 4u)``; ``m`` ``(time, batch, 1)`` float mask or None.
    Returns ``H``, ``C`` ``(time, batch, u)``: the states after each step (carried through
    masked steps).
    """
    units = rk.shape[0]
    masked = m is not None

    @tf.custom_gradient
    def run(xp, h0, c0, rk, *mask):
        steps = tf.shape(xp)[0]
        mt_all = mask[0] if masked else None

        def body(t, h, c, hs, cs, gs):
            z = xp[t] + tf.matmul(h, rk)
            i = tf.sigmoid(z[:, :units])
            f = tf.sigmoid(z[:, units : 2 * units])
            g = tf.tanh(z[:, 2 * units : 3 * units])
            o = tf.sigmoid(z[:, 3 * units :])
            c_new = f * c + i * g
            h_new = o * tf.tanh(c_new)
            if masked:
                mt = mt_all[t]
                c_new = c + mt * (c_new - c)
                h_new = h + mt * (h_new - h)
            return t + 1, h_new, c_new, hs.write(t, h_new), cs.write(t, c_new), gs.write(t, tf.concat([i, f, g, o], -1))

        loop = (0, h0, c0, *(_tensor_array(xp.dtype, steps, w) for w in (units, units, 4 * units)))
        _, _, _, hs, cs, gs = tf.while_loop(lambda t, *_: t < steps, body, loop)
        H, C, G = hs.stack(), cs.stack(), gs.stack()

        def grad(dH, dC):
            h_prev = tf.concat([h0[None], H[:-1]], 0)
            c_prev = tf.concat([c0[None], C[:-1]], 0)
            rk_t = tf.transpose(rk)

            def bbody(s, dh, dc, dgs):
                t = steps - 1 - s
                dh = dh + dH[t]
                dc = dc + dC[t]
                gates = G[t]
                i = gates[:, :units]
                f = gates[:, units : 2 * units]
                g = gates[:, 2 * units : 3 * units]
                o = gates[:, 3 * units :]
                cp = c_prev[t]
                # The unmasked new cell is recomputed rather than stored: one fused
                # multiply-add is cheaper than another (time, batch, u) buffer.
                tc = tf.tanh(f * cp + i * g)
                if masked:
                    mt = mt_all[t]
                    dh_new, dc_new = dh * mt, dc * mt
                    dh_keep, dc_keep = dh - dh_new, dc - dc_new
                else:
                    dh_new, dc_new = dh, dc
                dc_new = dc_new + dh_new * o * (1 - tc * tc)
                dz = tf.concat(
                    [
                        dc_new * g * i * (1 - i),
                        dc_new * cp * f * (1 - f),
                        dc_new * i * (1 - g * g),
                        dh_new * tc * o * (1 - o),
                    ],
                    -1,
                )
                dh_prev = tf.matmul(dz, rk_t)
                dc_prev = dc_new * f
                if masked:
                    dh_prev = dh_prev + dh_keep
                    dc_prev = dc_prev + dc_keep
                return s + 1, dh_prev, dc_prev, dgs.write(t, dz)

            zeros = tf.zeros_like(h0)
            loop = (0, zeros, zeros, _tensor_array(xp.dtype, steps, 4 * units))
            _, dh0, dc0, dgs = tf.while_loop(lambda s, *_: s < steps, bbody, loop)
            dZ = dgs.stack()
            drk = _weight_grad(h_prev, dZ)
            return (dZ, dh0, dc0, drk, *(tf.zeros_like(x) for x in mask))

        return (H, C), grad

    return run(xp, h0, c0, rk, *([m] if masked else []))


def _gru_loop(xp, h0, rk, rb, m):
    """GRU (``reset_after=True``) recurrence over pre-projected inputs.

    ``xp`` ``(time, batch, 3u)`` = ``x @ kernel + input_bias``; ``rk`` ``(u, 3u)``;
    ``rb`` ``(3u,)`` the recurrent bias; ``m`` as for :func:`_lstm_loop`.
    Returns ``H`` ``(time, batch, u)``.
    """
    units = rk.shape[0]
    masked = m is not None

    @tf.custom_gradient
    def run(xp, h0, rk, rb, *mask):
        steps = tf.shape(xp)[0]
        mt_all = mask[0] if masked else None

        def body(t, h, hs, gs):
            x = xp[t]
            r_all = tf.matmul(h, rk) + rb
            z = tf.sigmoid(x[:, :units] + r_all[:, :units])
            r = tf.sigmoid(x[:, units : 2 * units] + r_all[:, units : 2 * units])
            rh = r_all[:, 2 * units :]
            hh = tf.tanh(x[:, 2 * units :] + r * rh)
            h_new = z * h + (1 - z) * hh
            if masked:
                h_new = h + mask[0][t] * (h_new - h)
            return t + 1, h_new, hs.write(t, h_new), gs.write(t, tf.concat([z, r, hh, rh], -1))

        loop = (0, h0, _tensor_array(xp.dtype, steps, units), _tensor_array(xp.dtype, steps, 4 * units))
        _, _, hs, gs = tf.while_loop(lambda t, *_: t < steps, body, loop)
        H, G = hs.stack(), gs.stack()

        def grad(dH):
            h_prev = tf.concat([h0[None], H[:-1]], 0)
            rk_t = tf.transpose(rk)

            def bbody(s, dh, dxs, drs):
                t = steps - 1 - s
                dh = dh + dH[t]
                gates = G[t]
                z = gates[:, :units]
                r = gates[:, units : 2 * units]
                hh = gates[:, 2 * units : 3 * units]
                rh = gates[:, 3 * units :]
                hp = h_prev[t]
                if masked:
                    dh_new = dh * mt_all[t]
                    dh_keep = dh - dh_new
                else:
                    dh_new = dh
                da_h = dh_new * (1 - z) * (1 - hh * hh)
                da_z = dh_new * (hp - hh) * z * (1 - z)
                da_r = da_h * rh * r * (1 - r)
                dx = tf.concat([da_z, da_r, da_h], -1)
                dr = tf.concat([da_z, da_r, da_h * r], -1)
                dh_prev = dh_new * z + tf.matmul(dr, rk_t)
                if masked:
                    dh_prev = dh_prev + dh_keep
                return s + 1, dh_prev, dxs.write(t, dx), drs.write(t, dr)

            loop = (
                0,
                tf.zeros_like(h0),
                _tensor_array(xp.dtype, steps, 3 * units),
                _tensor_array(xp.dtype, steps, 3 * units),
            )
            _, dh0, dxs, drs = tf.while_loop(lambda s, *_: s < steps, bbody, loop)
            dX, dR = dxs.stack(), drs.stack()
            drk = _weight_grad(h_prev, dR)
            drb = tf.reduce_sum(dR, axis=[0, 1])
            return (dX, dh0, drk, drb, *(tf.zeros_like(x) for x in mask))

        return H, grad

    return run(xp, h0, rk, rb, *([m] if masked else []))


def _simple_loop(xp, h0, rk, m):
    """``tanh`` SimpleRNN recurrence over pre-projected inputs; returns ``H`` ``(time, batch, u)``."""
    units = rk.shape[0]
    masked = m is not None

    @tf.custom_gradient
    def run(xp, h0, rk, *mask):
        steps = tf.shape(xp)[0]

        def body(t, h, hs, ns):
            h_new = tf.tanh(xp[t] + tf.matmul(h, rk))
            n = h_new
            if masked:
                h_new = h + mask[0][t] * (h_new - h)
            return t + 1, h_new, hs.write(t, h_new), ns.write(t, n)

        loop = (0, h0, _tensor_array(xp.dtype, steps, units), _tensor_array(xp.dtype, steps, units))
        _, _, hs, ns = tf.while_loop(lambda t, *_: t < steps, body, loop)
        H, N = hs.stack(), ns.stack()

        def grad(dH):
            h_prev = tf.concat([h0[None], H[:-1]], 0)
            rk_t = tf.transpose(rk)

            def bbody(s, dh, das):
                t = steps - 1 - s
                dh = dh + dH[t]
                n = N[t]
                if masked:
                    dh_new = dh * mask[0][t]
                    dh_keep = dh - dh_new
                else:
                    dh_new = dh
                da = dh_new * (1 - n * n)
                dh_prev = tf.matmul(da, rk_t)
                if masked:
                    dh_prev = dh_prev + dh_keep
                return s + 1, dh_prev, das.write(t, da)

            loop = (0, tf.zeros_like(h0), _tensor_array(xp.dtype, steps, units))
            _, dh0, das = tf.while_loop(lambda s, *_: s < steps, bbody, loop)
            dA = das.stack()
            return (dA, dh0, _weight_grad(h_prev, dA), *(tf.zeros_like(x) for x in mask))

        return H, grad

    return run(xp, h0, rk, *([m] if masked else []))


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
        bias = tf.cast(cell.bias, dtype) if cell.use_bias else None
        return tf.cast(cell.kernel, dtype), tf.cast(cell.recurrent_kernel, dtype), bias


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
        H, C = _lstm_loop(_project(x, kernel, bias), initial_state[0], initial_state[1], rk, m)
        last, outputs = _outputs(H, m, self.zero_output_for_mask)
        return last, outputs, [H[-1], C[-1]]


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
            in_bias, rec_bias = None, tf.zeros([rk.shape[-1]], rk.dtype)
        else:
            in_bias, rec_bias = bias[0], bias[1]
        x = self._inputs_tm(sequences, training)
        m = _mask_tm(mask, self.go_backwards, x.dtype)
        H = _gru_loop(_project(x, kernel, in_bias), h0, rk, rec_bias, m)
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
        H = _simple_loop(_project(x, kernel, bias), h0, rk, m)
        last, outputs = _outputs(H, m, self.zero_output_for_mask)
        return last, outputs, [H[-1]]


def fast_path_available(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` (a Fast* layer) will run the fused loop with its current options and devices."""
    return isinstance(layer, _FastMixin) and layer._fast_ok()


FAST_LAYERS = {"lstm": FastLSTM, "gru": FastGRU, "simple": FastSimpleRNN}
