"""Entity-level precision / recall / F1 with conlleval.pl semantics.

An entity (chunk) counts as correct only when its type, first and last token
all match. Chunk boundaries follow conlleval's ``startOfChunk``/``endOfChunk``
rules, so IOB1, IOB2 and IOBES input and broken spans (an ``I-X`` without a
``B-X``, which starts a new chunk) are scored exactly as conlleval.pl and
seqeval's default mode do.

>>> scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])
>>> scores["f1"]
1.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def _parts(tag: str) -> tuple[str, str]:
    # conlleval: the prefix is the text before the first '-', the type the rest; a bare 'O' has no type.
    if tag in ("O", "B", "I", "E", "S"):
        return tag, ""
    if "-" in tag:
        p, t = tag.split("-", 1)
        return p, t
    return tag[0], tag[1:]


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Chunks of one tag sequence as ``(type, first, last)`` (inclusive token indices)."""
    chunks: list[tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        p, t = _parts(tag)
        if _end_of_chunk(prev_tag, p, prev_type, t):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, p, prev_type, t):
            begin = i
        prev_tag, prev_type = p, t
    return chunks


def _prf(correct: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Micro precision/recall/F1 over entities and the same per type.

    Args:
        y_true, y_pred: lists of tag sequences (one per sentence, same lengths).

    Returns:
        ``{"precision", "recall", "f1", "n_true", "n_pred", "n_correct",
        "per_type": {type: {"precision", "recall", "f1", "support"}}}``.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold sentences but {len(y_pred)} predicted")
    true_c: Counter = Counter()
    pred_c: Counter = Counter()
    corr_c: Counter = Counter()
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} gold tags but {len(p)} predicted")
        te, pe = set(get_entities(t)), set(get_entities(p))
        true_c.update(e[0] for e in te)
        pred_c.update(e[0] for e in pe)
        corr_c.update(e[0] for e in te & pe)
    n_true, n_pred, n_corr = sum(true_c.values()), sum(pred_c.values()), sum(corr_c.values())
    out: dict[str, Any] = {**_prf(n_corr, n_pred, n_true), "n_true": n_true, "n_pred": n_pred, "n_correct": n_corr}
    out["per_type"] = {
        k: {**_prf(corr_c[k], pred_c[k], true_c[k]), "support": true_c[k]} for k in sorted(set(true_c) | set(pred_c))
    }
    return out


def token_type_confusion(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], types: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Token-level confusion between entity types (prefixes ignored; ``O`` is its own class).

    Returns ``(matrix, labels)``: ``matrix[i, j]`` counts tokens of true type
    ``labels[i]`` predicted as ``labels[j]``; ``labels`` is ``types + ["O"]``.
    """
    if types is None:
        types = sorted({_parts(x)[1] for seq in [*y_true, *y_pred] for x in seq} - {""})
    labels = [*types, "O"]
    index = {k: i for i, k in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        for a, b in zip(t, p):
            m[index.get(_parts(a)[1] or "O", index["O"]), index.get(_parts(b)[1] or "O", index["O"])] += 1
    return m, labels
