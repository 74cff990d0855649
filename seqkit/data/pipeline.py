"""The last stage every seqkit ``tf.data`` pipeline shares: a fixed prefetch and no autotuning.

With autotuning on (TensorFlow's default), each iterator runs a background model thread,
and deleting the iterator (Keras and the TBPTT trainer make a new one every epoch) waits
for that thread's next wake-up: measured on the 2-core CPU, 0 to 45 s at the end of an
epoch, with nothing computed meanwhile. seqkit's pipelines are small (slices of tensors
held in memory, or batches a Python generator pads) and need no tuning, so a fixed
prefetch buffer keeps the training step fed and the end of an epoch immediate.
"""

from __future__ import annotations

# Parallel calls of a ``map`` that gathers batches (the CPU has 2 cores; more only queue).
MAP_PARALLELISM = 2


def finish_pipeline(dataset, prefetch: int = 2):
    """``dataset.prefetch(prefetch)`` with autotuning switched off (see the module docstring)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(prefetch).with_options(options)
