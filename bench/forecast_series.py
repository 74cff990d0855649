"""Airline passengers and monthly sunspots: the default forecast model vs baselines, walk-forward backtest.

``python -m bench.forecast_series [--datasets airline sunspots] [--set k=v ...] [--as-file | --configs]``

Two runs per data set (``--as-file`` or ``--configs`` for one of them). As a user would bring it:
``python -m seqkit train forecast --data FILE.csv`` with no config file and no options (the file
found by ``seqkit.data.registry.resolve``), so period, horizon, input length and split come from
the data (``forecast_series_as_file.{json,md}``). And by name with the project's defaults for it
and its ``configs/forecast-<name>.yaml`` (``forecast_series.{json,md}``).

Each data set is split chronologically into train / validation / test; test metrics come from a
rolling-origin backtest over the test part (stride 1). MASE is scaled by the in-sample
seasonal-naive error of the training part (Hyndman & Koehler 2006), so a value below 1 beats the
seasonal-naive forecast's in-sample error and the baselines' rows show what "good" means here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import data_dir_or_skip, md_table, write_result

KEYS = ["mase", "smape", "mae", "rmse"]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def config_file(dataset: str) -> Path | None:
    """``configs/forecast-<dataset>.yaml`` when the project ships one (as ``make forecast DATA=...`` uses)."""
    path = CONFIGS / f"forecast-{dataset}.yaml"
    return path if path.exists() else None


def run_one(dataset: str, overrides: list[str], out: str, as_file: bool = False) -> dict:
    from seqkit.config import resolve_config
    from seqkit.data.registry import resolve
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig, make_plan

    if as_file:
        path, data = None, DataArgs(data=str(resolve(dataset)))
        cfg = resolve_config(ForecastConfig, None, overrides)
    else:
        path, data = config_file(dataset), DataArgs()
        cfg = resolve_config(ForecastConfig, path, [f"dataset={dataset}", *overrides])
    plan = make_plan(cfg, data)
    t0 = time.perf_counter()
    _, metrics = train(TASK, cfg, data, out=out, overwrite=True)
    rows = []
    for setting in plan.settings:
        for h in map(str, plan.horizons):
            for name in ["model", *metrics["baselines"]]:
                src = metrics if name == "model" else metrics["baselines"][name]
                met = src.get(setting, {}).get(h)
                if met is not None:
                    rows.append({"data set": dataset, "H": int(h), "forecaster": name, **{k: met[k] for k in KEYS}})
    model_mase = {r["H"]: r["mase"] for r in rows if r["forecaster"] == "model"}
    best_base = {
        h: min((r["mase"], r["forecaster"]) for r in rows if r["forecaster"] != "model" and r["H"] == h)
        for h in model_mase
    }
    return {
        "config_file": None if path is None else f"configs/{path.name}",
        "rows": rows,
        "input_length": plan.input_length,
        "horizons": plan.horizons,
        "period": plan.period,
        "period_source": plan.period_source,
        "plan_log": plan.notes,
        "train_batch": metrics.get("train_batch"),
        "best_epoch": metrics.get("best_epoch"),
        "best_val_mse": metrics.get("best_val_mse"),
        "epochs": metrics.get("epochs"),
        "rows_train_valid_test": [plan.split.train, plan.split.valid, plan.split.test],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "model_beats_every_baseline_on_mase": {str(h): model_mase[h] < best_base[h][0] for h in model_mase},
        "best_baseline": {str(h): best_base[h][1] for h in best_base},
    }


STATISTICAL = ("mean", "ets", "arima")


def as_file_table(r: dict) -> tuple[list[dict], dict[str, dict[str, bool]]]:
    """Model, naive, seasonal naive and the best statistical baseline by MASE, per horizon."""
    table, beats = [], {}
    for h in sorted({row["H"] for row in r["rows"]}):
        by = {row["forecaster"]: row for row in r["rows"] if row["H"] == h}
        stats = [by[n] for n in STATISTICAL if n in by]
        best = min(stats, key=lambda row: row["mase"]) if stats else None
        for name in ("model", "naive", "seasonal_naive"):
            if name in by:
                table.append(by[name])
        if best is not None:
            table.append({**best, "forecaster": f"{best['forecaster']} (best statistical)"})
        model = by["model"]["mase"]
        beats[str(h)] = {n: model < by[n]["mase"] for n in ("naive", "seasonal_naive") if n in by}
        if best is not None:
            beats[str(h)]["best statistical"] = model < best["mase"]
    return table, beats


def main_as_file(datasets: list[str], overrides: list[str]) -> int:
    results = {}
    for dataset in datasets:
        out = os.path.join(tempfile.mkdtemp(prefix=f"bench-{dataset}-"), "run")
        r = run_one(dataset, overrides, out, as_file=True)
        r["table"], r["model_beats"] = as_file_table(r)
        results[dataset] = r
    md = [
        "# Walk-forward forecasting on files brought as they are: no config file, no options\n",
        "Each data set's CSV given as `python -m seqkit train forecast --data FILE.csv`"
        + (f" with `{' '.join(overrides)}`" if overrides else " and nothing else")
        + ": frequency, seasonal period, horizon, input length and split are derived from the data "
        "(docs/forecast.md). Rolling-origin backtest over the test part, stride 1, metrics in the "
        "original units, MASE scaled by the training part's in-sample seasonal-naive error with the "
        "chosen period (naive when the period is 1).\n",
    ]
    for dataset, r in results.items():
        tr, va, te = (b - a for a, b in r["rows_train_valid_test"])
        md.append(
            f"\n## {dataset}: period {r['period']} ({r['period_source']}), horizon {r['horizons']}, "
            f"input length {r['input_length']}, rows train/valid/test {tr}/{va}/{te}, "
            f"batches of {r['train_batch']['batch_size']} x {r['train_batch']['passes_per_epoch']} pass(es) per epoch, "
            f"best epoch {r['best_epoch']} of {r['epochs']} (validation MSE {r['best_val_mse']:.3f}, scaled), "
            f"model training {r['train_seconds']:.0f} s\n"
        )
        for note in r["plan_log"]:
            md.append(f"- {note}")
        md.append("\n" + md_table(r["table"], ["H", "forecaster", *KEYS]))
        for h, beats in r["model_beats"].items():
            said = ", ".join(f"{'beats' if ok else 'does NOT beat'} {name}" for name, ok in beats.items())
            md.append(f"- H={h}: the model {said} on MASE")
        md.append("\n")
    write_result(
        "forecast_series_as_file", {"datasets": results, "overrides": overrides}, "\n".join(md), "forecast_series"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.forecast_series", description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["airline", "sunspots"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--as-file", action="store_true", help="only: each data set as --data FILE.csv, no config file")
    mode.add_argument("--configs", action="store_true", help="only: each data set by name with its shipped config")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if any(data_dir_or_skip(d) is None for d in args.datasets):
        return 0
    if not args.configs:
        main_as_file(args.datasets, args.overrides)
    if args.as_file:
        return 0
    results = {}
    for dataset in args.datasets:
        out = os.path.join(tempfile.mkdtemp(prefix=f"bench-{dataset}-"), "run")
        results[dataset] = run_one(dataset, args.overrides, out)
    md = [
        "# Walk-forward forecasting: airline passengers and monthly sunspots\n",
        "Default forecast config per data set, with `configs/forecast-<data set>.yaml` where the project ships one"
        + (f" with `{' '.join(args.overrides)}`" if args.overrides else "")
        + "; rolling-origin backtest over the test part, stride 1, metrics in the original units "
        "(MASE scaled by the training part's in-sample seasonal-naive error).\n",
    ]
    for dataset, r in results.items():
        md.append(
            f"\n## {dataset} (period {r['period']}, input length {r['input_length']}, "
            f"rows train/valid/test {r['rows_train_valid_test']}, model training {r['train_seconds']:.0f} s"
            + (f", config `{r['config_file']}`" if r["config_file"] else "")
            + ")\n"
        )
        md.append(md_table(r["rows"], ["H", "forecaster", *KEYS]))
        for h, ok in r["model_beats_every_baseline_on_mase"].items():
            md.append(
                f"\n- H={h}: model MASE {'below' if ok else 'NOT below'} every baseline "
                f"(best baseline: {r['best_baseline'][h]})"
            )
        md.append("\n")
    write_result("forecast_series", {"datasets": results, "overrides": args.overrides}, "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
