"""Named-entity recognition: BiLSTM-CRF with character features on CoNLL-2003.

Tokens -> [word embedding ; character CNN ; casing embedding] -> bidirectional
recurrent stack -> per-token emission scores -> CRF (or softmax). The best
epoch is chosen by validation entity F1 (conlleval semantics), computed by
:class:`EntityF1` and logged as ``val_f1``.

    python -m seqkit train ner                                  # CoNLL-2003 from the registry
    python -m seqkit train ner --train a.txt --valid b.txt --test c.txt
    python -m seqkit predict --model RUN_DIR "Harry Potter visited Paris."
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqkit import io
from seqkit.config import RecurrentConfig
from seqkit.data.conll import (
    Sentence,
    convert_tags,
    detect_scheme,
    entity_types,
    read_conll,
    tag_set,
    write_conll,
)
from seqkit.data.pipeline import EpochRandom, finish_pipeline
from seqkit.errors import SeqkitError, fail
from seqkit.metrics.ner import entity_scores, get_entities, token_type_confusion
from seqkit.task import DataArgs, Prepared, Task

PAD, UNK = 0, 1
CASINGS = ("pad", "lower", "allcaps", "initcap", "numeric", "mainly_numeric", "has_digit", "punct", "other")


@dataclasses.dataclass
class NerConfig(RecurrentConfig):
    """BiLSTM-CRF tagger options (defaults reach the CoNLL-2003 target without pretrained vectors)."""

    bidirectional: bool = True
    units: list[int] = dataclasses.field(default_factory=lambda: [100])
    dropout: float = 0.5
    output_dropout: float = 0.5
    dropout_mask: Literal["step", "sequence"] = "step"
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    # XLA is the big speed lever for the CRF's forward-algorithm loop on CPU.
    jit_compile: bool = True
    # Epoch e trains at learning_rate / (1 + lr_decay * e) (Ma & Hovy 2016): validation F1 stops
    # swinging between epochs once the rate has come down.
    lr_decay: float = 0.3
    clipnorm: float | None = 5.0
    head: Literal["crf", "softmax"] = "crf"
    tag_scheme: Literal["IOB2", "IOBES"] = "IOBES"  # scheme the model is trained in; output is always IOB2
    optimizer: Literal["adam", "nadam"] = "nadam"
    word_dim: int = 100
    lowercase: bool = True  # lower-case and 0-for-digit word vocabulary; characters keep the case
    min_word_count: int = 1
    singleton_unk: float = 0.5  # probability a training singleton is replaced by UNK (Lample et al. 2016)
    # Probability that any training word is replaced by UNK (its characters stay): the tagger then
    # has to recognise names from spelling and context, as it must for names it has never seen.
    word_dropout: float = 0.1
    # Validate, select and keep an exponential moving average of the weights (Polyak averaging)
    # over about this many epochs (the per-step momentum follows from the data's steps per epoch,
    # so the horizon fits a corpus of any size); None keeps the trained weights themselves.
    ema_epochs: float | None = None
    char_encoder: Literal["cnn", "bilstm", "none"] = "cnn"
    char_dim: int = 30
    char_filters: int = 64
    char_kernel: int = 3
    max_word_len: int = 20
    casing_dim: int = 8
    embeddings: str | None = None  # GloVe / word2vec text file
    embeddings_max_words: int = 200_000
    freeze_embeddings: bool = False
    token_column: int = 0
    tag_column: int = -1
    length_multiple: int = 16  # pad batches to a multiple of this many steps (fewer XLA shapes)

    def validate(self, source: str) -> None:
        if self.lr_decay < 0:
            raise SeqkitError(f"{source}: field 'lr_decay': must be >= 0, got {self.lr_decay}")
        if self.ema_epochs is not None and not self.ema_epochs > 0:
            raise SeqkitError(f"{source}: field 'ema_epochs': must be > 0 or null, got {self.ema_epochs}")
        for name in ("singleton_unk", "word_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SeqkitError(f"{source}: field '{name}': must be in [0, 1], got {getattr(self, name)}")
        for name in ("word_dim", "char_dim", "char_filters", "max_word_len", "length_multiple", "batch_size"):
            if getattr(self, name) <= 0:
                raise SeqkitError(f"{source}: field '{name}': must be positive")


# --- features ----------------------------------------------------------------------------------


def normalize_word(token: str, lowercase: bool) -> str:
    return re.sub(r"\d", "0", token.lower()) if lowercase else token


def casing_id(token: str) -> int:
    digits = sum(c.isdigit() for c in token)
    if token.isdigit():
        kind = "numeric"
    elif digits / len(token) > 0.5:
        kind = "mainly_numeric"
    elif token.islower():
        kind = "lower"
    elif token.isupper():
        kind = "allcaps"
    elif token[0].isupper():
        kind = "initcap"
    elif digits:
        kind = "has_digit"
    elif not any(c.isalnum() for c in token):
        kind = "punct"
    else:
        kind = "other"
    return CASINGS.index(kind)


@dataclasses.dataclass
class Vocab:
    """Everything that maps raw tokens to model inputs and model outputs to tags (saved as ``vocab.json``)."""

    words: list[str]  # index = id; 0 pad, 1 unk
    chars: list[str]
    tags: list[str]  # model output tags, in ``scheme``
    scheme: str
    lowercase: bool
    max_word_len: int
    length_multiple: int

    def __post_init__(self):
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.char_index = {c: i for i, c in enumerate(self.chars)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def encode(self, tokens: list[str]) -> dict[str, np.ndarray]:
        """One sentence -> ``words (L,)``, ``chars (L, max_word_len)``, ``casing (L,)``."""
        n = len(tokens)
        words = np.array([self.word_index.get(normalize_word(t, self.lowercase), UNK) for t in tokens], "int32")
        chars = np.zeros((n, self.max_word_len), "int32")
        for i, t in enumerate(tokens):
            ids = [self.char_index.get(c, UNK) for c in t[: self.max_word_len]]
            chars[i, : len(ids)] = ids
        casing = np.array([casing_id(t) for t in tokens], "int32")
        return {"words": words, "chars": chars, "casing": casing}


def build_vocab(train: list[Sentence], cfg: NerConfig, extra_words: list[str] | None = None) -> Vocab:
    counts = Counter(normalize_word(t, cfg.lowercase) for s in train for t in s.tokens)
    words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= cfg.min_word_count]
    seen = set(words)
    for w in extra_words or []:
        if w not in seen:
            seen.add(w)
            words.append(w)
    chars = sorted({c for s in train for t in s.tokens for c in t})
    types = entity_types(s.tags for s in train)
    return Vocab(
        words=["<pad>", "<unk>", *words],
        chars=["<pad>", "<unk>", *chars],
        tags=tag_set(types, cfg.tag_scheme),
        scheme=cfg.tag_scheme,
        lowercase=cfg.lowercase,
        max_word_len=cfg.max_word_len,
        length_multiple=cfg.length_multiple,
    )


def to_iob2(sentences: list[Sentence], path: str | Path) -> list[list[str]]:
    """Tags of a file in IOB2 whatever its scheme (IOB1 files are converted)."""
    scheme = detect_scheme(s.tags for s in sentences)
    if scheme == "IOB2":
        return [list(s.tags) for s in sentences]
    try:
        return [convert_tags(s.tags, scheme, "IOB2") for s in sentences]
    except ValueError as e:  # pragma: no cover - read_conll already validated the format
        raise fail(str(e), path) from None


@dataclasses.dataclass
class Split:
    """An encoded data split: features per sentence plus the gold IOB2 tags."""

    sentences: list[Sentence]
    features: list[dict[str, np.ndarray]]
    gold: list[list[str]]  # IOB2
    labels: list[np.ndarray] | None = None  # ids in the vocab's scheme


def encode_split(sentences: list[Sentence], path, vocab: Vocab, with_labels: bool) -> Split:
    gold = to_iob2(sentences, path)
    feats = [vocab.encode(s.tokens) for s in sentences]
    labels = None
    if with_labels:
        labels = []
        for s, g in zip(sentences, gold):
            tags = convert_tags(g, "IOB2", vocab.scheme)
            ids = [vocab.tag_index.get(t) for t in tags]
            if any(i is None for i in ids):
                bad = next(t for t, i in zip(tags, ids) if i is None)
                raise fail(f"tag {bad!r} does not occur in the training data", path, s.line)
            labels.append(np.array(ids, "int32"))
    return Split(sentences, feats, gold, labels)


def _pad_batch(feats: list[dict[str, np.ndarray]], labels, multiple: int, width: int):
    n = len(feats)
    t = max(len(f["words"]) for f in feats)
    t = int(math.ceil(t / multiple) * multiple)
    words = np.zeros((n, t), "int32")
    chars = np.zeros((n, t, width), "int32")
    casing = np.zeros((n, t), "int32")
    y = np.full((n, t), -1, "int32")
    for i, f in enumerate(feats):
        k = len(f["words"])
        words[i, :k], chars[i, :k], casing[i, :k] = f["words"], f["chars"], f["casing"]
        if labels is not None:
            y[i, :k] = labels[i]
    return {"words": words, "chars": chars, "casing": casing}, y


def length_batches(lengths: list[int], batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (little padding); shuffled when ``rng`` is given."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def iterate_batches(split: Split, vocab: Vocab, batch_size: int, with_labels: bool = False):
    """Deterministic padded batches in length order: yields ``(indices, inputs, labels)``."""
    for idx in length_batches([len(f["words"]) for f in split.features], batch_size, None):
        x, y = _pad_batch(
            [split.features[i] for i in idx],
            [split.labels[i] for i in idx] if with_labels else None,
            vocab.length_multiple,
            vocab.max_word_len,
        )
        yield idx, x, y


def train_dataset(split: Split, vocab: Vocab, cfg: NerConfig, singletons: np.ndarray, order: EpochRandom):
    """A ``tf.data.Dataset`` of length-bucketed batches, reshuffled every epoch, with singleton->UNK noise.

    Each epoch's order and noise come from ``order`` (a function of the seed and the epoch only).
    """
    import tensorflow as tf

    lengths = [len(f["words"]) for f in split.features]

    def gen():
        rng = order.generator()
        for idx in length_batches(lengths, cfg.batch_size, rng):
            feats = []
            for i in idx:
                f = split.features[i]
                drop = np.zeros(len(f["words"]), bool)
                if cfg.singleton_unk > 0:
                    drop |= singletons[f["words"]] & (rng.random(len(f["words"])) < cfg.singleton_unk)
                if cfg.word_dropout > 0:
                    drop |= rng.random(len(f["words"])) < cfg.word_dropout
                if drop.any():
                    f = {**f, "words": np.where(drop, UNK, f["words"]).astype("int32")}
                feats.append(f)
            yield _pad_batch(feats, [split.labels[i] for i in idx], vocab.length_multiple, vocab.max_word_len)

    w = vocab.max_word_len
    sig = (
        {
            "words": tf.TensorSpec((None, None), tf.int32),
            "chars": tf.TensorSpec((None, None, w), tf.int32),
            "casing": tf.TensorSpec((None, None), tf.int32),
        },
        tf.TensorSpec((None, None), tf.int32),
    )
    n_batches = math.ceil(len(lengths) / cfg.batch_size)
    # A known length lets Keras show progress and end epochs without an "input ran out of data" warning.
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    return finish_pipeline(ds.apply(tf.data.experimental.assert_cardinality(n_batches)))


# --- pretrained vectors ------------------------------------------------------------------------


def read_embeddings(path: str | Path, dim: int, lowercase: bool, max_words: int) -> dict[str, np.ndarray]:
    """Read a GloVe / word2vec text file (an optional ``count dim`` header line is skipped)."""
    path = Path(path)
    vectors: dict[str, np.ndarray] = {}
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise fail("embeddings file not found", path) from None
    with f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                continue
            if len(parts) - 1 != dim:
                raise fail(
                    f"vector has {len(parts) - 1} dimensions but word_dim={dim} (use --set word_dim={len(parts) - 1})",
                    path,
                    lineno,
                )
            word = normalize_word(parts[0], lowercase)
            if word in vectors:
                continue  # keep the first (most frequent) form after lower-casing
            try:
                vectors[word] = np.asarray(parts[1:], dtype="float32")
            except ValueError:
                raise fail("non-numeric vector value", path, lineno) from None
            if len(vectors) >= max_words:
                break
    if not vectors:
        raise fail("no vectors found", path)
    return vectors


# --- the model's prediction path ---------------------------------------------------------------


class TagDecoder:
    """Runs a tagger on padded batches and turns its output into IOB2 tag sequences."""

    def __init__(self, model, vocab: Vocab, jit_compile: bool = False):
        import tensorflow as tf

        self.model, self.vocab = model, vocab
        try:
            self.crf = model.get_layer("crf")
        except ValueError:
            self.crf = None

        def run(x):
            out = self.model(x, training=False)
            if self.crf is not None:
                tags, _ = self.crf.decode(out, x["words"] > 0)
                return tags
            return tf.argmax(out, axis=-1, output_type=tf.int32)

        self._run = tf.function(run, jit_compile=jit_compile, reduce_retracing=True)

    def tag_split(self, split: Split, batch_size: int = 128) -> list[list[str]]:
        out: list[list[str] | None] = [None] * len(split.features)
        for idx, x, _ in iterate_batches(split, self.vocab, batch_size):
            ids = np.asarray(self._run(x))
            for row, i in enumerate(idx):
                k = len(split.features[i]["words"])
                tags = [self.vocab.tags[j] for j in ids[row, :k]]
                out[i] = convert_tags(tags, self.vocab.scheme, "IOB2")
        return out  # type: ignore[return-value]

    def tag_tokens(self, sentences: list[list[str]], batch_size: int = 128) -> list[list[str]]:
        keep = [i for i, s in enumerate(sentences) if s]
        split = Split([], [self.vocab.encode(sentences[i]) for i in keep], [])
        tagged = self.tag_split(split, batch_size) if keep else []
        out: list[list[str]] = [[] for _ in sentences]
        for i, tags in zip(keep, tagged):
            out[i] = tags
        return out


class EntityF1(__import__("keras").callbacks.Callback):
    """Validation entity precision/recall/F1 (conlleval) each epoch, into the logs as ``val_f1`` etc."""

    def __init__(self, split: Split, vocab: Vocab, jit_compile: bool = False):
        super().__init__()
        self.split, self.vocab, self.jit_compile = split, vocab, jit_compile
        self._decoder = None

    def on_epoch_end(self, epoch, logs=None):
        if self._decoder is None or self._decoder.model is not self.model:
            self._decoder = TagDecoder(self.model, self.vocab, self.jit_compile)
        from seqkit.training import averaged_weights

        t0 = time.perf_counter()
        with averaged_weights(self.model):
            predicted = self._decoder.tag_split(self.split)
        scores = entity_scores(self.split.gold, predicted)
        if logs is not None:
            logs["val_f1"] = scores["f1"]
            logs["val_precision"] = scores["precision"]
            logs["val_recall"] = scores["recall"]
        print(f"epoch {epoch + 1}: val_f1 {scores['f1']:.4f} ({time.perf_counter() - t0:.1f}s)", flush=True)


# --- raw text -----------------------------------------------------------------------------------

# Words (with inner hyphens/apostrophes/periods as in "U.S." or "O'Neil"), the possessive "'s" split off
# as CoNLL does, and any other non-space character on its own.
_TOKEN_RE = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:[-'’]\w+)*(?=['’]s\b)|['’]s\b|\w+(?:[-'’.]\w+)*|\S")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """``text`` -> ``[(token, start, end)]`` with character offsets (end exclusive)."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


