"""ETTh1 ablation: the default forecast model with one borrowed idea changed at a time (M, H=96).

``python -m bench.forecast_ablation`` is ``python -m bench.forecast --ablation``, as its own
benchmark so that ``make bench`` runs it; results in ``bench/results/forecast_ablation.{json,md}``.
"""

from __future__ import annotations

import sys

from bench.forecast import main as forecast_main


def main(argv: list[str] | None = None) -> int:
    return forecast_main(["--ablation", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
