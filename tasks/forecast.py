"""Multi-step forecasting with a segment-RNN encoder, scored against baselines by walk-forward backtesting.

Two protocols:

* ``ett`` (``dataset=etth1``): the Informer / Autoformer / DLinear / PatchTST
  benchmark on ETTh1 - train rows [0, 8640), validation [8640, 11520), test
  [11520, 14400), z-scored with training statistics, one test window at every
  step, MSE/MAE in the normalised space, settings M (7 -> 7) and S (OT -> OT).
* ``walk_forward`` (any CSV via ``--data``, ``airline``, ``sunspots``,
  ``statsmodels_sunspots``): chronological train / validation / test parts, test
  origins every ``stride`` steps over the last part, MAE/RMSE/MSE/MAPE/sMAPE/MASE
  in the data's own units.

One model is trained per (setting, horizon): the first is the run's
``model.keras`` (the one ``predict`` uses), the others go to ``models/``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqkit import io
from seqkit.config import RecurrentConfig
from seqkit.data.pipeline import EpochRandom
from seqkit.data.series import Series, StandardScaler, check_length, read_series_csv, series_from_frame
from seqkit.errors import SeqkitError, fail
from seqkit.forecasting import (
    KerasForecaster,
    Split,
    backtest,
    ett_split,
    fraction_split,
    make_baseline,
    window_dataset,
    window_origins,
)
from seqkit.forecasting.season import candidate_period, check_season
from seqkit.metrics import forecast as fm
from seqkit.task import DataArgs, Prepared, Task

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]

# Per data set: where its columns are and the defaults that fit its length and season.
DATASETS: dict[str, dict[str, Any]] = {
    "etth1": dict(date_column="date", targets=ETT_COLUMNS, period=24, input_length=720, segment_length=48, horizon=96),
    "airline": dict(
        date_column="Month", targets=["Passengers"], period=12, input_length=24, segment_length=12, horizon=12
    ),
    "sunspots": dict(
        date_column="Month", targets=["Sunspots"], period=132, input_length=264, segment_length=24, horizon=24
    ),
    "statsmodels_sunspots": dict(
        date_column="YEAR", targets=["SUNACTIVITY"], period=11, input_length=33, segment_length=11, horizon=11
    ),
}

# Literature anchors (normalised MSE on the ETTh1 test part; L=336 unless stated) printed next to our numbers.
ANCHORS = {
    ("M", 96): {
        "repeat-last": 1.295,
        "Informer": 0.865,
        "Autoformer": 0.449,
        "DLinear": 0.375,
        "PatchTST/64": 0.370,
        "SegRNN": 0.351,
    },
    ("S", 96): {"DLinear": 0.056, "NLinear": 0.053},
}


@dataclasses.dataclass
class ForecastConfig(RecurrentConfig):
    """Forecast config. ``0`` / empty values mean "the data set's default" (see ``DATASETS``); for any
    other file, sizes derived from the data: the period from the frequency when the training part
    shows it, one season of horizon, and the longest input length that fits (docs/forecast.md)."""

    dataset: str = "etth1"
    protocol: Literal["auto", "ett", "walk_forward"] = "auto"
    date_column: str | None = None
    targets: list[str] = dataclasses.field(default_factory=list)
    covariates: list[str] = dataclasses.field(default_factory=list)
    freq: str | None = None
    missing: Literal["error", "ffill", "interpolate"] = "error"
    period: int = 0
    settings: list[str] = dataclasses.field(default_factory=lambda: ["M"])
    horizons: list[int] = dataclasses.field(default_factory=list)
    input_length: int = 0
    segment_length: int = 0
    stride: int = 1
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    # model
    channel_independent: bool = True
    norm: Literal["last", "revin", "none"] = "last"
    decoder: Literal["direct", "pmf"] = "pmf"
    skip: bool = False
    embed_dim: int = 0
    head_dropout: float = 0.1
    loss: Literal["mse", "mae", "huber"] = "mae"
    baselines: list[str] = dataclasses.field(
        default_factory=lambda: ["naive", "seasonal_naive", "mean", "ets", "arima"]
    )
    arima_max_channels: int = 1
    # training defaults that reach the ETTh1 targets on a 2-core CPU
    cell: Literal["simple", "gru", "lstm"] = "gru"
    units: list[int] = dataclasses.field(default_factory=lambda: [128])
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    # Epoch e trains at learning_rate / (1 + lr_decay * e); 0 keeps the rate constant.
    lr_decay: float = 0.0
    # Validation and the saved model use an exponential moving average of the weights with this
    # momentum per step (Adam's ``use_ema``); null trains and judges the weights themselves.
    ema_momentum: float | None = None
    early_stopping: int = 3

    def validate(self, source: str) -> None:
        for s in self.settings:
            if s not in ("M", "S"):
                raise fail(f"settings must be M or S, got {s!r}", source, field="settings")
        if any(h <= 0 for h in self.horizons):
            raise fail("horizons must be positive", source, field="horizons")
        if self.input_length < 0 or self.segment_length < 0:
            raise fail("must be >= 0 (0 = data set default)", source, field="input_length")
        if self.lr_decay < 0:
            raise fail("must be >= 0", source, field="lr_decay")
        if self.ema_momentum is not None and not 0.0 < self.ema_momentum < 1.0:
            raise fail("must be in (0, 1) or null", source, field="ema_momentum")
        if not 0 <= self.valid_fraction < 1 or not 0 < self.test_fraction < 1:
            raise fail("fractions must lie in [0, 1)", source, field="test_fraction")


@dataclasses.dataclass
class Plan:
    """Everything resolved from config + data: the protocol, columns, split and sizes."""

    protocol: str
    series: Series
    split: Split
    period: int
    input_length: int
    segment_length: int
    horizons: list[int]
    settings: list[str]
    period_source: str = "given"  # given | dataset default | inferred
    notes: list[str] = dataclasses.field(default_factory=list)  # how the period and split were chosen


def _defaults(cfg: ForecastConfig, explicit_csv: bool) -> dict[str, Any]:
    """A registered data set's declared sizes; for any other file ``0`` (derived from the data in ``make_plan``)."""
    if (not explicit_csv and cfg.dataset in DATASETS) or cfg.protocol == "ett":
        return DATASETS["etth1" if cfg.protocol == "ett" else cfg.dataset]
    if cfg.dataset not in DATASETS and cfg.dataset != "csv":
        raise SeqkitError(f"unknown dataset '{cfg.dataset}'; choose {', '.join(DATASETS)} or give --data FILE.csv")
    base = dict(DATASETS.get(cfg.dataset, {})) if cfg.dataset != "etth1" else {}
    return dict(
        date_column=None,
        targets=[],
        period=base.get("period", 0),
        horizon=base.get("horizon", 0),
        input_length=base.get("input_length", 0),
        segment_length=base.get("segment_length", 0),
    )


