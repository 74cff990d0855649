"""Recurrent regularisers: mask scope, inference identity, the exact training step, gradients, masking, saving.

Mask scopes are read off black-box "probe" weights: hand-set LSTM/GRU/SimpleRNN
weights under which each output reveals whether a unit was dropped at a step.
"""

import keras
import numpy as np
import pytest

from seqkit import reference
from seqkit.config import RecurrentConfig, from_dict
from seqkit.layers import available_regularizers, build_rnn_layer, recurrent_stack, recurrent_stack_from_config
from seqkit.layers.regularizers import (
    RegularizedGRUCell,
    RegularizedLSTMCell,
    RegularizedRNN,
    RegularizedSimpleRNNCell,
    zoneout_rate,
)
from seqkit.testing import run_layer_test

OURS = ["recurrent_step_dropout", "rnndrop", "rnndrop_step", "semeniuta", "weight_drop", "zoneout"]
ALL = ["recurrent_dropout", *OURS]
SUPPORTS = {
    "recurrent_dropout": ("lstm", "gru", "simple"),
    "recurrent_step_dropout": ("lstm", "gru", "simple"),
    "rnndrop": ("lstm",),
    "rnndrop_step": ("lstm",),
    "semeniuta": ("lstm", "gru"),
    "weight_drop": ("lstm", "gru", "simple"),
    "zoneout": ("lstm", "gru", "simple"),
}
REG_CELLS = [(r, c) for r in ALL for c in SUPPORTS[r]]
BIG = 30.0  # sigmoid(30) == 1.0 and sigmoid(-30) ~ 1e-13 in float32: a gate that is fully open / shut


def _layer(reg, cell="lstm", units=16, rate=0.5, seed=0, **kw):
    kw.setdefault("return_sequences", True)
    return build_rnn_layer(cell, units, regularizer=reg, regularizer_rate=rate, seed=seed, **kw)


def _built(layer, shape):
    layer(np.zeros(shape, "float32"))
    return layer


def _n(a):
    return np.asarray(a)


def _gates(cell, units, **blocks):
    """Bias with the named gate blocks filled (LSTM i,f,c,o; GRU z,r,h; simple h)."""
    names = {"lstm": "ifco", "gru": "zrh", "simple": "h"}[cell]
    b = np.zeros((len(names), units), "float32")
    for k, v in blocks.items():
        b[names.index(k)] = v
    return b.reshape(-1)


def _set(layer, kernel, recurrent, bias, cell):
    if cell == "gru":  # reset_after: (input bias, recurrent bias)
        bias = np.stack([bias, np.zeros_like(bias)])
    layer.set_weights([kernel.astype("float32"), recurrent.astype("float32"), bias.astype("float32")])


def _recurrence_probe(layer, cell, units, d_in, a=2.0, b=0.5):
    """The candidate sees only ``a * h_{t-1}`` (per unit); every gate is open.

    The output is then ``f(a * m * h_{t-1} + b)`` with ``f`` increasing, so at steps t >= 2
    ``h_t == f(b)`` exactly when unit j's recurrent input was dropped. Returns ``f(b)``.
    """
    g = {"lstm": 4, "gru": 3, "simple": 1}[cell]
    block = {"lstm": 2, "gru": 2, "simple": 0}[cell]
    recurrent = np.zeros((units, g * units))
    recurrent[:, block * units : (block + 1) * units] = a * np.eye(units)
    gates = {"lstm": dict(i=BIG, f=-BIG, c=b, o=BIG), "gru": dict(z=-BIG, r=BIG, h=b), "simple": dict(h=b)}[cell]
    _set(layer, np.zeros((d_in, g * units)), recurrent, _gates(cell, units, **gates), cell)
    return float(np.tanh(np.tanh(b))) if cell == "lstm" else float(np.tanh(b))


def _kept(h, v0):
    """Boolean ``(batch, time - 1, units)``: recurrent input kept at steps 2..T."""
    return _n(h)[:, 1:] > v0 + 1e-4


