"""Truncated backpropagation through time for a stateful language model, with Keras callbacks.

The model is ``Embedding("embedding") -> RecurrentStack("stack", return_state=True) -> Dense("head")``.
:class:`TBPTTTrainer` runs a compiled train step that takes the recurrent state as an
input and returns the new one, so row ``i`` of batch ``k+1`` starts from the state row
``i`` of batch ``k`` ended in (see :func:`seqkit.data.corpus.tbptt_dataset`); gradients
stop at batch boundaries. The state is reset to zero at every epoch and for every
validation pass. The loop drives the standard Keras callbacks (CSV log, TensorBoard,
backup/restore, best weights, time budget), so a run directory looks like any other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras
import numpy as np

LN2 = math.log(2.0)


def lm_metrics(nats: float) -> dict[str, float]:
    """Loss in nats per character -> ``{loss, bpc, perplexity}``."""
    return {"loss": nats, "bpc": nats / LN2, "perplexity": math.exp(min(nats, 700.0))}


class TBPTTTrainer:
    """Compiled train / validation steps carrying the recurrent state across batches.

    Args:
        model: a compiled model with layers ``embedding``, ``stack``, ``head`` (its optimizer is used).
        jit_compile: compile the steps with XLA.
    """

    def __init__(self, model, jit_compile: bool = True):
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.embedding = model.get_layer("embedding")
        self.stack = model.get_layer("stack")
        self.head = model.get_layer("head")
        self._train = tf.function(self._train_impl, jit_compile=jit_compile, reduce_retracing=True)
        self._eval = tf.function(self._eval_impl, jit_compile=jit_compile, reduce_retracing=True)

    def zero_state(self, batch: int) -> list:
        tf = self.tf
        return [tf.zeros((batch, u)) for u in self.stack.units for _ in range(self.stack.states_per_layer)]

    def forward(self, x, states, training: bool):
        """``x (batch, time)`` ids -> logits ``(batch, time, vocab)`` and the final states."""
        h = self.embedding(x, training=training)
        y, new_states = self.stack(h, initial_state=states, training=training)
        return self.head(y, training=training), new_states

    def _train_impl(self, x, y, states):
        tf = self.tf
        model = self.model
        with tf.GradientTape() as tape:
            logits, new_states = self.forward(x, states, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        return loss, [tf.stop_gradient(s) for s in new_states]

    def _eval_impl(self, x, y, states):
        tf = self.tf
        logits, new_states = self.forward(x, states, training=False)
        total = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return total, new_states

    def train_step(self, x, y, states):
        """One update on ``x, y (batch, time)`` from ``states``; returns ``(loss, new_states)``."""
        return self._train(x, y, states)

    def evaluate(self, dataset) -> dict[str, float]:
        """Mean loss in nats per character over a TBPTT ``dataset``, carrying state across its batches."""
        states = None
        total, count = 0.0, 0
        for x, y in dataset:
            if states is None:
                states = self.zero_state(int(x.shape[0]))
            s, states = self._eval(x, y, states)
            total += float(s)
            count += int(np.prod(x.shape))
        return lm_metrics(total / max(count, 1))

    def fit(
        self,
        train_ds,
        valid_ds,
        epochs: int,
        callbacks: list,
        initial_epoch: int = 0,
        max_seconds: float | None = None,
        lr_schedule: Callable[[float], float] | None = None,
        log_every: int = 0,
    ) -> tuple[keras.callbacks.History, dict[str, float]]:
        """Train for ``epochs`` (or until ``max_seconds``, checked after every batch, when given).

        ``lr_schedule(fraction) -> learning rate`` sets the rate before each step. ``fraction`` is the
        share of the run done: steps taken over ``epochs`` times the steps of an epoch, so the same seed
        gives the same schedule on any machine. With an opt-in time budget it is the larger of that and
        the share of ``max_seconds`` spent, so the rate still comes down before the clock stops the run.
        Returns the Keras ``History`` and throughput statistics.
        """
        model = self.model
        history = keras.callbacks.History()
        # ``epochs`` in the callbacks' params: a resumed checkpoint of a run that had stopped early needs it.
        cbs = keras.callbacks.CallbackList([*callbacks, history], model=model, add_history=False, epochs=epochs)
        model.stop_training = False
        cbs.on_train_begin()
        # BackupAndRestore sets this when it resumed a killed run.
        initial_epoch = max(initial_epoch, int(getattr(model, "_initial_epoch", 0) or 0))
        # A resumed run has already spent some of its time budget (the time callbacks know how much).
        spent = max([float(getattr(cb, "elapsed_seconds", 0.0) or 0.0) for cb in callbacks] + [0.0])
        t_start = time.perf_counter() - spent
        stats = {"train_chars": 0, "train_step_seconds": 0.0, "compile_seconds": 0.0, "steps": 0}
        timed_out = False
        # The end of an epoch (validation, callbacks, checkpoint) counts against the budget too: stop
        # early enough to fit the last one, estimated by the longest one so far (it varies between
        # epochs: most take seconds, some over half a minute).
        end_seconds = reserve = 0.0
        lr_var = model.optimizer.learning_rate
        steps_per_epoch = int(train_ds.cardinality()) if hasattr(train_ds, "cardinality") else -1
        total_steps = epochs * steps_per_epoch if steps_per_epoch > 0 else 0
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            states = None
            losses = []
            for step, (x, y) in enumerate(train_ds):
                if states is None:
                    states = self.zero_state(int(x.shape[0]))
                if lr_schedule is not None:
                    frac = (epoch * steps_per_epoch + step) / total_steps if total_steps else 0.0
                    if max_seconds:
                        frac = max(frac, (time.perf_counter() - t_start) / max_seconds)
                    model.optimizer.learning_rate = lr_schedule(frac)
                cbs.on_train_batch_begin(step)
                t0 = time.perf_counter()
                loss, states = self._train(x, y, states)
                loss = float(loss)
                t_last = time.perf_counter()
                dt = t_last - t0
                if stats["steps"] == 0:
                    stats["compile_seconds"] = dt
                else:
                    stats["train_step_seconds"] += dt
                    stats["train_chars"] += int(np.prod(x.shape))
                stats["steps"] += 1
                losses.append(loss)
                cbs.on_train_batch_end(step, {"loss": loss})
                if log_every and stats["steps"] % log_every == 0:
                    rate = stats["train_chars"] / max(stats["train_step_seconds"], 1e-9)
                    print(
                        f"epoch {epoch + 1} step {step + 1}: loss {np.mean(losses[-log_every:]):.4f} "
                        f"({rate:,.0f} chars/s, {time.perf_counter() - t_start:.0f} s)",
                        flush=True,
                    )
                if model.stop_training:
                    break
                if max_seconds and time.perf_counter() - t_start + reserve >= max_seconds:
                    timed_out = True
                    break
            t_end = time.perf_counter()
            t_last = t_last if losses else t_end
            logs = {"loss": float(np.mean(losses)) if losses else float("nan")}
            if valid_ds is not None:
                val = self.evaluate(valid_ds)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["learning_rate"] = float(lr_var.numpy()) if hasattr(lr_var, "numpy") else float(lr_var)
            t_val = time.perf_counter()
            cbs.on_epoch_end(epoch, logs)
            t_cb = time.perf_counter()
            # From the last step to here: the end of the data, validation and the callbacks.
            end_seconds = t_cb - t_last
            reserve = max(reserve, end_seconds)
            print(
                f"epoch {epoch + 1}/{epochs}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
                + f" (end of data {t_end - t_last:.1f} s, validation {t_val - t_end:.1f} s, "
                f"callbacks {t_cb - t_val:.1f} s)",
                flush=True,
            )
            if model.stop_training or timed_out:
                break
        cbs.on_train_end()
        stats["train_chars_per_second"] = stats["train_chars"] / max(stats["train_step_seconds"], 1e-9)
        stats["timed_out"] = timed_out
        return history, stats
