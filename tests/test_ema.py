"""Moving-average weights: what validation judges, what best-epoch selection keeps, and the NER option."""

import json

import numpy as np
import pytest


def _fitted(use_ema: bool):
    import keras

    from seqkit.seed import set_seed

    set_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    model.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=use_ema, ema_momentum=0.5), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    # train_on_batch, not fit: the end of fit copies the averages into the model.
    for i in range(8):
        model.train_on_batch(x[i * 4 : i * 4 + 4], np.ones((4, 4), "float32"))
    return model


def test_averaged_weights_swaps_in_the_averages_and_puts_the_trained_weights_back():
    from seqkit.training import averaged_weights, evaluation_weights

    model = _fitted(use_ema=True)
    trained = model.get_weights()
    opt = model.optimizer
    averages = {id(v): np.asarray(a) for v, a in zip(opt._trainable_variables, opt._model_variables_moving_average)}
    expected = [averages.get(id(v), w) for v, w in zip(model.weights, trained)]
    # The averages differ from the trained weights (momentum 0.5 over 8 steps), so the test can tell them apart.
    assert any(not np.allclose(a, b) for a, b in zip(expected, trained))

    judged = evaluation_weights(model)
    for got, want in zip(judged, expected):
        np.testing.assert_array_equal(got, want)
    with averaged_weights(model):
        for got, want in zip(model.get_weights(), expected):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)


def test_without_averages_both_are_the_weights_themselves():
    from seqkit.training import averaged_weights, evaluation_weights

    model = _fitted(use_ema=False)
    trained = model.get_weights()
    for got, want in zip(evaluation_weights(model), trained):
        np.testing.assert_array_equal(got, want)
    with averaged_weights(model):
        for got, want in zip(model.get_weights(), trained):
            np.testing.assert_array_equal(got, want)


def test_ner_with_moving_averages_keeps_the_weights_it_selected(tmp_path):
    from seqkit.cli import main
    from tasks.ner import TASK

    data, overrides = TASK.fixture(tmp_path / "data")
    argv = ["train", "ner", "--out", str(tmp_path / "run"), "--train", data.train, "--valid", data.valid]
    argv += ["--test", data.test]
    for k, v in {**overrides, "ema_epochs": 2.0}.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    col = history[0].split(",").index("val_f1")
    best = max(float(row.split(",")[col]) for row in history[1:])
    # The saved model is the averaged weights of the best epoch: it scores what selection saw.
    assert metrics["valid_f1"] == pytest.approx(best, abs=1e-9)


def test_ema_epochs_out_of_range_names_the_field():
    from seqkit.config import from_dict
    from seqkit.errors import SeqkitError
    from tasks.ner import TASK

    with pytest.raises(SeqkitError, match="ema_epochs"):
        from_dict(TASK.config_cls, {"ema_epochs": 0.0}, source="cfg.yaml")


@pytest.mark.parametrize("steps_per_epoch", [10, 110, 440, 4400])
def test_the_average_spans_the_same_epochs_whatever_the_data_size(steps_per_epoch):
    """After ``e`` epochs the initial weights' share of the average, momentum ** steps, depends on ``e`` only."""
    from seqkit.training import ema_optimizer_options

    m = ema_optimizer_options(2.0, steps_per_epoch)["ema_momentum"]
    assert 1.0 / (1.0 - m) == pytest.approx(2.0 * steps_per_epoch)
    share_after_10_epochs = m ** (10 * steps_per_epoch)
    # (1 - 1/n) ** (5 n) rises to exp(-5) from below as the steps per epoch n grow.
    assert 0.85 * np.exp(-5.0) < share_after_10_epochs <= np.exp(-5.0)
    assert ema_optimizer_options(None, steps_per_epoch) == {}


def test_a_weights_checkpoint_keeps_the_averages(tmp_path):
    """Resume reads ``model.weights.h5``: the averages must come back with the optimizer state."""
    import keras

    model = _fitted(use_ema=True)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    fresh.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.5), loss="mse")
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "model.weights.h5")
    for a, b in zip(model.optimizer._model_variables_moving_average, fresh.optimizer._model_variables_moving_average):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_callbacks_framed_by_around_averaged_weights_see_the_averages_at_epoch_end():
    """A checkpoint inside the frame (keras-tuner's best epoch) saves the averages; training keeps its weights."""
    import keras

    from seqkit.seed import set_seed
    from seqkit.training import around_averaged_weights

    set_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.5), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    seen, after = [], []

    class Inside(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            opt = self.model.optimizer
            seen.append(
                (
                    [np.asarray(v) for v in self.model.weights],
                    [np.asarray(a) for a in opt._model_variables_moving_average],
                )
            )

    class Outside(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after.append([np.asarray(v) for v in self.model.weights])

    model.fit(
        x,
        np.ones((32, 4), "float32"),
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[*around_averaged_weights([Inside()]), Outside()],
    )
    for (weights, averages), trained in zip(seen, after):
        for w, a in zip(weights, averages):
            np.testing.assert_array_equal(w, a)
        # After the frame the trained weights are back, and they differ from the averages.
        assert any(not np.allclose(w, t) for w, t in zip(weights, trained))
