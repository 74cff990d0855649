import keras
import numpy as np
import pytest

from seqkit.layers import RecurrentStack, build_rnn_layer, recurrent_stack
from seqkit.testing import run_layer_test


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
def test_each_cell_passes_layer_contract(cell):
    run_layer_test(lambda: recurrent_stack(cell, [4], seed=1), (3, 5, 2))


def test_stacked_bidirectional_lstm_with_recurrent_dropout_saves_and_loads():
    run_layer_test(
        lambda: recurrent_stack(
            "lstm", [4, 3], bidirectional=True, recurrent_dropout=0.2, inter_dropout=0.3, dropout=0.1, seed=3
        ),
        (4, 6, 2),
    )


def test_return_sequences_shapes_and_stack_depth():
    x = keras.Input((7, 3))
    seq = recurrent_stack("gru", [5, 6], return_sequences=True)(x)
    last = recurrent_stack("gru", [5, 6])(x)
    bi = recurrent_stack("gru", [5, 6], bidirectional=True)(x)
    assert tuple(seq.shape) == (None, 7, 6)
    assert tuple(last.shape) == (None, 6)
    assert tuple(bi.shape) == (None, 12)
    stack = RecurrentStack("lstm", [2, 2, 2])
    assert len(stack.rnns) == 3
    # every layer but the last returns sequences
    assert [layer.return_sequences for layer in stack.rnns] == [True, True, False]


def test_masking_ignores_padded_steps():
    stack = recurrent_stack("lstm", [4], seed=0)
    emb = keras.layers.Embedding(10, 3, mask_zero=True)
    ids = np.array([[3, 4, 5, 0, 0]])
    unpadded = np.array([[3, 4, 5]])
    a = stack(emb(ids))
    b = stack(emb(unpadded))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_return_state_and_initial_state_continue_a_sequence():
    stack = recurrent_stack("lstm", [4, 3], return_sequences=True, return_state=True, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")
    full, _ = stack(x)
    first, states = stack(x[:, :3])
    second, _ = stack(x[:, 3:], initial_state=states)
    assert len(states) == 4  # (h, c) for each of the two layers
    np.testing.assert_allclose(np.asarray(full[:, 3:]), np.asarray(second), atol=1e-5)


def test_sequence_mask_is_shared_across_time_and_step_mask_is_not():
    x = np.ones((8, 20, 16), "float32")
    seq = recurrent_stack("lstm", [2], dropout=0.5, dropout_mask="sequence", seed=1).input_drop
    step = recurrent_stack("lstm", [2], dropout=0.5, dropout_mask="step", seed=1).input_drop
    m_seq = np.asarray(seq(x, training=True)) != 0
    m_step = np.asarray(step(x, training=True)) != 0
    assert (m_seq == m_seq[:, :1]).all()
    assert not (m_step == m_step[:, :1]).all()


def test_dropout_is_identity_at_inference():
    stack = recurrent_stack("gru", [4], dropout=0.5, inter_dropout=0.5, output_dropout=0.5, seed=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(stack(x, training=False)), np.asarray(stack(x, training=False)))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="cell"):
        build_rnn_layer("transformer", 4)
    with pytest.raises(ValueError, match="units"):
        RecurrentStack("lstm", [])
    with pytest.raises(ValueError, match="regularizer"):
        build_rnn_layer("lstm", 4, regularizer="nonexistent")


def test_keras_implementation_is_plain_keras_layer():
    layer = build_rnn_layer("lstm", 4, implementation="keras")
    assert type(layer) is keras.layers.LSTM


def test_bidirectional_layers_built_while_a_model_loads_stay_distinct():
    # While a model loads, Keras notes every serialised object by id() (ObjectSharingScope) so
    # shared objects come back shared. Bidirectional serialises its template to clone it; a freed
    # template could hand its id to a later one, whose clone then came back as an earlier layer
    # or cell, and two branches of the loaded model ran on one set of weights.
    import gc

    from keras.src.saving.serialization_lib import ObjectSharingScope

    from seqkit.layers import CharWordEncoder

    stacks, encoders = [], []
    with ObjectSharingScope():
        for i in range(30):
            stacks.append(
                recurrent_stack("lstm", [3], bidirectional=True, regularizer=("zoneout", "weight_drop", None)[i % 3])
            )
            gc.collect()  # what a collection in the middle of a load does to freed templates
    with ObjectSharingScope():
        for _ in range(30):
            encoders.append(CharWordEncoder(20, kind="bilstm", filters=4))
            gc.collect()
    wrappers = [w for s in stacks for w in s.rnns] + [e.rnn for e in encoders]
    parts = [p for w in wrappers for d in (w.forward_layer, w.backward_layer) for p in (d, d.cell)]
    assert len({id(p) for p in parts}) == len(parts) == 4 * 60
