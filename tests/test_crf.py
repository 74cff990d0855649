"""CRF layer: forward algorithm and Viterbi against brute-force enumeration, masking, constraints, save/load."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from seqkit.layers.crf import CRF, CRFLoss, allowed_transitions, crf_log_norm, crf_sequence_score, viterbi_decode


def _path_score(em, path, trans, start, end):
    s = start[path[0]] + end[path[-1]] + sum(em[t, k] for t, k in enumerate(path))
    return s + sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))


def _random(seed=0, b=3, t=4, n=3):
    rng = np.random.default_rng(seed)
    em = rng.normal(size=(b, t, n)).astype("float32")
    trans = rng.normal(size=(n, n)).astype("float32")
    start, end = rng.normal(size=n).astype("float32"), rng.normal(size=n).astype("float32")
    lengths = np.array([t, 1, t - 1][:b])
    mask = np.arange(t)[None, :] < lengths[:, None]
    return em, trans, start, end, mask, lengths


def test_log_norm_and_viterbi_equal_brute_force():
    em, trans, start, end, mask, lengths = _random()
    log_z = np.asarray(crf_log_norm(em, mask, trans, start, end))
    tags, scores = viterbi_decode(em, mask, trans, start, end)
    tags, scores = np.asarray(tags), np.asarray(scores)
    n = em.shape[-1]
    for i, length in enumerate(lengths):
        all_scores = {
            p: _path_score(em[i, :length], p, trans, start, end) for p in itertools.product(range(n), repeat=length)
        }
        vals = np.array(list(all_scores.values()))
        assert log_z[i] == pytest.approx(np.log(np.exp(vals).sum()), abs=1e-4)
        best = max(all_scores, key=all_scores.get)
        assert tuple(tags[i, :length]) == best
        assert scores[i] == pytest.approx(all_scores[best], abs=1e-4)
        assert (tags[i, length:] == 0).all()


def test_sequence_score_and_likelihood_sum_to_one():
    em, trans, start, end, mask, lengths = _random(seed=1, b=2, t=3)
    n = em.shape[-1]
    for i in range(2):
        length = int(lengths[i])
        total = 0.0
        for p in itertools.product(range(n), repeat=length):
            tags = np.full((1, 3), -1)
            tags[0, :length] = p
            s = crf_sequence_score(em[i : i + 1], tags, mask[i : i + 1], trans, start, end)
            assert float(s[0]) == pytest.approx(_path_score(em[i, :length], p, trans, start, end), abs=1e-4)
            z = crf_log_norm(em[i : i + 1], mask[i : i + 1], trans, start, end)
            total += float(np.exp(s[0] - z[0]))
        assert total == pytest.approx(1.0, abs=1e-4)


def test_padding_is_exact():
    em, trans, start, end, _, _ = _random(seed=2, b=1, t=3)
    padded = np.concatenate([em, np.random.default_rng(5).normal(size=(1, 4, 3)).astype("float32") * 100], axis=1)
    mask = np.arange(7)[None] < 3
    assert np.asarray(crf_log_norm(padded, mask, trans, start, end))[0] == pytest.approx(
        float(crf_log_norm(em, np.ones((1, 3), bool), trans, start, end)[0]), abs=1e-5
    )
    tags_pad, _ = viterbi_decode(padded, mask, trans, start, end)
    tags, _ = viterbi_decode(em, np.ones((1, 3), bool), trans, start, end)
    np.testing.assert_array_equal(np.asarray(tags_pad)[:, :3], np.asarray(tags))


def test_constraints_forbid_invalid_iob2_and_iobes():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    s, t, e = allowed_transitions(tags, "IOB2")
    assert not s[2] and s[1] and not t[0, 2] and t[1, 2] and t[2, 2] and not t[3, 2] and e.all()
    iobes = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    s, t, e = allowed_transitions(iobes, "IOBES")
    assert s[0] and s[1] and not s[2] and not s[3] and s[4]
    assert not e[1] and not e[2] and e[3]
    assert t[1, 2] and t[1, 3] and not t[1, 0] and not t[0, 3] and t[3, 4]
    # Emissions that strongly prefer an invalid path still decode to a valid one.
    crf = CRF(len(tags), tags=tags, scheme="IOB2")
    crf.build((None, None, len(tags)))
    em = np.full((1, 3, 5), -5.0, "float32")
    em[0, :, 2] = 5.0  # I-PER everywhere
    path, _ = crf.decode(em, np.ones((1, 3), bool))
    assert [tags[k] for k in np.asarray(path)[0]][0] != "I-PER"


@pytest.fixture
def xla_allowed():
    # Keras turns jit_compile off while TensorFlow op determinism is on (the autouse seed fixture enables it).
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()
    yield
    tf_config.enable_op_determinism()


def test_crf_model_trains_jit_and_saves(tmp_path, xla_allowed):
    keras.utils.set_random_seed(0)
    tags = ["O", "B-X", "I-X"]
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    h = keras.layers.Dense(3)(h)
    crf = CRF(3, tags=tags, scheme="IOB2", name="crf")
    out = crf(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=CRFLoss(crf), jit_compile=True)
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [6, 7, 8, 9, 1]] * 4, "int32")
    y = np.where(x > 0, (x % 3 == 0) * 1 + (x % 3 == 1) * 2, -1)
    y[:, 0] = np.where(y[:, 0] == 2, 1, y[:, 0])
    y = np.where((y == 2) & (np.roll(y, 1, axis=1) == 0), 1, y)
    hist = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert model.jit_compile  # the forward algorithm and its gradient compile with XLA
    assert np.isfinite(hist.history["loss"]).all() and hist.history["loss"][-1] < hist.history["loss"][0]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), atol=1e-6)
    a, _ = crf.decode(model(x), x > 0)
    b, _ = loaded.get_layer("crf").decode(loaded(x), x > 0)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.get_layer("crf").get_config() == crf.get_config()
    import tensorflow as tf

    decode = tf.function(lambda e, m: crf.decode(e, m)[0], jit_compile=True)
    np.testing.assert_array_equal(np.asarray(decode(model(x), x > 0)), np.asarray(a))


def test_crf_loss_ignores_keras_mask_and_handles_single_step():
    crf = CRF(2)
    crf.build((None, None, 2))
    em = ops.convert_to_tensor(np.zeros((2, 1, 2), "float32"))
    nll = CRFLoss(crf)(np.array([[0], [1]]), em)
    assert float(nll) == pytest.approx(np.log(2.0), abs=1e-6)