class NerPredictor:
    """A trained tagger: ``predict(["Harry Potter visited Paris."])`` -> entities with character offsets."""

    def __init__(self, run_dir: str | Path):
        import seqkit.layers.char  # noqa: F401 - registers CharWordEncoder for loading
        import seqkit.layers.crf  # noqa: F401 - registers CRF
        from seqkit.training import load_model, load_run

        self.run_dir, _ = load_run(run_dir, "ner")
        self.vocab = Vocab(**io.read_json(self.run_dir / "vocab.json"))
        self.model = load_model(self.run_dir / "model.keras")
        self.decoder = TagDecoder(self.model, self.vocab)

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """Pre-tokenised sentences -> IOB2 tags."""
        return self.decoder.tag_tokens(sentences)

    def predict(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        """Raw texts -> per text, entities ``{"text", "type", "start", "end"}`` (character offsets)."""
        toks = [tokenize(t) for t in texts]
        tags = self.tag([[w for w, _, _ in ts] for ts in toks])
        out = []
        for text, ts, tg in zip(texts, toks, tags):
            ents = []
            for typ, a, b in get_entities(tg):
                start, end = ts[a][1], ts[b][2]
                ents.append({"text": text[start:end], "type": typ, "start": start, "end": end})
            out.append(ents)
        return out


# --- the task -----------------------------------------------------------------------------------


def _split_paths(data: DataArgs, for_tuning: bool) -> dict[str, Path]:
    from seqkit.data.registry import resolve

    explicit = {"train": data.train, "valid": data.valid, "test": data.test}
    if any(explicit.values()):
        need = ("train", "valid") if for_tuning else ("train", "valid", "test")
        missing = [k for k in need if not explicit[k]]
        if missing:
            raise SeqkitError(f"give --train, --valid and --test together (missing --{', --'.join(missing)})")
        return {k: resolve("conll2003", explicit[k]) for k in need}  # tuning never reads --test
    folder = resolve("conll2003", data.data)
    if folder.is_file():
        raise SeqkitError(f"{folder}: --data must be a folder with train.txt, valid.txt and test.txt")
    out = {}
    for k in ("train", "valid") if for_tuning else ("train", "valid", "test"):
        p = folder / f"{k}.txt"
        if not p.exists():
            raise SeqkitError(f"{p}: missing (a CoNLL folder has train.txt, valid.txt and test.txt)")
        out[k] = p
    return out


class NerTask(Task):
    name = "ner"
    config_cls = NerConfig
    objective = "val_f1"
    direction = "max"
    # The training pipeline reads these (the noise is drawn in the batch generator).
    PREPARE_FIELDS = ("batch_size", "singleton_unk", "word_dropout")

    def search_space(self, cfg: NerConfig) -> dict[str, Any]:
        """The tagger's own dimensions, added to the common recurrent ones (docs/tuning.md)."""
        from seqkit.tuning import choice_around, choice_with

        return {
            "char_encoder": choice_with(cfg.char_encoder, ["cnn", "bilstm"]),
            "char_dim": choice_around(cfg.char_dim),
            "char_filters": choice_around(cfg.char_filters),
            "word_dim": choice_around(cfg.word_dim),
            "head": choice_with(cfg.head, ["crf", "softmax"]),
            "singleton_unk": {"type": "float", "min": 0.0, "max": max(0.5, cfg.singleton_unk), "step": 0.1},
            "word_dropout": {"type": "float", "min": 0.0, "max": max(0.2, cfg.word_dropout), "step": 0.05},
            "lr_decay": choice_with(cfg.lr_decay, [0.0, 0.1, 0.3]),
        }

    def prepare(self, cfg: NerConfig, data: DataArgs, for_tuning: bool = False) -> Prepared:
        paths = _split_paths(data, for_tuning)
        read = {k: read_conll(p, cfg.token_column, cfg.tag_column) for k, p in paths.items()}
        vectors = None
        if cfg.embeddings:
            vectors = read_embeddings(cfg.embeddings, cfg.word_dim, cfg.lowercase, cfg.embeddings_max_words)
        vocab = build_vocab(read["train"], cfg, list(vectors) if vectors else None)
        train = encode_split(read["train"], paths["train"], vocab, with_labels=True)
        valid = encode_split(read["valid"], paths["valid"], vocab, with_labels=False)
        test = encode_split(read["test"], paths["test"], vocab, with_labels=False) if "test" in read else None

        counts = Counter(int(w) for f in train.features for w in f["words"])
        singletons = np.zeros(len(vocab.words), bool)
        singletons[[w for w, c in counts.items() if c == 1 and w > UNK]] = True

        info: dict[str, Any] = {
            "n_words": len(vocab.words),
            "n_chars": len(vocab.chars),
            "n_tags": len(vocab.tags),
            "tags": vocab.tags,
            "scheme": vocab.scheme,
            "n_train": len(train.sentences),
            "n_valid": len(valid.sentences),
            "steps_per_epoch": math.ceil(len(train.sentences) / cfg.batch_size),
        }
        extra: dict[str, Any] = {"vocab": vocab, "train_split": train, "valid_split": valid, "test_split": test}
        if vectors is not None:
            matrix = np.random.default_rng(cfg.seed).uniform(-0.1, 0.1, (len(vocab.words), cfg.word_dim))
            matrix = matrix.astype("float32")
            matrix[PAD] = 0.0
            hit = [i for i, w in enumerate(vocab.words) if w in vectors]
            for i in hit:
                matrix[i] = vectors[vocab.words[i]]
            train_types = {normalize_word(t, cfg.lowercase) for s in train.sentences for t in s.tokens}
            train_tokens = [normalize_word(t, cfg.lowercase) for s in train.sentences for t in s.tokens]
            coverage = {
                "file": str(cfg.embeddings),
                "vectors": len(vectors),
                "train_types_covered": round(sum(w in vectors for w in train_types) / len(train_types), 4),
                "train_tokens_covered": round(sum(w in vectors for w in train_tokens) / len(train_tokens), 4),
                "vocab_size": len(vocab.words),
            }
            info["embeddings_coverage"] = coverage
            extra["embedding_matrix"] = matrix
            print(
                f"embeddings {cfg.embeddings}: {len(vectors)} vectors; cover {coverage['train_types_covered']:.1%} "
                f"of training word types, {coverage['train_tokens_covered']:.1%} of training tokens",
                flush=True,
            )
        extra["order"] = EpochRandom(cfg.seed)
        ds = train_dataset(train, vocab, cfg, singletons, extra["order"])
        return Prepared(train=ds, valid=valid, test=test, info=info, extra=extra)

    def build_model(self, cfg: NerConfig, info: dict[str, Any]):
        import keras

        from seqkit.layers import recurrent_stack_from_config
        from seqkit.layers.char import CharWordEncoder
        from seqkit.layers.crf import CRF, CRFLoss, MaskedSparseCrossentropy

        if cfg.jit_compile:
            _allow_xla()
        words = keras.Input((None,), dtype="int32", name="words")
        chars = keras.Input((None, cfg.max_word_len), dtype="int32", name="chars")
        casing = keras.Input((None,), dtype="int32", name="casing")
        scale = math.sqrt(3.0 / cfg.word_dim)
        parts = [
            keras.layers.Embedding(
                info["n_words"],
                cfg.word_dim,
                mask_zero=True,
                embeddings_initializer=keras.initializers.RandomUniform(-scale, scale, seed=cfg.seed),
                trainable=not (cfg.freeze_embeddings and cfg.embeddings),
                name="word_embedding",
            )(words)
        ]
        if cfg.char_encoder != "none":
            parts.append(
                CharWordEncoder(
                    info["n_chars"],
                    cfg.char_dim,
                    kind=cfg.char_encoder,
                    filters=cfg.char_filters,
                    kernel_size=cfg.char_kernel,
                    seed=cfg.seed + 1,
                    name="char_encoder",
                )(chars)
            )
        if cfg.casing_dim:
            parts.append(keras.layers.Embedding(len(CASINGS), cfg.casing_dim, name="casing_embedding")(casing))
        x = keras.layers.Concatenate(name="token_features")(parts) if len(parts) > 1 else parts[0]
        x = recurrent_stack_from_config(cfg, return_sequences=True, name="encoder")(x)
        n_tags = info["n_tags"]
        if cfg.head == "crf":
            emissions = keras.layers.Dense(n_tags, name="emissions")(x)
            crf = CRF(n_tags, tags=info["tags"], scheme=info["scheme"], name="crf")
            outputs = crf(emissions)
            loss = CRFLoss(crf)
        else:
            outputs = keras.layers.Dense(n_tags, activation="softmax", name="tagger")(x)
            loss = MaskedSparseCrossentropy()
        model = keras.Model({"words": words, "chars": chars, "casing": casing}, outputs, name="ner_tagger")
        opt_cls = keras.optimizers.Nadam if cfg.optimizer == "nadam" else keras.optimizers.Adam
        from seqkit.training import ema_optimizer_options

        ema = ema_optimizer_options(cfg.ema_epochs, info.get("steps_per_epoch", 1))
        model.compile(
            optimizer=opt_cls(learning_rate=cfg.learning_rate, clipnorm=cfg.clipnorm, **ema),
            loss=loss,
            jit_compile=cfg.jit_compile,
        )
        return model

    def callbacks(self, cfg: NerConfig, prepared: Prepared) -> list:
        from seqkit.training import inverse_time_decay

        cbs: list = [
            prepared.extra["order"].callback(),  # epoch e's batches and word noise depend on (seed, e) only
            EntityF1(prepared.valid, prepared.extra["vocab"], cfg.jit_compile),
        ]
        if cfg.lr_decay > 0:
            cbs.append(inverse_time_decay(cfg.learning_rate, cfg.lr_decay))
        return cbs

    def fit(self, model, cfg, prepared: Prepared, callbacks: list, epochs: int, initial_epoch: int = 0):
        matrix = prepared.extra.get("embedding_matrix")
        if matrix is not None and initial_epoch == 0:
            model.get_layer("word_embedding").set_weights([matrix])
        # Validation is the entity-F1 callback (one decoding pass), not a second Keras loss pass.
        return model.fit(prepared.train, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)

    def save_assets(self, run_dir: Path, cfg, prepared: Prepared) -> None:
        io.write_json(run_dir / "vocab.json", prepared.extra["vocab"].to_json())

    def evaluate(self, model, cfg, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        vocab: Vocab = prepared.extra["vocab"]
        decoder = TagDecoder(model, vocab, cfg.jit_compile)
        metrics: dict[str, Any] = {}
        valid = entity_scores(prepared.valid.gold, decoder.tag_split(prepared.valid))
        metrics["valid_f1"], metrics["valid_precision"] = valid["f1"], valid["precision"]
        metrics["valid_recall"] = valid["recall"]
        if prepared.test is not None:
            metrics.update(_test_metrics(decoder, prepared.test, run_dir))
        if "embeddings_coverage" in prepared.info:
            metrics["embeddings_coverage"] = prepared.info["embeddings_coverage"]
        return metrics

    # --- prediction ---------------------------------------------------------------------------
    def load(self, run_dir: Path) -> NerPredictor:
        return NerPredictor(run_dir)

    def evaluate_run(self, run_dir: Path, data: DataArgs) -> dict[str, Any]:
        from seqkit.data.registry import resolve
        from seqkit.training import config_from_run, load_run

        run_dir, config = load_run(run_dir, "ner")
        cfg = config_from_run(self, config)
        if data.test:
            path = resolve("conll2003", data.test)
        elif data.data:
            p = resolve("conll2003", data.data)
            path = p / "test.txt" if p.is_dir() else p
        else:
            path = resolve("conll2003") / "test.txt"
        predictor = NerPredictor(run_dir)
        split = encode_split(read_conll(path, cfg.token_column, cfg.tag_column), path, predictor.vocab, False)
        return {"test_file": str(path), **_test_metrics(predictor.decoder, split, None)}

    def predict_cli(
        self, run_dir: Path, texts: list[str], input_path: str | None, output_path: str | None, as_json: bool
    ) -> None:
        texts = list(texts)
        if input_path:
            try:
                texts += Path(input_path).read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                raise SeqkitError(f"{input_path}: file not found") from None
            except UnicodeDecodeError as e:
                raise SeqkitError(f"{input_path}: not valid UTF-8 (byte {e.start})") from None
        results = NerPredictor(run_dir).predict(texts)
        if as_json:
            out = "\n".join(json.dumps({"text": t, "entities": e}, ensure_ascii=False) for t, e in zip(texts, results))
        else:
            lines = []
            for t, ents in zip(texts, results):
                lines.append(t)
                lines += [f"  {e['type']:<5} {e['start']:>4}-{e['end']:<4} {e['text']}" for e in ents] or ["  (none)"]
            out = "\n".join(lines)
        if output_path:
            io.write_text(output_path, out + "\n")
        else:
            sys.stdout.write(out + "\n")

    # --- tests --------------------------------------------------------------------------------
    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        directory = Path(directory)
        rng = np.random.default_rng(0)
        people = [["Harry", "Potter"], ["Anna", "Schmidt"], ["John"], ["Maria", "Lopez"]]
        places = [["Paris"], ["New", "York"], ["Berlin"], ["Madrid"]]
        orgs = [["Reuters"], ["United", "Nations"], ["EU"]]
        paths = {}
        for split, n in (("train", 40), ("valid", 12), ("test", 12)):
            toks, tags = [], []
            for _ in range(n):
                p, loc, org = (x[rng.integers(len(x))] for x in (people, places, orgs))
                t = [*p, "visited", *loc, "for", *org, "."]
                g = ["B-PER"] + ["I-PER"] * (len(p) - 1) + ["O"] + ["B-LOC"] + ["I-LOC"] * (len(loc) - 1)
                g += ["O", "B-ORG"] + ["I-ORG"] * (len(org) - 1) + ["O"]
                toks.append(t)
                tags.append(g)
            paths[split] = directory / f"{split}.txt"
            pos = [["X"] * len(t) for t in toks]
            write_conll(paths[split], toks, pos, pos, tags, docstart=True)
        overrides = {
            "units": [8],
            "word_dim": 8,
            "char_dim": 4,
            "char_filters": 4,
            "casing_dim": 2,
            "epochs": 2,
            "batch_size": 16,
            "jit_compile": False,  # XLA compile time would dominate a data set this small
            "ema_epochs": 1.0,  # exercise the averaged-weights path on the fixture's few steps
        }
        return DataArgs(train=str(paths["train"]), valid=str(paths["valid"]), test=str(paths["test"])), overrides

    def predict_inputs(self, directory: Path) -> list[str]:
        return ["Harry Potter visited Paris.", "Maria Lopez visited New York for Reuters."]


def _test_metrics(decoder: TagDecoder, split: Split, run_dir: Path | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    pred = decoder.tag_split(split)
    seconds = time.perf_counter() - t0
    scores = entity_scores(split.gold, pred)
    n_tokens = sum(len(g) for g in split.gold)
    metrics = {
        "test_f1": scores["f1"],
        "test_precision": scores["precision"],
        "test_recall": scores["recall"],
        "test_f1_per_type": {k: v["f1"] for k, v in scores["per_type"].items()},
        "test_per_type": scores["per_type"],
        "test_entities": scores["n_true"],
        "test_tokens_per_second": round(n_tokens / seconds, 1) if seconds > 0 else None,
    }
    if run_dir is not None:
        from seqkit.plots import plot_bars, plot_confusion

        run_dir = Path(run_dir)
        write_conll(run_dir / "test_predictions.txt", [s.tokens for s in split.sentences], split.gold, pred)
        plot_bars(metrics["test_f1_per_type"], run_dir / "f1_per_type.png", "test entity F1 per type", "F1")
        matrix, labels = token_type_confusion(split.gold, pred, sorted(scores["per_type"]))
        plot_confusion(matrix, labels, run_dir / "confusion_types.png", "token-level entity type confusion (test)")
    return metrics


def _allow_xla() -> None:
    # Keras silently drops jit_compile while TensorFlow op determinism is on (set_seed enables it), and
    # XLA is the big speed lever for the CRF loop and the recurrent stack on CPU. jit_compile=false keeps
    # determinism on.
    try:
        from tensorflow.python.framework import config as tf_config  # not exported under tf.config

        tf_config.disable_op_determinism()
    except (ImportError, AttributeError):  # pragma: no cover - other TF builds: XLA stays off
        pass


TASK = NerTask()
