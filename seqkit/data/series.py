"""Time series from CSV files: parsing, validation, the missing-data policy and scalers.

A series file is a CSV with one date column and numeric columns. Targets are
forecast; covariates are only read as inputs. Missing timestamps and NaN values
are never used silently: ``missing="error"`` (default) stops with the first
offending row, ``"ffill"`` carries the last value forward and ``"interpolate"``
interpolates linearly in time; what was filled is logged and kept in
:attr:`Series.log`.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqkit.data.lines import blank_invisible_lines
from seqkit.errors import SeqkitError, fail

log = logging.getLogger("seqkit.series")

MISSING_POLICIES = ("error", "ffill", "interpolate")


@dataclasses.dataclass
class Series:
    """A regular multivariate series: ``values`` is ``(time, len(columns))`` float32, targets first."""

    path: str
    dates: pd.DatetimeIndex
    values: np.ndarray
    targets: list[str]
    covariates: list[str]
    freq: str | None
    log: list[str] = dataclasses.field(default_factory=list)
    missing_timestamps: int = 0  # grid points absent from the file (inserted, then filled)
    filled_values: int = 0  # cells filled by the missing policy (gap rows included)

    @property
    def columns(self) -> list[str]:
        return self.targets + self.covariates

    def __len__(self) -> int:
        return len(self.values)


def _csv_row(i: int) -> int:
    """File line of data row ``i`` (0-based), counting the header as line 1."""
    return int(i) + 2


def read_series_csv(
    path: str | os.PathLike,
    date_column: str | None = None,
    targets: list[str] | None = None,
    covariates: list[str] | None = None,
    freq: str | None = None,
    missing: str = "error",
) -> Series:
    """Read and validate a series CSV.

    ``date_column`` defaults to the first column, ``targets`` to every other
    column. Raises :class:`SeqkitError` naming the file and the row or column for
    unsorted or duplicate timestamps, unparsable dates, non-numeric values,
    unknown columns and (with ``missing="error"``) gaps or NaN values.
    """
    path = Path(path)
    if missing not in MISSING_POLICIES:
        raise fail(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}", field="missing")
    if not path.exists():
        raise fail("file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise fail(f"not a readable CSV ({str(e).splitlines()[0]})", path) from None
    # A row holding only a byte-order mark or zero-width characters is blank (pandas skips blank rows).
    text = blank_invisible_lines(text.removeprefix("\ufeff"))
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as e:
        raise fail(f"not a readable CSV ({str(e).splitlines()[0]})", path) from None
    except pd.errors.EmptyDataError:
        raise fail("empty file", path) from None
    if df.shape[1] < 2:
        raise fail("expected a date column and at least one value column", path)
    date_column = date_column or df.columns[0]
    if date_column not in df.columns:
        raise fail(f"date column not found; columns are {list(df.columns)}", path, field=date_column)
    others = [c for c in df.columns if c != date_column]
    covariates = list(covariates or [])
    targets = list(targets) if targets else [c for c in others if c not in covariates]
    for c in targets + covariates:
        if c not in df.columns:
            raise fail(f"column not found; columns are {list(df.columns)}", path, field=c)
        if c == date_column:
            raise fail("the date column cannot be a target or covariate", path, field=c)
    if set(targets) & set(covariates):
        raise fail(
            "a column cannot be both target and covariate", path, field=sorted(set(targets) & set(covariates))[0]
        )
    if not targets:
        raise fail("no target columns", path)

    raw_dates = df[date_column].str.strip()
    dates = parse_dates(raw_dates)
    bad = dates.isna().to_numpy().nonzero()[0]
    if len(bad):
        i = bad[0]
        raise fail(f"cannot parse date {raw_dates.iloc[i]!r}", path, _csv_row(i), date_column)
    dates = pd.DatetimeIndex(dates)
    # Timedeltas, not raw integers: pandas parses at s, ms, us or ns resolution and asi8 counts in that unit.
    steps = dates[1:] - dates[:-1]
    zero = pd.Timedelta(0)
    if (steps == zero).any():
        i = int(np.nonzero(steps == zero)[0][0]) + 1
        raise fail(f"duplicate timestamp {dates[i]}", path, _csv_row(i), date_column)
    if (steps < zero).any():
        i = int(np.nonzero(steps < zero)[0][0]) + 1
        raise fail(f"timestamps are not sorted ({dates[i]} after {dates[i - 1]})", path, _csv_row(i), date_column)

    cols = targets + covariates
    values = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        text = df[c].str.strip()
        num = pd.to_numeric(text.replace({"": None, "NaN": None, "nan": None, "NA": None}), errors="coerce")
        nonnum = num.isna() & text.ne("") & ~text.isin(["NaN", "nan", "NA"])
        if nonnum.any():
            i = int(nonnum.to_numpy().nonzero()[0][0])
            raise fail(f"non-numeric value {text.iloc[i]!r}", path, _csv_row(i), c)
        values[:, j] = num.to_numpy(dtype=np.float64)

    freq = freq or _infer_freq(dates, path)
    messages: list[str] = []
    frame = pd.DataFrame(values, index=dates, columns=cols)
    grid = pd.date_range(dates[0], dates[-1], freq=freq)
    off_grid = ~dates.isin(grid)
    if off_grid.any():
        i = int(off_grid.nonzero()[0][0])
        raise fail(
            f"timestamp {dates[i]} is not on the {freq} grid starting {dates[0]}", path, _csv_row(i), date_column
        )
    n_gaps = len(grid) - len(dates)
    if n_gaps:
        first = _show(grid[~grid.isin(dates)][0])
        if missing == "error":
            raise fail(f"{n_gaps} missing timestamp(s), first {first}; set missing=ffill or missing=interpolate", path)
        frame = frame.reindex(grid)
        messages.append(f"{n_gaps} missing timestamp(s) inserted (first {first})")
    nan_mask = frame.isna().to_numpy()
    n_nan = int(nan_mask.sum())
    if nan_mask.any():
        if missing == "error":
            r, c = map(int, np.argwhere(nan_mask)[0])
            # Rows of the file: only meaningful when no gap rows were inserted.
            raise fail(
                f"{n_nan} missing value(s); set missing=ffill or missing=interpolate", path, _csv_row(r), cols[c]
            )
        if missing == "ffill":
            frame = frame.ffill()
        else:
            frame = frame.interpolate(method="time", limit_area="inside")
        if frame.isna().to_numpy().any():
            c = cols[int(np.argwhere(frame.isna().to_numpy())[0][1])]
            raise fail(
                f"missing value(s) at the start or end of the series cannot be filled by {missing}", path, field=c
            )
        messages.append(f"{n_nan} missing value(s) filled by {missing}")
    for m in messages:
        log.warning("%s: %s", path, m)
    return Series(
        path=str(path),
        dates=pd.DatetimeIndex(frame.index),
        values=frame.to_numpy(dtype=np.float32),
        targets=targets,
        covariates=covariates,
        freq=freq,
        log=messages,
        missing_timestamps=n_gaps,
        filled_values=n_nan,
    )


_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
# Calendar grids tried when gaps defeat pandas.infer_freq (anchored at the first timestamp's month).
_CALENDAR = ("B", "MS", "ME", "QS-{m}", "QE-{m}", "YS-{m}", "YE-{m}")


def parse_dates(raw: pd.Series) -> pd.Series:
    """Parse date strings; unparsable ones become ``NaT``.

    Timestamps with UTC offsets that change (a zone across a daylight-saving change) cannot share
    one fixed offset. Sub-daily data are then kept as instants in UTC, where hours stay one hour
    apart across the change; daily and coarser data keep their local wall-clock dates (offsets
    dropped), because a local day across the change lasts 23 or 25 hours.
    """
    try:
        return pd.to_datetime(raw, errors="coerce")
    except ValueError:  # pandas: "Mixed timezones detected"; errors="coerce" does not cover it
        pass
    utc = pd.to_datetime(raw, errors="coerce", utc=True)
    steps = utc.dropna().diff().dropna()
    if len(steps) and steps.median() >= pd.Timedelta(hours=23):
        return pd.to_datetime(raw.str.replace(_OFFSET, "", regex=True), errors="coerce")
    return utc


def _show(ts: pd.Timestamp) -> str:
    """A timestamp as the file would write it: the date alone when it is midnight without a zone."""
    return str(ts.date()) if ts.tz is None and ts == ts.normalize() else str(ts)


def _infer_freq(dates: pd.DatetimeIndex, path) -> str:
    """The frequency of ``dates``: pandas' ``infer_freq``, or with gaps the coarsest grid holding every date.

    Candidates are the most common spacing (as a fixed step) and, for daily or coarser spacing,
    business days and month / quarter / year starts and ends anchored at the first date. The
    coarsest grid that holds every timestamp counts the fewest gaps (a daily file without
    weekends is business-daily, not daily with gaps). Works at any datetime resolution.
    """
    if len(dates) < 3:
        raise fail("too few rows to infer the frequency; set freq=...", path)
    with pd.option_context("future.infer_freq_returns_offset", True):
        offset = pd.infer_freq(dates)
    if offset is not None:
        return offset.freqstr
    steps = dates[1:] - dates[:-1]
    step = pd.Series(steps).mode().iloc[0]
    span = dates[-1] - dates[0]
    candidates = []
    if span / step <= 10 * len(dates):  # a grid more than 90 % empty is not a regular series with gaps
        day = pd.Timedelta(days=1)
        fixed = pd.tseries.frequencies.to_offset(step).freqstr
        candidates.append(f"{step // day}D" if step % day == pd.Timedelta(0) else fixed)
    if step >= pd.Timedelta(hours=23):
        month = dates[0].strftime("%b").upper()
        candidates += [c.format(m=month) for c in _CALENDAR]
    best: tuple[int, str] | None = None
    for freq in candidates:
        grid = pd.date_range(dates[0], dates[-1], freq=freq)
        if dates.isin(grid).all() and (best is None or len(grid) < best[0]):
            best = (len(grid), freq)
    if best is None:
        raise fail("cannot infer the frequency; set freq=... (e.g. h, D, MS)", path)
    return pd.tseries.frequencies.to_offset(best[1]).freqstr


def check_length(series: Series, need: int, what: str = "input_length + horizon") -> None:
    if len(series) < need:
        raise fail(f"series has {len(series)} rows, shorter than {what} = {need}", series.path)


def series_from_frame(frame: pd.DataFrame, date_column: str, targets: list[str], name: str, freq: str) -> Series:
    """A :class:`Series` from an in-memory frame (used for bundled data such as statsmodels' sunspots)."""
    dates = pd.DatetimeIndex(pd.to_datetime(frame[date_column]))
    return Series(name, dates, frame[targets].to_numpy(dtype=np.float32), list(targets), [], freq)


@dataclasses.dataclass
class StandardScaler:
    """Per-column z-score; ``fit`` only ever sees the rows it is given (the training part)."""

    mean: np.ndarray
    std: np.ndarray
    columns: list[str]

    @classmethod
    def fit(cls, values: np.ndarray, columns: list[str]) -> StandardScaler:
        v = np.asarray(values, dtype=np.float64)
        if len(v) == 0:
            raise SeqkitError("cannot fit a scaler on zero rows")
        std = v.std(axis=0)
        # A constant column would divide by zero; leave it centred but unscaled.
        std = np.where(std > 1e-12, std, 1.0)
        return cls(v.mean(axis=0), std, list(columns))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray, columns: slice | list[int] | None = None) -> np.ndarray:
        """Undo ``transform`` on ``(..., k)`` arrays holding the columns ``columns`` (default all)."""
        idx = slice(None) if columns is None else columns
        return (np.asarray(values, np.float64) * self.std[idx] + self.mean[idx]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StandardScaler:
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64), list(d["columns"]))
