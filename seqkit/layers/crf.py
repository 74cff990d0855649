"""A linear-chain CRF output layer written with ``keras.ops`` (backend-agnostic, XLA-compilable).

The layer holds the transition scores; the network in front of it produces the
per-step emission scores ``(batch, time, num_tags)``. Training minimises
:class:`CRFLoss` (negative log-likelihood by the forward algorithm);
prediction uses :meth:`CRF.decode` (Viterbi). Given ``tags`` and a ``scheme``
the layer adds a large negative score to transitions that would produce an
invalid sequence (e.g. ``O -> I-PER`` in IOB2), so decoding never outputs one.

Masks are per step, ``True`` for real tokens, and must be left-aligned
(padding only at the end of each sequence), every sequence at least one step.

Reference: Lafferty et al. 2001; Lample et al. 2016 (BiLSTM-CRF for NER).

Example:
    >>> crf = CRF(num_tags=len(tags), tags=tags, scheme="IOB2")
    >>> emissions = crf(keras.layers.Dense(len(tags))(features))
    >>> model.compile(optimizer="adam", loss=CRFLoss(crf))
    >>> best_tags, best_scores = crf.decode(model(x), mask)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

_PENALTY = -1e4  # large enough that a forbidden transition never wins, small enough for float32 logsumexp


def allowed_transitions(tags: Sequence[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which starts, transitions and ends produce valid sequences under ``scheme``.

    Returns boolean ``(start (n,), transitions (n, n) [from, to], end (n,))``.
    """
    from seqkit.data.conll import split_tag

    scheme = scheme.upper()
    parts = [split_tag(t) for t in tags]
    n = len(tags)

    def ok(prev: tuple[str, str] | None, cur: tuple[str, str] | None) -> bool:
        # prev None = sentence start, cur None = sentence end
        pp, pt = prev if prev is not None else ("O", "")
        cp, ct = cur if cur is not None else ("O", "")
        inside = pp in ("B", "I") and prev is not None  # previous token opens/continues an entity
        if scheme == "IOB2":
            return cp != "I" or (inside and pt == ct)
        if scheme == "IOB1":
            return cp != "B" or (inside and pt == ct)
        if scheme == "IOBES":
            if pp in ("B", "I") and prev is not None:  # an open entity must continue with I-/E- of its type
                return cp in ("I", "E") and ct == pt
            return cp not in ("I", "E")
        raise ValueError(f"unknown scheme {scheme!r}")

    start = np.array([ok(None, parts[j]) for j in range(n)])
    trans = np.array([[ok(parts[i], parts[j]) for j in range(n)] for i in range(n)])
    end = np.array([ok(parts[i], None) for i in range(n)])
    return start, trans, end


def _steps(emissions, mask):
    """Steps 1.. as one time-major tensor ``(time - 1, batch, n + 1)``: emissions with the mask appended.

    One tensor, because the TensorFlow backend's ``scan`` cannot check several inputs of unknown length.
    """
    x = ops.concatenate([emissions[:, 1:], ops.cast(mask[:, 1:, None], emissions.dtype)], axis=-1)
    return ops.moveaxis(x, 1, 0)


def crf_log_norm(emissions, mask, transitions, start, end):
    """Log partition function by the forward algorithm.

    Args:
        emissions: ``(batch, time, n)`` float scores.
        mask: ``(batch, time)`` bool, left-aligned.
        transitions: ``(n, n)`` scores ``[from, to]``; start, end: ``(n,)``.

    Returns:
        ``(batch,)`` log Z.
    """
    alpha0 = start[None, :] + emissions[:, 0]
    steps = ops.shape(emissions)[1]

    def body(i, alpha):
        e = ops.take(emissions, i, axis=1)
        m = ops.take(mask, i, axis=1)
        nxt = ops.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + e
        # Padded steps leave alpha unchanged, so padding adds nothing to Z.
        return i + 1, ops.where(m[:, None], nxt, alpha)

    # A while loop with a known trip count (not scan): XLA can only differentiate bounded loops.
    _, alpha = ops.while_loop(lambda i, a: i < steps, body, (1, alpha0), maximum_iterations=steps - 1)
    return ops.logsumexp(alpha + end[None, :], axis=1)


def crf_sequence_score(emissions, tags, mask, transitions, start, end):
    """Unnormalised score of the tag paths ``tags`` ``(batch, time)`` int; padded entries are ignored."""
    n = ops.shape(emissions)[-1]
    tags = ops.where(mask, ops.cast(tags, "int32"), 0)
    maskf = ops.cast(mask, emissions.dtype)
    emit = ops.squeeze(ops.take_along_axis(emissions, tags[:, :, None], axis=2), axis=2)
    score = ops.sum(emit * maskf, axis=1) + ops.take(start, tags[:, 0])
    pair = tags[:, :-1] * n + tags[:, 1:]
    score = score + ops.sum(ops.take(ops.reshape(transitions, (-1,)), pair) * maskf[:, 1:], axis=1)
    last = ops.cast(ops.sum(ops.cast(mask, "int32"), axis=1) - 1, "int32")
    last_tag = ops.squeeze(ops.take_along_axis(tags, last[:, None], axis=1), axis=1)
    return score + ops.take(end, last_tag)


