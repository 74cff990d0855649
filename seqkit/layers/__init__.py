"""Reusable recurrent layer builders.

>>> from seqkit.layers import recurrent_stack

Importing this package registers every seqkit layer with Keras, so
``keras.models.load_model`` finds them in a fresh process.
"""

from seqkit.layers import fast, regularizers
from seqkit.layers.char import CharWordEncoder
from seqkit.layers.crf import CRF, CRFLoss, MaskedSparseCrossentropy
from seqkit.layers.heads import classification_head, regression_head, tagging_head, token_embedding
from seqkit.layers.recurrent import (
    RecurrentStack,
    available_regularizers,
    build_rnn_layer,
    recurrent_stack,
    recurrent_stack_from_config,
    register_regularizer,
)
from seqkit.layers.text import MaskedGlobalPooling, RegionPooling

__all__ = [
    "CRF",
    "CRFLoss",
    "CharWordEncoder",
    "MaskedGlobalPooling",
    "MaskedSparseCrossentropy",
    "RecurrentStack",
    "RegionPooling",
    "available_regularizers",
    "build_rnn_layer",
    "classification_head",
    "fast",
    "recurrent_stack",
    "recurrent_stack_from_config",
    "regression_head",
    "register_regularizer",
    "regularizers",
    "tagging_head",
    "token_embedding",
]
