"""Airline passengers and monthly sunspots: the default forecast model vs baselines, walk-forward backtest.

``python -m bench.forecast_series [--datasets airline sunspots] [--set k=v ...]``

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


def run_one(dataset: str, overrides: list[str], out: str) -> dict:
    from seqkit.config import resolve_config
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig, make_plan

    path = config_file(dataset)
    cfg = resolve_config(ForecastConfig, path, [f"dataset={dataset}", *overrides])
    plan = make_plan(cfg, DataArgs())
    t0 = time.perf_counter()
    _, metrics = train(TASK, cfg, DataArgs(), out=out, overwrite=True)
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
        "period": plan.period,
        "rows_train_valid_test": [plan.split.train, plan.split.valid, plan.split.test],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "model_beats_every_baseline_on_mase": {str(h): model_mase[h] < best_base[h][0] for h in model_mase},
        "best_baseline": {str(h): best_base[h][1] for h in best_base},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.forecast_series", description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["airline", "sunspots"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if any(data_dir_or_skip(d) is None for d in args.datasets):
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