def viterbi_decode(emissions, mask, transitions, start, end):
    """Best tag path per sequence.

    Returns ``(tags (batch, time) int32, scores (batch,))``; padded steps get tag 0.
    """
    n = ops.shape(emissions)[-1]
    identity = ops.arange(n, dtype="int32")[None, :]
    score0 = start[None, :] + emissions[:, 0]

    def forward(carry, x):
        score, _ = carry
        e, m = x[:, :-1], x[:, -1] > 0
        cand = score[:, :, None] + transitions[None]  # (batch, from, to)
        best_prev = ops.cast(ops.argmax(cand, axis=1), "int32")
        nxt = ops.max(cand, axis=1) + e
        # Padded steps: score unchanged, back-pointer is the identity, so backtracking passes through.
        out = (ops.where(m[:, None], nxt, score), ops.where(m[:, None], best_prev, identity))
        # The TensorFlow backend's scan stacks outputs shaped like the carry, so the carry holds the pointers too.
        return out, out

    init = (score0, ops.zeros_like(identity) + ops.zeros_like(ops.cast(score0, "int32")))
    (score, _), (_, backptrs) = ops.scan(forward, init, _steps(emissions, mask))
    score = score + end[None, :]
    last = ops.cast(ops.argmax(score, axis=1), "int32")

    def backward(tag, bp):
        prev = ops.squeeze(ops.take_along_axis(bp, tag[:, None], axis=1), axis=1)
        return prev, prev

    _, earlier = ops.scan(backward, last, backptrs, reverse=True)  # (time-1, batch): tag at steps 0..T-2
    path = ops.concatenate([ops.moveaxis(earlier, 0, 1), last[:, None]], axis=1)
    return ops.where(mask, path, 0), ops.max(score, axis=1)


@keras.saving.register_keras_serializable(package="seqkit")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over emission scores ``(batch, time, num_tags)``.

    ``call`` returns the emissions unchanged (as float32) so the model's output
    can be fed to :class:`CRFLoss` and to :meth:`decode`; the layer owns the
    transition, start and end scores.

    Args:
        num_tags: number of tags.
        tags: tag names (index order); with ``scheme`` they define the constraints.
        scheme: ``"IOB1"``, ``"IOB2"``, ``"IOBES"`` or ``None`` (no constraints).
    """

    def __init__(self, num_tags: int, tags: Sequence[str] | None = None, scheme: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        self.tags = list(tags) if tags is not None else None
        self.scheme = scheme
        if self.tags is not None and len(self.tags) != self.num_tags:
            raise ValueError(f"{len(self.tags)} tag names for num_tags={self.num_tags}")
        if scheme is not None and self.tags is None:
            raise ValueError("a scheme needs the tag names")
        self.supports_masking = True
        n = self.num_tags
        if scheme is not None:
            s, t, e = allowed_transitions(self.tags, scheme)
            pen = lambda a: np.where(a, 0.0, _PENALTY).astype("float32")  # noqa: E731
            self._penalties = (pen(t), pen(s), pen(e))
        else:
            self._penalties = (np.zeros((n, n), "float32"), np.zeros(n, "float32"), np.zeros(n, "float32"))

    def build(self, input_shape):
        n = self.num_tags
        self.transitions = self.add_weight(name="transitions", shape=(n, n), initializer="zeros")
        self.start_scores = self.add_weight(name="start_scores", shape=(n,), initializer="zeros")
        self.end_scores = self.add_weight(name="end_scores", shape=(n,), initializer="zeros")
        self.built = True

    def call(self, inputs, mask=None):
        # A new tensor, not ``inputs`` itself: that one carries the Keras mask, which the loss must not see.
        return ops.cast(inputs, "float32") + 0.0

    def compute_mask(self, inputs, mask=None):
        # The loss masks by itself (labels < 0 are padding); a Keras mask here would re-weight it.
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    def potentials(self):
        """``(transitions, start, end)`` with the constraint penalties added."""
        t, s, e = self._penalties
        return self.transitions + t, self.start_scores + s, self.end_scores + e

    def log_likelihood(self, emissions, tags, mask):
        """``(batch,)`` log p(tags | emissions)."""
        emissions = ops.cast(emissions, "float32")
        mask = ops.cast(mask, "bool")
        t, s, e = self.potentials()
        return crf_sequence_score(emissions, tags, mask, t, s, e) - crf_log_norm(emissions, mask, t, s, e)

    def decode(self, emissions, mask):
        """Viterbi: ``(tags (batch, time) int32, scores (batch,))``."""
        t, s, e = self.potentials()
        return viterbi_decode(ops.cast(emissions, "float32"), ops.cast(mask, "bool"), t, s, e)

    def get_config(self):
        config = super().get_config()
        config.update(num_tags=self.num_tags, tags=self.tags, scheme=self.scheme)
        return config


@keras.saving.register_keras_serializable(package="seqkit")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of integer tags ``(batch, time)`` under ``crf``; tags < 0 are padding.

    The per-sequence loss ``(batch,)`` is averaged over the batch.
    """

    def __init__(self, crf: CRF | None = None, name: str = "crf_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.crf = crf

    def call(self, y_true, y_pred):
        if self.crf is None:
            raise ValueError("CRFLoss needs the CRF layer; build it with CRFLoss(crf_layer)")
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == 3:
            y_true = ops.squeeze(y_true, axis=-1)
        return -self.crf.log_likelihood(y_pred, y_true, y_true >= 0)

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="seqkit")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Token cross-entropy over probabilities ``(batch, time, n)``; labels < 0 are padding and ignored.

    Returns the mean over real tokens of each sequence, ``(batch,)``.
    """

    def __init__(self, name: str = "masked_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == 3:
            y_true = ops.squeeze(y_true, axis=-1)
        mask = ops.cast(y_true >= 0, "float32")
        ce = keras.losses.sparse_categorical_crossentropy(ops.maximum(y_true, 0), y_pred)
        return ops.sum(ce * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def get_config(self):
        return {"name": self.name}
