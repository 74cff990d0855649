"""Character-level word encoders: each token's characters -> one vector per token.

Input ``(batch, time, max_word_len)`` int character ids (0 = padding);
output ``(batch, time, features)``. They let a tagger see casing, prefixes and
suffixes of words it has no embedding for (Ma & Hovy 2016: CNN; Lample et al.
2016: BiLSTM).
"""

from __future__ import annotations

import keras
from keras import ops

from seqkit.layers.recurrent import bidirectional_layer


@keras.saving.register_keras_serializable(package="seqkit")
class CharWordEncoder(keras.layers.Layer):
    """Character CNN (max-pooled over the word) or character BiLSTM (final states) per token.

    Args:
        num_chars: character vocabulary size (id 0 is padding).
        char_dim: character embedding size.
        kind: ``"cnn"`` (cheaper on CPU) or ``"bilstm"``.
        filters: CNN filters, or LSTM units per direction; the output has ``filters``
            (CNN) or ``2 * filters`` (BiLSTM) features.
        kernel_size: CNN window in characters.
        seed: initialiser seed.

    Example:
        >>> enc = CharWordEncoder(num_chars=80, char_dim=25, filters=50)
        >>> enc(keras.ops.ones((2, 7, 12), "int32")).shape
        (2, 7, 50)
    """

    def __init__(
        self,
        num_chars: int,
        char_dim: int = 25,
        kind: str = "cnn",
        filters: int = 50,
        kernel_size: int = 3,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in ("cnn", "bilstm"):
            raise ValueError(f"kind must be 'cnn' or 'bilstm', got {kind!r}")
        self.num_chars = num_chars
        self.char_dim = char_dim
        self.kind = kind
        self.filters = filters
        self.kernel_size = kernel_size
        self.seed = seed
        init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
        self.embedding = keras.layers.Embedding(num_chars, char_dim, embeddings_initializer=init, name="char_embedding")
        if kind == "cnn":
            # A (1, k) 2-D convolution over (time, chars) needs no reshape of the batch.
            self.conv = keras.layers.Conv2D(
                filters,
                (1, kernel_size),
                padding="same",
                activation="tanh",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                name="char_conv",
            )
        else:
            self.rnn = bidirectional_layer(
                keras.layers.LSTM(filters, seed=seed), merge_mode="concat", name="char_bilstm"
            )

    @property
    def output_dim(self) -> int:
        return self.filters if self.kind == "cnn" else 2 * self.filters

    def build(self, input_shape):
        width = input_shape[-1]
        self.embedding.build((None, None, width))
        if self.kind == "cnn":
            self.conv.build((None, None, width, self.char_dim))
        else:
            self.rnn.build((None, width, self.char_dim))
        self.built = True

    def call(self, chars):
        chars = ops.cast(chars, "int32")
        present = chars > 0  # (batch, time, width)
        x = self.embedding(chars)
        if self.kind == "cnn":
            h = self.conv(x)
            h = ops.where(present[..., None], h, -2.0)  # tanh >= -1, so padding never wins the max
            h = ops.max(h, axis=2)
        else:
            b, t, w = ops.shape(chars)[0], ops.shape(chars)[1], ops.shape(chars)[2]
            flat = ops.reshape(x, (-1, w, self.char_dim))
            h = self.rnn(flat, mask=ops.reshape(present, (-1, w)))
            h = ops.reshape(h, (b, t, self.output_dim))
        word_present = ops.any(present, axis=2)[..., None]
        return ops.where(word_present, h, 0.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_chars=self.num_chars,
            char_dim=self.char_dim,
            kind=self.kind,
            filters=self.filters,
            kernel_size=self.kernel_size,
            seed=self.seed,
        )
        return config
