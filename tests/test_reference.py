"""The NumPy reference cells: finite-difference gradients, agreement with Keras, truncated BPTT, clipping."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqkit import reference as ref

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
B, T, D, H = 2, 5, 3, 4
# (cell, reset_after): every layout the reference supports.
CASES = [("simple", True), ("lstm", True), ("gru", True), ("gru", False)]
CASE_IDS = ["simple", "lstm", "gru", "gru_reset_before"]


def _n_states(cell: str) -> int:
    return 2 if cell == "lstm" else 1


def _problem(cell: str, reset_after: bool, seed: int = 0, dtype=np.float64):
    """Params, inputs, a non-zero initial state and random loss weights for every output and final state."""
    params = ref.init_params(cell, D, H, seed=seed, reset_after=reset_after, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    state = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(_n_states(cell)))
    w_out = rng.standard_normal((B, T, H)).astype(dtype)
    w_state = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in state)
    return params, x, state, w_out, w_state


def _loss(params, x, state, w_out, w_state) -> float:
    """A linear read-out of every step and of the final state, so every gradient path is exercised."""
    hs, final, _ = ref.forward(params, x, state)
    return float(np.sum(hs * w_out) + sum(np.sum(s * w) for s, w in zip(final, w_state)))


def _numeric_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``f()`` with respect to ``arr``, perturbed in place."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        orig = arr[idx]
        arr[idx] = orig + eps
        plus = f()
        arr[idx] = orig - eps
        minus = f()
        arr[idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300))


# --------------------------------------------------------------------------------------------------------------------
# Finite differences


@pytest.mark.parametrize("cell,reset_after", CASES, ids=CASE_IDS)
def test_backward_matches_finite_differences(cell, reset_after):
    params, x, state, w_out, w_state = _problem(cell, reset_after)
    _, _, cache = ref.forward(params, x, state)
    grads = ref.backward(w_out, cache, w_state)

    def f():
        return _loss(params, x, state, w_out, w_state)

    targets = {"dW_x": params.W_x, "dW_h": params.W_h, "db": params.b, "dx": x, "dh0": state[0]}
    if cell == "lstm":
        targets["dc0"] = state[1]
    assert set(grads) == set(targets)
    for name, arr in targets.items():
        assert grads[name].shape == arr.shape, name
        err = _rel_err(grads[name], _numeric_grad(f, arr))
        assert err < 1e-6, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell,reset_after", CASES, ids=CASE_IDS)
def test_per_cell_api_matches_generic(cell, reset_after):
    params, x, state, w_out, w_state = _problem(cell, reset_after)
    hs, _, cache = ref.forward(params, x, state)
    if cell == "lstm":
        hs2, cache2 = ref.lstm_forward(x, state[0], state[1], *params.weights())
        g2 = ref.lstm_backward(w_out, cache2, dh_last=w_state[0], dc_last=w_state[1])
    elif cell == "gru":
        hs2, cache2 = ref.gru_forward(x, state[0], *params.weights(), reset_after=reset_after)
        g2 = ref.gru_backward(w_out, cache2, dh_last=w_state[0])
    else:
        hs2, cache2 = ref.rnn_forward(x, state[0], *params.weights())
        g2 = ref.rnn_backward(w_out, cache2, dh_last=w_state[0])
    g = ref.backward(w_out, cache, w_state)
    np.testing.assert_array_equal(hs, hs2)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k])


def test_zero_initial_state_and_no_output_gradient():
    params, x, _, _, _ = _problem("lstm", True)
    hs, (h, c), cache = ref.forward(params, x)
    hs0, _, _ = ref.forward(params, x, (np.zeros((B, H)), np.zeros((B, H))))
    np.testing.assert_array_equal(hs, hs0)
    g = ref.backward(None, cache)  # no loss at all: every gradient is zero
    assert all(not np.any(v) for v in g.values())


def test_bad_shapes_raise():
    params = ref.init_params("lstm", D, H)
    with pytest.raises(ValueError, match="x must have shape"):
        ref.forward(params, np.zeros((T, D)))
    with pytest.raises(ValueError, match="initial state"):
        ref.forward(params, np.zeros((B, T, D)), (np.zeros((B + 1, H)), np.zeros((B, H))))
    with pytest.raises(ValueError, match="b must have shape"):
        ref.Params("gru", params.W_x[:, : 3 * H], params.W_h[:, : 3 * H], np.zeros(3 * H), reset_after=True)
    with pytest.raises(ValueError, match="cell must be"):
        ref.init_params("rnn2", D, H)


def test_module_does_not_import_tensorflow():
    code = "import sys, seqkit.reference; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# --------------------------------------------------------------------------------------------------------------------
# Agreement with Keras


def _keras_layer(cell: str, reset_after: bool, **kwargs):
    import keras

    cls = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    if cell == "gru":
        kwargs["reset_after"] = reset_after
    layer = cls(H, return_sequences=True, return_state=True, **kwargs)
    layer.build((None, T, D))
    return layer


@pytest.mark.parametrize("cell,reset_after", CASES, ids=CASE_IDS)
def test_matches_keras_forward_and_gradients(cell, reset_after):
    import tensorflow as tf

    params32, x, state, w_out, w_state = _problem(cell, reset_after, seed=3, dtype=np.float32)
    layer = _keras_layer(cell, reset_after)
    layer.set_weights(ref.to_keras_weights(params32))
    params = ref.from_keras(layer)  # float64 copy of exactly the float32 weights Keras holds
    assert params.cell == cell and params.reset_after == reset_after
    for a, b in zip(params.weights(), params32.weights()):
        np.testing.assert_array_equal(a, b)

    xs = tf.constant(x)
    states = [tf.constant(s) for s in state]
    with tf.GradientTape() as tape:
        tape.watch([xs, *states])
        out, *final = layer(xs, initial_state=states)
        loss = tf.reduce_sum(out * w_out) + sum(tf.reduce_sum(s * w) for s, w in zip(final, w_state))
    kgrads = tape.gradient(loss, [xs, *states, *layer.trainable_weights])

    x64, state64 = x.astype(np.float64), tuple(s.astype(np.float64) for s in state)
    hs, final64, cache = ref.forward(params, x64, state64)
    grads = ref.backward(w_out.astype(np.float64), cache, [w.astype(np.float64) for w in w_state])

    tol = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), hs, **tol)
    for k_state, r_state in zip(final, final64):
        np.testing.assert_allclose(k_state.numpy(), r_state, **tol)
    names = ["dx", "dh0", "dc0"][: 1 + len(state)] + ["dW_x", "dW_h", "db"]
    assert [w.name for w in layer.trainable_weights] == ["kernel", "recurrent_kernel", "bias"]
    for name, kg in zip(names, kgrads):
        np.testing.assert_allclose(np.asarray(kg), grads[name], err_msg=f"{cell} {name}", **tol)


def test_from_keras_without_bias_and_default_weights():
    params_keras = _keras_layer("gru", True, use_bias=False)
    params = ref.from_keras(params_keras)
    assert params.b.shape == (2, 3 * H) and not params.b.any()
    x = np.random.default_rng(0).standard_normal((B, T, D)).astype(np.float32)
    out = params_keras(x)[0].numpy()
    np.testing.assert_allclose(out, ref.forward(params, x.astype(np.float64))[0], rtol=1e-4, atol=1e-5)
    assert len(ref.to_keras_weights(params, use_bias=False)) == 2


def test_from_keras_accepts_cells():
    import keras

    for cls, cell in ((keras.layers.SimpleRNNCell, "simple"), (keras.layers.LSTMCell, "lstm")):
        c = cls(H)
        c.build((None, D))
        assert ref.from_keras(c).cell == cell
    gru_cell = keras.layers.GRUCell(H, reset_after=False)
    gru_cell.build((None, D))
    p = ref.from_keras(gru_cell)
    assert (p.cell, p.reset_after, p.b.shape) == ("gru", False, (3 * H,))


def test_from_keras_weights_infers_cell():
    for cell, reset_after in CASES:
        p = ref.init_params(cell, D, H, reset_after=reset_after)
        q = ref.from_keras_weights(ref.to_keras_weights(p))
        assert (q.cell, q.reset_after) == (cell, reset_after)


def test_from_keras_rejects_what_it_does_not_model():
    with pytest.raises(ValueError, match="activation"):
        ref.from_keras(_keras_layer("lstm", True, activation="relu"))
    with pytest.raises(ValueError, match="go_backwards"):
        ref.from_keras(_keras_layer("simple", True, go_backwards=True))


# --------------------------------------------------------------------------------------------------------------------
# Truncated BPTT


@pytest.mark.parametrize("cell,reset_after", CASES, ids=CASE_IDS)
def test_truncation_at_or_beyond_length_is_full_bptt(cell, reset_after):
    params, x, state, w_out, w_state = _problem(cell, reset_after)
    _, _, cache = ref.forward(params, x, state)
    full = ref.backward(w_out, cache, w_state)
    for k in (T, T + 3):
        trunc = ref.backward(w_out, cache, w_state, truncate=k)
        for name in full:
            np.testing.assert_array_equal(trunc[name], full[name])

    def segment_loss(t0, hs):
        return np.sum(hs * w_out[:, t0 : t0 + hs.shape[1]]), w_out[:, t0 : t0 + hs.shape[1]]

    loss, grads, _ = ref.truncated_bptt(params, x, T, segment_loss, state)
    assert loss == pytest.approx(np.sum(ref.forward(params, x, state)[0] * w_out))
    no_state_loss = ref.backward(w_out, cache)
    for name in no_state_loss:
        np.testing.assert_allclose(grads[name], no_state_loss[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell,reset_after", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_truncated_backward_equals_segment_by_segment_training(cell, reset_after, k):
    """Second method: run forward segment by segment, carrying the state, backpropagating each segment alone."""
    params, x, state, w_out, _ = _problem(cell, reset_after)

    def segment_loss(t0, hs):
        w = w_out[:, t0 : t0 + hs.shape[1]]
        return np.sum(hs * w), w

    loss, seg, final = ref.truncated_bptt(params, x, k, segment_loss, state)
    hs, full_final, cache = ref.forward(params, x, state)
    trunc = ref.backward(w_out, cache, truncate=k)
    full = ref.backward(w_out, cache)
    assert loss == pytest.approx(np.sum(hs * w_out))
    for a, b in zip(final, full_final):
        np.testing.assert_allclose(a, b, rtol=1e-12)  # the forward pass is not truncated
    for name in trunc:
        np.testing.assert_allclose(seg[name], trunc[name], rtol=1e-10, atol=1e-12, err_msg=name)
    # As expected: the weights' gradients lose the long paths, but inputs in the last segment see every
    # loss after them (all inside that segment), so their gradient is exact.
    assert _rel_err(trunc["dW_h"], full["dW_h"]) > 1e-3
    last = ((T - 1) // k) * k
    np.testing.assert_allclose(trunc["dx"][:, last:], full["dx"][:, last:], rtol=1e-12)
    assert not np.allclose(trunc["dx"][:, :last], full["dx"][:, :last])


def test_truncation_by_hand_scalar_rnn():
    """Scalar SimpleRNN, two steps, loss = h_2; k=1 drops the path through h_1 = tanh(w_x x_1 + w_h h_0 + b)."""
    w_x, w_h, b, x1, x2, h0 = 0.7, -0.4, 0.1, 0.5, -1.2, 0.3
    h1 = np.tanh(w_x * x1 + w_h * h0 + b)
    h2 = np.tanh(w_x * x2 + w_h * h1 + b)
    d2 = 1 - h2**2  # dh2/da2
    d1 = 1 - h1**2
    # Full BPTT: dh2/dw_h = d2 * (h1 + w_h * dh1/dw_h), dh1/dw_h = d1 * h0.
    full_dw_h = d2 * (h1 + w_h * d1 * h0)
    full_dw_x = d2 * (x2 + w_h * d1 * x1)
    # Truncated to k=1: h1 is a constant for step 2's backward pass, and step 1 has no loss.
    trunc_dw_h, trunc_dw_x, trunc_db = d2 * h1, d2 * x2, d2

    params = ref.Params("simple", np.array([[w_x]]), np.array([[w_h]]), np.array([b]))
    x = np.array([[[x1], [x2]]])
    _, _, cache = ref.forward(params, x, (np.array([[h0]]),))
    dhs = np.array([[[0.0], [1.0]]])
    full = ref.backward(dhs, cache)
    trunc = ref.backward(dhs, cache, truncate=1)
    assert full["dW_h"][0, 0] == pytest.approx(full_dw_h, rel=1e-12)
    assert full["dW_x"][0, 0] == pytest.approx(full_dw_x, rel=1e-12)
    assert trunc["dW_h"][0, 0] == pytest.approx(trunc_dw_h, rel=1e-12)
    assert trunc["dW_x"][0, 0] == pytest.approx(trunc_dw_x, rel=1e-12)
    assert trunc["db"][0] == pytest.approx(trunc_db, rel=1e-12)
    assert trunc["dh0"][0, 0] == 0.0 and trunc["dx"][0, 0, 0] == 0.0


def test_truncate_must_be_positive():
    params, x, state, w_out, _ = _problem("simple", True)
    _, _, cache = ref.forward(params, x, state)
    with pytest.raises(ValueError, match="truncate"):
        ref.backward(w_out, cache, truncate=0)
    with pytest.raises(ValueError, match="k must be"):
        ref.truncated_bptt(params, x, 0, lambda t0, hs: (0.0, hs))


# --------------------------------------------------------------------------------------------------------------------
# Clipping


def _grads():
    rng = np.random.default_rng(7)
    return {"dW_x": rng.standard_normal((3, 8)) * 4, "dW_h": rng.standard_normal((2, 8)), "db": rng.standard_normal(8)}


def test_clip_by_global_norm_matches_tensorflow():
    import tensorflow as tf

    grads = _grads()
    norm = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    for max_norm in (0.5 * norm, 2.0 * norm):
        clipped, got_norm = ref.clip_by_global_norm(grads, max_norm)
        tf_clipped, tf_norm = tf.clip_by_global_norm([tf.constant(g) for g in grads.values()], max_norm)
        assert got_norm == pytest.approx(norm, rel=1e-12) == pytest.approx(float(tf_norm), rel=1e-12)
        for mine, theirs in zip(clipped.values(), tf_clipped):
            np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-12)
        assert ref.global_norm(clipped) == pytest.approx(min(norm, max_norm), rel=1e-12)
    # A list works too, and the direction is kept.
    clipped, _ = ref.clip_by_global_norm(list(grads.values()), 1.0)
    for c, g in zip(clipped, grads.values()):
        np.testing.assert_allclose(c * norm, g, rtol=1e-12)


def test_clip_by_value():
    grads = _grads()
    clipped = ref.clip_by_value(grads, 1.5)
    for k, g in grads.items():
        assert np.all(np.abs(clipped[k]) <= 1.5)
        np.testing.assert_array_equal(clipped[k], np.clip(g, -1.5, 1.5))
        inside = np.abs(g) < 1.5
        np.testing.assert_array_equal(clipped[k][inside], g[inside])
    assert isinstance(ref.clip_by_value(list(grads.values()), 1.0), list)
    with pytest.raises(ValueError):
        ref.clip_by_value(grads, 0.0)
    with pytest.raises(ValueError):
        ref.clip_by_global_norm(grads, -1.0)


# --------------------------------------------------------------------------------------------------------------------
# The "hello" example


def _hello_module():
    spec = importlib.util.spec_from_file_location("hello_numpy", ROOT / "examples" / "hello_numpy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cell", ref.CELLS)
def test_hello_example_learns_ello(cell):
    hello = _hello_module()
    model = hello.train(cell=cell, steps=150, seed=0)
    assert len(model.losses) == 150
    assert model.losses[-1] < 0.1 * model.losses[0]
    assert model.losses[-1] < 0.1
    assert hello.predict(model, "hell") == "ello"
    assert hello.generate(model, "h", 4) == "hello"


def test_hello_main_runs(capsys):
    assert _hello_module().main(["--steps", "120", "--cell", "gru"]) == 0
    out = capsys.readouterr().out
    assert "predict('hell') = 'ello'" in out


def test_hello_gradients_match_finite_differences():
    hello = _hello_module()
    model = hello.train(cell="lstm", steps=3, seed=1)
    _, grads = hello.loss_and_grads(model, "hell", "ello")
    arrays = {"dW_x": model.params.W_x, "dW_h": model.params.W_h, "db": model.params.b, "dW_y": model.W_y}
    for name, arr in arrays.items():
        num = _numeric_grad(lambda: hello.loss_and_grads(model, "hell", "ello")[0], arr)
        assert _rel_err(grads[name], num) < 1e-6, name
