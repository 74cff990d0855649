"""IMDB sentiment benchmark: the default config trained from scratch, test accuracy on all 25,000 test reviews,
and prediction speed from raw text (one review's latency, batch throughput).

    SEQKIT_DATA_DIR=../shared/data python -m bench.sentiment [--out DIR] [--set key=value ...]

``--set`` exists for exploration; the committed result is the default config.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import data_dir_or_skip, headline_run, md_table, write_result

# Published IMDB test accuracies on the same 25k/25k split (no pretraining, no unlabelled data unless noted).
ANCHORS = [
    ("keras-io 2-layer BiLSTM example", 0.843),
    ("Dai & Le 2015, LSTM from random initialisation", 0.865),
    ("Maas et al. 2011, word vectors + bag of words", 0.8889),
    ("Johnson & Zhang 2016, supervised LSTM with region embeddings", 0.919),
]


def measure_latency(clf, texts: list[str], n_warmup: int = 20) -> dict[str, float]:
    """Raw text -> label for one review at a time (tokenise, ids, one compiled call): p50/p90 in ms."""
    for t in texts[:n_warmup]:
        clf.predict([t])
    times = []
    for t in texts:
        t0 = time.perf_counter()
        clf.predict([t])
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p90_ms": float(np.percentile(times, 90)),
        "latency_n": len(times),
    }


def measure_throughput(clf, texts: list[str]) -> dict[str, float]:
    clf.predict_proba(texts)  # warm-up: compiles every padded shape this batch needs (a few seconds each)
    t0 = time.perf_counter()
    clf.predict_proba(texts)
    dt = time.perf_counter() - t0
    return {"batch_reviews_per_s": len(texts) / dt, "batch_n": len(texts)}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m bench.sentiment", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="run directory (default: a temporary one)")
    p.add_argument(
        "--run",
        metavar="RUN_DIR",
        help="measure a finished `seqkit train sentiment` run instead of training again (its config is recorded)",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--latency-n", type=int, default=300)
    p.add_argument("--throughput-n", type=int, default=5000)
    args = p.parse_args(argv)

    path = data_dir_or_skip("imdb")
    if path is None:
        return 0
    from seqkit.config import config_to_dict, resolve_config
    from seqkit.data.text import load_split_source
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.sentiment import TASK

    tmp = None
    wall = None
    peak_rss_mb = None
    if args.run is None and not args.overrides and args.out is None:
        args.run = str(headline_run("sentiment"))
    if args.run:
        from seqkit import io
        from seqkit.training import config_from_run, load_run

        run_dir, config = load_run(args.run, "sentiment")
        cfg = config_from_run(TASK, config)
        metrics = io.read_json(Path(run_dir) / "metrics.json")
    else:
        cfg = resolve_config(TASK.config_cls, None, args.overrides)
        if args.out is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench-sentiment-")
            out = Path(tmp.name) / "run"
        else:
            out = Path(args.out)
        t0 = time.perf_counter()
        run_dir, metrics = train(TASK, cfg, DataArgs(data=str(path)), out=out, overwrite=True)
        wall = time.perf_counter() - t0
        # Peak resident memory of this process over data loading and the whole training run (Linux: KiB).
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    default = config_to_dict(TASK.config_cls())
    changed = {k: v for k, v in config_to_dict(cfg).items() if default.get(k) != v}

    clf = TASK.load(run_dir)
    test = load_split_source(path, ("test",))["test"]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(test), size=max(args.latency_n, args.throughput_n), replace=False)
    texts = [test.texts[i] for i in pick]
    speed = {**measure_latency(clf, texts[: args.latency_n]), **measure_throughput(clf, texts[: args.throughput_n])}

    history = []
    hist_csv = Path(run_dir) / "history.csv"
    if hist_csv.exists():
        import pandas as pd

        history = pd.read_csv(hist_csv).round(4).to_dict(orient="records")
    result = {
        "task": "sentiment",
        "data": "IMDB (aclImdb), 25,000 train (10% held out for validation) / 25,000 test",
        "test_accuracy": metrics["test_accuracy"],
        "test_f1_macro": metrics["test_f1_macro"],
        "n_test": metrics["n_test"],
        "train_seconds": metrics["train_seconds"],
        "train_minutes": metrics["train_seconds"] / 60.0,
        "epochs": metrics["epochs"],
        "best_epoch": metrics.get("best_epoch"),
        "best_val_accuracy": metrics.get("best_val_accuracy"),
        "wall_seconds_incl_data": wall,
        "trained_here": not args.run,
        "train_peak_rss_mb": peak_rss_mb,
        "config_changes_from_default": changed,
        "target": {"test_accuracy": 0.90, "train_minutes": 20.0, "latency_p50_ms": 10.0, "train_peak_rss_mb": 4096},
        "met": {
            "test_accuracy": metrics["test_accuracy"] >= 0.90,
            "train_minutes": metrics["train_seconds"] <= 20 * 60,
            "latency_p50_ms": speed["latency_p50_ms"] <= 10.0,
            "train_peak_rss_mb": None if peak_rss_mb is None else peak_rss_mb <= 4096,
        },
        **speed,
        "history": history,
        "config": config_to_dict(cfg),
        "anchors": [{"model": m, "test_accuracy": a} for m, a in ANCHORS],
    }
    rows = [
        {"": f"test accuracy ({result['n_test']:,} reviews)", "value": result["test_accuracy"], "target": ">= 0.90"},
        {"": "test macro F1", "value": result["test_f1_macro"], "target": ""},
        {"": "training minutes (2-core CPU)", "value": result["train_minutes"], "target": "<= 20"},
        {
            "": "peak RSS of the training process, MB",
            "value": "not measured (--run)" if peak_rss_mb is None else round(peak_rss_mb),
            "target": "<= 4096",
        },
        {"": "epochs (best)", "value": f"{result['epochs']} ({result['best_epoch']})", "target": ""},
        {"": "one review, p50 ms (raw text in)", "value": speed["latency_p50_ms"], "target": "<= 10"},
        {"": "one review, p90 ms", "value": speed["latency_p90_ms"], "target": ""},
        {"": "batch reviews/s (raw text in)", "value": speed["batch_reviews_per_s"], "target": ""},
    ]
    anchors = [{"model": m, "test accuracy": a} for m, a in ANCHORS] + [
        {"model": "seqkit sentiment (this run)", "test accuracy": result["test_accuracy"]}
    ]
    md = (
        "# Sentiment: IMDB, trained from scratch\n\n"
        + md_table(rows)
        + "\nPublished anchors on the same split:\n\n"
        + md_table(anchors)
        + "\nConfig: `"
        + json.dumps({k: v for k, v in config_to_dict(cfg).items() if k in _SHOWN})
        + "`"
        + (f" (changed from the default: `{json.dumps(changed)}`)" if changed else " (the default config)")
        + "\n"
    )
    write_result("sentiment", result, md)
    print(md)
    if tmp is not None:
        tmp.cleanup()
    return 0


_SHOWN = (
    "cell",
    "units",
    "bidirectional",
    "embedding_dim",
    "vocab_size",
    "bigram_vocab_size",
    "max_length",
    "truncation",
    "region_size",
    "pooling",
    "epochs",
    "batch_size",
    "learning_rate",
)


if __name__ == "__main__":
    raise SystemExit(main())