def _counter_probe(layer, units, d_in, v):
    """LSTM with i = f = o = 1 and a constant candidate ``g = tanh(v')`` = v: ``c_t = c_{t-1} + v`` counts steps."""
    bias = _gates("lstm", units, i=BIG, f=BIG, c=float(np.arctanh(v)), o=BIG)
    _set(layer, np.zeros((d_in, 4 * units)), np.zeros((units, 4 * units)), bias, "lstm")


B, T, D, U = 8, 6, 3, 16


def _x(b=B, t=T, d=D, seed=0):
    return np.random.default_rng(seed).normal(size=(b, t, d)).astype("float32")


# --------------------------------------------------------------------------------------------------------------------
# Mask scopes


@pytest.mark.parametrize("mask", ["sequence", "step"])
def test_stack_input_inter_and_output_dropout_mask_scope(mask):
    """recurrent_stack's non-recurrent dropouts: one mask per sequence, or a fresh one per step."""
    d = 16
    stack = recurrent_stack(
        "lstm",
        [d, d],
        return_sequences=True,
        dropout=0.5,
        inter_dropout=0.5,
        output_dropout=0.5,
        dropout_mask=mask,
        implementation="keras",
        seed=3,
    )
    x = np.ones((4, 10, d), "float32")
    stack(x)
    # Each layer computes tanh(tanh(x_t)) per unit: zero exactly where its input was dropped.
    for layer in stack.rnns:
        kernel = np.zeros((d, 4 * d))
        kernel[:, 2 * d : 3 * d] = np.eye(d)
        _set(layer, kernel, np.zeros((d, 4 * d)), _gates("lstm", d, i=BIG, f=-BIG, o=BIG), "lstm")
    y = _n(stack(x, training=True))
    # Input, inter-layer and output masks compound; each is either fixed over time or not.
    zero = np.abs(y) < 1e-6
    assert 0.5 < zero.mean() < 0.99
    constant = (zero == zero[:, :1]).all()
    assert constant if mask == "sequence" else not constant
    np.testing.assert_allclose(_n(stack(x, training=False)), np.tanh(np.tanh(np.tanh(np.tanh(1.0)))), rtol=1e-6)


@pytest.mark.parametrize(
    "reg,cell,over_time,over_batch",
    [
        ("recurrent_dropout", "lstm", False, True),  # Keras' own: one mask per sequence
        ("recurrent_dropout", "gru", False, True),
        ("recurrent_dropout", "simple", False, True),
        ("recurrent_step_dropout", "lstm", True, True),
        ("recurrent_step_dropout", "gru", True, True),
        ("recurrent_step_dropout", "simple", True, True),
        ("weight_drop", "lstm", False, False),  # one mask per forward pass, shared by the batch
        ("weight_drop", "gru", False, False),
        ("weight_drop", "simple", False, False),
    ],
)
def test_recurrent_mask_scope(reg, cell, over_time, over_batch):
    units = 48  # weight drop's scope is one mask per unit for the whole batch: enough units to see the rate
    layer = _built(_layer(reg, cell, units, rate=0.5, seed=5), (B, T, D))
    v0 = _recurrence_probe(layer, cell, units, D)
    kept = _kept(layer(_x(), training=True), v0)
    assert 0.2 < kept.mean() < 0.8  # rate 0.5
    assert (kept != kept[:, :1]).any() == over_time
    assert (kept != kept[:1]).any() == over_batch
    # A new call (a new batch) draws new masks.
    assert (_kept(layer(_x(), training=True), v0) != kept).any()
    # Inference: nothing dropped.
    assert _kept(layer(_x(), training=False), v0).all()


