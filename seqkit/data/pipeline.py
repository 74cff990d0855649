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


class EpochRandom:
    """The random choices of one pass over the training data, as a pure function of ``(seed, epoch)``.

    A pipeline calls :meth:`generator` once at the start of every pass and draws that pass's
    order and noise from it. Epoch ``e``'s generator depends on ``seed`` and ``e`` only, not on
    how many numbers earlier epochs drew, so a run resumed at epoch ``e`` sees exactly the
    batches an uninterrupted run sees with no generator state to save, and so does every
    tuning trial that reaches epoch ``e``. (A generator seeded once and drawn from every epoch
    would have to be checkpointed, and its state read at the right instant although the
    pipeline runs it on a ``tf.data`` thread.)

    The training loop names the epoch through :meth:`callback` (a task returns it from
    ``Task.callbacks``). Iterated without that callback, each pass counts as the next epoch.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.epoch = 0
        self._driven = False

    def generator(self):
        """A fresh ``numpy.random.Generator`` for the current pass."""
        import numpy as np

        epoch = self.epoch
        if not self._driven:
            self.epoch += 1
        # NumPy seeds must be non-negative; the modulo gives a negative config seed one of its own.
        return np.random.default_rng([self.seed % 2**63, epoch])

    def callback(self):
        """A Keras callback that tells this object which epoch the training loop begins."""
        import keras

        owner = self
        owner._driven = True

        class SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                owner.epoch = int(epoch)

        return SetEpoch()
