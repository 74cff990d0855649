"""Labelled text: loaders (IMDB tarball / folder, CSV/TSV, class folders) and the text vectoriser.

Loaders return a :class:`TextData` (parallel lists of texts, labels and where
each came from, so errors can name the file and row). They validate as they
read: empty texts, missing columns and bytes that are not UTF-8 are
:class:`~seqkit.errors.SeqkitError` with the file and row.

:class:`Vectorizer` turns raw text into padded id matrices: lower-cased word
tokens (``!`` and ``?`` kept as tokens), a unigram vocabulary and an optional
bigram vocabulary (the bigram ending at each position, so both id sequences are
aligned). It serialises to JSON so it travels with the model.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from seqkit.data.lines import blank_invisible_lines, is_blank
from seqkit.errors import SeqkitError, fail

PAD, OOV = 0, 1
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")


@dataclasses.dataclass
class TextData:
    """Parallel lists: ``texts[i]`` has label ``labels[i]`` and came from ``origins[i]`` (``file:row``)."""

    texts: list[str]
    labels: list[str]
    origins: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int]) -> TextData:
        return TextData(
            [self.texts[i] for i in index], [self.labels[i] for i in index], [self.origins[i] for i in index]
        )


# --- loaders ---------------------------------------------------------------------------------


def _decode(raw: bytes, path: str | os.PathLike, what: str = "line") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        if what == "line":
            raise fail(f"not valid UTF-8 (byte 0x{raw[e.start]:02x}); re-save the file as UTF-8", path, line) from None
        raise fail(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})", path) from None


def _check_text(text: Any, path: str | os.PathLike, row: int | None) -> str:
    if not isinstance(text, str) or is_blank(text):
        raise fail("empty text", path, row)
    return text


def _check_field_counts(text: str, sep: str, path: Path) -> None:
    """Every row must have as many fields as the header; name the first line that does not."""
    import csv

    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header = next((row for row in reader if row), None)  # pandas skips blank lines before the header too
    if header is None:
        return
    for row in reader:
        if row and len(row) != len(header):
            raise fail(f"expected {len(header)} fields (as in the header), found {len(row)}", path, reader.line_num)


def load_table(path: str | os.PathLike, text_column: str = "text", label_column: str | None = "label") -> TextData:
    """Read a CSV (``,``) or TSV (``.tsv``/``.tab``: tab) file with a header row.

    ``label_column=None`` reads texts only (labels are ``""``). Rows are
    reported by their line in the file (the header is line 1).
    """
    import pandas as pd

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail("file not found", path) from None
    # A row of only zero-width characters (a stray byte-order mark) is a blank line, which pandas skips.
    text = blank_invisible_lines(_decode(raw, path))
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    _check_field_counts(text, sep, path)
    try:
        # index_col=False: never take a column as the index (a row with an extra field is caught above).
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise fail("empty file (expected a header row and data rows)", path) from None
    except pd.errors.ParserError as e:
        detail = " ".join(str(e).split())
        raise fail(f"cannot parse as {'TSV' if sep == chr(9) else 'CSV'}: {detail}", path) from None
    for col in [text_column] + ([label_column] if label_column else []):
        if col not in df.columns:
            key = "text_column" if col == text_column else "label_column"
            raise fail(
                f"no column '{col}' (columns: {', '.join(map(str, df.columns))}); choose it with --set {key}=NAME",
                path,
            )
    if df.empty:
        raise fail("no data rows", path)
    texts, labels, origins = [], [], []
    for i, t in enumerate(df[text_column].tolist()):
        row = i + 2  # header is line 1 (quoted multi-line texts shift this; the row number stays exact)
        texts.append(_check_text(t, path, row))
        if label_column:
            lab = str(df[label_column].iloc[i]).strip()
            if not lab:
                raise fail("empty label", path, row, label_column)
            labels.append(lab)
        else:
            labels.append("")
        origins.append(f"{path}:{row}")
    return TextData(texts, labels, origins)


def load_class_folders(path: str | os.PathLike, skip: Iterable[str] = ()) -> TextData:
    """One subfolder per class, one UTF-8 text file per example (``pos/1.txt``, ``neg/7.txt``)."""
    path = Path(path)
    skip = set(skip)
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name not in skip and not p.name.startswith("."))
    if not classes:
        raise fail("no class subfolders (expected one subfolder per class, each with .txt files)", path)
    texts, labels, origins = [], [], []
    for c in classes:
        files = sorted(f for f in (path / c).iterdir() if f.is_file() and not f.name.startswith("."))
        for f in files:
            texts.append(_check_text(_decode(f.read_bytes(), f), f, None))
            labels.append(c)
            origins.append(str(f))
    if not texts:
        raise fail("no text files in the class subfolders", path)
    return TextData(texts, labels, origins)


def _is_tar(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_TAR_SUFFIXES)


def read_imdb_tar(path: str | os.PathLike, splits: Sequence[str] = ("train", "test")) -> dict[str, TextData]:
    """Stream ``*/{train,test}/<class>/*.txt`` out of an IMDB-layout tarball without extracting it.

    ``unsup`` (unlabelled reviews) is skipped. Members are sorted by path, so
    the order never depends on how the archive was packed.
    """
    path = Path(path)
    found: dict[str, list[tuple[str, str, str]]] = {s: [] for s in splits}
    try:
        tf = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise fail(f"not a readable tar archive ({e})", path) from None
    with tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".txt"):
                continue
            parts = PurePosixPath(m.name).parts
            if len(parts) < 3 or parts[-3] not in found or parts[-2] == "unsup":
                continue
            src = tf.extractfile(m)
            assert src is not None
            where = f"{path}:{m.name}"
            text = _check_text(_decode(src.read(), where, what="member"), where, None)
            found[parts[-3]].append((m.name, text, parts[-2]))
    out = {}
    for s, rows in found.items():
        if not rows:
            raise fail(f"no '{s}/<class>/*.txt' members (expected the aclImdb layout)", path)
        rows.sort()
        out[s] = TextData([r[1] for r in rows], [r[2] for r in rows], [f"{path}:{r[0]}" for r in rows])
    return out


def _imdb_root(path: Path) -> Path | None:
    """The folder holding ``train/`` and ``test/`` class folders (``aclImdb/`` or its parent), if any."""
    for root in (path, path / "aclImdb"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    return None


def load_split_source(path: str | os.PathLike, splits: Sequence[str] = ("train", "test")) -> dict[str, TextData] | None:
    """For ``--data``: an IMDB-layout tarball or folder gives ``{split: TextData}``; anything else ``None``.

    Only the ``splits`` asked for are read (tuning never touches ``test``).
    """
    path = Path(path)
    if _is_tar(path):
        return read_imdb_tar(path, splits)
    if path.is_dir():
        root = _imdb_root(path)
        if root is not None:
            return {s: load_class_folders(root / s, skip=("unsup",)) for s in splits}
    return None


def load_texts(path: str | os.PathLike, text_column: str = "text", label_column: str | None = "label") -> TextData:
    """Load one labelled set: a CSV/TSV file or a folder of class subfolders."""
    path = Path(path)
    if not path.exists():
        raise fail("no such file or directory", path)
    if path.is_dir():
        return load_class_folders(path, skip=("unsup",))
    if _is_tar(path):
        raise fail("an archive is only accepted as --data (IMDB layout with train/ and test/)", path)
    return load_table(path, text_column, label_column)


def read_inputs(path: str | os.PathLike, text_column: str = "text") -> TextData:
    """Texts to predict: a CSV/TSV with ``text_column`` (or a single column), or a plain file, one text per line."""
    path = Path(path)
    if not path.is_file():
        raise fail("file not found", path)
    if path.suffix.lower() in (".csv", ".tsv", ".tab"):
        import pandas as pd

        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
        raw = blank_invisible_lines(_decode(path.read_bytes(), path))
        try:
            cols = pd.read_csv(io.StringIO(raw), sep=sep, nrows=0).columns
        except pd.errors.EmptyDataError:
            raise fail("empty file (expected a header row and data rows)", path) from None
        if text_column not in cols and len(cols) == 1:
            text_column = str(cols[0])
        return load_table(path, text_column, label_column=None)
    text = _decode(path.read_bytes(), path)
    texts, origins = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        texts.append(_check_text(line, path, i))
        origins.append(f"{path}:{i}")
    if not texts:
        raise fail("no texts (one text per line expected)", path)
    return TextData(texts, [""] * len(texts), origins)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into ``(rest, held_out)`` with ``round(n * fraction)`` held out (at least 1)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    k = max(1, int(round(n * fraction))) if fraction > 0 else 0
    if k >= n:
        raise SeqkitError(f"cannot hold out {fraction:.0%} of {n} examples and keep any for training")
    return np.sort(perm[k:]), np.sort(perm[:k])


# --- vectoriser ------------------------------------------------------------------------------


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Word tokens: HTML line breaks removed, optional lower-casing, ``!``/``?`` kept as tokens."""
    text = _BREAK.sub(" ", text)
    if lowercase:
        text = text.lower()
    return _TOKEN.findall(text)


def truncate(tokens: list[str], max_length: int, mode: str = "head_tail") -> list[str]:
    """Keep at most ``max_length`` tokens: the ``head``, the ``tail``, or both (``head_tail``).

    ``head_tail`` keeps the first quarter and the last three quarters of the
    budget: the verdict of a review is usually at its end (cf. Sun et al. 2019,
    who keep 128 head + 382 tail tokens).
    """
    if len(tokens) <= max_length:
        return tokens
    if mode == "head":
        return tokens[:max_length]
    if mode == "tail":
        return tokens[-max_length:]
    head = max_length // 4
    return tokens[:head] + tokens[len(tokens) - (max_length - head) :]


@dataclasses.dataclass
class Vectorizer:
    """Raw text -> ``(tokens, bigrams)`` id matrices ``(batch, time)``; id 0 pads, id 1 is out-of-vocabulary.

    ``bigrams[b, t]`` is the id of the pair ending at token ``t`` (the first
    token pairs with a start marker), so both matrices are aligned and share
    one mask. ``bigram_vocab`` may be empty (no bigram input).
    """

    vocab: list[str]
    bigram_vocab: list[str]
    max_length: int = 400
    truncation: str = "head_tail"
    lowercase: bool = True

    def __post_init__(self):
        self._index = {w: i + 2 for i, w in enumerate(self.vocab)}
        self._bindex = {w: i + 2 for i, w in enumerate(self.bigram_vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 2

    @property
    def bigram_size(self) -> int:
        return len(self.bigram_vocab) + 2 if self.bigram_vocab else 0

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        vocab_size: int = 30000,
        bigram_vocab_size: int = 0,
        min_count: int = 2,
        bigram_min_count: int = 3,
        max_length: int = 400,
        truncation: str = "head_tail",
        lowercase: bool = True,
    ) -> Vectorizer:
        """Count tokens (and bigrams) in ``texts``; keep the most frequent (ties broken alphabetically)."""
        return cls.fit_tokens(
            (tokenize(t, lowercase) for t in texts),
            vocab_size=vocab_size,
            bigram_vocab_size=bigram_vocab_size,
            min_count=min_count,
            bigram_min_count=bigram_min_count,
            max_length=max_length,
            truncation=truncation,
            lowercase=lowercase,
        )

    @classmethod
    def fit_tokens(
        cls,
        token_lists: Iterable[list[str]],
        vocab_size: int = 30000,
        bigram_vocab_size: int = 0,
        min_count: int = 2,
        bigram_min_count: int = 3,
        max_length: int = 400,
        truncation: str = "head_tail",
        lowercase: bool = True,
    ) -> Vectorizer:
        """:meth:`fit` on texts already passed through :func:`tokenize` (counts whole texts, before truncation)."""
        uni: collections.Counter[str] = collections.Counter()
        bi: collections.Counter[str] = collections.Counter()
        for toks in token_lists:
            uni.update(toks)
            if bigram_vocab_size:
                bi.update(_bigrams(toks))

        def top(counter, k, floor):
            items = sorted((kv for kv in counter.items() if kv[1] >= floor), key=lambda kv: (-kv[1], kv[0]))
            return [w for w, _ in items[:k]]

        return cls(
            vocab=top(uni, max(vocab_size - 2, 1), min_count),
            bigram_vocab=top(bi, max(bigram_vocab_size - 2, 0), bigram_min_count) if bigram_vocab_size else [],
            max_length=max_length,
            truncation=truncation,
            lowercase=lowercase,
        )

    def encode_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text -> ``(token ids (time,), bigram ids (time,))``; at least one step (an all-OOV text is ``[1]``)."""
        return self.encode_tokens(tokenize(text, self.lowercase))

    def encode_tokens(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode_one` for the output of :func:`tokenize`."""
        toks = truncate(tokens, self.max_length, self.truncation) or ["<unk>"]
        ids = np.fromiter((self._index.get(t, OOV) for t in toks), dtype=np.int32, count=len(toks))
        if self.bigram_vocab:
            bids = np.fromiter((self._bindex.get(b, OOV) for b in _bigrams(toks)), dtype=np.int32, count=len(toks))
        else:
            bids = np.zeros(0, dtype=np.int32)
        return ids, bids

    def encode(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.encode_one(t) for t in texts]

    def __call__(self, texts: Sequence[str], pad_to: int = 1) -> dict[str, np.ndarray]:
        """Padded model inputs ``{"tokens": (batch, time), "bigrams": (batch, time)}``; time rounded up to ``pad_to``."""
        return pad_batch(self.encode(texts), pad_to, with_bigrams=bool(self.bigram_vocab))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "vectorizer.json") -> Vectorizer:
        try:
            return cls(**data)
        except TypeError as e:
            raise SeqkitError(f"{source}: not a seqkit text vectoriser ({e})") from None


def _bigrams(toks: list[str]) -> Iterator[str]:
    prev = "<s>"
    for t in toks:
        yield f"{prev} {t}"
        prev = t


def pad_batch(encoded: Sequence[tuple[np.ndarray, np.ndarray]], pad_to: int = 1, with_bigrams: bool = True):
    """Right-pad encoded texts with 0 to the longest (rounded up to a multiple of ``pad_to``)."""
    longest = max(len(ids) for ids, _ in encoded)
    width = -(-longest // pad_to) * pad_to
    tokens = np.zeros((len(encoded), width), dtype=np.int32)
    bigrams = np.zeros((len(encoded), width), dtype=np.int32) if with_bigrams else None
    for i, (ids, bids) in enumerate(encoded):
        tokens[i, : len(ids)] = ids
        if bigrams is not None:
            bigrams[i, : len(bids)] = bids
    out = {"tokens": tokens}
    if bigrams is not None:
        out["bigrams"] = bigrams
    return out


def length_batches(
    lengths: Sequence[int], batch_size: int, shuffle: bool, rng: np.random.Generator | None = None, pool: int = 50
) -> list[np.ndarray]:
    """Index batches of similar length, so little time is spent on padding.

    With ``shuffle``: shuffle, sort within pools of ``pool`` batches by length,
    cut into batches, shuffle the batches (the usual bucketing recipe).
    Without: sort everything by length (evaluation order; callers restore it).
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = rng or np.random.default_rng()
    perm = rng.permutation(n)
    chunk = batch_size * pool
    batches = []
    for s in range(0, n, chunk):
        part = perm[s : s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches
