import keras
import numpy as np

from seqkit.layers import classification_head, recurrent_stack
from seqkit.seed import set_seed


def _train_once(seed: int, jit: bool = False) -> tuple[list[float], np.ndarray]:
    set_seed(seed, deterministic=not jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 3)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")
    inp = keras.Input((6, 3))
    h = recurrent_stack("gru", [8], dropout=0.2, recurrent_dropout=0.1, seed=seed)(inp)
    model = keras.Model(inp, classification_head(h, 2, dropout=0.3, seed=seed))
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=jit)
    hist = model.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0)
    return hist.history["loss"], model.predict(x, verbose=0)


def test_same_seed_same_numbers():
    loss_a, pred_a = _train_once(5)
    loss_b, pred_b = _train_once(5)
    assert loss_a == loss_b
    np.testing.assert_array_equal(pred_a, pred_b)


def test_different_seed_different_numbers():
    loss_a, _ = _train_once(5)
    loss_c, _ = _train_once(6)
    assert loss_a != loss_c


def test_same_seed_same_numbers_under_xla():
    loss_a, pred_a = _train_once(5, jit=True)
    loss_b, pred_b = _train_once(5, jit=True)
    assert loss_a == loss_b
    np.testing.assert_array_equal(pred_a, pred_b)
