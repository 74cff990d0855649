"""Character corpora for language models: UTF-8 text, a character vocabulary, TBPTT batches.

The vocabulary is a list of Unicode characters (code points, so Korean or any
other script works like ASCII). It is saved next to the model as JSON and has
an explicit policy for characters it has never seen: ``error`` (raise, naming
the character and where it is) or ``replace`` (map to a reserved ``UNK`` id 0).

Truncated BPTT layout (:func:`tbptt_layout`): the id stream is cut into
``batch_size`` contiguous rows; batch ``k`` holds columns ``k*T .. k*T+T`` of
every row, so row ``i`` of batch ``k+1`` continues row ``i`` of batch ``k`` and
the recurrent state can be carried from one batch to the next.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from seqkit import io
from seqkit.data.lines import blank_invisible_lines
from seqkit.errors import SeqkitError, fail

UNK_DISPLAY = "\ufffd"  # how the reserved unknown character is shown in text output
VOCAB_FILE = "vocab.json"


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; bad bytes raise :class:`SeqkitError` with the byte offset and line.

    A leading byte-order mark is dropped and lines holding only zero-width characters are emptied
    (:func:`seqkit.data.lines.blank_invisible_lines`), so they never enter the vocabulary.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file", path) from None
    except IsADirectoryError:
        raise fail("is a directory, expected a text file", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise fail(
            f"not valid UTF-8 at byte offset {e.start} (byte 0x{data[e.start]:02x}): {e.reason}", path, line
        ) from None
    if text.startswith("\ufeff"):  # a byte-order mark is an encoding artefact, not text
        text = text[1:]
    return blank_invisible_lines(text)


def split_text(text: str, valid_fraction: float = 0.1) -> tuple[str, str]:
    """Contiguous split: the first ``int(n * (1 - valid_fraction))`` characters train, the rest validate.

    For Tiny Shakespeare (1,115,394 characters) this is nanoGPT's split: 1,003,854 / 111,540.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise SeqkitError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    n_train = int(len(text) * (1.0 - valid_fraction))
    return text[:n_train], text[n_train:]


@dataclasses.dataclass
class CharVocab:
    """Characters <-> ids. With ``unk=True`` id 0 is the reserved unknown character.

    Args:
        chars: the known characters, in id order (after the UNK slot when ``unk``).
        unk: reserve id 0 for unknown characters (policy ``replace``); otherwise unknown characters are errors.
    """

    chars: list[str]
    unk: bool = True

    def __post_init__(self):
        offset = 1 if self.unk else 0
        self._index = {c: i + offset for i, c in enumerate(self.chars)}
        if len(self._index) != len(self.chars):
            raise SeqkitError("vocabulary has duplicate characters")

    @classmethod
    def build(cls, text: str, unknown: str = "replace") -> CharVocab:
        if unknown not in ("error", "replace"):
            raise SeqkitError(f"unknown-character policy must be 'error' or 'replace', got {unknown!r}")
        if not text:
            raise SeqkitError("cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)), unk=unknown == "replace")

    @property
    def size(self) -> int:
        return len(self.chars) + (1 if self.unk else 0)

    @property
    def policy(self) -> str:
        return "replace" if self.unk else "error"

    def encode(self, text: str, source: str | os.PathLike | None = None) -> np.ndarray:
        """``str`` -> ``(len(text),)`` int32 ids. Unknown characters raise or map to id 0 by the policy."""
        index = self._index
        try:
            return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError:
            pass
        ids = np.empty(len(text), dtype=np.int32)
        for pos, c in enumerate(text):
            i = index.get(c)
            if i is None:
                if not self.unk:
                    line = text.count("\n", 0, pos) + 1
                    where = f"{source}:{line}" if source is not None else f"line {line}"
                    raise SeqkitError(
                        f"{where}: character {c!r} (U+{ord(c):04X}) at character offset {pos} is not in the "
                        "model's vocabulary (unknown-character policy 'error'; train with unknown=replace "
                        "to map it to UNK)"
                    )
                i = 0
            ids[pos] = i
        return ids

    def decode(self, ids) -> str:
        offset = 1 if self.unk else 0
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            out.append(UNK_DISPLAY if (self.unk and i == 0) else self.chars[i - offset])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": list(self.chars), "unk": self.unk, "unknown": self.policy, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = VOCAB_FILE) -> CharVocab:
        if not isinstance(data, dict) or not isinstance(data.get("chars"), list):
            raise SeqkitError(f"{source}: not a character vocabulary (expected a 'chars' list)")
        chars = data["chars"]
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise SeqkitError(f"{source}: field 'chars': every entry must be one character")
        return cls(chars, unk=bool(data.get("unk", True)))

    def save(self, path: str | os.PathLike) -> Path:
        return io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharVocab:
        return cls.from_dict(io.read_json(path), source=str(path))


def tbptt_layout(n_ids: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """``(row_length, n_batches)`` of the TBPTT layout of ``n_ids`` ids (inputs; targets are one ahead).

    Each of the ``batch_size`` rows covers ``row_length = n_batches * seq_len`` input positions
    (plus one target position); leftover characters at the end of each row are dropped.
    """
    row = (n_ids - 1) // batch_size
    n_batches = row // seq_len
    if n_batches < 1:
        raise SeqkitError(
            f"text too short for batch_size={batch_size} and seq_len={seq_len}: {n_ids} characters give "
            f"{max(row, 0)} per row, fewer than seq_len (lower batch_size or seq_len)"
        )
    return n_batches * seq_len, n_batches


def tbptt_indices(n_ids: int, batch_size: int, seq_len: int) -> np.ndarray:
    """Positions in the id stream of every input: ``(n_batches, batch_size, seq_len)``.

    Batch ``k`` row ``i`` covers ``i*R + k*T .. i*R + k*T + T - 1`` with ``R = (n_ids - 1) // batch_size``;
    its targets are the positions one ahead. Used by tests to check row continuity on indices.
    """
    row = (n_ids - 1) // batch_size
    _, n_batches = tbptt_layout(n_ids, batch_size, seq_len)
    starts = np.arange(batch_size)[None, :, None] * row + np.arange(n_batches)[:, None, None] * seq_len
    return starts + np.arange(seq_len)[None, None, :]


def tbptt_dataset(ids: np.ndarray, batch_size: int, seq_len: int):
    """A ``tf.data.Dataset`` of ``(x, y)`` int32 batches ``(batch_size, seq_len)`` in TBPTT order.

    The ids live once in memory as a ``(batch_size, row + 1)`` int32 tensor; batches are
    slices of it (no one-hot, no copies of the corpus per batch). Not shuffled: order is state.
    """
    import tensorflow as tf

    ids = np.asarray(ids, dtype=np.int32)
    row_len, n_batches = tbptt_layout(len(ids), batch_size, seq_len)
    row = (len(ids) - 1) // batch_size
    starts = np.arange(batch_size) * row
    # (batch, row_len + 1): each row's inputs plus the one extra target at its end.
    grid = tf.constant(ids[starts[:, None] + np.arange(row_len + 1)[None, :]])

    def chunk(k):
        x = grid[:, k * seq_len : k * seq_len + seq_len]
        y = grid[:, k * seq_len + 1 : k * seq_len + seq_len + 1]
        return tf.ensure_shape(x, (batch_size, seq_len)), tf.ensure_shape(y, (batch_size, seq_len))

    from seqkit.data.pipeline import finish_pipeline

    # A slice of a resident tensor: no parallel calls needed.
    return finish_pipeline(tf.data.Dataset.range(n_batches).map(chunk))
