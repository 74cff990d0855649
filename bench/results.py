"""The headline results: every task's default config trained with seeds 1, 2 and 3.

    SEQKIT_DATA_DIR=../shared/data python -m bench.results [--quick] [--tasks ner charlm ...]

Each (task, seed) is one ``python -m seqkit train TASK --seed S`` in its own process, into
``bench/work/results/TASK/seed-S`` (not committed). A run that already finished with the same
config is read back instead of trained again, and a killed one resumes, so the three-seed table
can be built over several sittings. Targets are judged on the mean; every seed is shown. Test
numbers are computed once per seed of the final configuration and only reported.

``--quick`` trains seed 1 only (for iteration; the committed table is the full one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import RESULTS, md_table, write_result

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work" / "results"
SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Headline:
    """How one task's default run is scored: the metric the target is set on and its anchors."""

    task: str
    data: str
    metric: str  # a key path into metrics.json, '/'-separated
    label: str
    target: float
    direction: str  # "min" or "max"
    minutes_target: float
    anchors: tuple[tuple[str, float], ...]
    extra: tuple[tuple[str, str], ...] = ()  # (label, key path) also reported per seed
    args: tuple[str, ...] = ()  # CLI arguments besides the seed (never config changes)
    dataset: str = ""  # registered data set the run needs


HEADLINES = (
    Headline(
        task="sentiment",
        data="IMDB (25k train / 25k test)",
        metric="test_accuracy",
        label="test accuracy",
        target=0.900,
        direction="max",
        minutes_target=20,
        anchors=(
            ("Wang & Manning 2012, NBSVM bigrams", 0.9122),
            ("Johnson & Zhang 2016, oh-2LSTMp", 0.9186),
        ),
        extra=(("valid accuracy", "best_val_accuracy"),),
        dataset="imdb",
    ),
    Headline(
        task="ner",
        data="CoNLL-2003 English (testb)",
        metric="test_f1",
        label="test entity F1",
        target=0.860,
        direction="max",
        minutes_target=30,
        anchors=(
            ("Huang et al. 2015, no pretrained vectors", 0.8426),
            ("Lample et al. 2016, no pretrained vectors", 0.8363),
            ("Lample et al. 2016, pretrained vectors", 0.9094),
        ),
        extra=(("valid entity F1", "valid_f1"),),
        dataset="conll2003",
    ),
    Headline(
        task="charlm",
        data="Tiny Shakespeare (last 10 % held out)",
        metric="val_loss",
        label="validation nats/char",
        target=1.50,
        direction="min",
        minutes_target=30,
        anchors=(("nanoGPT baby GPT (10.7 M params, GPU)", 1.4697),),
        extra=(("validation bits/char", "val_bpc"),),
        dataset="tinyshakespeare",
    ),
    Headline(
        task="forecast",
        data="ETTh1 multivariate, H=96",
        metric="M/96/mse",
        label="test MSE (M/96)",
        target=0.36,
        direction="min",
        minutes_target=10,
        anchors=(("SegRNN 2023", 0.351), ("PatchTST/64 2023", 0.370), ("DLinear 2023", 0.375)),
        extra=tuple(
            (f"test MSE {s}/{h}", f"{s}/{h}/mse")
            for s in ("M", "S")
            for h in (96, 192, 336, 720)
            if (s, h) != ("M", 96)
        ),
        # The same default model, also trained for the other settings and horizons the literature reports:
        # the M/96 model is the run's first and is trained exactly as `make forecast` trains it.
        args=("--set", "settings=[M,S]", "--set", "horizons=[96,192,336,720]"),
        dataset="etth1",
    ),
)


def lookup(metrics: dict[str, Any], path: str) -> float | None:
    node: Any = metrics
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


@dataclass
class SeedRun:
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)
    ok: bool = False
    message: str = ""


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
        return sha.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_seed(h: Headline, seed: int, quiet: bool) -> SeedRun:
    """Train (or read back) one seed of ``h.task``'s default config."""
    out = WORK / h.task / f"seed-{seed}"
    cmd = [sys.executable, "-m", "seqkit", "train", h.task, "--seed", str(seed), *h.args, "--out", str(out)]
    metrics_file = out / "metrics.json"
    if metrics_file.exists() and _same_config(cmd, out):
        print(f"results: {h.task} seed {seed}: reading the finished run in {out.relative_to(ROOT)}", flush=True)
    else:
        if metrics_file.exists():
            cmd.append("--overwrite")
        print(f"results: {h.task} seed {seed}: {' '.join(cmd[1:])}", flush=True)
        log = out.parent / f"seed-{seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            rc = subprocess.call(
                cmd, cwd=ROOT, stdout=f if quiet else None, stderr=subprocess.STDOUT if quiet else None
            )
        if rc != 0 or not metrics_file.exists():
            return SeedRun(seed, message=f"exit status {rc}; log in {log.relative_to(ROOT)}")
    return SeedRun(seed, json.loads(metrics_file.read_text(encoding="utf-8")), ok=True)


def _same_config(cmd: list[str], out: Path) -> bool:
    """True when ``out/config.json`` is the config ``cmd`` would train (defaults may have changed since)."""
    from seqkit.cli import _resolve_cfg, build_parser
    from seqkit.config import config_to_dict
    from seqkit.task import get_task

    args = build_parser().parse_args(cmd[3:])
    task = get_task(args.task)
    want = {"task": task.name, **config_to_dict(_resolve_cfg(task, args))}
    try:
        return json.loads((out / "config.json").read_text(encoding="utf-8")) == want
    except (OSError, ValueError):
        return False