def test_rnndrop_sequence_mask_keeps_memory_and_step_mask_erases_it():
    """The lecture's point: a mask on the memory redrawn each step destroys long-term memory."""
    p, t, v = 0.25, 12, 0.05
    x = np.zeros((64, t, 1), "float32")
    counts = {}
    for reg in ("rnndrop", "rnndrop_step"):
        layer = _built(_layer(reg, "lstm", U, rate=p, seed=2), x.shape)
        _counter_probe(layer, U, 1, v)
        h = _n(layer(x, training=True)) * (1 - p)  # undo the output rescaling: h_t = tanh(c_t)
        c = np.arctanh(np.clip(h, 0, 0.999999))
        counts[reg] = np.rint(c / v)  # steps remembered by each unit
        # Inference is the plain LSTM: every unit counts every step.
        np.testing.assert_allclose(_n(layer(x, training=False))[:, -1], np.tanh(t * v), rtol=1e-5)
    steps = np.arange(1, t + 1)[None, :, None]
    seq = counts["rnndrop"]
    # Per sequence: a unit is off for the whole sequence or remembers every step.
    assert ((seq == 0).all(axis=1) | (seq == steps).all(axis=1)).all()
    assert abs((seq[:, -1] == t).mean() - (1 - p)) < 0.08
    # Per step: the memory is wiped whenever the unit is dropped, so it survives t steps with prob (1-p)^t.
    step = counts["rnndrop_step"]
    assert ((np.diff(step, axis=1) == 1) | (step[:, 1:] == 0)).all()  # count up by one or reset to zero
    assert abs((step[:, -1] == t).mean() - (1 - p) ** t) < 0.03
    assert (step[:, -1] == t).mean() < 0.1 < (seq[:, -1] == t).mean()


@pytest.mark.parametrize("reg", ["semeniuta"])
def test_semeniuta_drops_updates_not_memory(reg):
    p, t, v = 0.5, 8, 0.04
    x = np.zeros((16, t, 1), "float32")
    layer = _built(_layer(reg, "lstm", U, rate=p, seed=4), x.shape)
    _counter_probe(layer, U, 1, v)
    c = np.arctanh(_n(layer(x, training=True)).astype("float64"))
    inc = np.diff(np.concatenate([np.zeros_like(c[:, :1]), c], axis=1), axis=1) / v
    # Each step adds 0 or v / (1 - p) (inverted dropout on g_t): the memory only ever grows.
    np.testing.assert_allclose(np.minimum(np.abs(inc), np.abs(inc - 1 / (1 - p))), 0, atol=1e-3)
    dropped = np.abs(inc) < 0.5
    assert (dropped == dropped[:, :1]).all()  # per-sequence mask
    assert 0.2 < dropped.mean() < 0.8


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_zoneout_keeps_previous_units_per_step(cell):
    """Inputs that change every step make each new state differ from the last; zoned units repeat it."""
    p, u = 0.3, 16
    x = np.random.default_rng(1).uniform(0.2, 1.0, size=(16, 10, u)).astype("float32")
    layer = _built(_layer("zoneout", cell, u, rate=p, seed=6), x.shape)
    g = {"lstm": 4, "gru": 3, "simple": 1}[cell]
    block = {"lstm": 2, "gru": 2, "simple": 0}[cell]
    kernel = np.zeros((u, g * u))
    kernel[:, block * u : (block + 1) * u] = np.eye(u)
    gates = {"lstm": dict(i=BIG, f=-BIG, o=BIG), "gru": dict(z=-BIG, r=BIG), "simple": {}}[cell]
    _set(layer, kernel, np.zeros((u, g * u)), _gates(cell, u, **gates), cell)
    h = _n(layer(x, training=True))
    zoned = h[:, 1:] == h[:, :-1]
    assert abs(zoned.mean() - p) < 0.06
    assert (zoned != zoned[:, :1]).any() and (zoned != zoned[:1]).any()  # per unit and step


