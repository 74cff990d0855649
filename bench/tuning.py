"""Tuning benchmark: memory over a long search, and what a Hyperband budget buys over the defaults.

``python -m bench.tuning --memory`` runs a 20-trial search of the tiny synthetic
task twice, in fresh processes, with and without clearing the Keras session
between trials, and records peak RSS and RSS after each trial.

``python -m bench.tuning --quality [--tasks forecast ner] [--minutes 30]``
trains each task's default config the way a trial trains and runs a Hyperband
search of ``--minutes`` on its standard data (test set untouched) over the space
in ``bench/spaces/TASK.yaml``, and records the validation objective of both.
NER trials (and its default) train for at most 4 epochs (``--max-epochs``) without
weight averaging (``TRIAL_OVERRIDES``); the
full-length default's objective is taken from ``bench/results/ner.json`` when that
run trained today's default config. Run it under the CPU lock; it takes about
``len(tasks) * (minutes + a trial)``.

``python -m bench.tuning --confirm TASK [--configs default best] [--seeds 1 2 3]``
retrains the default and the last search's ``best.yaml`` once per seed, each the way a
trial trains; one process per config can run at once (one per core).

``--set TASK:KEY=VALUE`` (repeatable) changes the base config of both parts, e.g.
``--set forecast:settings=[S]`` searches ETTh1's univariate setting: the default it is compared
with is then the task's default with these changes, the search directory and the result row are
the task's name with the changes (``forecast settings=[S]``), and ``--confirm`` needs the same
``--set``. ``--space TASK=FILE`` searches another space (``--space TASK=``, empty: the task's own
space instead of ``bench/spaces``); the row and directory then name it too (``space=NAME``), so
searches of several spaces keep their own results, and ``--confirm`` needs the same ``--space``.

Every part writes into ``bench/results/tuning.{json,md}``; a run of one part keeps
the other parts' last numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, md_table, write_result

TINY_SPACE = """\
replace: true
units: {type: choice, values: [2, 4, 8]}
learning_rate: {type: float, min: 0.003, max: 0.03, sampling: log}
cell: {type: choice, values: [gru, lstm]}
"""


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def memory_child(mode: str, trials: int, out: Path) -> dict[str, Any]:
    """Run the tiny search in this process; return peak RSS and RSS after each trial (MB)."""
    from seqkit.task import DataArgs
    from seqkit.tuning import tune
    from seqkit.tuning_toy import TASK, ToyConfig

    space = out / "space.yaml"
    space.write_text(TINY_SPACE)
    log = out / "tune" / "tuners" / "tuner0.json"
    after_trial: list[float] = []
    stop = threading.Event()

    def sample():
        seen = 0
        while not stop.is_set():
            n = len(json.loads(log.read_text())) if log.exists() else 0
            if n > seen:
                after_trial.extend([round(_rss_mb(), 1)] * (n - seen))
                seen = n
            time.sleep(0.05)

    start_rss = _rss_mb()
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    summary = tune(
        TASK,
        # Graph mode, as the real tasks train: traced functions are what a kept session accumulates.
        ToyConfig(run_eagerly=False),
        DataArgs(),
        out=out / "tune",
        tuner="random",
        trials=trials,
        max_epochs=1,
        space_file=space,
        overwrite=True,
        clear_session=mode == "clear",
    )
    seconds = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    t.join()
    return {
        "mode": mode,
        "trials": summary["trials"],
        "seconds": round(seconds, 1),
        "rss_start_mb": round(start_rss, 1),
        "rss_after_trial_mb": after_trial,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def memory(trials: int = 20) -> dict[str, Any]:
    runs = []
    for mode in ("clear", "keep"):
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, "-m", "bench.tuning", "--memory-child", mode, "--trials", str(trials), "--dir", d]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for r in runs:
        rss = r["rss_after_trial_mb"]
        r["growth_per_trial_mb"] = round((rss[-1] - rss[0]) / max(1, len(rss) - 1), 2) if len(rss) > 1 else None
    return {"trials": trials, "runs": runs}


# Task benchmarks that already train the default config on the same data: their validation
# objective (result key) can stand in for "default" when the recorded config is today's default.
BENCH_OBJECTIVE = {"ner": ("ner", "valid_f1")}


def default_from_bench(name: str, cfg) -> tuple[float | None, str]:
    """``(objective, source)`` from ``bench/results/<task>.json`` if it trained exactly ``cfg``."""
    from seqkit.config import config_to_dict

    if name not in BENCH_OBJECTIVE:
        return None, ""
    result, key = BENCH_OBJECTIVE[name]
    path = RESULTS / f"{result}.json"
    if not path.exists():
        return None, ""
    data = json.loads(path.read_text())
    if data.get("config") != json.loads(json.dumps(config_to_dict(cfg))):
        return None, ""
    return float(data[key]), f"bench/results/{result}.json ({data['environment']['date']})"


# Per-task search settings of the quality benchmark (``--max-epochs`` / ``--space`` override them).
# NER's default trains for 24 minutes, most of a 30-minute search, so its trials (and the default
# they are compared with) train for at most 4 epochs; the full default is shown beside them.
TRIAL_EPOCHS = {"ner": 4}
# Changes to the default for trial-length training, made to the default and every trial alike:
# NER's weight average spans about two epochs, so in a 4-epoch trial it would still hold the
# initial weights and score what the averaging leaves out, not what the configuration can do.
TRIAL_OVERRIDES: dict[str, dict[str, Any]] = {"ner": {"ema_epochs": None}}
WORK = Path(__file__).resolve().parent / "work"  # search directories of the quality runs
SPACES = {name: Path(__file__).resolve().parent / "spaces" / f"{name}.yaml" for name in ("forecast", "ner")}


def _variant(overrides: list[str], space: str | None = None) -> str:
    """How a search differs from the standard one: its ``--set`` items, then ``space=NAME`` for a
    ``--space`` given on the command line (``space=task`` for the task's own); ``""`` if not at all."""
    parts = list(overrides)
    if space is not None:
        parts.append(f"space={Path(space).stem if space else 'task'}")
    return " ".join(parts)


def _label(name: str, variant: str) -> str:
    """A result row's name: the task, then how its search differs (:func:`_variant`)."""
    return f"{name} {variant}" if variant else name


def _work_dir(name: str, variant: str) -> Path:
    slug = "".join(c if c.isalnum() else "_" for c in variant).strip("_")
    return WORK / (f"{name}-{slug}" if slug else name)


def _base_config(task, overrides: list[str]):
    """The task's default with ``overrides`` (``key=value`` items) and the trial-length overrides."""
    from seqkit.config import resolve_config

    cfg = resolve_config(task.config_cls, None, overrides)
    return dataclasses.replace(cfg, **TRIAL_OVERRIDES.get(task.name, {}))


def quality(
    tasks: list[str],
    minutes: float,
    max_epochs: dict[str, int] | None = None,
    spaces: dict[str, str] | None = None,
    overrides: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Default config vs a ``minutes`` Hyperband search, by the task's validation objective.

    The default is trained here exactly as a trial is (same epochs, callbacks and data), so the
    two numbers differ only by the configuration.
    """
    from seqkit.task import DataArgs, get_task
    from seqkit.tuning import baseline_objective, tune

    max_epochs = {**TRIAL_EPOCHS, **(max_epochs or {})}
    chosen = dict(spaces or {})
    spaces = {**{k: str(v) for k, v in SPACES.items() if v.exists()}, **chosen}
    rows = []
    for name in tasks:
        task = get_task(name)
        changes = (overrides or {}).get(name, [])
        variant = _variant(changes, chosen.get(name))
        cfg = _base_config(task, changes)
        epochs = int(max_epochs.get(name) or cfg.epochs)
        full_default, full_source = (None, "") if changes else default_from_bench(name, task.config_cls())
        t0 = time.perf_counter()
        default = baseline_objective(task, cfg, DataArgs(), epochs=epochs)
        default_seconds = time.perf_counter() - t0
        # The search directory is kept (ignored by git) so a failure after a long search loses nothing.
        work = _work_dir(name, variant)
        summary = tune(
            task,
            cfg,
            DataArgs(),
            out=work,
            tuner="hyperband",
            trials=1000,
            max_epochs=epochs,
            space_file=spaces.get(name) or None,
            minutes=minutes,
            overwrite=True,
        )
        best_yaml = (work / "best.yaml").read_text()
        table = (work / "trials.md").read_text()
        tuned = summary.get("best_objective")
        tuned, default = (None if v is None else float(v) for v in (tuned, default))
        better = bool(
            tuned is not None
            and default is not None
            and (tuned < default if task.direction == "min" else tuned > default)
        )
        rows.append(
            {
                "task": _label(name, variant),
                "variant": variant,
                "objective": task.objective,
                "direction": task.direction,
                "trial_epochs": epochs,
                "space": _shown_path(spaces.get(name) or None),
                "default": default,
                "tuned": tuned,
                "improved": better,
                "full_default": full_default,
                "full_default_from": full_source,
                "trials": summary["trials"],
                "completed": summary["completed"],
                "search_minutes": round(summary["search_seconds"] / 60.0, 1),
                "default_train_seconds": round(default_seconds, 1),
                "best_yaml": best_yaml,
                "trials_md": table,
            }
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("best_yaml", "trials_md")}), flush=True)
    return {"minutes": minutes, "tuner": "hyperband", "rows": rows}


def confirm(
    name: str, which: list[str], seeds: list[int], overrides: list[str] | None = None, space: str | None = None
) -> dict[str, Any]:
    """Train the default and the last search's best config once per seed, the way a trial trains.

    A search's best objective is the best of many noisy runs, so on its own it flatters the
    search. Fresh seeds for both configs compare the configurations rather than their luck.
    ``overrides`` are the ``--set`` changes the search ran with (they make the default) and
    ``space`` its ``--space``: both pick its directory.
    Returns ``{"task", "trial_epochs", "runs": {which: {seed: objective}}}``.
    """
    from seqkit.config import resolve_config
    from seqkit.task import DataArgs, get_task
    from seqkit.tuning import baseline_objective

    task = get_task(name)
    changes = overrides or []
    variant = _variant(changes, space)
    best_yaml = _work_dir(name, variant) / "best.yaml"
    if "best" in which and not best_yaml.exists():
        sets = "".join(f" --set {name}:{c}" for c in changes)
        sets += "" if space is None else f" --space {name}={space}"
        raise SystemExit(f"--confirm {name}: {best_yaml} is missing; run --quality --tasks {name}{sets} first")
    epochs = int(TRIAL_EPOCHS.get(name) or task.config_cls().epochs)
    runs: dict[str, dict[str, float]] = {}
    for kind in which:
        best = kind == "best"
        base = resolve_config(task.config_cls, best_yaml if best else None, None if best else changes)
        # Every run trains as a trial does: the trial length and overrides, not the epochs the
        # best trial happened to get in its Hyperband bracket.
        base = dataclasses.replace(base, **TRIAL_OVERRIDES.get(name, {}), epochs=epochs)
        runs[kind] = {}
        for seed in seeds:
            value = baseline_objective(task, dataclasses.replace(base, seed=seed), DataArgs(), epochs=epochs)
            runs[kind][str(seed)] = None if value is None else float(value)
            label = _label(name, variant)
            print(json.dumps({"task": label, "config": kind, "seed": seed, task.objective: runs[kind][str(seed)]}))
    return {
        "task": _label(name, variant),
        "objective": task.objective,
        "direction": task.direction,
        "trial_epochs": epochs,
        "runs": runs,
    }


def _confirm_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    import statistics

    rows = []
    for name, c in sorted((data.get("confirm") or {}).items()):
        row: dict[str, Any] = {"task": name, "objective": c["objective"], "seeds": ""}
        means = {}
        for kind in ("default", "best"):
            vals = [v for v in c["runs"].get(kind, {}).values() if v is not None]
            row["seeds"] = row["seeds"] or " ".join(c["runs"].get(kind, {}))
            if vals:
                means[kind] = statistics.fmean(vals)
                row[f"{kind} mean"] = round(means[kind], 4)
                row[f"{kind} sd"] = round(statistics.stdev(vals), 4) if len(vals) > 1 else None
                row[f"{kind} runs"] = ", ".join(f"{v:.4f}" for v in vals)
        if len(means) == 2:
            diff = means["best"] - means["default"]
            row["best - default"] = round(diff, 4)
            row["improved"] = bool(diff < 0 if c["direction"] == "min" else diff > 0)
        rows.append(row)
    return rows


def _markdown(data: dict[str, Any]) -> str:
    parts = ["# Tuning benchmark\n"]
    mem = data.get("memory")
    if mem:
        parts.append(f"## Memory over a {mem['trials']}-trial search of the tiny synthetic task\n")
        rows = [
            {
                "keras session between trials": "cleared" if r["mode"] == "clear" else "kept",
                "peak RSS (MB)": r["peak_rss_mb"],
                "RSS after trial 1 (MB)": (r["rss_after_trial_mb"] or [None])[0],
                "RSS after last trial (MB)": (r["rss_after_trial_mb"] or [None])[-1],
                "growth per trial (MB)": r["growth_per_trial_mb"],
                "seconds": r["seconds"],
            }
            for r in mem["runs"]
        ]
        parts.append(md_table(rows))
    q = data.get("quality")
    if q:
        parts.append(f"\n## Validation objective: default config vs a {q['minutes']}-minute Hyperband search\n")
        parts.append(
            "The default config is trained exactly as a trial is (same epochs, callbacks and data); "
            "`full_default` is the same config at its full training length, from the task benchmark.\n"
        )
        cols = [
            "task",
            "objective",
            "direction",
            "trial_epochs",
            "space",
            "default",
            "tuned",
            "improved",
            "full_default",
            "trials",
            "completed",
            "search_minutes",
        ]
        parts.append(md_table(q["rows"], cols))
        confirm_rows = _confirm_rows(data)
        if confirm_rows:
            parts.append(
                "\n## The default and the best configuration retrained with fresh seeds\n\n"
                "Each run trains the way a trial does (`python -m bench.tuning --confirm TASK`); the search's own "
                "best objective is the best of many noisy runs, these are not.\n"
            )
            parts.append(md_table(confirm_rows))
        for r in q["rows"]:
            parts.append(f"\n### {r['task']}: best configuration\n\n```yaml\n{r['best_yaml'].rstrip()}\n```\n")
            if r.get("trials_md"):
                parts.append(f"\n### {r['task']}: every trial\n\n{r['trials_md'].rstrip()}\n")
    return "\n".join(parts)


def _shown_path(path: str | None) -> str:
    if path is None:
        return "the task's space"
    root = Path(__file__).resolve().parent.parent
    p = Path(path).resolve()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(path)


def _pairs(items: list[str], kind, flag: str) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag}: expected TASK=VALUE, got {item!r}")
        out[name] = kind(value)
    return out


def _overrides(items: list[str]) -> dict[str, list[str]]:
    """``--set TASK:KEY=VALUE`` items, grouped by task."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, change = item.partition(":")
        if not sep or "=" not in change:
            raise SystemExit(f"--set: expected TASK:KEY=VALUE, got {item!r}")
        out.setdefault(name, []).append(change)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tuning")
    p.add_argument("--memory", action="store_true", help="measure RSS over a 20-trial tiny search")
    p.add_argument("--quality", action="store_true", help="default vs Hyperband-tuned validation objective")
    p.add_argument("--tasks", nargs="+", default=["forecast", "ner"])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument(
        "--max-epochs",
        action="append",
        default=[],
        metavar="TASK=N",
        help=f"epochs of a trial and of the default it is compared with (default {TRIAL_EPOCHS}; else the config's)",
    )
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="TASK=FILE",
        help="search space file per task (empty: the task's own space)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TASK:KEY=VALUE",
        help="change the base config (the default and every trial) of TASK",
    )
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--confirm", metavar="TASK", help="retrain the default and the last search's best with --seeds")
    p.add_argument("--configs", nargs="+", default=["default", "best"], choices=["default", "best"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--memory-child", choices=("clear", "keep"), help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.trials, Path(args.dir))))
        return 0
    overrides = _overrides(args.set)
    new: dict[str, Any] = {}
    if args.confirm:
        chosen = _pairs(args.space, str, "--space")
        new["confirm"] = confirm(
            args.confirm, args.configs, args.seeds, overrides.get(args.confirm), chosen.get(args.confirm)
        )
        _merge_and_write(new)
        return 0
    if not (args.memory or args.quality):
        args.memory = args.quality = True
    if args.memory:
        new["memory"] = memory(args.trials)
    if args.quality:
        new["quality"] = quality(
            args.tasks,
            args.minutes,
            _pairs(args.max_epochs, int, "--max-epochs"),
            _pairs(args.space, str, "--space"),
            overrides,
        )
    _merge_and_write(new)
    return 0


def _merge_and_write(new: dict[str, Any]) -> None:
    """Keep the other part's numbers and other tasks' rows (one process per task may run at once)."""
    import fcntl

    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / ".tuning.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = RESULTS / "tuning.json"
        data: dict[str, Any] = {}
        if previous.exists():
            old = json.loads(previous.read_text())
            data = {k: old[k] for k in ("memory", "quality", "confirm") if k in old}
        if "memory" in new:
            data["memory"] = new["memory"]
        if "confirm" in new:
            c = new["confirm"]
            confirmed = data.setdefault("confirm", {})
            if c["task"] not in confirmed:
                confirmed[c["task"]] = {**c, "runs": {}}
            # Runs of one task may come from several processes (one per config): keep each one's seeds.
            for kind, seeds in c["runs"].items():
                confirmed[c["task"]]["runs"].setdefault(kind, {}).update(seeds)
        if "quality" in new:
            # A new search has a new best configuration: earlier confirmations no longer apply.
            for r in new["quality"]["rows"]:
                data.get("confirm", {}).pop(r["task"], None)
        if "quality" in new:
            q = new["quality"]
            ours = {r["task"] for r in q["rows"]}
            kept = [r for r in (data.get("quality") or {}).get("rows", []) if r["task"] not in ours]
            data["quality"] = {**q, "rows": sorted(kept + q["rows"], key=lambda r: r["task"])}
        write_result("tuning", data, _markdown(data))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
