"""The command line stamped on every benchmark result names no path of the machine."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command  # noqa: E402


def test_a_module_run_is_recorded_as_the_module():
    assert command([str(ROOT / "bench" / "speed.py"), "--configs", "lstm256"]) == (
        "python -m bench.speed --configs lstm256"
    )


def test_paths_become_relative_or_lose_their_folders():
    argv = [str(ROOT / "bench" / "ner.py"), "--out", str(ROOT / "runs" / "a"), "--out=/somewhere/else/b"]
    assert command(argv) == "python -m bench.ner --out runs/a --out=.../b"


def test_a_script_outside_the_repository_keeps_only_its_name():
    assert command(["/somewhere/copy/bench/speed.py", "--seconds", "2"]) == "python .../speed.py --seconds 2"