def load_series(cfg: ForecastConfig, data: DataArgs) -> tuple[Series, dict[str, Any]]:
    if data.train or data.valid or data.test:
        raise SeqkitError("forecast reads one series file: use --data FILE.csv (it is split chronologically)")
    d = _defaults(cfg, data.data is not None)
    date_column = cfg.date_column or d["date_column"]
    targets = cfg.targets or d["targets"]
    if data.data is None and cfg.dataset == "statsmodels_sunspots":
        from statsmodels.datasets import sunspots

        frame = sunspots.load_pandas().data
        frame["YEAR"] = frame["YEAR"].astype(int).astype(str)
        return series_from_frame(frame, "YEAR", targets, "statsmodels:sunspots", "YS"), d
    from seqkit.data.registry import resolve

    path = resolve(cfg.dataset if cfg.dataset in DATASETS else "etth1", data.data)
    series = read_series_csv(path, date_column, targets, cfg.covariates, cfg.freq, cfg.missing)
    return series, d


def make_plan(cfg: ForecastConfig, data: DataArgs, for_tuning: bool = False) -> Plan:
    series, d = load_series(cfg, data)
    protocol = cfg.protocol
    if protocol == "auto":
        protocol = "ett" if cfg.dataset == "etth1" and data.data is None else "walk_forward"
    if protocol == "ett":
        input_length = cfg.input_length or d["input_length"]
        horizons = list(cfg.horizons or [d["horizon"]])
        if series.columns[: len(ETT_COLUMNS)] != ETT_COLUMNS or len(series) < 14400:
            raise fail(f"the ett protocol needs the 14,400+ hourly rows with columns {ETT_COLUMNS}", series.path)
        split = ett_split()
        for h in horizons:
            check_length(series, input_length + h)
            if split.train[1] < input_length + h:
                raise fail(f"training part has {split.train[1]} rows, fewer than input_length + horizon", series.path)
        period, source, notes = cfg.period or d["period"], "given" if cfg.period else "dataset default", []
        settings = list(cfg.settings)
    else:
        period, source, notes = _resolve_period(cfg, d, series)
        horizons = _horizons(cfg, d, period)
        given_length = cfg.input_length or d["input_length"]
        split = _split(cfg, series, max(horizons), given_length or max(horizons))
        input_length = given_length or default_input_length(split.train[1] - split.train[0], max(horizons))
        notes += _split_notes(cfg, len(series), split)
        settings = ["M" if len(series.columns) > 1 else "S"]
    if for_tuning:
        # The tuner never sees the test rows: cut them off before anything else is computed.
        series = dataclasses.replace(
            series, values=series.values[: split.valid[1]], dates=series.dates[: split.valid[1]]
        )
    return Plan(
        protocol=protocol,
        series=series,
        split=split,
        period=period,
        input_length=input_length,
        segment_length=cfg.segment_length or d["segment_length"] or max(horizons),
        horizons=horizons,
        settings=settings,
        period_source=source,
        notes=notes,
    )