def test_same_seed_same_masks_and_directions_differ():
    def kept(seed):
        layer = _built(_layer("recurrent_step_dropout", "lstm", U, seed=seed), (B, T, D))
        v0 = _recurrence_probe(layer, "lstm", U, D)
        return _kept(layer(_x(), training=True), v0)

    np.testing.assert_array_equal(kept(7), kept(7))
    assert (kept(7) != kept(8)).any()
    for reg in OURS + ["recurrent_dropout"]:
        stack = recurrent_stack("lstm", [4], bidirectional=True, regularizer=reg, regularizer_rate=0.1, seed=1)
        stack(_x())
        bi = stack.rnns[0]
        assert bi.forward_layer.cell.seed != bi.backward_layer.cell.seed


# --------------------------------------------------------------------------------------------------------------------
# Inference and the training step against NumPy


def _params(layer, cell):
    return reference.from_keras_weights(layer.get_weights(), cell)


@pytest.mark.parametrize("reg,cell", REG_CELLS)
def test_inference_is_plain_cell_or_zoneout_expectation(reg, cell):
    rate = 0.3
    x = _x(seed=2)
    layer = _built(_layer(reg, cell, 5, rate=rate, seed=0), x.shape)
    layer.set_weights([w * 3 for w in layer.get_weights()])  # make the steps non-trivial
    params = _params(layer, cell)
    y = _n(layer(x, training=False))
    if reg == "zoneout":
        state = tuple(np.zeros((x.shape[0], 5)) for _ in range(2 if cell == "lstm" else 1))
        want = []
        for t in range(x.shape[1]):
            _, new, _ = reference.forward(params, x[:, t : t + 1].astype("float64"), state)
            state = tuple(rate * s + (1 - rate) * n for s, n in zip(state, new))
            want.append(state[0])
        want = np.stack(want, axis=1)
    else:
        want, _, _ = reference.forward(params, x.astype("float64"))
        plain = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple": keras.layers.SimpleRNN}[cell]
        keras_layer = _built(plain(5, return_sequences=True), x.shape)
        keras_layer.set_weights(layer.get_weights())
        np.testing.assert_allclose(y, _n(keras_layer(x)), atol=1e-6)
    np.testing.assert_allclose(y, want, atol=1e-5)


def _np_lstm_step(x, h, c, W_x, W_h, b, method, noise, p):
    u = h.shape[1]
    if method == "recurrent_dropout":
        h_in = h * noise
    else:
        h_in = h
    a = x @ W_x + h_in @ W_h + b
    i, f, g, o = (a[:, k * u : (k + 1) * u] for k in range(4))
    i, f, g, o = reference.sigmoid(i), reference.sigmoid(f), np.tanh(g), reference.sigmoid(o)
    if method == "semeniuta":
        g = g * noise
    c_new = f * c + i * g
    if method == "rnndrop":
        c_new = c_new * noise
    h_new = o * np.tanh(c_new)
    if method == "rnndrop":
        h_new = h_new / (1 - p)
    if method == "zoneout":
        d_h, d_c = noise[:, :u], noise[:, u:]
        return d_h * h + (1 - d_h) * h_new, d_c * c + (1 - d_c) * c_new
    return h_new, c_new


