"""``make demo``: the main job, offline, in a few minutes of CPU.

1. A character language model trained on the Python standard library's own
   source (it ships with every Python, as char-rnn used the Linux source), then
   sampled.
2. A forecast of the yearly sunspot numbers that statsmodels ships, scored
   against naive baselines by the same code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from seqkit._quiet import import_tensorflow_quietly
    from seqkit.errors import SeqkitError

    import_tensorflow_quietly()

    out = Path(argv[0] if argv else "runs/demo")
    try:
        from tasks import charlm, forecast

        print("== 1/2 character language model on the Python standard library's source ==", flush=True)
        charlm.demo(out / "charlm")
        print("\n== 2/2 forecasting yearly sunspots (statsmodels' data set) ==", flush=True)
        forecast.demo(out / "forecast")
    except SeqkitError as e:
        print(f"seqkit: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
