"""Recurrent regularisers on a character LM: training cost and validation bits per character.

    SEQKIT_DATA_DIR=/work/shared/data python -m bench.regularizers [--steps 500] [--units 128]

Every regulariser trains the same model (Embedding 32 -> one LSTM layer -> Dense) on the
first ``--train-chars`` characters of Tiny Shakespeare for the same number of steps
(batch ``--batch`` x ``--seq-len`` characters), from the same initial weights and batch
order. Reported per row:

* ``steps/s`` and its ratio to the plain LSTM, timed after training with the models taking
  turns (median of interleaved rounds), so load from other processes hits every row alike;
  every row runs Keras' generic RNN loop without XLA, so the ratio is the regulariser's own cost;
* train and validation bits per character (inference mode) after the budget; validation is
  a slice of the last 10% of the text (nanoGPT's split), never trained on;
* a second plain-LSTM row with another seed, as a yardstick of run-to-run noise.

A second table needs no training: the fraction of LSTM units whose memory survives ``T``
steps under rnnDrop's per-sequence mask and under the same mask redrawn every step,
read off hand-set "counter" weights (``c_t = c_{t-1} + v``), next to ``1 - p`` and ``(1 - p)^(T-1)``.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from bench.common import data_dir_or_skip, md_table, write_result

DEFAULT_RUNS = (
    "none=0",
    "recurrent_dropout=0.25",
    "recurrent_step_dropout=0.25",
    "rnndrop=0.25",
    "rnndrop_step=0.25",
    "semeniuta=0.25",
    "weight_drop=0.25",
    "zoneout=0.1",
)


def load_text(max_val_chars: int) -> tuple[str, str, list[str]] | None:
    """``(text, val_text, vocab)``; validation is the tail of the last 10%; None when the data is missing."""
    path = data_dir_or_skip("tinyshakespeare")
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    split = int(len(text) * 0.9)
    return text, text[split:][:max_val_chars], sorted(set(text))


def windows(text: str, index: dict[str, int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``(n, length)`` inputs and next-character targets."""
    ids = np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
    n = (len(ids) - 1) // length
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    return x, y