def summarise(h: Headline, runs: list[SeedRun]) -> dict[str, Any]:
    done = [r for r in runs if r.ok]
    values = [lookup(r.metrics, h.metric) for r in done]
    values = [v for v in values if v is not None]
    minutes = [_train_minutes(r.metrics) for r in done]
    mean = statistics.fmean(values) if values else None
    sd = statistics.stdev(values) if len(values) > 1 else None
    met = None
    if mean is not None and len(values) == len(runs):
        met = mean <= h.target if h.direction == "min" else mean >= h.target
    return {
        "task": h.task,
        "data": h.data,
        "metric": h.label,
        "target": h.target,
        "direction": h.direction,
        "seeds": [r.seed for r in runs],
        "values": [lookup(r.metrics, h.metric) if r.ok else None for r in runs],
        "mean": mean,
        "sd": sd,
        "met": met,
        "train_minutes": minutes,
        "max_train_minutes": max(minutes) if minutes else None,
        "minutes_target": h.minutes_target,
        "minutes_met": (max(minutes) <= h.minutes_target) if minutes else None,
        "extra": {label: [lookup(r.metrics, key) if r.ok else None for r in runs] for label, key in h.extra},
        "failures": {r.seed: r.message for r in runs if not r.ok},
        "anchors": [{"model": m, "value": v} for m, v in h.anchors],
    }


def _train_minutes(metrics: dict[str, Any]) -> float:
    """Every model the run trained (forecast trains one per setting and horizon)."""
    seconds = float(metrics.get("train_seconds", 0.0))
    seconds += sum(float(v) for v in (metrics.get("extra_train_seconds") or {}).values())
    return seconds / 60.0


def _fmt(v: float | None, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def headline_table(rows: list[dict[str, Any]]) -> str:
    """One line per task: mean ± sd over the seeds, every seed, minutes, target, anchors."""
    table = []
    for r in rows:
        sign = "≤" if r["direction"] == "min" else "≥"
        mean_sd = _fmt(r["mean"]) + ("" if r["sd"] is None else f" ± {r['sd']:.4f}")
        table.append(
            {
                "task · data": f"{r['task']} · {r['data']}",
                "metric": r["metric"],
                f"mean ± sd (seeds {', '.join(map(str, r['seeds']))})": mean_sd,
                "each seed": " / ".join(_fmt(v) for v in r["values"]),
                "target": f"{sign} {r['target']:g}"
                + ("" if r["met"] is None else (" met" if r["met"] else " **not met**")),
                "train min (max of seeds)": _fmt(r["max_train_minutes"], 1) + f" (≤ {r['minutes_target']:g})",
                "published anchors": "; ".join(f"{a['model']} {a['value']:g}" for a in r["anchors"]),
            }
        )
    return md_table(table)


def detail_tables(rows: list[dict[str, Any]]) -> str:
    parts = []
    for r in rows:
        lines = [{"": r["metric"], **{f"seed {s}": v for s, v in zip(r["seeds"], r["values"])}}]
        for label, values in r["extra"].items():
            lines.append({"": label, **{f"seed {s}": v for s, v in zip(r["seeds"], values)}})
        lines.append({"": "training minutes", **{f"seed {s}": m for s, m in zip(r["seeds"], r["train_minutes"])}})
        parts.append(f"### {r['task']}\n\n" + md_table(lines))
        if r["failures"]:
            parts.append("Failed: " + "; ".join(f"seed {s}: {m}" for s, m in r["failures"].items()) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m bench.results", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="seed 1 only (for iteration)")
    p.add_argument("--tasks", nargs="+", choices=[h.task for h in HEADLINES], help="default: every task")
    p.add_argument("--quiet", action="store_true", help="training logs go to bench/work/results/TASK/seed-S.log")
    args = p.parse_args(argv)

    from seqkit.data.registry import resolve
    from seqkit.errors import SeqkitError

    seeds = SEEDS[:1] if args.quick else SEEDS
    chosen = [h for h in HEADLINES if args.tasks is None or h.task in args.tasks]
    commit = git_commit()
    rows = []
    t0 = time.perf_counter()
    for h in chosen:
        try:
            resolve(h.dataset)
        except SeqkitError as e:
            print(f"skipping {h.task}: {e}")
            continue
        rows.append(summarise(h, [train_seed(h, s, args.quiet) for s in seeds]))
    if not rows:
        return 0
    name = "results_quick" if args.quick else "results"
    previous = {}
    if args.tasks and (RESULTS / f"{name}.json").exists():
        # A run of some tasks keeps the other tasks' rows (each row names its own commit).
        previous = {r["task"]: r for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"]}
    for r in rows:
        r["commit"] = commit
    merged = {**previous, **{r["task"]: r for r in rows}}
    ordered = [merged[h.task] for h in HEADLINES if h.task in merged]
    md = (
        f"# Headline results: default configs, seeds {', '.join(map(str, seeds))}\n\n"
        "Each task's default config (`python -m seqkit train TASK --seed S`), 2 CPU cores. "
        "Targets are judged on the mean; sd is the sample standard deviation over seeds. "
        "Training minutes count every model a run trains.\n\n"
        + headline_table(ordered)
        + "\nCommits measured: "
        + ", ".join(f"{r['task']} `{r['commit']}`" for r in ordered)
        + "\n\n## Every seed\n\n"
        + detail_tables(ordered)
    )
    write_result(name, {"seeds": list(seeds), "rows": ordered, "wall_seconds": time.perf_counter() - t0}, md, "results")
    print(md)
    return 0 if all(r["met"] is not False for r in ordered) else 1


if __name__ == "__main__":
    raise SystemExit(main())
