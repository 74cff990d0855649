"""Fast step-by-step inference for character language models: sampling, scoring, cell traces.

A character model is ``Embedding -> RecurrentStack -> Dense(vocab)``. For generation
the stack is unrolled one character at a time with its own weights in a compiled
``tf.function`` (XLA): :class:`StepModel` generates ``block`` characters per call
inside one ``tf.while_loop``, carrying the recurrent state from step to step, so a
prefix is run once to build the state and never re-run. The first layer's input
projection is folded into the embedding table (``E @ W + b``, one row per character),
so a step costs one gather and one ``h @ U`` per layer plus the output layer.

Sampling is seeded with stateless random ops keyed by ``(seed, position)``: the same
seed gives the same text. ``temperature=0`` is greedy; ``top_k`` / ``top_p`` truncate
the distribution before sampling.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from seqkit.errors import SeqkitError

BLOCK = 128  # characters per compiled call; a fixed size keeps XLA shapes static


@dataclasses.dataclass
class _Cell:
    kind: str  # lstm | gru | simple
    units: int
    kernel: np.ndarray  # (in, gates * units)
    recurrent: np.ndarray  # (units, gates * units)
    bias: np.ndarray  # (gates * units,) or (2, 3 * units) for GRU with reset_after
    reset_after: bool = True
    zoneout: float = 0.0  # inference mixes h = p * h_prev + (1 - p) * h_new (and c) with this p

    @property
    def n_states(self) -> int:
        return 2 if self.kind == "lstm" else 1


def _weights_by_role(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(kernel, recurrent_kernel, bias)`` of a recurrent layer, found by variable name."""
    found: dict[str, np.ndarray] = {}
    for v in layer.weights:
        name = getattr(v, "path", None) or v.name
        leaf = name.split("/")[-1].split(":")[0]
        for role in ("recurrent_kernel", "kernel", "bias"):
            if leaf == role or leaf.endswith("_" + role):
                found.setdefault(role, np.asarray(v.numpy()))
                break
    if set(found) != {"kernel", "recurrent_kernel", "bias"}:
        raise SeqkitError(
            f"step-by-step inference needs a standard recurrent layer (kernel, recurrent_kernel, bias); "
            f"layer {layer.name!r} has weights {[getattr(v, 'path', v.name) for v in layer.weights]}"
        )
    return found["kernel"], found["recurrent_kernel"], found["bias"]


def cells_of_stack(stack) -> list[_Cell]:
    """The per-layer step weights of a unidirectional :class:`~seqkit.layers.RecurrentStack`."""
    from seqkit.layers.regularizers import zoneout_rate

    if stack.bidirectional:
        raise SeqkitError("a bidirectional stack cannot generate text one character at a time")
    cells = []
    for layer, units in zip(stack.rnns, stack.units):
        kernel, recurrent, bias = _weights_by_role(layer)
        reset_after = bool(getattr(getattr(layer, "cell", layer), "reset_after", bias.ndim == 2))
        cells.append(_Cell(stack.cell, int(units), kernel, recurrent, bias, reset_after, zoneout_rate(layer)))
    return cells


def _cell_step(cell: _Cell, xw, h_states, tf):
    """One step of ``cell`` given its input projection ``xw = x @ W + b_in``; returns the new states."""
    u = cell.units
    if cell.kind == "lstm":
        h, c = h_states
        z = xw + tf.matmul(h, cell.recurrent_t)
        i = tf.sigmoid(z[:, :u])
        f = tf.sigmoid(z[:, u : 2 * u])
        g = tf.tanh(z[:, 2 * u : 3 * u])
        o = tf.sigmoid(z[:, 3 * u :])
        c = f * c + i * g
        return [o * tf.tanh(c), c]
    if cell.kind == "gru":
        (h,) = h_states
        if cell.reset_after:
            r_in = tf.matmul(h, cell.recurrent_t) + cell.rbias_t
            z = tf.sigmoid(xw[:, :u] + r_in[:, :u])
            r = tf.sigmoid(xw[:, u : 2 * u] + r_in[:, u : 2 * u])
            hh = tf.tanh(xw[:, 2 * u :] + r * r_in[:, 2 * u :])
        else:
            r_in = tf.matmul(h, cell.recurrent_t[:, : 2 * u])
            z = tf.sigmoid(xw[:, :u] + r_in[:, :u])
            r = tf.sigmoid(xw[:, u : 2 * u] + r_in[:, u:])
            hh = tf.tanh(xw[:, 2 * u :] + tf.matmul(r * h, cell.recurrent_t[:, 2 * u :]))
        return [z * h + (1.0 - z) * hh]
    (h,) = h_states
    return [tf.tanh(xw + tf.matmul(h, cell.recurrent_t))]


