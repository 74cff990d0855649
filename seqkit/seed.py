"""One place that seeds every random number generator seqkit uses."""

from __future__ import annotations

import os
import random

import numpy as np


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras.

    With ``deterministic`` TensorFlow is asked for deterministic kernels, so
    the same seed gives the same numbers on CPU. Keras turns ``jit_compile``
    off while that mode is on, so XLA runs use ``deterministic=False``: they
    rely on the seeds and on XLA's CPU kernels, which give the same numbers
    run to run on the same machine (see :func:`seed_from_config`).
    """
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    try:
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        else:
            # The switch is process-wide: undo an earlier call (not exported under tf.config).
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
    except (ImportError, AttributeError):  # pragma: no cover - other TF builds
        pass


def seed_from_config(cfg) -> None:
    """``set_seed(cfg.seed)``, keeping XLA on when the config asks for ``jit_compile``."""
    set_seed(cfg.seed, deterministic=not getattr(cfg, "jit_compile", False))