# Horizon of a series without a season (with one, the horizon is one season).
NONSEASONAL_HORIZON = 12


def _horizons(cfg: ForecastConfig, d: dict[str, Any], period: int) -> list[int]:
    return list(cfg.horizons or [d["horizon"] or (period if period > 1 else NONSEASONAL_HORIZON)])


def _split(cfg: ForecastConfig, series: Series, horizon: int, input_length: int) -> Split:
    try:
        return fraction_split(len(series), cfg.valid_fraction, cfg.test_fraction, horizon, input_length + horizon)
    except ValueError as e:
        raise fail(str(e), series.path) from None


def _split_notes(cfg: ForecastConfig, n: int, split: Split) -> list[str]:
    notes = []
    for part, field, (lo, hi) in (("validation", "valid_fraction", split.valid), ("test", "test_fraction", split.test)):
        fraction = getattr(cfg, field)
        if hi - lo != int(round(n * fraction)):
            notes.append(
                f"{part} part: {hi - lo} rows instead of {field} {fraction} x {n} rows = {int(round(n * fraction))}, "
                "so that it holds a whole horizon and training keeps a window"
            )
    return notes


def default_input_length(train_rows: int, horizon: int) -> int:
    """3 horizons of context, or 2, or 1: the longest that leaves at least ``horizon`` training windows.

    On a short series a long context costs training windows one for one (a window needs
    ``input_length + horizon`` rows inside the training part).
    """
    for k in (3, 2):
        if train_rows - k * horizon - horizon + 1 >= horizon:
            return k * horizon
    return horizon


def _resolve_period(cfg: ForecastConfig, d: dict[str, Any], series: Series) -> tuple[int, str, list[str]]:
    """``(period, source, log lines)``: given, the data set's declared one, or inferred (seqkit.forecasting.season)."""
    if cfg.period:
        return cfg.period, "given", []
    if d["period"]:
        return d["period"], "dataset default", []
    m = candidate_period(series.freq)
    if m <= 1:
        return 1, "inferred", [f"period 1: the frequency {series.freq} has no calendar season"]
    # The check sees training rows only, whichever period (and so horizon and split) it ends up choosing.
    ends = []
    for p in (m, 1):
        horizon = max(_horizons(cfg, d, p))
        try:
            ends.append(_split(cfg, series, horizon, cfg.input_length or d["input_length"] or horizon).train[1])
        except SeqkitError:
            if p == m:
                return 1, "inferred", [f"period 1: the series is too short to hold out and check a season of {m}"]
    check = check_season(series.values[: min(ends), : len(series.targets)], m)
    if check.supported:
        return m, "inferred", [f"period {m} inferred from the frequency {series.freq}: {check.describe()}"]
    return 1, "inferred", [f"period 1: the {series.freq} season of {m} is not in the data ({check.describe()})"]


def columns_for(plan: Plan, setting: str) -> tuple[list[int], list[int]]:
    """Input and target column indices of ``plan.series.values`` for a setting."""
    s = plan.series
    if plan.protocol == "ett" and setting == "S":
        ot = s.columns.index("OT")
        return [ot], [ot]
    return list(range(len(s.columns))), list(range(len(s.targets)))


def fit_scaler(plan: Plan) -> StandardScaler:
    """z-score statistics of the training rows only."""
    lo, hi = plan.split.train
    return StandardScaler.fit(plan.series.values[lo:hi], plan.series.columns)