@pytest.mark.parametrize("method", ["recurrent_dropout", "rnndrop", "semeniuta", "weight_drop", "zoneout"])
def test_lstm_training_step_matches_numpy(method):
    p, u = 0.4, 5
    cell = RegularizedLSTMCell(u, method=method, rate=p, seed=3)
    cell.build((None, D))
    cell.set_weights([w * 2 for w in cell.get_weights()])
    rng = np.random.default_rng(0)
    x, h, c = (rng.normal(size=s).astype("float32") for s in [(B, D), (B, u), (B, u)])
    W_x, W_h, b = cell.get_weights()
    noise = cell.draw_noise(np.zeros((B, T, D), "float32"))
    if method == "weight_drop":
        assert noise is None
        W_eff = _n(cell._dropped_recurrent_kernel)
        # Every entry is dropped or rescaled: DropConnect with inverted scaling.
        np.testing.assert_allclose(np.minimum(np.abs(W_eff), np.abs(W_eff - W_h / (1 - p))), 0, atol=1e-6)
        assert 0.2 < (W_eff == 0).mean() < 0.6
        inputs, step_noise = x, None
    else:
        W_eff = W_h
        step_noise = _n(noise)[:, 0]
        inputs = np.concatenate([x, step_noise], axis=1)
    out, (h1, c1) = cell(inputs, [h, c], training=True)
    cell.clear_noise()
    want_h, want_c = _np_lstm_step(x, h, c, W_x, W_eff, b, method, step_noise, p)
    np.testing.assert_allclose(_n(h1), want_h, atol=1e-5)
    np.testing.assert_allclose(_n(c1), want_c, atol=1e-5)
    np.testing.assert_array_equal(_n(out), _n(h1))


