"""CoNLL-2003 NER benchmark: the default BiLSTM-CRF config trained from scratch (no pretrained vectors),
entity F1 on test (testb, conlleval semantics) with the epoch chosen on valid (testa), and tagging speed.

    SEQKIT_DATA_DIR=../shared/data python -m bench.ner [--out DIR] [--set key=value ...]

``--set`` exists for exploration; the committed result is the default config.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import data_dir_or_skip, headline_run, md_table, write_result

# Published CoNLL-2003 English test F1 (testb).
ANCHORS = [
    ("Huang et al. 2015, BiLSTM-CRF, random embeddings", 0.8426),
    ("Lample et al. 2016, LSTM-CRF + chars + dropout, no pretrained", 0.8363),
    ("Lample et al. 2016, same with pretrained vectors", 0.9094),
    ("Akbik et al. 2018 (Flair), contextual string embeddings", 0.9309),
]
TARGET_F1, TARGET_MINUTES = 0.86, 30.0


def measure_speed(predictor, sentences: list[list[str]], texts: list[str]) -> dict[str, float]:
    """Batch tagging throughput (pre-tokenised) and one raw sentence's latency (tokenise, tag, spans)."""
    predictor.tag(sentences[:256])  # warm-up: trace every padded length used below
    t0 = time.perf_counter()
    predictor.tag(sentences)
    dt = time.perf_counter() - t0
    n_tokens = sum(len(s) for s in sentences)
    for t in texts[:20]:
        predictor.predict([t])
    times = []
    for t in texts:
        t1 = time.perf_counter()
        predictor.predict([t])
        times.append((time.perf_counter() - t1) * 1000.0)
    return {
        "batch_tokens_per_s": n_tokens / dt,
        "batch_sentences_per_s": len(sentences) / dt,
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p90_ms": float(np.percentile(times, 90)),
        "latency_n": len(times),
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m bench.ner", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="run directory (default: a temporary one)")
    p.add_argument("--run", metavar="RUN_DIR", help="measure a finished run (default: seed 1 of bench.results)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--latency-n", type=int, default=200)
    args = p.parse_args(argv)

    path = data_dir_or_skip("conll2003")
    if path is None:
        return 0
    from seqkit.config import config_to_dict, resolve_config
    from seqkit.data.conll import read_conll
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.ner import TASK

    tmp = None
    wall = None
    if args.run is None and not args.overrides and args.out is None:
        args.run = str(headline_run("ner"))
    if args.run:
        from seqkit import io
        from seqkit.training import config_from_run, load_run

        run_dir, config = load_run(args.run, "ner")
        cfg = config_from_run(TASK, config)
        metrics = io.read_json(Path(run_dir) / "metrics.json")
    else:
        cfg = resolve_config(TASK.config_cls, None, args.overrides)
        if args.out is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench-ner-")
            out = Path(tmp.name) / "run"
        else:
            out = Path(args.out)
        t0 = time.perf_counter()
        run_dir, metrics = train(TASK, cfg, DataArgs(data=str(path)), out=out, overwrite=True)
        wall = time.perf_counter() - t0

    predictor = TASK.load(run_dir)
    test = read_conll(Path(path) / "test.txt")
    sentences = [s.tokens for s in test]
    rng = np.random.default_rng(0)
    texts = [" ".join(sentences[i]) for i in rng.choice(len(sentences), size=args.latency_n, replace=False)]
    speed = measure_speed(predictor, sentences, texts)

    history = []
    hist_csv = Path(run_dir) / "history.csv"
    if hist_csv.exists():
        import pandas as pd

        history = pd.read_csv(hist_csv).round(4).to_dict(orient="records")
    minutes = metrics["train_seconds"] / 60.0
    result = {
        "task": "ner",
        "data": "CoNLL-2003 English: train 14,041 sentences; valid (testa) selects the epoch; test (testb) 3,453",
        "pretrained_vectors": bool(cfg.embeddings),
        "test_f1": metrics["test_f1"],
        "test_precision": metrics["test_precision"],
        "test_recall": metrics["test_recall"],
        "test_f1_per_type": metrics["test_f1_per_type"],
        "valid_f1": metrics["valid_f1"],
        "train_seconds": metrics["train_seconds"],
        "train_minutes": minutes,
        "epochs": metrics["epochs"],
        "best_epoch": metrics.get("best_epoch"),
        "wall_seconds_incl_data_and_eval": wall,
        "trained_here": not args.run,
        "target": {"test_f1": TARGET_F1, "train_minutes": TARGET_MINUTES},
        "met": {"test_f1": metrics["test_f1"] >= TARGET_F1, "train_minutes": minutes <= TARGET_MINUTES},
        **speed,
        "history": history,
        "config": config_to_dict(cfg),
        "anchors": [{"model": m, "test_f1": f} for m, f in ANCHORS],
    }
    rows = [
        {"": "test entity F1 (testb, conlleval)", "value": result["test_f1"], "target": f">= {TARGET_F1}"},
        {"": "test precision", "value": result["test_precision"], "target": ""},
        {"": "test recall", "value": result["test_recall"], "target": ""},
        {"": "valid entity F1 (testa)", "value": result["valid_f1"], "target": ""},
        {"": "training minutes (2-core CPU)", "value": minutes, "target": f"<= {TARGET_MINUTES:g}"},
        {"": "epochs (best)", "value": f"{result['epochs']} ({result['best_epoch']})", "target": ""},
        {"": "batch tokens/s (pre-tokenised)", "value": speed["batch_tokens_per_s"], "target": ""},
        {"": "batch sentences/s (pre-tokenised)", "value": speed["batch_sentences_per_s"], "target": ""},
        {"": "one sentence, p50 ms (raw text in, spans out)", "value": speed["latency_p50_ms"], "target": ""},
    ]
    per_type = [{"type": k, "test F1": v} for k, v in sorted(result["test_f1_per_type"].items())]
    anchors = [{"model": m, "test F1": f} for m, f in ANCHORS] + [
        {"model": "seqkit ner (this run, no pretrained vectors)", "test F1": result["test_f1"]}
    ]
    shown = {k: v for k, v in config_to_dict(cfg).items() if k in _SHOWN}
    md = (
        "# NER: CoNLL-2003, BiLSTM-CRF with character features, no pretrained vectors\n\n"
        + md_table(rows)
        + "\nPer type (test):\n\n"
        + md_table(per_type)
        + "\nPublished anchors (test F1):\n\n"
        + md_table(anchors)
        + "\nConfig: `"
        + json.dumps(shown)
        + "`\n"
    )
    write_result("ner", result, md)
    print(md)
    if tmp is not None:
        tmp.cleanup()
    return 0


_SHOWN = (
    "cell",
    "units",
    "head",
    "tag_scheme",
    "word_dim",
    "char_encoder",
    "char_filters",
    "casing_dim",
    "dropout",
    "output_dropout",
    "singleton_unk",
    "word_dropout",
    "lr_decay",
    "ema_epochs",
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochs",
    "jit_compile",
)


if __name__ == "__main__":
    raise SystemExit(main())