def combo_data(cfg: ForecastConfig, plan: Plan, scaled: np.ndarray, setting: str, horizon: int) -> dict[str, Any]:
    in_cols, out_cols = columns_for(plan, setting)
    L, sp = plan.input_length, plan.split
    tr = window_origins(*sp.train, horizon, 1, L)
    va = window_origins(*sp.valid, horizon, 1, L)
    if len(va) == 0:
        raise fail(f"validation part is too short for horizon {horizon}; raise valid_fraction", plan.series.path)

    batch, passes = epoch_shape(len(tr), cfg.batch_size)
    order = EpochRandom(cfg.seed)

    def ds(origins, shuffle):
        return window_dataset(scaled, origins, L, horizon, in_cols, out_cols, batch, order if shuffle else None)

    info = dict(
        input_length=L,
        horizon=horizon,
        n_inputs=len(in_cols),
        n_targets=len(out_cols),
        segment_length=plan.segment_length,
    )
    return dict(
        setting=setting,
        horizon=horizon,
        in_cols=in_cols,
        out_cols=out_cols,
        train=ds(np.tile(tr, passes), True),
        valid=ds(va, False),
        batch_size=batch,
        passes=passes,
        n_train=len(tr),
        n_valid=len(va),
        info=info,
        order=order,
    )


# At the configured batch a short series makes an epoch of one or two optimizer steps (airline:
# 54 training windows, one step per epoch at batch 128), too few for early stopping or the best
# epoch to mean anything. How the floor was chosen on validation data: docs/forecast.md.
MIN_STEPS_PER_EPOCH = 32
MIN_BATCH = 8