@pytest.mark.parametrize("method", ["recurrent_dropout", "semeniuta", "zoneout"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_training_step_matches_numpy(method, reset_after):
    p, u = 0.4, 5
    cell = RegularizedGRUCell(u, method=method, rate=p, seed=3, reset_after=reset_after)
    cell.build((None, D))
    rng = np.random.default_rng(1)
    cell.set_weights([rng.normal(size=w.shape).astype("float32") for w in cell.get_weights()])
    x, h = rng.normal(size=(B, D)).astype("float32"), rng.normal(size=(B, u)).astype("float32")
    W_x, W_h, b = cell.get_weights()
    m = _n(cell.draw_noise(np.zeros((B, T, D), "float32")))[:, 0]
    out, _ = cell(np.concatenate([x, m], axis=1), [h], training=True)
    h_in = h * m if method == "recurrent_dropout" else h
    b_x, b_h = (b[0], b[1]) if reset_after else (b, np.zeros_like(b))
    ax = x @ W_x + b_x
    z = reference.sigmoid(ax[:, :u] + (h_in @ W_h[:, :u]) + b_h[:u])
    r = reference.sigmoid(ax[:, u : 2 * u] + (h_in @ W_h[:, u : 2 * u]) + b_h[u : 2 * u])
    if reset_after:
        hh = np.tanh(ax[:, 2 * u :] + r * (h_in @ W_h[:, 2 * u :] + b_h[2 * u :]))
    else:
        hh = np.tanh(ax[:, 2 * u :] + (r * h_in) @ W_h[:, 2 * u :])
    if method == "semeniuta":
        hh = hh * m
    want = z * h + (1 - z) * hh
    if method == "zoneout":
        want = m * h + (1 - m) * want
    np.testing.assert_allclose(_n(out), want, atol=1e-5)


def test_combined_with_keras_recurrent_dropout_uses_its_per_gate_masks():
    """``recurrent_dropout`` on top of a method: Keras' per-sequence masks, one per gate, on h_{t-1}."""
    p, u = 0.3, 5
    cell = RegularizedLSTMCell(u, method="zoneout", rate=p, recurrent_dropout=0.5, seed=3)
    cell.build((None, D))
    rng = np.random.default_rng(3)
    x, h, c = (rng.normal(size=s).astype("float32") for s in [(B, D), (B, u), (B, u)])
    W_x, W_h, b = cell.get_weights()
    d = _n(cell.draw_noise(np.zeros((B, T, D), "float32")))[:, 0]
    gate_masks = [_n(m) for m in cell.get_recurrent_dropout_mask(h)]  # what the RNN layer caches per call
    out, (h1, c1) = cell(np.concatenate([x, d], axis=1), [h, c], training=True)
    cell.reset_recurrent_dropout_mask()
    a = x @ W_x + np.concatenate([(h * m) @ W_h[:, k * u : (k + 1) * u] for k, m in enumerate(gate_masks)], 1) + b
    i, f, g, o = (a[:, k * u : (k + 1) * u] for k in range(4))
    c_new = reference.sigmoid(f) * c + reference.sigmoid(i) * np.tanh(g)
    h_new = reference.sigmoid(o) * np.tanh(c_new)
    np.testing.assert_allclose(_n(h1), d[:, :u] * h + (1 - d[:, :u]) * h_new, atol=1e-5)
    np.testing.assert_allclose(_n(c1), d[:, u:] * c + (1 - d[:, u:]) * c_new, atol=1e-5)
    # Through the layer: trains, and inference is still the zoneout expectation of the plain cell.
    layer = _built(_layer("zoneout", "lstm", 4, rate=p, recurrent_dropout=0.5), (B, T, D))
    assert layer.cell.recurrent_dropout == 0.5
    assert np.isfinite(_n(layer(_x(), training=True))).all()


def test_simple_rnn_training_step_matches_numpy():
    p, u = 0.4, 5
    cell = RegularizedSimpleRNNCell(u, method="recurrent_dropout", rate=p, seed=3)
    cell.build((None, D))
    rng = np.random.default_rng(2)
    x, h = rng.normal(size=(B, D)).astype("float32"), rng.normal(size=(B, u)).astype("float32")
    W_x, W_h, b = cell.get_weights()
    m = _n(cell.draw_noise(np.zeros((B, T, D), "float32")))[:, 0]
    out, _ = cell(np.concatenate([x, m], axis=1), [h], training=True)
    np.testing.assert_allclose(_n(out), np.tanh(x @ W_x + (h * m) @ W_h + b), atol=1e-5)


# --------------------------------------------------------------------------------------------------------------------
# Gradients, masking, saving, configs


@pytest.mark.parametrize("reg,cell", REG_CELLS)
def test_gradients_reach_every_weight(reg, cell):
    import tensorflow as tf

    x = _x(b=4, t=5)
    layer = _built(_layer(reg, cell, 4, rate=0.3, seed=1), x.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == 3
    for v, g in zip(layer.trainable_variables, grads):
        assert g is not None and np.abs(_n(g)).sum() > 0, v.name


@pytest.mark.parametrize("reg,cell", REG_CELLS)
def test_keras_masking_skips_padded_steps(reg, cell):
    x = _x(b=3, t=7)
    mask = np.ones((3, 7), bool)
    mask[0, 4:] = False
    mask[1, 2:] = False
    layer = _built(_layer(reg, cell, 4, rate=0.3, seed=1, return_state=True), x.shape)
    out, *states = layer(x, mask=mask, training=True)
    out = _n(out)
    for row, n in ((0, 4), (1, 2), (2, 7)):
        # Padded steps repeat the last real output and leave the state untouched.
        np.testing.assert_array_equal(out[row, n:], np.broadcast_to(out[row, n - 1], out[row, n:].shape))
        np.testing.assert_allclose(_n(states[0])[row], out[row, n - 1], atol=1e-6)
    # At inference a padded sequence gives what the unpadded one gives.
    eval_out = _n(layer(x, mask=mask, training=False)[0])
    np.testing.assert_allclose(eval_out[1, 1], _n(layer(x[1:2, :2], training=False)[0])[0, 1], atol=1e-6)


def test_every_regularizer_in_a_bidirectional_stack_saves_and_loads(tmp_path):
    pairs = [(r, "lstm") for r in ALL] + [
        ("recurrent_step_dropout", "gru"),
        ("zoneout", "gru"),
        ("weight_drop", "simple"),
    ]
    x = _x(b=3, t=5, d=2)
    x[1, 3:] = 0.0  # padding, masked below
    inputs = keras.Input((5, 2))
    masked = keras.layers.Masking(0.0)(inputs)
    branches = [
        recurrent_stack(c, [3], bidirectional=True, regularizer=r, regularizer_rate=0.3, seed=i, name=f"{r}_{c}")(
            masked
        )
        for i, (r, c) in enumerate(pairs)
    ]
    model = keras.Model(inputs, keras.layers.Concatenate()(branches))
    before = _n(model(x, training=False))
    assert before.shape == (3, 6 * len(pairs))
    # Training mode draws masks in both directions of both layers: every branch moves.
    moved = np.abs(_n(model(x, training=True)) - before).reshape(3, len(pairs), 6).max(axis=(0, 2))
    assert (moved > 1e-4).all(), [p for p, m in zip(pairs, moved) if m <= 1e-4]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_n(loaded(x, training=False)), before, atol=1e-6)
    layer = loaded.get_layer("zoneout_lstm").rnns[0].forward_layer
    assert isinstance(layer, RegularizedRNN) and layer.cell.rate == 0.3


@pytest.mark.parametrize("reg", ["zoneout", "weight_drop"])
def test_layer_contract_train_save_load(reg):
    # The shared contract (config round trip, fit step, .keras round trip) for one per-step-noise
    # regulariser and the one that holds a per-call weight mask.
    run_layer_test(
        lambda: recurrent_stack("lstm", [3], bidirectional=True, regularizer=reg, regularizer_rate=0.2, seed=2),
        (3, 5, 2),
        mask=np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]),
    )


