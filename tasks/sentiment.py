"""Sentiment / text classification: word + bigram embeddings -> region pooling -> BiGRU -> max+mean pooling -> classes.

Default data: IMDB movie reviews (Maas et al. 2011), read straight from the
``aclImdb_v1.tar.gz`` tarball. Any CSV/TSV (``--set text_column=... --set
label_column=...``) or folder of class subfolders works too, with any number
of classes. The vectoriser (vocabularies, lower-casing, tokenisation, maximum
length) is saved as ``vectorizer.json`` beside ``model.keras``, so prediction
takes raw text. See docs/sentiment.md.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _io
import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqkit import io
from seqkit.config import RecurrentConfig
from seqkit.data.pipeline import EpochRandom, finish_pipeline
from seqkit.data.text import (
    TextData,
    Vectorizer,
    length_batches,
    load_split_source,
    load_texts,
    pad_batch,
    read_inputs,
    split_indices,
    tokenize,
)
from seqkit.errors import SeqkitError
from seqkit.task import DataArgs, Prepared, Task


@dataclasses.dataclass
class SentimentConfig(RecurrentConfig):
    """Text classification options; the defaults are the IMDB benchmark configuration (docs/sentiment.md)."""

    cell: Literal["simple", "gru", "lstm"] = "gru"
    units: list[int] = dataclasses.field(default_factory=lambda: [64])
    bidirectional: bool = True
    dropout: float = 0.2  # on the region vectors, one mask per review and feature
    output_dropout: float = 0.0
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 3e-3
    # Measured on the 2-core CPU: XLA makes the masked recurrent loop ~3x slower than graph mode.
    jit_compile: bool = False

    text_column: str = "text"
    label_column: str = "label"
    vocab_size: int = 30000  # unigram ids incl. padding and out-of-vocabulary
    min_count: int = 2
    # Adam updates embeddings densely, so their size is paid on every step: kept small on purpose.
    bigram_vocab_size: int = 60000  # 0: no bigram input
    bigram_min_count: int = 3
    # Tokens kept per text (see truncation); 0: derived from the training texts (text_lengths below).
    max_length: int = 0
    truncation: Literal["head_tail", "head", "tail"] = "head_tail"
    lowercase: bool = True
    embedding_dim: int = 48
    embedding_dropout: float = 0.2  # spatial dropout on the token embeddings
    # Tokens per region vector fed to the recurrent stack (1: every token); 0: derived (text_lengths below).
    region_size: int = 0
    region_mode: Literal["mean", "max"] = "mean"
    pooling: Literal["max_mean", "max", "mean", "last"] = "max_mean"
    head_hidden: int = 0
    head_dropout: float = 0.3
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    valid_fraction: float = 0.1  # carved from the training texts (seeded)
    test_fraction: float = 0.2  # carved from the data when no test set is given (seeded)

    def validate(self, source: str) -> None:
        for name in ("valid_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise SeqkitError(f"{source}: field '{name}': must be between 0 and 1, got {v}")
        for name in ("vocab_size", "embedding_dim", "batch_size"):
            if getattr(self, name) < 1:
                raise SeqkitError(f"{source}: field '{name}': must be positive, got {getattr(self, name)}")
        for name in ("max_length", "region_size"):
            if getattr(self, name) < 0:
                raise SeqkitError(f"{source}: field '{name}': must be positive (or 0: derived from the data)")
        if self.bigram_vocab_size < 0:
            raise SeqkitError(f"{source}: field 'bigram_vocab_size': must be >= 0")


# --- data -----------------------------------------------------------------------------------------

# The length rules, measured on validation accuracy (docs/sentiment.md): long reviews (IMDB, median
# 176 tokens) do best with 4-token regions and the first 400 tokens' head + tail; one-sentence reviews
# (median 17) with every token fed to the recurrent layer.
MAX_LENGTH_CAP = 400
LONG_TEXT_MEDIAN = 64


def text_lengths(lengths: list[int], max_length: int, region_size: int) -> dict[str, Any]:
    """Resolve ``max_length`` / ``region_size`` (0 = derive) from the training texts' token counts.

    ``max_length``: keep 90 % of the training texts whole, rounded up to a multiple of 16, at most
    400 tokens (beyond that, training time grows with the length while head + tail truncation keeps
    both ends of a longer text). ``region_size``: 4 when the median text has at least 64 tokens, else 1.
    """
    lengths = np.asarray(lengths if len(lengths) else [1])
    derived_max = int(min(MAX_LENGTH_CAP, max(16, -(-int(np.percentile(lengths, 90)) // 16) * 16)))
    median = float(np.median(lengths))
    return {
        "max_length": max_length or derived_max,
        "max_length_source": "config" if max_length else "derived (90th percentile of training lengths, cap 400)",
        "region_size": region_size or (4 if median >= LONG_TEXT_MEDIAN else 1),
        "region_size_source": "config" if region_size else f"derived (median training length {median:g} tokens)",
        "median_length": median,
    }


def _label_ids(data: TextData, labels: list[str], what: str) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    out = np.empty(len(data), dtype=np.int32)
    for i, (lab, origin) in enumerate(zip(data.labels, data.origins)):
        if lab not in index:
            raise SeqkitError(
                f"{origin}: label {lab!r} in the {what} data was never seen in training (known: {', '.join(labels)})"
            )
        out[i] = index[lab]
    return out


def _load_splits(
    cfg: SentimentConfig, data: DataArgs, for_tuning: bool
) -> tuple[TextData, TextData, TextData | None, str]:
    """``(train, valid, test, how the test set was chosen)``; ``test`` is None when tuning."""
    from seqkit.data.registry import resolve

    test: TextData | None = None
    note = "given test set"
    has_test = bool(data.test)
    if data.train is not None:
        full = load_texts(data.train, cfg.text_column, cfg.label_column)
    else:
        path = resolve("imdb", data.data)
        splits = load_split_source(path, ("train",) if (for_tuning or data.test) else ("train", "test"))
        if splits is None:
            full = load_texts(path, cfg.text_column, cfg.label_column)
        else:
            full, test, has_test = splits["train"], splits.get("test"), True
    if data.test and not for_tuning:
        test = load_texts(data.test, cfg.text_column, cfg.label_column)
    if not has_test:
        # No separate test set: hold one out of the data, the same one for every run with this seed.
        rest, held = split_indices(len(full), cfg.test_fraction, cfg.seed)
        note = f"carved: {cfg.test_fraction:.0%} of the data held out (seed {cfg.seed})"
        test = None if for_tuning else full.subset(held)
        full = full.subset(rest)
    if data.valid:
        train, valid = full, load_texts(data.valid, cfg.text_column, cfg.label_column)
    else:
        rest, held = split_indices(len(full), cfg.valid_fraction, cfg.seed + 1)
        train, valid = full.subset(rest), full.subset(held)
    return train, valid, test, note


def _batches_dataset(encoded, y, batch_size: int, order: EpochRandom | None, pad_to: int, with_bigrams: bool):
    """A ``tf.data.Dataset`` of length-bucketed padded batches; with ``order``, reshuffled every epoch."""
    import tensorflow as tf

    lengths = [len(ids) for ids, _ in encoded]
    shuffle = order is not None

    def gen():
        rng = order.generator() if order is not None else None
        for idx in length_batches(lengths, batch_size, shuffle, rng):
            x = pad_batch([encoded[i] for i in idx], pad_to, with_bigrams)
            yield x, y[idx]

    spec = {"tokens": tf.TensorSpec((None, None), tf.int32)}
    if with_bigrams:
        spec["bigrams"] = tf.TensorSpec((None, None), tf.int32)
    y_spec = tf.TensorSpec((None,) + y.shape[1:], y.dtype)
    ds = tf.data.Dataset.from_generator(gen, output_signature=(spec, y_spec))
    # The batch count is the same every epoch; telling tf.data lets Keras show progress from the first epoch.
    n_batches = len(length_batches(lengths, batch_size, shuffle, np.random.default_rng(0)))
    return finish_pipeline(ds.apply(tf.data.experimental.assert_cardinality(n_batches)))


def _targets(ids: np.ndarray, n_classes: int) -> np.ndarray:
    return ids.astype(np.float32)[:, None] if n_classes == 2 else ids.astype(np.int32)


class TextClassifier:
    """Raw text in, label out: the vectoriser and the model of a finished run.

    ``predict(texts)`` -> ``[{"label": str, "probability": float}, ...]``;
    ``predict_proba(texts)`` -> ``(n, n_classes)`` class probabilities. The
    ids -> probabilities step is one compiled ``tf.function`` call.
    """

    def __init__(
        self,
        model,
        vectorizer: Vectorizer,
        labels: list[str],
        batch_size: int = 256,
        jit: bool = True,
        pad_to: int = 64,
    ):
        import math

        import tensorflow as tf

        self.model = model
        self.vectorizer = vectorizer
        self.labels = list(labels)
        self.batch_size = batch_size
        # XLA-compiled per padded shape: one review is ~3x faster than the graph-mode loop (bench/sentiment.py).
        # Lengths are rounded up to ``pad_to`` so only a handful of shapes are ever compiled; padding is masked.
        region = getattr(model.get_layer("regions"), "size", 1) if _has_layer(model, "regions") else 1
        self.pad_to = math.lcm(pad_to, region)
        self._call = tf.function(lambda x: model(x, training=False), jit_compile=jit)

    def proba_encoded(self, encoded: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)
        lengths = [len(ids) for ids, _ in encoded]
        for idx in length_batches(lengths, self.batch_size, shuffle=False):
            x = pad_batch([encoded[i] for i in idx], self.pad_to, bool(self.vectorizer.bigram_vocab))
            p = np.asarray(self._call(x))
            out[idx] = np.concatenate([1.0 - p, p], axis=1) if p.shape[1] == 1 else p
        return out

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise SeqkitError(f"input {i + 1}: empty text")
        return self.proba_encoded(self.vectorizer.encode(texts))

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        p = self.predict_proba(texts)
        k = p.argmax(axis=1)
        return [{"label": self.labels[j], "probability": float(p[i, j])} for i, j in enumerate(k)]


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


# --- the task -------------------------------------------------------------------------------------


class SentimentTask(Task):
    name = "sentiment"
    config_cls = SentimentConfig
    objective = "val_accuracy"
    direction = "max"
    # prepare() truncates to max_length and pads to whole regions.
    PREPARE_FIELDS = ("batch_size", "max_length", "truncation", "region_size")

    def search_space(self, cfg: SentimentConfig) -> dict[str, Any]:
        """Input length and truncation, the embedding and region pooling, the head (docs/tuning.md)."""
        from seqkit.tuning import choice_around, choice_with

        return {
            "max_length": choice_around(cfg.max_length) if cfg.max_length else choice_with(0, [128, 256, 512]),
            "truncation": choice_with(cfg.truncation, ["head_tail", "head", "tail"]),
            "embedding_dim": choice_around(cfg.embedding_dim),
            "embedding_dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
            "region_size": choice_with(cfg.region_size, [1, 2, 4, 8]),  # 0 (derived) is one of the choices
            "pooling": choice_with(cfg.pooling, ["max_mean", "max", "mean", "last"]),
            "head_dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        }

    def prepare(self, cfg: SentimentConfig, data: DataArgs, for_tuning: bool = False) -> Prepared:
        train, valid, test, note = _load_splits(cfg, data, for_tuning)
        tokens = [tokenize(t, cfg.lowercase) for t in train.texts]
        shape = text_lengths([len(t) for t in tokens], cfg.max_length, cfg.region_size)
        print(
            f"sentiment: max_length {shape['max_length']} ({shape['max_length_source']}), "
            f"region_size {shape['region_size']} ({shape['region_size_source']})",
            flush=True,
        )
        vec = Vectorizer.fit_tokens(
            tokens,
            vocab_size=cfg.vocab_size,
            bigram_vocab_size=cfg.bigram_vocab_size,
            min_count=cfg.min_count,
            bigram_min_count=cfg.bigram_min_count,
            max_length=shape["max_length"],
            truncation=cfg.truncation,
            lowercase=cfg.lowercase,
        )
        labels = sorted(set(train.labels))
        if len(labels) < 2:
            raise SeqkitError(f"{train.origins[0].rsplit(':', 1)[0]}: need at least 2 classes, found {labels}")
        n_classes = len(labels)
        enc_train = [vec.encode_tokens(t) for t in tokens]
        del tokens
        enc_valid = vec.encode(valid.texts)
        y_train = _label_ids(train, labels, "training")
        y_valid = _label_ids(valid, labels, "validation")
        pad_to = shape["region_size"]
        with_bi = bool(vec.bigram_vocab)
        order = EpochRandom(cfg.seed)
        ds_train = _batches_dataset(enc_train, _targets(y_train, n_classes), cfg.batch_size, order, pad_to, with_bi)
        ds_valid = _batches_dataset(
            enc_valid, _targets(y_valid, n_classes), max(cfg.batch_size, 256), None, pad_to, with_bi
        )
        test_part = None
        if test is not None:
            test_part = {"encoded": vec.encode(test.texts), "y": _label_ids(test, labels, "test"), "note": note}
        info = {
            "vocab_size": vec.vocab_size,
            "bigram_size": vec.bigram_size,
            "n_classes": n_classes,
            "labels": labels,
            "steps_per_epoch": -(-len(train) // cfg.batch_size),
            "max_length": shape["max_length"],
            "region_size": shape["region_size"],
        }
        extra = {
            "vectorizer": vec,
            "n_train": len(train),
            "n_valid": len(valid),
            "order": order,
            "text_lengths": shape,
        }
        return Prepared(train=ds_train, valid=ds_valid, test=test_part, info=info, extra=extra)

    def callbacks(self, cfg: SentimentConfig, prepared: Prepared) -> list:
        return [prepared.extra["order"].callback()]  # epoch e's batches depend on (seed, e) only

    def build_model(self, cfg: SentimentConfig, info: dict[str, Any]):
        import keras

        from seqkit.layers import classification_head, recurrent_stack_from_config, token_embedding
        from seqkit.layers.text import MaskedGlobalPooling, RegionPooling

        tokens = keras.Input((None,), dtype="int32", name="tokens")
        inputs = {"tokens": tokens}
        x = token_embedding(info["vocab_size"], cfg.embedding_dim)(tokens)
        if info.get("bigram_size"):
            bigrams = keras.Input((None,), dtype="int32", name="bigrams")
            inputs["bigrams"] = bigrams
            # Bigram vectors are added to the word vectors, so every step carries its local phrase.
            b = token_embedding(info["bigram_size"], cfg.embedding_dim, name="bigram_embedding")(bigrams)
            x = keras.layers.Add(name="word_and_bigram")([x, b])
        if cfg.embedding_dropout:
            x = keras.layers.SpatialDropout1D(cfg.embedding_dropout, seed=cfg.seed, name="embedding_dropout")(x)
        region_size = info.get("region_size") or cfg.region_size or 1
        if region_size > 1:
            x = RegionPooling(region_size, cfg.region_mode, name="regions")(x)
        h = recurrent_stack_from_config(cfg, return_sequences=cfg.pooling != "last")(x)
        if cfg.pooling != "last":
            modes = {"max_mean": ["max", "mean"], "max": ["max"], "mean": ["mean"]}[cfg.pooling]
            h = MaskedGlobalPooling(modes, name="pooling")(h)
        outputs = classification_head(
            h, info["n_classes"], hidden=cfg.head_hidden, dropout=cfg.head_dropout, seed=cfg.seed
        )
        model = keras.Model(inputs, outputs, name="sentiment")
        lr: Any = cfg.learning_rate
        if cfg.lr_schedule == "cosine":
            steps = max(1, info.get("steps_per_epoch", 1) * cfg.epochs)
            lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.05)
        binary = info["n_classes"] == 2
        model.compile(
            optimizer=keras.optimizers.Adam(lr, clipnorm=cfg.clipnorm),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=[
                keras.metrics.BinaryAccuracy(name="accuracy")
                if binary
                else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            ],
            jit_compile=cfg.jit_compile,
        )
        return model

    def save_assets(self, run_dir: Path, cfg: SentimentConfig, prepared: Prepared) -> None:
        io.write_json(run_dir / "vectorizer.json", prepared.extra["vectorizer"].to_dict())
        io.write_json(run_dir / "labels.json", prepared.info["labels"])

    def evaluate(self, model, cfg: SentimentConfig, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        clf = TextClassifier(model, prepared.extra["vectorizer"], prepared.info["labels"])
        test = prepared.test
        if test is None:
            return {}
        metrics = _score(clf, test["encoded"], test["y"], run_dir)
        metrics.update(test_split=test["note"], n_train=prepared.extra["n_train"], n_valid=prepared.extra["n_valid"])
        shape = prepared.extra["text_lengths"]
        metrics.update({k: shape[k] for k in ("max_length", "max_length_source", "region_size", "region_size_source")})
        return metrics

    # --- prediction -------------------------------------------------------------------------------

    def load(self, run_dir: Path) -> TextClassifier:
        import seqkit.layers.text  # noqa: F401 - registers RegionPooling / MaskedGlobalPooling
        from seqkit.training import load_model, load_run

        run_dir, _ = load_run(run_dir, self.name)
        vec = Vectorizer.from_dict(io.read_json(run_dir / "vectorizer.json"), str(run_dir / "vectorizer.json"))
        labels = io.read_json(run_dir / "labels.json")
        return TextClassifier(load_model(run_dir / "model.keras"), vec, labels)

    def predict_cli(
        self, run_dir: Path, texts: list[str], input_path: str | None, output_path: str | None, as_json: bool
    ) -> None:
        from seqkit.training import load_run

        _, config = load_run(run_dir, self.name)
        items = TextData(list(texts), [""] * len(texts), [f"argument {i + 1}" for i in range(len(texts))])
        for t, origin in zip(items.texts, items.origins):
            if not t.strip():
                raise SeqkitError(f"{origin}: empty text")
        if input_path:
            more = read_inputs(input_path, config.get("text_column", "text"))
            items = TextData(items.texts + more.texts, items.labels + more.labels, items.origins + more.origins)
        clf = self.load(run_dir)
        probs = clf.proba_encoded(clf.vectorizer.encode(items.texts))
        k = probs.argmax(axis=1)
        rows = [
            {"text": t, "label": clf.labels[j], "probability": round(float(probs[i, j]), 6)}
            for i, (t, j) in enumerate(zip(items.texts, k))
        ]
        if output_path:
            buf = _io.StringIO()
            fields = ["text", "label", "probability"] + [f"p_{lab}" for lab in clf.labels]
            w = csv.DictWriter(buf, fieldnames=fields)
            w.writeheader()
            for i, r in enumerate(rows):
                w.writerow({**r, **{f"p_{lab}": round(float(probs[i, c]), 6) for c, lab in enumerate(clf.labels)}})
            if str(output_path).endswith(".json") or as_json:
                io.write_json(output_path, rows)
            else:
                io.write_text(output_path, buf.getvalue())
            print(f"wrote {len(rows)} predictions to {output_path}")
            return
        for r in rows:
            if as_json:
                print(json.dumps(r))
            else:
                snippet = r["text"].replace("\n", " ")
                snippet = snippet if len(snippet) <= 60 else snippet[:57] + "..."
                print(f"{r['label']}\t{r['probability']:.4f}\t{snippet}")
        sys.stdout.flush()

    def evaluate_run(self, run_dir: Path, data: DataArgs) -> dict[str, Any]:
        """Score a finished run on ``--test`` / ``--data`` (a CSV, class folders or IMDB layout), default IMDB test."""
        from seqkit.data.registry import resolve
        from seqkit.training import load_run

        _, config = load_run(run_dir, self.name)
        text_col, label_col = config.get("text_column", "text"), config.get("label_column", "label")
        given = data.test or data.data
        path = resolve("imdb", given)
        splits = load_split_source(path, ("test",))
        test = splits["test"] if splits is not None else load_texts(path, text_col, label_col)
        clf = self.load(run_dir)
        y = _label_ids(test, clf.labels, "test")
        t0 = time.perf_counter()
        metrics = _score(clf, clf.vectorizer.encode(test.texts), y, None)
        metrics["test_data"] = str(path)
        metrics["predict_seconds"] = round(time.perf_counter() - t0, 3)
        return metrics

    # --- tests ------------------------------------------------------------------------------------

    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        path = write_fixture_csv(Path(directory) / "reviews.csv")
        overrides = dict(
            vocab_size=40,
            bigram_vocab_size=40,
            min_count=1,
            bigram_min_count=1,
            max_length=12,
            embedding_dim=8,
            units=[4],
            region_size=2,
            epochs=1,
            batch_size=8,
        )
        return DataArgs(data=str(path)), overrides

    def predict_inputs(self, directory: Path) -> list[str]:
        return ["a wonderful film, great acting", "boring and awful plot"]


def _score(clf: TextClassifier, encoded, y: np.ndarray, run_dir: Path | None) -> dict[str, Any]:
    from seqkit.metrics.classification import classification_scores
    from seqkit.plots import plot_confusion

    probs = clf.proba_encoded(encoded)
    scores = classification_scores(y, probs.argmax(axis=1), clf.labels)
    if run_dir is not None:
        plot_confusion(scores["confusion_matrix"], clf.labels, Path(run_dir) / "confusion_matrix.png", "test set")
    return {
        "test_accuracy": scores["accuracy"],
        "test_f1_macro": scores["f1_macro"],
        "n_test": len(y),
        "labels": clf.labels,
        "test_per_class": scores["per_class"],
        "test_confusion_matrix": scores["confusion_matrix"],
    }


_GOOD = ["great", "wonderful", "loved", "brilliant", "superb", "moving", "fun"]
_BAD = ["awful", "boring", "terrible", "waste", "dull", "worst", "poor"]
_MEH = ["okay", "average", "fine", "mixed", "mediocre", "passable", "so-so"]


def write_fixture_csv(path: Path, n: int = 48, classes: int = 2, sep: str = ",") -> Path:
    """A tiny separable review set (``text,label``); ``classes=3`` adds a ``neutral`` class."""
    rng = np.random.default_rng(0)
    words = {"pos": _GOOD, "neg": _BAD, "neutral": _MEH}
    names = ["pos", "neg", "neutral"][:classes]
    buf = _io.StringIO()
    w = csv.writer(buf, delimiter=sep)
    w.writerow(["text", "label"])
    for i in range(n):
        lab = names[i % classes]
        picks = rng.choice(words[lab], size=3)
        w.writerow([f"the film was {picks[0]} and {picks[1]} , really {picks[2]}", lab])
    return io.write_text(path, buf.getvalue())


TASK = SentimentTask()


def load(run_dir: str | Path) -> TextClassifier:
    """``load(run_dir).predict(["a review"])`` -> ``[{"label": ..., "probability": ...}]``."""
    return TASK.load(Path(run_dir))


def predict(run_dir: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """One call from raw texts to labels and probabilities."""
    return load(run_dir).predict(texts)