def epoch_shape(n_windows: int, batch_size: int) -> tuple[int, int]:
    """``(batch, passes)``: one epoch is ``passes`` shuffled copies of the training windows in batches of ``batch``.

    Series long enough for ``MIN_STEPS_PER_EPOCH`` batches keep ``(batch_size, 1)``; shorter ones
    get smaller batches (not below ``MIN_BATCH``) and then repeated windows until an epoch holds
    that many steps.
    """
    if n_windows <= 0 or math.ceil(n_windows / batch_size) >= MIN_STEPS_PER_EPOCH:
        return batch_size, 1
    batch = min(batch_size, max(MIN_BATCH, n_windows // MIN_STEPS_PER_EPOCH))
    return batch, max(1, math.ceil(MIN_STEPS_PER_EPOCH * batch / n_windows))


def test_origins(cfg: ForecastConfig, plan: Plan, horizon: int) -> np.ndarray:
    stride = 1 if plan.protocol == "ett" else cfg.stride  # the benchmark scores every window
    return window_origins(*plan.split.test, horizon, stride, plan.input_length)


class ForecastTask(Task):
    name = "forecast"
    config_cls = ForecastConfig
    objective = "val_mse"
    direction = "min"
    # The windows (and the segment count the model is built for) come from prepare().
    PREPARE_FIELDS = ("batch_size", "input_length", "segment_length")

    def search_space(self, cfg: ForecastConfig) -> dict[str, Any]:
        """Look-back and segment length, normalisation, decoder, loss, decay, weight average, channels.

        Lengths are searched only where they are known up front: set in the config or given by
        a named data set's defaults (``0`` in a value means that default).
        """
        from seqkit.tuning import choice_with

        known = DATASETS.get(cfg.dataset, {})
        space: dict[str, Any] = {
            "norm": choice_with(cfg.norm, ["last", "revin", "none"]),
            "decoder": choice_with(cfg.decoder, ["pmf", "direct"]),
            "loss": choice_with(cfg.loss, ["mae", "mse", "huber"]),
            "lr_decay": choice_with(cfg.lr_decay, [0.0, 0.3, 1.0]),
            "ema_momentum": choice_with(cfg.ema_momentum, [None, 0.99, 0.995]),
            "channel_independent": {"type": "boolean"},
            "head_dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
        }
        length = cfg.input_length or known.get("input_length", 0)
        if length // 2 > 0:
            space["input_length"] = {"type": "choice", "values": [cfg.input_length, length // 2]}
        segment = cfg.segment_length or known.get("segment_length", 0)
        if segment // 2 > 0:
            space["segment_length"] = {"type": "choice", "values": [cfg.segment_length, segment // 2, 2 * segment]}
        return space

    # --- data -----------------------------------------------------------------------------------
    def prepare(self, cfg: ForecastConfig, data: DataArgs, for_tuning: bool = False) -> Prepared:
        plan = make_plan(cfg, data, for_tuning)
        scaler = fit_scaler(plan)
        scaled = scaler.transform(plan.series.values)
        combo = combo_data(cfg, plan, scaled, plan.settings[0], plan.horizons[0])
        for m in plan.series.log:
            print(f"data: {plan.series.path}: {m}")
        for m in plan.notes:
            print(f"plan: {m}")
        if (combo["batch_size"], combo["passes"]) != (cfg.batch_size, 1):
            print(
                f"plan: {combo['n_train']} training windows: batches of {combo['batch_size']}, "
                f"{combo['passes']} pass(es) per epoch (at least {MIN_STEPS_PER_EPOCH} steps)"
            )
        print(
            f"forecast: {plan.protocol} protocol on {plan.series.path}: {len(plan.series)} rows, "
            f"frequency {plan.series.freq}, period {plan.period} ({plan.period_source}), split {plan.split}, "
            f"L={plan.input_length}, horizons {plan.horizons}, settings {plan.settings}"
        )
        return Prepared(
            train=combo["train"],
            valid=combo["valid"],
            info=combo["info"],
            extra=dict(plan=plan, scaler=scaler, scaled=scaled, combo=combo, data=data),
        )

    def callbacks(self, cfg: ForecastConfig, prepared: Prepared) -> list:
        import keras

        from seqkit.training import inverse_time_decay

        cbs: list = []
        if prepared is not None and "combo" in prepared.extra:
            cbs.append(prepared.extra["combo"]["order"].callback())  # epoch e's windows depend on (seed, e) only
        if cfg.ema_momentum:
            # The averages are swapped in for each validation pass only, so the monitored val_mse
            # judges them (and BestWeights keeps them) while checkpoints hold the trained weights.
            cbs.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
        if cfg.lr_decay > 0:
            cbs.append(inverse_time_decay(cfg.learning_rate, cfg.lr_decay))
        return cbs

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, cfg: ForecastConfig, info: dict[str, Any]):
        import keras

        from seqkit.forecasting.model import build_forecaster

        model = build_forecaster(
            cfg, info["input_length"], info["horizon"], info["n_inputs"], info["n_targets"], info["segment_length"]
        )
        loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber(0.5)}[cfg.loss]
        model.compile(
            optimizer=keras.optimizers.Adam(
                cfg.learning_rate,
                clipnorm=cfg.clipnorm,
                **({"use_ema": True, "ema_momentum": cfg.ema_momentum} if cfg.ema_momentum else {}),
            ),
            loss=loss,
            metrics=[keras.metrics.MeanSquaredError(name="mse"), keras.metrics.MeanAbsoluteError(name="mae")],
            jit_compile=cfg.jit_compile,
        )
        return model

    def save_assets(self, run_dir: Path, cfg: ForecastConfig, prepared: Prepared) -> None:
        plan: Plan = prepared.extra["plan"]
        combo = prepared.extra["combo"]
        s = plan.series
        io.write_json(
            run_dir / "series.json",
            dict(
                protocol=plan.protocol,
                source=s.path,
                data_path=prepared.extra["data"].data,
                date_column=cfg.date_column or _defaults(cfg, prepared.extra["data"].data is not None)["date_column"],
                targets=s.targets,
                covariates=s.covariates,
                freq=s.freq,
                missing=cfg.missing,
                period=plan.period,
                period_source=plan.period_source,
                input_length=plan.input_length,
                horizon=combo["horizon"],
                setting=combo["setting"],
                in_cols=combo["in_cols"],
                out_cols=combo["out_cols"],
                split=dataclasses.asdict(plan.split),
                scaler=prepared.extra["scaler"].to_dict(),
            ),
        )

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, cfg: ForecastConfig, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        plan: Plan = prepared.extra["plan"]
        scaled = prepared.extra["scaled"]
        scaler: StandardScaler = prepared.extra["scaler"]
        first = prepared.extra["combo"]
        results: dict[str, Any] = {}
        base_results: dict[str, Any] = {}
        extra_seconds: dict[str, float] = {}
        steps: dict[str, Any] = {}
        plot_data = plot_base = None
        fitted: dict[tuple, Any] = {}
        fit_seconds: dict[tuple, float] = {}
        train_rows = scaled[plan.split.train[0] : plan.split.train[1]]
        for setting in plan.settings:
            for horizon in plan.horizons:
                key = f"{setting}/{horizon}"
                if (setting, horizon) == (first["setting"], first["horizon"]):
                    combo, m = first, model
                else:
                    combo = combo_data(cfg, plan, scaled, setting, horizon)
                    m, secs = self._train_extra(cfg, combo, run_dir)
                    extra_seconds[key] = round(secs, 3)
                origins = test_origins(cfg, plan, horizon)
                scored = {"model": KerasForecaster(m, plan.input_length, combo["in_cols"])}
                for name in cfg.baselines:
                    if name == "arima" and len(combo["out_cols"]) > cfg.arima_max_channels:
                        continue  # ARIMA fits are minutes per channel on long series; see docs/forecast.md
                    # A baseline's fit does not depend on the horizon: fit once per column set.
                    fkey = (name, tuple(combo["out_cols"]))
                    if fkey not in fitted:
                        t0 = time.perf_counter()
                        fitted[fkey] = make_baseline(name, combo["out_cols"], plan.period, plan.input_length)
                        fitted[fkey].fit(train_rows)
                        fit_seconds[fkey] = time.perf_counter() - t0
                    scored[name] = fitted[fkey]
                for name, f in scored.items():
                    if name == "model":
                        f.forecast(scaled, origins[:1], horizon)  # trace the compiled call before timing
                    t0 = time.perf_counter()
                    y_true, y_pred = backtest(f, scaled, origins, horizon, combo["out_cols"])
                    secs = time.perf_counter() - t0 + fit_seconds.get((name, tuple(combo["out_cols"])), 0.0)
                    met = self._score(plan, scaler, combo, y_true, y_pred, train_rows)
                    if name == "model":
                        # Test windows per second of the whole backtest: windowing plus the compiled call.
                        met["windows_per_s"] = round(len(origins) / max(secs, 1e-9), 1)
                    else:
                        met["seconds"] = round(secs, 2)
                    target = results if name == "model" else base_results.setdefault(name, {})
                    target.setdefault(setting, {})[str(horizon)] = met
                    if key == f"{first['setting']}/{first['horizon']}":
                        steps[name] = fm.error_by_step(y_true, y_pred)["mse"]
                        if name == "model":
                            plot_data = (origins, y_true, y_pred)
                        if name == "seasonal_naive":
                            plot_base = y_pred
        metrics: dict[str, Any] = dict(results)
        metrics["baselines"] = base_results
        metrics["input_length"] = plan.input_length
        metrics["protocol"] = plan.protocol
        metrics["freq"] = plan.series.freq
        metrics["period"] = plan.period
        metrics["period_source"] = plan.period_source
        metrics["split"] = dataclasses.asdict(plan.split)
        metrics["missing_timestamps"] = plan.series.missing_timestamps
        metrics["train_windows"] = first["n_train"]
        metrics["train_batch"] = {"batch_size": first["batch_size"], "passes_per_epoch": first["passes"]}
        if plan.notes:
            metrics["plan_log"] = plan.notes
        metrics["n_test_windows"] = {str(h): int(len(test_origins(cfg, plan, h))) for h in plan.horizons}
        if extra_seconds:
            metrics["extra_train_seconds"] = extra_seconds
        if plan.series.log:
            metrics["data_log"] = plan.series.log
        print(render_table(metrics, plan))
        if run_dir is not None and plot_data is not None:
            from seqkit.forecasting.plots import plot_error_by_step, plot_forecast

            origins, y_true, y_pred = plot_data
            ch = len(first["out_cols"]) - 1  # the last target (OT on ETTh1)
            name = plan.series.columns[first["out_cols"][ch]]
            plot_forecast(
                run_dir / "forecast.png",
                scaled[:, first["out_cols"][ch]],
                int(origins[-1]),
                y_pred[-1, :, ch],
                plan.input_length,
                baseline=None if plot_base is None else plot_base[-1, :, ch],
                title=f"{name}: last test window ({'normalised' if plan.protocol == 'ett' else 'scaled'})",
            )
            plot_error_by_step(
                run_dir / "error_by_step.png", steps, title=f"test MSE by horizon step ({first['setting']})"
            )
        return metrics

    def _score(self, plan, scaler, combo, y_true, y_pred, train_rows) -> dict[str, float]:
        if plan.protocol == "ett":
            return {"mse": fm.mse(y_true, y_pred), "mae": fm.mae(y_true, y_pred)}
        cols = combo["out_cols"]
        t = scaler.inverse(y_true, cols)
        p = scaler.inverse(y_pred, cols)
        train = scaler.inverse(train_rows[:, cols], cols)
        return fm.all_metrics(t, p, train, plan.period)

    def _train_extra(self, cfg: ForecastConfig, combo: dict[str, Any], run_dir: Path | None):
        """Train the model of another (setting, horizon) with the same callbacks as the main run.

        Its end-of-epoch snapshots go to ``backup/models/<setting>_<horizon>`` in the run directory,
        so a run killed while training it resumes it from its last finished epoch (and one trained
        before the kill is restored from its last snapshot, not trained again).
        """
        import keras

        from seqkit.seed import seed_from_config
        from seqkit.training import BestWeights, Checkpoint, NanGuard, TimeBudget, order_callbacks

        name = f"{combo['setting']}_{combo['horizon']}"
        backup = Path(run_dir) / "backup" / "models" / name if run_dir is not None else None
        state = Checkpoint.peek(backup) if backup is not None else None
        seed_from_config(cfg)
        model = self.build_model(cfg, combo["info"])
        best = BestWeights(self.objective, self.direction)
        prepared = Prepared(train=combo["train"], valid=combo["valid"], info=combo["info"], extra={"combo": combo})
        cbs: list = [NanGuard(), *self.callbacks(cfg, prepared), best]
        if cfg.max_train_minutes:
            cbs.append(TimeBudget(cfg.max_train_minutes, float(state["train_seconds"]) if state else 0.0))
        if cfg.early_stopping:
            cbs.append(keras.callbacks.EarlyStopping(monitor=self.objective, mode="min", patience=cfg.early_stopping))
        if backup is not None:
            cbs.append(Checkpoint(backup, best=best))
        cbs = order_callbacks(cbs)
        print(
            f"training {combo['setting']}/{combo['horizon']}"
            + (f" (resuming after epoch {state['epoch']})" if state else "")
        )
        t0 = time.perf_counter()
        model.fit(combo["train"], validation_data=combo["valid"], epochs=cfg.epochs, callbacks=cbs, verbose=2)
        secs = time.perf_counter() - t0 + (float(state["train_seconds"]) if state else 0.0)
        best.restore()
        if run_dir is not None:
            io.save_model(model, Path(run_dir) / "models" / f"{name}.keras")
        return model, secs

    # --- prediction -----------------------------------------------------------------------------
    def load(self, run_dir: Path) -> Predictor:
        return Predictor(run_dir)

    def predict_cli(self, run_dir, texts, input_path, output_path, as_json) -> None:
        if texts or not input_path:
            raise SeqkitError("forecast predict: give --input history.csv (the series up to now)")
        frame = self.load(Path(run_dir)).forecast_file(input_path)
        if output_path:
            with io.atomic_path(output_path) as tmp:
                frame.to_csv(tmp, index=False)
            print(f"wrote {len(frame)} forecast rows to {output_path}")
        elif as_json:
            print(frame.to_json(orient="records", date_format="iso"))
        else:
            print(frame.to_csv(index=False), end="")

    def evaluate_run(self, run_dir: Path, data: DataArgs) -> dict[str, Any]:
        """Score the run's model on the test part of ``data`` (default: the run's data) with the run's scaler."""
        from seqkit.training import config_from_run, load_run

        run_dir, config = load_run(run_dir, self.name)
        cfg = config_from_run(self, config)
        meta = io.read_json(Path(run_dir) / "series.json")
        # The model's sizes and the run's period, not ones derived afresh from (possibly other) data.
        cfg = dataclasses.replace(
            cfg,
            settings=[meta["setting"]],
            horizons=[meta["horizon"]],
            period=meta["period"],
            input_length=meta["input_length"],
        )
        if not (data.data or data.train or data.valid or data.test) and meta.get("data_path"):
            data = DataArgs(data=meta["data_path"])  # default: the file the run was trained on
        plan = make_plan(cfg, data)
        scaler = StandardScaler.from_dict(meta["scaler"])
        if scaler.columns != plan.series.columns:
            raise SeqkitError(
                f"{plan.series.path}: columns {plan.series.columns} differ from the run's {scaler.columns}"
            )
        scaled = scaler.transform(plan.series.values)
        import seqkit.forecasting.layers  # noqa: F401 - registers the layers model.keras uses
        from seqkit.training import load_model

        model = load_model(Path(run_dir) / "model.keras")
        combo = dict(
            setting=meta["setting"], horizon=meta["horizon"], in_cols=meta["in_cols"], out_cols=meta["out_cols"]
        )
        origins = test_origins(cfg, plan, meta["horizon"])
        y_true, y_pred = backtest(
            KerasForecaster(model, plan.input_length, meta["in_cols"]),
            scaled,
            origins,
            meta["horizon"],
            meta["out_cols"],
        )
        train_rows = scaled[plan.split.train[0] : plan.split.train[1]]
        return {
            meta["setting"]: {str(meta["horizon"]): self._score(plan, scaler, combo, y_true, y_pred, train_rows)},
            "n_test_windows": int(len(origins)),
        }

    # --- tests ----------------------------------------------------------------------------------
    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        path = Path(directory) / "series.csv"
        write_fixture_csv(path, 72)
        overrides = dict(
            targets=["a", "b"],
            covariates=["c"],
            period=6,
            horizons=[4],
            input_length=12,
            segment_length=4,
            units=[4],
            epochs=1,
            batch_size=16,
            baselines=["naive", "seasonal_naive", "mean"],
            valid_fraction=0.2,
            test_fraction=0.2,
        )
        return DataArgs(data=str(path)), overrides

    def predict_inputs(self, directory: Path) -> list[str]:
        return [str(Path(directory) / "series.csv")]


def write_fixture_csv(path: Path, n: int, start: str = "2020-01-01") -> Path:
    """A tiny hourly series with two seasonal targets and one covariate."""
    import pandas as pd

    t = np.arange(n)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "a": np.round(10 + np.sin(2 * np.pi * t / 6) + 0.1 * rng.normal(size=n), 4),
            "b": np.round(5 + 0.05 * t + np.cos(2 * np.pi * t / 6), 4),
            "c": np.round(rng.normal(size=n), 4),
        }
    )
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


class Predictor:
    """A finished run, ready to forecast the next ``horizon`` steps after a history."""

    def __init__(self, run_dir: Path):
        import seqkit.forecasting.layers  # noqa: F401 - registers the layers model.keras uses
        from seqkit.training import load_model, load_run

        self.run_dir, config = load_run(run_dir, "forecast")
        self.meta = io.read_json(Path(self.run_dir) / "series.json")
        self.scaler = StandardScaler.from_dict(self.meta["scaler"])
        self.model = load_model(Path(self.run_dir) / "model.keras")
        self._forecaster = KerasForecaster(self.model, self.meta["input_length"], self.meta["in_cols"])

    def forecast_file(self, path: str):
        m = self.meta
        s = read_series_csv(path, m["date_column"], m["targets"], m["covariates"], m["freq"], m["missing"])
        return self.forecast(s)

    def forecast(self, series: Series):
        """``series`` (a :class:`Series` with the run's columns) -> DataFrame of the next ``horizon`` steps."""
        import pandas as pd

        m = self.meta
        if series.columns != self.scaler.columns:
            raise SeqkitError(f"{series.path}: columns {series.columns} differ from the model's {self.scaler.columns}")
        L, H = m["input_length"], m["horizon"]
        if len(series) < L:
            raise fail(f"history has {len(series)} rows; the model needs the last {L}", series.path)
        x = self.scaler.transform(series.values[-L:])[None][:, :, m["in_cols"]]
        y = self._forecaster.predict_windows(x)[0]
        y = self.scaler.inverse(y, m["out_cols"])
        dates = pd.date_range(series.dates[-1], periods=H + 1, freq=series.freq)[1:]
        frame = pd.DataFrame(y, columns=[series.columns[c] for c in m["out_cols"]])
        frame.insert(0, m["date_column"] or "date", dates)
        return frame


def render_table(metrics: dict[str, Any], plan: Plan) -> str:
    """Model vs baselines, one row per (setting, horizon), with literature anchors on ETTh1."""
    keys = ["mse", "mae"] if plan.protocol == "ett" else ["mae", "rmse", "smape", "mase"]
    names = ["model", *metrics["baselines"]]
    lines = [
        f"period {plan.period} ({plan.period_source}), input length {plan.input_length}, "
        f"rows train/valid/test {plan.split.train[1] - plan.split.train[0]}/"
        f"{plan.split.valid[1] - plan.split.valid[0]}/{plan.split.test[1] - plan.split.test[0]}"
    ]
    for setting in plan.settings:
        for h in plan.horizons:
            lines.append(f"{setting} H={h}:")
            for name in names:
                src = metrics if name == "model" else metrics["baselines"][name]
                met = src.get(setting, {}).get(str(h))
                if met is None:
                    continue
                vals = "  ".join(f"{k}={met[k]:.4f}" for k in keys if k in met and not math.isnan(met[k]))
                lines.append(f"  {name:16s} {vals}")
            if plan.protocol == "ett":
                for ref, v in ANCHORS.get((setting, h), {}).items():
                    lines.append(f"  {ref:16s} mse={v:.3f} (published)")
    return "\n".join(lines)


def demo(out_dir: str | Path, epochs: int = 30) -> dict[str, Any]:
    """Train a small model on statsmodels' bundled yearly sunspots and print it against the baselines (< 1 min)."""
    from seqkit.config import resolve_config
    from seqkit.training import train

    cfg = resolve_config(
        ForecastConfig,
        overrides=[
            "dataset=statsmodels_sunspots",
            "units=[32]",
            f"epochs={epochs}",
            "batch_size=32",
            "early_stopping=8",
            "stride=1",
        ],
    )
    _, metrics = train(TASK, cfg, DataArgs(), out=out_dir, overwrite=True)
    return metrics


TASK = ForecastTask()