@pytest.mark.slow  # XLA compiles every branch's loop and its gradient: about a minute on 2 cores
def test_fit_with_jit_compile_runs_every_regularizer():
    from tensorflow.python.framework import config as tf_config

    # Keras turns XLA off while TF op determinism is on (set by the autouse seed fixture).
    tf_config.disable_op_determinism()
    try:
        _fit_with_jit_compile()
    finally:
        tf_config.enable_op_determinism()


def _fit_with_jit_compile():
    inputs = keras.Input((5, 3))
    branches = [
        recurrent_stack(c, [3], regularizer=r, regularizer_rate=0.3, seed=i)(inputs)
        for i, (r, c) in enumerate([(r, "lstm") for r in ALL] + [("zoneout", "gru"), ("weight_drop", "simple")])
    ]
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Concatenate()(branches)))
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    assert model.jit_compile
    before = [w.copy() for w in model.get_weights()]
    hist = model.fit(_x(b=4, t=5), np.ones((4, 1), "float32"), epochs=2, batch_size=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert sum(changed) >= 3 * len(branches)


def test_selected_from_a_task_config():
    cfg = from_dict(RecurrentConfig, {"regularizer": "zoneout", "regularizer_rate": 0.1, "units": [4]}, "cfg.yaml")
    stack = recurrent_stack_from_config(cfg, return_sequences=True)
    stack(_x())
    assert isinstance(stack.rnns[0], RegularizedRNN)
    assert stack.rnns[0].cell.method == "zoneout" and stack.rnns[0].cell.rate == 0.1
    assert set(ALL) <= set(available_regularizers())
    assert zoneout_rate(stack.rnns[0]) == 0.1
    assert zoneout_rate(_layer("weight_drop")) == 0.0 and zoneout_rate(keras.layers.LSTM(2)) == 0.0


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="not available for cell 'gru'"):
        _layer("rnndrop", "gru")
    with pytest.raises(ValueError, match="rate"):
        _layer("zoneout", rate=1.0)
    with pytest.raises(ValueError, match="mask_scope"):
        RegularizedLSTMCell(4, method="zoneout", rate=0.1, mask_scope="sequence")
    with pytest.raises(ValueError, match="conflicts"):
        build_rnn_layer("lstm", 4, regularizer="recurrent_dropout", regularizer_rate=0.2, recurrent_dropout=0.3)
    with pytest.raises(ValueError, match="RegularizedRNN"):
        keras.layers.RNN(RegularizedLSTMCell(4, method="zoneout", rate=0.1))(_x(), training=True)
    with pytest.raises(ValueError, match="regularised cell"):
        RegularizedRNN(keras.layers.LSTMCell(4))
