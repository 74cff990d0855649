"""CoNLL column files: reading, validation, tag-scheme conversion and writing.

A CoNLL file has one token per line with whitespace- (or tab-) separated
columns, a blank line between sentences and optional ``-DOCSTART-`` lines
between documents (a line holding only zero-width characters, such as a stray
byte-order mark, is blank too; see :mod:`seqkit.data.lines`). Tags follow one of three schemes:

- ``IOB1``: ``I-X`` inside any entity; ``B-X`` only where an entity directly follows
  another entity of the same type (CoNLL-2003 as originally released).
- ``IOB2``: every entity starts with ``B-X`` (the CoNLL-2003 files most tools ship).
- ``IOBES``: ``S-X`` for one-token entities, ``B-X ... E-X`` for longer ones.

>>> sents = read_conll("train.txt")            # token column 0, tag column -1
>>> sents[0].tokens, sents[0].tags
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from seqkit.data.lines import is_blank
from seqkit.errors import fail

SCHEMES = ("IOB1", "IOB2", "IOBES")
_TAG_RE = re.compile(r"^([BIES])-(\S+)$")


@dataclasses.dataclass
class Sentence:
    """One sentence: parallel ``tokens`` and ``tags``; ``line`` is the 1-based line of its first token."""

    tokens: list[str]
    tags: list[str]
    line: int = 0


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``. Raises ``ValueError`` on other formats."""
    if tag == "O":
        return "O", ""
    m = _TAG_RE.match(tag)
    if m is None:
        shown = tag if len(tag) <= 40 else tag[:40] + f"... ({len(tag)} characters)"  # keep errors one readable line
        raise ValueError(f"unknown tag format {shown!r} (expected O, B-TYPE, I-TYPE, E-TYPE or S-TYPE)")
    return m.group(1), m.group(2)