def build_model(
    vocab: int, units: int, regularizer: str | None, rate: float, seed: int, lr: float = 5e-3, clip: float = 5.0
):
    import keras

    from seqkit.layers import recurrent_stack

    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, 32, embeddings_initializer=keras.initializers.RandomUniform(seed=seed))(ids)
    x = recurrent_stack(
        "lstm",
        [units],
        return_sequences=True,
        regularizer=regularizer,
        regularizer_rate=rate,
        implementation="keras",
        seed=seed,
    )(x)
    logits = keras.layers.Dense(vocab, kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    model = keras.Model(ids, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(lr, global_clipnorm=clip),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    return model


def _same_start(model, reference_weights: list[np.ndarray] | None) -> list[np.ndarray]:
    # Every regulariser keeps the Keras weight layout, so all rows can start from identical weights.
    if reference_weights is None:
        return [w.copy() for w in model.get_weights()]
    model.set_weights(reference_weights)
    return reference_weights


def train_one(name: str, rate: float, seed: int, data: dict, args, start_weights) -> tuple[dict, object, list]:
    import tensorflow as tf

    from seqkit.seed import set_seed

    set_seed(seed)
    regularizer = None if name == "none" else name
    model = build_model(data["vocab"], args.units, regularizer, rate, seed, args.lr, args.clip)
    start_weights = _same_start(model, start_weights) if seed == args.seed else start_weights
    x, y = data["train"]
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(args.batch, drop_remainder=True)
    )
    t0 = time.perf_counter()
    hist = model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
    wall = time.perf_counter() - t0
    xv, yv = data["val"]
    xt, yt = data["train_eval"]
    val = model.evaluate(xv, yv, batch_size=128, verbose=0)
    train = model.evaluate(xt, yt, batch_size=128, verbose=0)
    row = {
        "regularizer": name,
        "rate": rate,
        "seed": seed,
        "train bpc": train / math.log(2),
        "val bpc": val / math.log(2),
        "last batch loss": float(hist.history["loss"][-1]),
        "wall s": wall,
    }
    print(f"{name}={rate} seed {seed}: {row}", flush=True)
    return row, model, start_weights


def time_interleaved(models: list, x: np.ndarray, y: np.ndarray, rounds: int, steps: int) -> list[float]:
    """Training steps per second of each model, from the median over ``rounds`` interleaved rounds.

    The models take turns (``steps`` steps each per round), so a burst of load from other
    processes on the shared cores hits all of them alike instead of one row.
    """
    for m in models:
        m.train_on_batch(x, y)  # warm-up: the train function is already compiled by fit
    per_step: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for k, m in enumerate(models):
            t = time.perf_counter()
            for _ in range(steps):
                m.train_on_batch(x, y)
            per_step[k].append((time.perf_counter() - t) / steps)
    return [1.0 / float(np.median(v)) for v in per_step]


def memory_table(rate: float, lengths=(1, 5, 10, 20, 50), units: int = 64, batch: int = 64, seed: int = 0) -> list:
    """Fraction of (sequence, unit) pairs whose LSTM memory survives ``T`` steps, rnnDrop per sequence vs per step."""
    from seqkit.layers import build_rnn_layer

    v = 0.01
    big = 30.0
    bias = np.concatenate(
        [np.full(units, big), np.full(units, big), np.full(units, np.arctanh(v)), np.full(units, big)]
    )
    rows = []
    for t in lengths:
        x = np.zeros((batch, t, 1), "float32")
        row = {"T": t}
        for name in ("rnndrop", "rnndrop_step"):
            layer = build_rnn_layer("lstm", units, regularizer=name, regularizer_rate=rate, seed=seed)
            layer(x)
            # i = f = o = 1 and a constant candidate v: c_t counts the steps since the memory was last wiped.
            layer.set_weights([np.zeros((1, 4 * units)), np.zeros((units, 4 * units)), bias.astype("float32")])
            h = np.asarray(layer(x, training=True))[:, -1] * (1 - rate)
            count = np.rint(np.arctanh(np.clip(h, 0, 0.999999)) / v)
            kept = (count > 0).mean()
            # Of the units on at step T, how many remember all T steps.
            row[f"{name}: full memory given on"] = float((count == t).mean() / max(kept, 1e-9))
        row["1 - p"] = 1 - rate
        row["(1 - p)^(T-1)"] = (1 - rate) ** (t - 1)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=list(DEFAULT_RUNS), help="name=rate pairs; 'none' is a plain LSTM")
    parser.add_argument("--steps", type=int, default=500, help="training steps per regulariser")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    parser.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clipping")
    parser.add_argument("--timing-rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--timing-steps", type=int, default=5, help="steps per model per timing round")
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--train-chars", type=int, default=100_000)
    parser.add_argument("--val-chars", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-seed", type=int, default=1, help="seed of the second plain-LSTM run (-1: none)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    loaded = load_text(args.val_chars)
    if loaded is None:
        return None
    text, val_text, vocab = loaded
    index = {c: i for i, c in enumerate(vocab)}
    train = windows(text[: args.train_chars], index, args.seq_len)
    val = windows(val_text, index, args.seq_len)
    train_eval = (train[0][: len(val[0])], train[1][: len(val[0])])
    data = {"vocab": len(vocab), "train": train, "val": val, "train_eval": train_eval}

    runs = []
    for item in args.runs:
        name, _, rate = item.partition("=")
        runs.append((name, float(rate or 0), args.seed))
    if args.noise_seed >= 0:
        runs.insert(1, ("none", 0.0, args.noise_seed))

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    rows, models, start = [], [], None
    for name, rate, seed in runs:
        row, model, start = train_one(name, rate, seed, data, args, start)
        rows.append(row)
        models.append(model)
    xb, yb = train[0][: args.batch], train[1][: args.batch]
    for row, speed in zip(rows, time_interleaved(models, xb, yb, args.timing_rounds, args.timing_steps)):
        row["steps/s"] = speed
    base = next(r for r in rows if r["regularizer"] == "none" and r["seed"] == args.seed)
    for r in rows:
        r["cost vs LSTM"] = base["steps/s"] / r["steps/s"]
        r["val bpc - LSTM"] = r["val bpc"] - base["val bpc"]
    memory = memory_table(0.25)
    total = time.perf_counter() - t0

    columns = ["regularizer", "rate", "seed", "steps/s", "cost vs LSTM", "train bpc", "val bpc", "val bpc - LSTM"]
    md = [
        "# Recurrent regularisers on a character LM (Tiny Shakespeare)\n",
        f"One LSTM layer of {args.units} units, embedding 32, Adam {args.lr:g} with global-norm clipping {args.clip:g}; "
        f"{args.steps} steps of {args.batch} x {args.seq_len} characters per row from the same initial weights, "
        f"trained on the first {args.train_chars:,} characters; validation: {len(val[0]) * args.seq_len:,} characters "
        "from the last 10% of the text. Speed: median of "
        f"{args.timing_rounds} interleaved rounds of {args.timing_steps} training steps per model, after training; "
        "no XLA (every row runs Keras' generic RNN loop). "
        f"The second plain-LSTM row (seed {args.noise_seed}) shows the run-to-run noise of both measures. "
        f"Load average before: {load_before[0]:.1f} (2 shared cores); total {total:.0f} s.\n",
        md_table(rows, columns),
        "\n## Memory under rnnDrop: per-sequence vs per-step mask (p = 0.25, no training)\n",
        "Fraction of the units that are on at step T and remember all T steps (hand-set counter weights).\n",
        md_table(memory),
    ]
    result = {"rows": rows, "memory": memory, "args": vars(args), "load_before": load_before, "total_s": total}
    write_result("regularizers", result, "\n".join(md))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
