"""Fast* layers give the same outputs and gradients as keras.layers for the same weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqkit.layers.fast import FAST_LAYERS, FastGRU, FastLSTM, FastSimpleRNN, fast_path_available
from seqkit.layers.recurrent import build_rnn_layer, recurrent_stack

PAIRS = {
    "lstm": (FastLSTM, keras.layers.LSTM),
    "gru": (FastGRU, keras.layers.GRU),
    "simple": (FastSimpleRNN, keras.layers.SimpleRNN),
}
B, T, D, U = 3, 5, 4, 6
ATOL = 2e-5


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    # Rows: right-padded, left-padded, holes in the middle.
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    return x, mask


def _states(cell: str, seed: int = 1):
    rng = np.random.default_rng(seed)
    n = 2 if cell == "lstm" else 1
    return [rng.normal(size=(B, U)).astype("float32") for _ in range(n)]


def _twins(cell: str, **kwargs):
    fast_cls, keras_cls = PAIRS[cell]
    fast, ref = fast_cls(U, **kwargs), keras_cls(U, **kwargs)
    fast.build((None, None, D))
    ref.build((None, None, D))
    rng = np.random.default_rng(7)
    # Random (not initial) weights, biases included, so every term is exercised.
    weights = [rng.normal(scale=0.4, size=w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    fast.set_weights(weights)
    return fast, ref


def _run(layer, x, mask=None, initial_state=None, jit: bool = False, training: bool = True):
    """Outputs and gradients of a fixed scalar loss w.r.t. inputs, weights and initial states."""
    xs = tf.constant(x)
    st = None if initial_state is None else [tf.constant(s) for s in initial_state]
    m = None if mask is None else tf.constant(mask)

    @tf.function(jit_compile=jit)
    def f(xs, st):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            if st is not None:
                tape.watch(st)
            out = layer(xs, mask=m, initial_state=st, training=training)
            flat = out if isinstance(out, (list, tuple)) else [out]
            loss = sum(tf.reduce_sum(tf.sin(3.0 * o) * (k + 1)) for k, o in enumerate(flat))
        sources = [xs, *layer.trainable_variables] + (st or [])
        return flat, tape.gradient(loss, sources)

    outs, grads = f(xs, st)
    return [o.numpy() for o in outs], [np.zeros(1) if g is None else tf.convert_to_tensor(g).numpy() for g in grads]


def _assert_same(a, b):
    (oa, ga), (ob, gb) = a, b
    assert len(oa) == len(ob) and len(ga) == len(gb)
    for p, q in zip(oa + ga, ob + gb):
        np.testing.assert_allclose(p, q, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("cell", sorted(PAIRS))
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_same_numbers_plain_and_masked(cell, return_sequences, go_backwards):
    x, mask = _data()
    fast, ref = _twins(cell, return_sequences=return_sequences, go_backwards=go_backwards)
    assert fast_path_available(fast)
    _assert_same(_run(fast, x), _run(ref, x))
    _assert_same(_run(fast, x, mask), _run(ref, x, mask))
    # Inference takes the plain loop; gradients (saliency) must still be Keras' own.
    _assert_same(_run(fast, x, mask, training=False), _run(ref, x, mask, training=False))


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_initial_state_return_state_and_zero_output(cell):
    x, mask = _data(3)
    st = _states(cell)
    fast, ref = _twins(cell, return_sequences=True, return_state=True)
    a, b = _run(fast, x, mask, st), _run(ref, x, mask, st)
    assert len(a[0]) == (3 if cell == "lstm" else 2)
    _assert_same(a, b)
    _assert_same(_run(fast, x, mask, st, training=False), _run(ref, x, mask, st, training=False))
    fast.zero_output_for_mask = ref.zero_output_for_mask = True
    _assert_same(_run(fast, x, mask, st), _run(ref, x, mask, st))


@pytest.mark.parametrize("cell", sorted(PAIRS))
@pytest.mark.parametrize("shards", [2, 3])
def test_batch_slices_on_several_threads_give_the_same_numbers(cell, shards, monkeypatch):
    # With several threads the loops run over slices of the batch (uneven ones for 2 of 3 rows);
    # masks and initial states must follow their rows.
    import seqkit.layers.fast as fast_module

    monkeypatch.setattr(fast_module, "_MIN_SHARD_ROWS", 1)
    monkeypatch.setenv("SEQKIT_FAST_SHARDS", str(shards))
    x, mask = _data(5)
    st = _states(cell)
    assert fast_module._shard_count(tf.zeros([T, B, D])) == shards
    fast, ref = _twins(cell, return_sequences=True, return_state=True)
    for training in (True, False):
        _assert_same(_run(fast, x, mask, st, training=training), _run(ref, x, mask, st, training=training))
    _assert_same(_run(fast, x, mask, jit=True), _run(ref, x, mask))


def test_opt_in_bfloat16_gradients_stay_close_and_leave_outputs_exact(monkeypatch):
    # SEQKIT_FAST_BF16_GRADS=1: the LSTM's weight and input gradients come from bfloat16 matmuls
    # (about 3 significant digits); outputs, the bias and initial-state gradients stay float32.
    import seqkit.layers.fast as fast_module

    monkeypatch.setattr(fast_module, "_BF16_GRADS", True)
    monkeypatch.setattr(fast_module, "_MIN_SHARD_ROWS", 1)
    monkeypatch.setenv("SEQKIT_FAST_SHARDS", "2")
    x, mask = _data(2)
    st = _states("lstm")
    fast, ref = _twins("lstm", return_sequences=True, return_state=True)
    for m in (None, mask):
        (fo, fg), (ro, rg) = _run(fast, x, m, st), _run(ref, x, m, st)
        for p, q in zip(fo, ro):
            np.testing.assert_allclose(p, q, atol=ATOL, rtol=1e-4)
        # sources: x, kernel, recurrent_kernel, bias, h0, c0
        for k, (p, q) in enumerate(zip(fg, rg)):
            scale = np.abs(q).max()
            np.testing.assert_allclose(p, q, atol=2e-2 * scale, err_msg=f"gradient {k}")
        assert not np.allclose(fg[1], rg[1], atol=ATOL, rtol=1e-4), "the bfloat16 path did not run"
        np.testing.assert_allclose(fg[3], rg[3], atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("min_rows", [1, 2])
def test_batch_size_known_at_run_time_picks_sliced_or_single_loop(cell, min_rows, monkeypatch):
    # A None batch axis is checked when the step runs: 3 rows are sliced in two with at least
    # 1 row per slice and run as one loop with at least 2. Both branches match Keras.
    import seqkit.layers.fast as fast_module

    monkeypatch.setattr(fast_module, "_MIN_SHARD_ROWS", min_rows)
    monkeypatch.setenv("SEQKIT_FAST_SHARDS", "2")
    x, mask = _data(6)
    fast, ref = _twins(cell, return_sequences=True)

    def run(layer, training):
        @tf.function(input_signature=[tf.TensorSpec([None, None, D]), tf.TensorSpec([None, None], tf.bool)])
        def f(xs, m):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                y = layer(xs, mask=m, training=training)
                loss = tf.reduce_sum(tf.sin(3.0 * y))
            return [y], tape.gradient(loss, [xs, *layer.trainable_variables])

        outs, grads = f(tf.constant(x), tf.constant(mask))
        return [o.numpy() for o in outs], [tf.convert_to_tensor(g).numpy() for g in grads]

    for training in (True, False):
        _assert_same(run(fast, training), run(ref, training))


def test_small_batches_are_not_sliced(monkeypatch):
    import seqkit.layers.fast as fast_module

    monkeypatch.setenv("SEQKIT_FAST_SHARDS", "4")
    assert fast_module._shard_count(tf.zeros([T, 1, D])) == 1
    assert fast_module._shard_count(tf.zeros([T, 2 * fast_module._MIN_SHARD_ROWS, D])) == 2
    assert fast_module._shard_count(tf.zeros([T, 64, D])) == 4
    monkeypatch.setenv("SEQKIT_FAST_SHARDS", "1")
    assert fast_module._shard_count(tf.zeros([T, 64, D])) == 1


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_same_numbers_under_xla(cell):
    x, mask = _data(4)
    fast, ref = _twins(cell, return_sequences=True)
    _assert_same(_run(fast, x, mask, jit=True), _run(ref, x, mask))


def test_input_dropout_uses_keras_mask():
    x, _ = _data(5)
    fast, ref = _twins("lstm", return_sequences=True, dropout=0.5, seed=11)
    _assert_same(_run(fast, x), _run(ref, x))


def test_unsupported_options_fall_back_to_keras_loop():
    assert not fast_path_available(FastLSTM(U, recurrent_dropout=0.1))
    assert not fast_path_available(FastGRU(U, reset_after=False))
    assert not fast_path_available(FastLSTM(U, activation="relu"))
    assert not fast_path_available(keras.layers.LSTM(U))
    x, mask = _data(6)
    fast, ref = _twins("gru", return_sequences=True, reset_after=False)
    _assert_same(_run(fast, x, mask), _run(ref, x, mask))


def _model(cell: str, impl: str, bidirectional: bool, units=(U, U)):
    inp = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(10, D, mask_zero=True)(inp)
    h = recurrent_stack(cell, list(units), bidirectional=bidirectional, implementation=impl, return_sequences=True)(h)
    return keras.Model(inp, keras.layers.Dense(3)(h))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_and_bidirectional_models_match_keras(cell, bidirectional):
    tokens = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5], [0, 0, 7, 8, 9]], "int32")
    fast, ref = _model(cell, "fast", bidirectional), _model(cell, "keras", bidirectional)
    rnn_types = {type(layer).__name__ for layer in fast._flatten_layers()}
    assert FAST_LAYERS[cell].__name__ in rnn_types
    assert [w.shape for w in fast.weights] == [w.shape for w in ref.weights]
    assert [w.path.split("/")[-1] for w in fast.weights] == [w.path.split("/")[-1] for w in ref.weights]
    ref.set_weights(fast.get_weights())
    y = tf.constant(np.random.default_rng(0).normal(size=(3, T, 3)).astype("float32"))

    def run(model):
        with tf.GradientTape() as tape:
            out = model(tokens, training=True)
            loss = tf.reduce_sum(tf.square(out - y))
        return [out.numpy()], [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_variables)]

    _assert_same(run(fast), run(ref))


def test_bidirectional_default_backward_layer_is_fast():
    bi = keras.layers.Bidirectional(FastLSTM(U, return_sequences=True))
    bi(np.zeros((B, T, D), "float32"))
    assert isinstance(bi.backward_layer, FastLSTM) and bi.backward_layer.go_backwards


@pytest.mark.parametrize("jit", [False, True])
def test_fit_save_load_round_trip(tmp_path, jit):
    # set_seed() turns on op determinism, under which Keras silently drops XLA; lift it so
    # the jit_compile=True case really runs the layer under XLA.
    from tensorflow.python.framework import config as tf_config

    deterministic = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    try:
        _fit_save_load(tmp_path, jit)
    finally:
        if deterministic:
            tf_config.enable_op_determinism()


def _fit_save_load(tmp_path, jit):
    model = _model("lstm", "auto", bidirectional=True)
    model.compile("adam", "mse", jit_compile=jit)
    assert model.jit_compile == jit
    tokens = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    model.fit(tokens, np.ones((2, T, 3), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert any(isinstance(layer, FastLSTM) for layer in loaded._flatten_layers())
    np.testing.assert_allclose(model.predict(tokens, verbose=0), loaded.predict(tokens, verbose=0), atol=1e-6)


def test_config_round_trip_and_builder_default():
    layer = build_rnn_layer("lstm", U, return_sequences=True, go_backwards=True, name="x")
    assert isinstance(layer, FastLSTM)
    clone = FastLSTM.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(build_rnn_layer("gru", U), FastGRU)
    assert type(build_rnn_layer("lstm", U, implementation="keras")) is keras.layers.LSTM
    assert type(build_rnn_layer("lstm", U, recurrent_dropout=0.1)) is keras.layers.LSTM