def _check_scheme(scheme: str) -> str:
    s = scheme.upper()
    if s not in SCHEMES:
        raise ValueError(f"tag scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    return s


def read_conll(
    path: str | os.PathLike,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str | None = None,
) -> list[Sentence]:
    """Read a CoNLL column file into sentences.

    ``scheme`` (``IOB1``, ``IOB2``, ``IOBES`` or ``None`` for any ``[BIES]-X``)
    restricts which prefixes are accepted. Every line must have the same number
    of columns. Problems raise :class:`~seqkit.errors.SeqkitError` naming
    ``file:line``.
    """
    path = Path(path)
    allowed = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES", None: "BIES"}[_check_scheme(scheme) if scheme else None]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail("file not found", path) from None
    except UnicodeDecodeError as e:
        raise fail(f"not valid UTF-8 (byte {e.start})", path) from None

    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    n_columns: int | None = None

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            sentences.append(Sentence(tokens, tags, first_line))
        tokens, tags = [], []

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if is_blank(line):  # a line of only a byte-order mark or zero-width characters ends a sentence too
            flush()
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if cols[0] == "-DOCSTART-":
            flush()
            continue
        if n_columns is None:
            n_columns = len(cols)
            for name, col in (("token", token_column), ("tag", tag_column)):
                if not -n_columns <= col < n_columns:
                    raise fail(f"{name} column {col} does not exist ({n_columns} columns)", path, lineno)
        elif len(cols) != n_columns:
            raise fail(f"expected {n_columns} columns, found {len(cols)}", path, lineno)
        token, tag = cols[token_column].strip(), cols[tag_column].strip()
        if not token:
            raise fail("empty token", path, lineno)
        if not tag:
            raise fail("empty tag", path, lineno)
        try:
            prefix, _ = split_tag(tag)
        except ValueError as e:
            raise fail(str(e), path, lineno) from None
        if prefix != "O" and prefix not in allowed:
            raise fail(f"tag {tag!r} is not valid in the {scheme} scheme", path, lineno)
        if not tokens:
            first_line = lineno
        tokens.append(token)
        tags.append(tag)
    flush()
    if not sentences:
        raise fail("no sentences found", path)
    return sentences


def write_conll(
    path: str | os.PathLike,
    tokens: Sequence[Sequence[str]],
    *tag_columns: Sequence[Sequence[str]],
    docstart: bool = False,
) -> Path:
    """Write sentences as ``token tag1 tag2 ...`` lines (e.g. token, gold, predicted for conlleval).

    Blank line between sentences; written atomically. The output reads back with
    :func:`read_conll` (``tag_column`` selects the column).
    """
    from seqkit.io import write_text

    lines: list[str] = ["-DOCSTART- " + " ".join(["O"] * len(tag_columns)), ""] if docstart else []
    for i, sent in enumerate(tokens):
        for j, tok in enumerate(sent):
            if not tok or any(c.isspace() for c in tok):
                raise ValueError(f"sentence {i + 1}, token {j + 1}: token {tok!r} is empty or contains whitespace")
            lines.append(" ".join([tok, *(col[i][j] for col in tag_columns)]))
        lines.append("")
    return write_text(path, "\n".join(lines) + ("\n" if lines else ""))


# --- schemes -----------------------------------------------------------------------------------


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus: ``IOBES`` if ``E-``/``S-`` occur, ``IOB1`` if an entity starts with ``I-``."""
    iob1 = False
    for tags in tag_sequences:
        prev = "O"
        for tag in tags:
            p, t = split_tag(tag)
            if p in "ES":
                return "IOBES"
            if p == "I":
                pp, pt = split_tag(prev)
                if pp == "O" or pt != t:
                    iob1 = True
            prev = tag
    return "IOB1" if iob1 else "IOB2"


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """``I-X`` that starts an entity becomes ``B-X``."""
    out: list[str] = []
    prev_p, prev_t = "O", ""
    for tag in tags:
        p, t = split_tag(tag)
        if p == "I" and (prev_p == "O" or prev_t != t):
            tag = f"B-{t}"
        out.append(tag)
        prev_p, prev_t = p, t
    return out


def iob2_to_iob1(tags: Sequence[str]) -> list[str]:
    """``B-X`` stays only when the previous token is inside an entity of the same type."""
    out: list[str] = []
    prev_p, prev_t = "O", ""
    for tag in tags:
        p, t = split_tag(tag)
        if p == "B" and not (prev_p != "O" and prev_t == t):
            tag = f"I-{t}"
        out.append(tag)
        prev_p, prev_t = p, t
    return out


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    """``B-X`` alone -> ``S-X``; the last ``I-X`` of an entity -> ``E-X``. Input must be valid IOB2."""
    out: list[str] = []
    n = len(tags)
    for i, tag in enumerate(tags):
        p, t = split_tag(tag)
        nxt = split_tag(tags[i + 1]) if i + 1 < n else ("O", "")
        continues = nxt == ("I", t)
        if p == "B":
            out.append(tag if continues else f"S-{t}")
        elif p == "I":
            out.append(tag if continues else f"E-{t}")
        else:
            out.append(tag)
    return out


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    """``S-X`` -> ``B-X``; ``E-X`` -> ``I-X``."""
    out: list[str] = []
    for tag in tags:
        p, t = split_tag(tag)
        out.append({"S": f"B-{t}", "E": f"I-{t}"}.get(p, tag))
    return out


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Convert one tag sequence between ``IOB1``, ``IOB2`` and ``IOBES`` (through IOB2)."""
    source, target = _check_scheme(source), _check_scheme(target)
    iob2 = {"IOB1": iob1_to_iob2, "IOB2": list, "IOBES": iobes_to_iob2}[source](tags)
    return {"IOB1": iob2_to_iob1, "IOB2": lambda x: x, "IOBES": iob2_to_iobes}[target](iob2)


def entity_types(tag_sequences: Iterable[Sequence[str]]) -> list[str]:
    """Sorted entity types that occur in the tags."""
    return sorted({split_tag(t)[1] for tags in tag_sequences for t in tags} - {""})


def tag_set(types: Sequence[str], scheme: str) -> list[str]:
    """All tags of ``scheme`` for ``types``, ``O`` first (e.g. ``O, B-LOC, I-LOC, ...``)."""
    prefixes = "BIES" if _check_scheme(scheme) == "IOBES" else "BI"
    return ["O"] + [f"{p}-{t}" for t in types for p in prefixes]
