"""ETTh1 benchmark: the default forecast config on M and S at horizons 96/192/336/720 vs baselines and anchors.

``python -m bench.forecast [--settings M S] [--horizons 96 192 336 720] [--set k=v ...]`` (default: all eight,
M and S at every horizon). ``--ablation`` trains the variants in ``ABLATIONS`` instead (M, H=96).
``--config FILE`` starts every run from a config file (e.g. a search's ``best.yaml``); ``--name NAME`` writes
``bench/results/NAME.{json,md}`` instead of ``forecast``, e.g. for a tuned config.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench.common import data_dir_or_skip, headline_run, md_table, write_result

# Published normalised test MSE on ETTh1 (Zeng et al. 2023 DLinear tables; Nie et al. 2023; Lin et al. 2023).
ANCHORS_MSE = {
    "M": {
        "96": {"Informer": 0.865, "Autoformer": 0.449, "DLinear": 0.375, "PatchTST/64": 0.370, "SegRNN": 0.351},
        "192": {"Informer": 1.008, "Autoformer": 0.500, "DLinear": 0.405, "PatchTST/64": 0.413, "SegRNN": 0.390},
        "336": {"Informer": 1.107, "Autoformer": 0.521, "DLinear": 0.439, "PatchTST/64": 0.422, "SegRNN": 0.406},
        "720": {"Informer": 1.181, "Autoformer": 0.514, "DLinear": 0.472, "PatchTST/64": 0.447, "SegRNN": 0.434},
    },
    "S": {
        "96": {"DLinear": 0.056, "NLinear": 0.053},
        "192": {"DLinear": 0.071, "NLinear": 0.069},
        "336": {"DLinear": 0.098, "NLinear": 0.081},
        "720": {"DLinear": 0.189, "NLinear": 0.080},
    },
}
TARGETS = {("M", "96"): 0.40, ("S", "96"): 0.060}
TIME_LIMIT_MINUTES = 30.0

# What each borrowed idea buys: the default model with one piece changed (ETTh1 M, H=96 unless told).
ABLATIONS = {
    "default": [],
    "no instance norm": ["norm=none"],
    "RevIN instead of last value": ["norm=revin"],
    "channels jointly (no CI)": ["channel_independent=false"],
    "direct head instead of PMF decoder": ["decoder=direct"],
    "plus linear skip": ["skip=true"],
    "segment length 1 (plain GRU over 96 steps, L=96)": ["segment_length=1", "input_length=96"],
}


def ablation(args, extra: list[str]) -> int:
    from seqkit.config import resolve_config
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig

    rows = []
    for label, changes in ABLATIONS.items():
        overrides = [f"settings={args.settings}", f"horizons={args.horizons}", "baselines=[]", *extra, *changes]
        cfg = resolve_config(ForecastConfig, args.config, overrides=overrides)
        _, m = train(TASK, cfg, DataArgs(), out=tempfile.mkdtemp(prefix="bench-forecast-abl-"), overwrite=True)
        for s in args.settings:
            for h in map(str, args.horizons):
                rows.append(
                    {
                        "variant": label,
                        "setting": s,
                        "H": int(h),
                        # The validation MSE of the selected epoch decides; the test columns are reported only.
                        "valid MSE": m.get("best_val_mse")
                        if (s, int(h)) == (args.settings[0], args.horizons[0])
                        else None,
                        "test MSE": m[s][h]["mse"],
                        "test MAE": m[s][h]["mae"],
                        "epochs": m["epochs"],
                        "train s": m["train_seconds"],
                    }
                )
        print(rows[-1])
    base = f"Config file: `{args.config}`. " if args.config else ""
    md = (
        f"# ETTh1 forecast ablation\n\n{base}Overrides for every variant: `"
        + " ".join(extra)
        + "`\n\nVariants are compared on the validation MSE of the epoch each one selected (the first setting "
        "and horizon); the test columns are scored once per variant and only reported.\n\n" + md_table(rows)
    )
    write_result("forecast_ablation", {"rows": rows, "overrides": extra, "config_file": args.config}, md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.forecast")
    ap.add_argument("--settings", nargs="+", help="default M S (ablation: M)")
    ap.add_argument("--horizons", nargs="+", type=int, help="default: 96 192 336 720 (ablation: 96)")
    ap.add_argument("--config", help="a config file (e.g. a search's best.yaml) instead of the defaults")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", help="run directory (default: a temporary one)")
    ap.add_argument("--run", metavar="RUN_DIR", help="report a finished run (default: seed 1 of bench.results)")
    ap.add_argument(
        "--name",
        default="forecast",
        help="result file name under bench/results (default forecast; another name keeps the main table)",
    )
    ap.add_argument("--ablation", action="store_true", help="train the ablation variants instead (no baselines)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if data_dir_or_skip("etth1") is None:
        return 0
    if args.ablation:
        args.settings = args.settings or ["M"]
        args.horizons = args.horizons or [96]
        return ablation(args, args.overrides)
    args.settings = args.settings or ["M", "S"]
    # All eight configurations by default: the time target is for all of them together.
    args.horizons = args.horizons or [96, 192, 336, 720]

    from seqkit.config import resolve_config
    from seqkit.task import DataArgs
    from seqkit.training import train
    from tasks.forecast import TASK, ForecastConfig

    overrides = [f"settings={args.settings}", f"horizons={args.horizons}", *args.overrides]
    standard = not (args.overrides or args.config or args.out) and args.settings == ["M", "S"]
    if args.run is None and standard and args.horizons == [96, 192, 336, 720]:
        args.run = str(headline_run("forecast"))  # the same command as seed 1 of the headline table
    wall = None
    if args.run:
        from seqkit import io

        metrics = io.read_json(os.path.join(args.run, "metrics.json"))
    else:
        cfg = resolve_config(ForecastConfig, args.config, overrides=overrides)
        out = args.out or tempfile.mkdtemp(prefix="bench-forecast-")
        t0 = time.perf_counter()
        _, metrics = train(TASK, cfg, DataArgs(), out=out, overwrite=True)
        wall = time.perf_counter() - t0
    train_total = metrics["train_seconds"] + sum(metrics.get("extra_train_seconds", {}).values())

    rows, checks = [], {}
    for s in args.settings:
        for h in map(str, args.horizons):
            row = {"setting": s, "H": int(h), "model MSE": metrics[s][h]["mse"], "model MAE": metrics[s][h]["mae"]}
            row["model windows/s"] = metrics[s][h].get("windows_per_s")
            for name, b in metrics["baselines"].items():
                if s in b and h in b[s]:
                    row[f"{name} MSE"] = b[s][h]["mse"]
            for ref, v in ANCHORS_MSE[s][h].items():
                row[ref] = v
            rows.append(row)
            if (s, h) in TARGETS:
                checks[f"{s}/{h} MSE <= {TARGETS[(s, h)]}"] = metrics[s][h]["mse"] <= TARGETS[(s, h)]
    checks[f"all configurations trained in <= {TIME_LIMIT_MINUTES:.0f} min"] = train_total <= TIME_LIMIT_MINUTES * 60
    columns = list(dict.fromkeys(k for r in rows for k in r))
    md = [
        "# ETTh1 forecasting benchmark\n",
        f"Config: {f'`{args.config}` with ' if args.config else ''}overrides `{' '.join(overrides)}`; input length {metrics['input_length']}; "
        f"model training {train_total / 60:.1f} min in total"
        + (f", wall clock {wall / 60:.1f} min (incl. baselines).\n" if wall else " (seed 1 of bench.results).\n"),
        "Normalised test MSE/MAE over every window (stride 1), horizon step and channel; "
        "anchors are published numbers, not rerun here. Windows/s: the model's whole test backtest "
        "(windowing plus one compiled call per 512 windows) after one warm-up call.\n",
        md_table(rows, columns),
        "\n" + "\n".join(f"- {k}: {'met' if v else 'NOT met'}" for k, v in checks.items()) + "\n",
    ]
    write_result(
        args.name,
        {
            "metrics": metrics,
            "train_seconds_total": round(train_total, 1),
            "wall_seconds": None if wall is None else round(wall, 1),
            "checks": checks,
            "anchors_mse": ANCHORS_MSE,
            "overrides": overrides,
            "config_file": args.config,
        },
        "\n".join(md),
        module="forecast",
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
