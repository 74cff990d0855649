"""Character-level language model (char-rnn): truncated BPTT, bits per character, fast sampling.

Data: any UTF-8 text (default: Tiny Shakespeare), split contiguously 90 % / 10 %
into train / validation. Model: ``Embedding -> RecurrentStack (LSTM/GRU, state in
and out) -> Dense(vocab)``. Training carries the recurrent state across
consecutive chunks (see :mod:`seqkit.tbptt`). Metrics: validation loss in nats per
character, bits per character and perplexity.

    python -m seqkit train charlm
    python -m seqkit sample --model RUN_DIR --prime "ROMEO:" --length 500 --temperature 0.8 --seed 1
    python -m seqkit visualize --model RUN_DIR --text FILE --out page.html
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqkit import io
from seqkit.config import RecurrentConfig
from seqkit.data.corpus import VOCAB_FILE, CharVocab, read_text, split_text, tbptt_dataset
from seqkit.errors import SeqkitError
from seqkit.task import DataArgs, Prepared, Task


@dataclasses.dataclass
class CharLMConfig(RecurrentConfig):
    """Char-LM options. Defaults reach val loss <= 1.50 nats/char on Tiny Shakespeare within 30 CPU minutes.

    ``seq_len`` is the BPTT chunk length; ``valid_fraction`` the contiguous tail used for
    validation; ``unknown`` the policy for characters outside the training vocabulary.
    The learning rate decays linearly to ``min_lr_ratio * learning_rate`` over the last
    ``lr_decay_fraction`` of the run's steps (``epochs`` times the batches of an epoch).
    """

    cell: Literal["simple", "gru", "lstm"] = "lstm"
    units: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    embedding_dim: int = 64
    # Tiny Shakespeare is 1 M characters: a 2x256 LSTM overfits it within a few epochs without dropout.
    inter_dropout: float = 0.2
    output_dropout: float = 0.2
    seq_len: int = 64
    batch_size: int = 32
    val_batch_size: int = 16
    valid_fraction: float = 0.1
    unknown: Literal["error", "replace"] = "replace"
    learning_rate: float = 3e-3
    lr_decay_fraction: float = 0.5
    min_lr_ratio: float = 0.1
    clipnorm: float | None = 5.0
    # 32 passes over Tiny Shakespeare's 1 M training characters: about 25 minutes on 2 CPU cores.
    epochs: int = 32
    log_every: int = 100
    sample_prime: str = ""
    sample_length: int = 500
    sample_temperature: float = 0.8

    def validate(self, source: str) -> None:
        for name in ("seq_len", "batch_size", "val_batch_size", "embedding_dim"):
            if getattr(self, name) < 1:
                raise SeqkitError(f"{source}: field '{name}': must be >= 1")
        if not 0.0 < self.valid_fraction < 1.0:
            raise SeqkitError(f"{source}: field 'valid_fraction': must be in (0, 1)")
        if self.bidirectional:
            raise SeqkitError(f"{source}: field 'bidirectional': a language model reads left to right only")


def build_char_model(cfg: CharLMConfig, vocab_size: int):
    """``ids (batch, time)`` -> next-character logits ``(batch, time, vocab)``, compiled."""
    import keras

    from seqkit.layers import recurrent_stack_from_config

    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, name="embedding")(ids)
    stack = recurrent_stack_from_config(cfg, return_sequences=True, return_state=True, name="stack")
    y, _ = stack(x)
    logits = keras.layers.Dense(vocab_size, name="head")(y)
    model = keras.Model(ids, logits, name="charlm")
    # Global-norm clipping (the whole gradient vector is rescaled), as in char-rnn.
    optimizer = keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=cfg.jit_compile,
    )
    return model


def _lr_schedule(cfg: CharLMConfig):
    start = 1.0 - cfg.lr_decay_fraction

    def lr(frac: float) -> float:
        if frac <= start or cfg.lr_decay_fraction <= 0:
            return cfg.learning_rate
        t = min((frac - start) / cfg.lr_decay_fraction, 1.0)
        return cfg.learning_rate * (1.0 - t * (1.0 - cfg.min_lr_ratio))

    return lr


class CharLMTask(Task):
    name = "charlm"
    config_cls = CharLMConfig
    objective = "val_loss"
    direction = "min"
    # The TBPTT batches (rows and chunk length) are laid out in prepare().
    PREPARE_FIELDS = ("batch_size", "seq_len")

    def search_space(self, cfg: CharLMConfig) -> dict[str, Any]:
        """Truncation length and embedding width, added to the common recurrent ones (docs/tuning.md)."""
        from seqkit.tuning import choice_around

        return {"seq_len": choice_around(cfg.seq_len), "embedding_dim": choice_around(cfg.embedding_dim)}

    # --- data ---------------------------------------------------------------------------
    def _texts(self, cfg: CharLMConfig, data: DataArgs) -> tuple[str, str, dict[str, Any]]:
        from seqkit.data.registry import resolve

        if data.train:
            train = read_text(data.train)
            valid_path = data.valid or data.test
            if valid_path is None:
                train, valid = split_text(train, cfg.valid_fraction)
                source = {"train": str(data.train), "valid": f"last {cfg.valid_fraction:.0%} of {data.train}"}
            else:
                valid = read_text(valid_path)
                source = {"train": str(data.train), "valid": str(valid_path)}
        else:
            path = resolve("tinyshakespeare", data.data)
            train, valid = split_text(read_text(path), cfg.valid_fraction)
            source = {
                "corpus": str(path),
                "split": f"first {1 - cfg.valid_fraction:.0%} / last {cfg.valid_fraction:.0%}",
            }
        return train, valid, source

    def prepare(self, cfg: CharLMConfig, data: DataArgs, for_tuning: bool = False) -> Prepared:
        train, valid, source = self._texts(cfg, data)
        vocab = CharVocab.build(train, cfg.unknown)
        train_ids = vocab.encode(train, source=source.get("train", source.get("corpus")))
        valid_ids = vocab.encode(valid, source=source.get("valid", source.get("corpus")))
        val_batch = max(1, min(cfg.val_batch_size, (len(valid_ids) - 1) // cfg.seq_len))
        info = {
            "vocab_size": vocab.size,
            "train_chars": len(train),
            "valid_chars": len(valid),
            "val_batch_size": val_batch,
            **source,
        }
        return Prepared(
            train=tbptt_dataset(train_ids, cfg.batch_size, cfg.seq_len),
            valid=tbptt_dataset(valid_ids, val_batch, cfg.seq_len),
            info=info,
            extra={"vocab": vocab, "valid_text": valid},
        )

    # --- model --------------------------------------------------------------------------
    def build_model(self, cfg: CharLMConfig, info: dict[str, Any]):
        return build_char_model(cfg, int(info["vocab_size"]))

    def fit(self, model, cfg, prepared: Prepared, callbacks: list, epochs: int, initial_epoch: int = 0):
        from seqkit.tbptt import TBPTTTrainer

        trainer = TBPTTTrainer(model, jit_compile=cfg.jit_compile)
        max_seconds = cfg.max_train_minutes * 60.0 if cfg.max_train_minutes else None
        history, stats = trainer.fit(
            prepared.train,
            prepared.valid,
            epochs=epochs,
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            max_seconds=max_seconds,
            lr_schedule=_lr_schedule(cfg),
            log_every=cfg.log_every,
        )
        prepared.extra["trainer"] = trainer
        prepared.extra["train_stats"] = stats
        return history

    def evaluate(self, model, cfg, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        from seqkit.sampling import CharLM
        from seqkit.tbptt import TBPTTTrainer

        trainer = prepared.extra.get("trainer") or TBPTTTrainer(model, jit_compile=cfg.jit_compile)
        val = trainer.evaluate(prepared.valid)
        stats = prepared.extra.get("train_stats", {})
        lm = CharLM(model, prepared.extra["vocab"])
        sample = lm.sample(cfg.sample_prime, cfg.sample_length, cfg.sample_temperature, seed=cfg.seed)
        if run_dir is not None:
            io.write_text(Path(run_dir) / "sample.txt", cfg.sample_prime + sample + "\n")
        print(
            f"validation: {val['loss']:.4f} nats/char, {val['bpc']:.4f} bits/char, perplexity {val['perplexity']:.3f}"
        )
        print(f"sample (temperature {cfg.sample_temperature}):\n{cfg.sample_prime}{sample}")
        return {
            "val_loss": val["loss"],
            "val_bpc": val["bpc"],
            "val_perplexity": val["perplexity"],
            "train_chars": stats.get("train_chars", 0),
            "train_chars_per_second": round(stats.get("train_chars_per_second", 0.0), 1),
            "compile_seconds": round(stats.get("compile_seconds", 0.0), 2),
            "stopped_by_time_budget": bool(stats.get("timed_out", False)),
            "vocab_size": prepared.extra["vocab"].size,
            "n_params": int(model.count_params()),
            "sample": sample[:300],
        }

    def save_assets(self, run_dir: Path, cfg, prepared: Prepared) -> None:
        prepared.extra["vocab"].save(Path(run_dir) / VOCAB_FILE)

    # --- prediction ---------------------------------------------------------------------
    def load(self, run_dir: Path, jit_compile: bool = True):
        """A :class:`seqkit.sampling.CharLM`: ``.sample(prime, length, temperature, top_k, top_p, seed)``."""
        from seqkit.sampling import CharLM
        from seqkit.training import load_model, load_run

        run_dir, _ = load_run(run_dir, self.name)
        vocab = CharVocab.load(run_dir / VOCAB_FILE)
        return CharLM(load_model(run_dir / "model.keras"), vocab, jit_compile=jit_compile)

    def sample_cli(self, run_dir: Path, args) -> None:
        lm = self.load(run_dir)
        if args.length < 0:
            raise SeqkitError(f"--length must be >= 0, got {args.length}")
        out = lm.sample(args.prime, args.length, args.temperature, args.top_k, args.top_p, args.seed, args.streams)
        texts = [out] if isinstance(out, str) else out
        for i, text in enumerate(texts):
            if len(texts) > 1:
                print(f"--- stream {i + 1} ---")
            sys.stdout.write(args.prime + text + "\n")

    def visualize_cli(self, run_dir: Path, args) -> None:
        from seqkit.visualize import best_cells, correlations, render_page, text_properties

        lm = self.load(run_dir)
        text = read_text(args.text)
        if not text:
            raise SeqkitError(f"{args.text}: empty text")
        trace = lm.trace(text)
        lstm = lm.steps.cells[0].kind == "lstm"
        acts = np.tanh(trace["c"]) if lstm else trace["h"]
        names = [f"L{li + 1}.{u}" for li, c in enumerate(lm.steps.cells) for u in range(c.units)]
        names = [f"{k} ({n})" for k, n in enumerate(names)]
        if args.cell is not None and not 0 <= args.cell < acts.shape[1]:
            raise SeqkitError(f"--cell must be in 0..{acts.shape[1] - 1}, got {args.cell}")
        if args.top < 1:
            raise SeqkitError(f"--top must be >= 1, got {args.top}")
        corr = correlations(acts, text_properties(text))
        ranked = best_cells(corr, args.top)
        page = render_page(
            text,
            acts,
            corr,
            ranked,
            names,
            title=f"Interpretable cells of {Path(run_dir).name}",
            activation="tanh(c)" if lstm else "h",
            chosen=args.cell,
        )
        io.write_text(args.out, page)
        print(f"wrote {args.out}")
        for prop, cells in ranked.items():
            print(f"{prop:14s} " + ", ".join(f"cell {names[i]} r={r:+.3f}" for i, r in cells))

    def predict_cli(
        self, run_dir: Path, texts: list[str], input_path: str | None, output_path: str | None, as_json: bool
    ) -> None:
        """Per input text: bits per character under the model and a greedy 80-character continuation."""
        lm = self.load(run_dir)
        items = list(texts)
        if input_path:
            items.append(read_text(input_path))
        rows = []
        for t in items:
            row: dict[str, Any] = {"text": t}
            if len(t) >= 2:
                s = lm.score(t)
                row.update(loss=s["loss"], bpc=s["bpc"])
            row["continuation"] = lm.sample(t, 80, temperature=0.0)
            rows.append(row)
        if as_json:
            out = json.dumps(rows, ensure_ascii=False, indent=2)
        else:
            out = "\n".join(
                (f"bpc {r['bpc']:.3f}\t" if "bpc" in r else "") + f"{r['text']!r} -> {r['continuation']!r}"
                for r in rows
            )
        if output_path:
            io.write_text(output_path, out + "\n")
        else:
            print(out)

    def evaluate_run(self, run_dir: Path, data: DataArgs) -> dict[str, Any]:
        """Validation metrics of a run on ``--test FILE`` (whole file) or the default split's validation part."""
        from seqkit.tbptt import TBPTTTrainer
        from seqkit.training import config_from_run, load_model, load_run

        run_dir, config = load_run(run_dir, self.name)
        cfg = config_from_run(self, config)
        vocab = CharVocab.load(run_dir / VOCAB_FILE)
        if data.test:
            text, source = read_text(data.test), str(data.test)
        elif data.valid:
            text, source = read_text(data.valid), str(data.valid)
        else:
            _, text, src = self._texts(cfg, data)
            source = src.get("valid", src.get("corpus"))
        ids = vocab.encode(text, source=source)
        batch = max(1, min(cfg.val_batch_size, (len(ids) - 1) // cfg.seq_len))
        model = load_model(run_dir / "model.keras")
        model.compile(optimizer="adam", jit_compile=cfg.jit_compile)
        val = TBPTTTrainer(model, jit_compile=cfg.jit_compile).evaluate(tbptt_dataset(ids, batch, cfg.seq_len))
        return {"loss": val["loss"], "bpc": val["bpc"], "perplexity": val["perplexity"], "chars": len(ids)}

    # --- tests --------------------------------------------------------------------------
    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        path = write_fixture_text(Path(directory) / "corpus.txt")
        overrides = dict(
            units=[8],
            embedding_dim=4,
            seq_len=8,
            batch_size=4,
            val_batch_size=2,
            epochs=1,
            inter_dropout=0.0,
            jit_compile=False,
            sample_length=20,
            log_every=0,
        )
        return DataArgs(data=str(path)), overrides

    def predict_inputs(self, directory: Path) -> list[str]:
        return ["the cat ", "ROMEO: "]


FIXTURE_LINES = [
    "ROMEO: the cat sat on the mat.",
    'JULIET: "the dog (a big one) ran."',
    "    indented line [with brackets]",
    "한국어 문장도 읽고 씁니다.",
]


def write_fixture_text(path: str | Path) -> Path:
    """A small UTF-8 corpus (English, quotes, brackets, indentation and a Korean line)."""
    return io.write_text(path, "\n".join(FIXTURE_LINES * 6) + "\n")


# --- the offline demo -----------------------------------------------------------------------
def stdlib_corpus(max_chars: int = 300_000) -> str:
    """A deterministic corpus of Python standard-library source: the ``.py`` files directly in the
    standard library folder, sorted by name, concatenated until ``max_chars``."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path.name.startswith("_sysconfigdata") or not 2_000 <= len(text) <= 60_000 or not text.isascii():
            continue
        parts.append(f"# file: {path.name}\n{text}")
        total += len(parts[-1])
        if total >= max_chars:
            break
    return "\n".join(parts)[:max_chars]


def demo(out_dir: str | Path = "runs/charlm-demo", epochs: int = 8, seed: int = 42) -> Path:
    """Train a small char LM on Python standard-library source (``epochs`` passes, about 2 CPU minutes), then sample.

    Works offline: the corpus ships with every Python install (char-rnn did the same with Linux source).
    """
    from seqkit.config import from_dict
    from seqkit.training import train

    out_dir = Path(out_dir)
    corpus = io.write_text(out_dir / "stdlib_corpus.txt", stdlib_corpus())
    cfg = from_dict(
        CharLMConfig,
        dict(
            units=[256],
            seq_len=100,
            batch_size=32,
            learning_rate=3e-3,
            inter_dropout=0.0,
            epochs=epochs,
            seed=seed,
            sample_prime="def ",
            sample_length=400,
        ),
        source="demo",
    )
    t0 = time.perf_counter()
    run_dir, metrics = train(TASK, cfg, DataArgs(data=str(corpus)), out=out_dir / "run", overwrite=True)
    lm = TASK.load(run_dir)
    for temperature in (0.5, 1.0):
        print(
            f"\n--- sample at temperature {temperature} ---\nclass {lm.sample('class ', 300, temperature, seed=seed)}"
        )
    print(
        f"\ndemo: {metrics['val_bpc']:.3f} bits/char on held-out stdlib source after "
        f"{time.perf_counter() - t0:.0f} s; run directory {run_dir}"
    )
    return run_dir


TASK = CharLMTask()


def load(run_dir: str | Path):
    """``load(run_dir).sample("ROMEO:", 500, 0.8, seed=1)``."""
    return TASK.load(Path(run_dir))


if __name__ == "__main__":  # pragma: no cover
    demo(sys.argv[1] if len(sys.argv) > 1 else "runs/charlm-demo")
