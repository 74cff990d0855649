"""How often the seasonal-period check keeps a season that is there, and one that is not, on generated series.

``python -m bench.season_rule [--seeds 40]``

Each case is generated ``--seeds`` times; the table gives the share of series for which
:func:`seqkit.forecasting.season.check_season` (the rule ``make_plan`` uses) keeps the candidate
period, beside two alternatives: the same autocorrelation on first differences against Bartlett's
bound (R ``forecast``'s seasonality test, run on differences), and the rule without detrending.
Rows marked "no season" should be near 0, the others near 1. No real data is read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from bench.common import md_table, write_result

Z_BARTLETT = 1.645  # one-sided 5 %, as in forecast::thetaf's seasonality test


def differenced_bartlett(y: np.ndarray, m: int) -> bool:
    from statsmodels.tsa.stattools import acf

    d = np.diff(y)
    r = acf(d, nlags=m, fft=True)
    return bool(r[m] > Z_BARTLETT * np.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / len(d)))


def raw_band(y: np.ndarray, m: int) -> bool:
    from statsmodels.tsa.stattools import acf

    return bool(acf(y, nlags=m, fft=True)[m] > 1.96 / np.sqrt(len(y)))


def chosen(y: np.ndarray, m: int) -> bool:
    from seqkit.forecasting.season import check_season

    return check_season(y, m).supported


RULES: dict[str, Callable[[np.ndarray, int], bool]] = {
    "detrended, 1.96/sqrt(n) (chosen)": chosen,
    "differences, Bartlett": differenced_bartlett,
    "raw, 1.96/sqrt(n)": raw_band,
}


def _seasonal(n: int, m: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)
    return 100 + 0.3 * t + 10 * np.sin(2 * np.pi * t / m) + noise * rng.normal(size=n)


def _ar(n: int, phi: list[float], rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(size=n + 200)
    y = np.zeros(n + 200)
    for t in range(len(phi), n + 200):
        y[t] = sum(p * y[t - 1 - i] for i, p in enumerate(phi)) + e[t]
    return y[200:]


def cases() -> list[tuple[str, bool, int, Callable[[np.random.Generator], np.ndarray]]]:
    """``(name, has a season, candidate period, generator)``; noise is relative to a season of amplitude 10."""
    out = []
    for n in (36, 100, 300):
        out += [
            (f"random walk, n={n}", False, 12, lambda r, n=n: np.cumsum(r.normal(size=n))),
            (f"random walk with drift, n={n}", False, 12, lambda r, n=n: np.cumsum(0.5 + r.normal(size=n))),
            (f"white noise, n={n}", False, 12, lambda r, n=n: r.normal(size=n)),
            (f"AR(1) 0.9, n={n}", False, 12, lambda r, n=n: _ar(n, [0.9], r)),
            (f"AR(2) cycle of ~10 steps, n={n}", False, 12, lambda r, n=n: _ar(n, [1.6, -0.9], r)),
        ]
    for n, noise in ((36, 3.0), (36, 6.0), (60, 3.0), (60, 6.0), (100, 6.0)):
        out.append(
            (f"monthly season + trend, n={n}, noise {noise}", True, 12, lambda r, n=n, s=noise: _seasonal(n, 12, s, r))
        )
    for n, noise in ((156, 2.0), (156, 5.0)):
        out.append(
            (f"52-step season + trend, n={n}, noise {noise}", True, 52, lambda r, n=n, s=noise: _seasonal(n, 52, s, r))
        )
    out.append(("7-step season + trend, n=28, noise 1", True, 7, lambda r: _seasonal(28, 7, 1.0, r)))
    out.append(("4-step season + trend, n=36, noise 3", True, 4, lambda r: _seasonal(36, 4, 3.0, r)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.season_rule", description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=40)
    args = ap.parse_args(argv)
    rows = []
    for name, seasonal, m, gen in cases():
        kept = {rule: 0 for rule in RULES}
        for seed in range(args.seeds):
            y = gen(np.random.default_rng(seed))
            for rule, fn in RULES.items():
                kept[rule] += fn(y, m)
        rows.append(
            {
                "series": name,
                "season": "yes" if seasonal else "no",
                "m": m,
                **{k: v / args.seeds for k, v in kept.items()},
            }
        )
    md = [
        "# Seasonal-period check: share of generated series whose candidate period is kept\n",
        f"{args.seeds} series per row (seeds 0..{args.seeds - 1}); 'season: no' rows should be near 0, "
        "'yes' rows near 1. Season amplitude 10, Gaussian noise of the given standard deviation, "
        "trend 0.3 per step; n is the number of training rows the check sees.\n",
        md_table(rows, ["series", "season", "m", *RULES]),
    ]
    write_result("season_rule", {"seeds": args.seeds, "rows": rows}, "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