def _split_bias(cell: _Cell) -> tuple[np.ndarray, np.ndarray | None]:
    if cell.kind == "gru" and cell.bias.ndim == 2:
        return cell.bias[0], cell.bias[1]
    return cell.bias, None


class StepModel:
    """Compiled one-character-at-a-time runner of a character model ``Embedding -> stack -> Dense``.

    Args:
        embedding: ``(vocab, dim)`` embedding table.
        cells: per-layer weights from :func:`cells_of_stack`.
        head_kernel, head_bias: output layer ``(units, vocab)``, ``(vocab,)``.
        banned: ids never sampled (the reserved UNK).
        jit_compile: compile the loops with XLA.
    """

    def __init__(self, embedding, cells, head_kernel, head_bias, banned=(), jit_compile: bool = True):
        import tensorflow as tf

        self.tf = tf
        self.cells = cells
        self.vocab_size = int(embedding.shape[0])
        # Fold the first layer's input projection into the embedding table: one gather per step.
        in_bias, _ = _split_bias(cells[0])
        self.table0 = tf.constant(np.asarray(embedding) @ cells[0].kernel + in_bias, tf.float32)
        for i, cell in enumerate(cells):
            cell.recurrent_t = tf.constant(cell.recurrent, tf.float32)
            ib, rb = _split_bias(cell)
            cell.rbias_t = None if rb is None else tf.constant(rb, tf.float32)
            if i > 0:
                cell.kernel_t = tf.constant(cell.kernel, tf.float32)
                cell.ibias_t = tf.constant(ib, tf.float32)
        self.head_kernel = tf.constant(head_kernel, tf.float32)
        mask = np.zeros(self.vocab_size, np.float32)
        mask[list(banned)] = -np.inf
        self.head_bias = tf.constant(np.asarray(head_bias, np.float32), tf.float32)
        self.ban = tf.constant(mask)
        self.jit_compile = jit_compile
        self._feed = tf.function(self._feed_impl, jit_compile=jit_compile, reduce_retracing=True)
        self._trace = tf.function(self._trace_impl, jit_compile=jit_compile, reduce_retracing=True)
        self._gen = tf.function(self._gen_impl, jit_compile=jit_compile, reduce_retracing=True)

    @classmethod
    def from_model(cls, model, banned=(), jit_compile: bool = True) -> StepModel:
        """Build from a Keras model with layers named ``embedding``, ``stack`` and ``head``."""
        emb = model.get_layer("embedding").embeddings.numpy()
        stack = model.get_layer("stack")
        head = model.get_layer("head")
        return cls(emb, cells_of_stack(stack), head.kernel.numpy(), head.bias.numpy(), banned, jit_compile)

    # --- state ---------------------------------------------------------------------------
    @property
    def total_units(self) -> int:
        return sum(c.units for c in self.cells)

    def zero_state(self, n: int) -> list:
        tf = self.tf
        return [tf.zeros((n, c.units)) for c in self.cells for _ in range(c.n_states)]

    def _step(self, ids, states):
        """ids ``(n,)`` -> (logits ``(n, vocab)``, new flat states)."""
        tf = self.tf
        new_states = []
        x = None
        k = 0
        for i, cell in enumerate(self.cells):
            cur = states[k : k + cell.n_states]
            k += cell.n_states
            xw = tf.gather(self.table0, ids) if i == 0 else tf.matmul(x, cell.kernel_t) + cell.ibias_t
            st = _cell_step(cell, xw, cur, tf)
            if cell.zoneout:
                st = [cell.zoneout * old + (1.0 - cell.zoneout) * new for old, new in zip(cur, st)]
            new_states.extend(st)
            x = st[0]
        logits = tf.matmul(x, self.head_kernel) + self.head_bias
        return logits, new_states

    # --- compiled loops ------------------------------------------------------------------
    def _feed_impl(self, ids, n_valid, states, logits):
        """Run ``ids (n, BLOCK)`` (only the first ``n_valid`` columns) through the model."""
        tf = self.tf

        def body(t, states, logits):
            new_logits, new_states = self._step(ids[:, t], states)
            keep = t < n_valid
            states = [tf.where(keep, a, b) for a, b in zip(new_states, states)]
            return t + 1, states, tf.where(keep, new_logits, logits)

        _, states, logits = tf.while_loop(lambda t, *_: t < BLOCK, body, (tf.constant(0), states, logits))
        return states, logits

    def _trace_impl(self, ids, states):
        """Run ``ids (1, BLOCK)``; return final states, next-char log-probs ``(BLOCK, vocab)`` and
        per-step ``h`` and ``c`` of every layer ``(BLOCK, total_units)`` (``c`` = ``h`` for GRU/simple)."""
        tf = self.tf
        hs = tf.TensorArray(tf.float32, size=BLOCK)
        cs = tf.TensorArray(tf.float32, size=BLOCK)
        lp = tf.TensorArray(tf.float32, size=BLOCK)

        def body(t, states, hs, cs, lp):
            logits, states = self._step(ids[:, t], states)
            h_parts, c_parts, k = [], [], 0
            for cell in self.cells:
                h_parts.append(states[k])
                c_parts.append(states[k + 1] if cell.kind == "lstm" else states[k])
                k += cell.n_states
            hs = hs.write(t, tf.concat(h_parts, -1)[0])
            cs = cs.write(t, tf.concat(c_parts, -1)[0])
            lp = lp.write(t, tf.nn.log_softmax(logits)[0])
            return t + 1, states, hs, cs, lp

        _, states, hs, cs, lp = tf.while_loop(lambda t, *_: t < BLOCK, body, (tf.constant(0), states, hs, cs, lp))
        return states, lp.stack(), hs.stack(), cs.stack()

    def _choose(self, logits, temperature, top_k, top_p, seed):
        """Pick one id per row of ``logits (n, vocab)``; ``seed`` is an int32 pair."""
        tf = self.tf
        logits = logits + self.ban
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        scaled = logits / tf.maximum(temperature, 1e-6)
        sorted_desc = tf.sort(scaled, axis=-1, direction="DESCENDING")
        # top-k: keep logits >= the k-th largest (k <= 0 keeps all).
        k = tf.clip_by_value(top_k, 1, self.vocab_size)
        kth = tf.gather(sorted_desc, k - 1, axis=-1)[:, None]
        scaled = tf.where((top_k > 0) & (scaled < kth), -np.inf, scaled)
        # top-p (nucleus): keep the smallest set of most likely ids whose mass reaches p.
        probs_sorted = tf.nn.softmax(sorted_desc)
        before = tf.cumsum(probs_sorted, axis=-1, exclusive=True)
        keep_sorted = before < top_p
        threshold = tf.reduce_min(tf.where(keep_sorted, sorted_desc, np.inf), axis=-1, keepdims=True)
        scaled = tf.where((top_p < 1.0) & (scaled < threshold), -np.inf, scaled)
        sampled = tf.random.stateless_categorical(scaled, 1, seed=seed, dtype=tf.int32)[:, 0]
        return tf.where(temperature > 0.0, sampled, greedy)

    def _gen_impl(self, states, logits, temperature, top_k, top_p, seed, offset):
        """Generate ``BLOCK`` ids per stream from ``logits`` and ``states``; returns ``(n, BLOCK)`` ids."""
        tf = self.tf
        out = tf.TensorArray(tf.int32, size=BLOCK)

        def body(t, states, logits, out):
            ids = self._choose(logits, temperature, top_k, top_p, tf.stack([seed, offset + t]))
            out = out.write(t, ids)
            logits, states = self._step(ids, states)
            return t + 1, states, logits, out

        _, states, logits, out = tf.while_loop(lambda t, *_: t < BLOCK, body, (tf.constant(0), states, logits, out))
        return tf.transpose(out.stack()), states, logits

    # --- public API ----------------------------------------------------------------------
    def feed(self, ids: np.ndarray, states=None, logits=None):
        """Run ``ids (n, length)`` once; returns ``(states, logits after the last id)``."""
        tf = self.tf
        ids = np.asarray(ids, np.int32)
        n = ids.shape[0]
        states = self.zero_state(n) if states is None else states
        logits = tf.zeros((n, self.vocab_size)) if logits is None else logits
        for start in range(0, ids.shape[1], BLOCK):
            block = ids[:, start : start + BLOCK]
            valid = block.shape[1]
            block = np.pad(block, ((0, 0), (0, BLOCK - valid)))
            states, logits = self._feed(tf.constant(block), tf.constant(valid), states, logits)
        return states, logits

    def generate(
        self,
        states,
        logits,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """Continue from ``(states, logits)``; returns ``(n, length)`` ids."""
        tf = self.tf
        if temperature < 0 or not math.isfinite(temperature):
            raise SeqkitError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise SeqkitError(f"top_k must be >= 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise SeqkitError(f"top_p must be in (0, 1], got {top_p}")
        args = (
            tf.constant(float(temperature)),
            tf.constant(int(top_k or 0)),
            tf.constant(float(top_p if top_p is not None else 1.0)),
            tf.constant(int(seed) & 0x7FFFFFFF),
        )
        chunks = []
        for offset in range(0, max(length, 0), BLOCK):
            ids, states, logits = self._gen(states, logits, *args, tf.constant(offset))
            chunks.append(ids.numpy())
        if not chunks:
            return np.zeros((int(logits.shape[0]), 0), np.int32)
        return np.concatenate(chunks, axis=1)[:, :length]

    def trace(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Run one sequence ``ids (length,)``; returns per-step ``h``, ``c`` ``(length, total_units)`` and
        ``logprobs (length, vocab)`` (log-probabilities of the character after each position)."""
        tf = self.tf
        ids = np.asarray(ids, np.int32).reshape(-1)
        states = self.zero_state(1)
        hs, cs, lps = [], [], []
        for start in range(0, len(ids), BLOCK):
            block = ids[start : start + BLOCK]
            valid = len(block)
            padded = np.pad(block, (0, BLOCK - valid))[None, :]
            states, lp, h, c = self._trace(tf.constant(padded), states)
            hs.append(h.numpy()[:valid])
            cs.append(c.numpy()[:valid])
            lps.append(lp.numpy()[:valid])
        if not hs:
            z = np.zeros((0, self.total_units), np.float32)
            return {"h": z, "c": z, "logprobs": np.zeros((0, self.vocab_size), np.float32)}
        return {"h": np.concatenate(hs), "c": np.concatenate(cs), "logprobs": np.concatenate(lps)}


class CharLM:
    """A trained character language model ready for sampling, scoring and cell traces.

    Args:
        model: Keras model ``Embedding("embedding") -> RecurrentStack("stack") -> Dense("head")``.
        vocab: its :class:`~seqkit.data.corpus.CharVocab`.
        jit_compile: compile the step loops with XLA.

    Example:
        >>> lm = CharLM(model, vocab)
        >>> lm.sample("ROMEO:", length=200, temperature=0.8, seed=1)
    """

    def __init__(self, model, vocab, jit_compile: bool = True):
        self.model = model
        self.vocab = vocab
        banned = (0,) if vocab.unk else ()
        self.steps = StepModel.from_model(model, banned=banned, jit_compile=jit_compile)

    def _start(self, prime: str, n: int):
        """State after reading ``prime`` (an empty prime starts as if after a newline)."""
        if prime:
            ids = self.vocab.encode(prime, source="prime")
        elif "\n" in self.vocab.chars:
            ids = self.vocab.encode("\n")
        else:
            tf = self.steps.tf
            return self.steps.zero_state(n), tf.zeros((n, self.steps.vocab_size))
        return self.steps.feed(np.tile(ids[None, :], (n, 1)))

    def sample(
        self,
        prime: str = "",
        length: int = 500,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        streams: int = 1,
    ) -> str | list[str]:
        """Continue ``prime`` by ``length`` characters (the prime is not repeated in the output).

        Returns a string, or a list of ``streams`` strings when ``streams > 1``.
        """
        if streams < 1:
            raise SeqkitError(f"streams must be >= 1, got {streams}")
        states, logits = self._start(prime, streams)
        ids = self.steps.generate(states, logits, length, temperature, top_k, top_p, seed)
        texts = [self.vocab.decode(row) for row in ids]
        return texts[0] if streams == 1 else texts

    def next_chars(self, text: str) -> str:
        """The most likely next character after each prefix of ``text`` (``"hell"`` -> ``"ello"``)."""
        lp = self.steps.trace(self.vocab.encode(text, source="text"))["logprobs"]
        lp = lp + self.steps.ban.numpy()
        return self.vocab.decode(lp.argmax(axis=-1))

    def score(self, text: str) -> dict[str, float]:
        """Loss of ``text`` under the model (the first character is conditioned on a newline when possible)."""
        from seqkit.tbptt import lm_metrics

        ids = self.vocab.encode(text, source="text")
        if len(ids) < 2:
            raise SeqkitError("text: need at least two characters to score")
        lp = self.steps.trace(ids)["logprobs"]
        nats = -float(np.mean(lp[np.arange(len(ids) - 1), ids[1:]]))
        return lm_metrics(nats)

    def trace(self, text: str) -> dict[str, np.ndarray]:
        """Per-character ``h``, ``c`` ``(len(text), cells)`` and next-char log-probs of ``text``."""
        return self.steps.trace(self.vocab.encode(text, source="text"))
