"""Reusable recurrent layer builders.

>>> from seqkit.layers import recurrent_stack
"""

from seqkit.layers.heads import classification_head, regression_head, tagging_head, token_embedding
from seqkit.layers.recurrent import (
    RecurrentStack,
    available_regularizers,
    build_rnn_layer,
    recurrent_stack,
    recurrent_stack_from_config,
    register_regularizer,
)

__all__ = [
    "RecurrentStack",
    "available_regularizers",
    "build_rnn_layer",
    "classification_head",
    "recurrent_stack",
    "recurrent_stack_from_config",
    "regression_head",
    "register_regularizer",
    "tagging_head",
    "token_embedding",
]
