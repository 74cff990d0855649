"""Shared helpers for benchmark modules.

Every benchmark module ``bench/<name>.py`` has a ``main(argv=None)`` that
measures something and calls :func:`write_result`, which writes
``bench/results/<name>.json`` (machine-readable) and ``bench/results/<name>.md``
(a markdown table) atomically, stamped with the date, host facts and the
command that produced them. Numbers are never typed by hand.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

from seqkit.io import write_json, write_text

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "command": command(),
    }


def command(argv: list[str] | None = None) -> str:
    """The command line that ran, with no path of the machine in it.

    ``python -m bench.x`` puts the script's absolute path in ``sys.argv[0]``: it is written back
    as the module. Other absolute paths become relative to the repository, or keep only their
    last part (``.../name``) when they lie outside it.
    """
    argv = list(sys.argv if argv is None else argv)
    repo = RESULTS.parent.parent
    head: list[str] = []
    if argv:
        script = Path(argv[0])
        if script.suffix == ".py" and script.resolve().is_relative_to(repo):
            module = script.resolve().relative_to(repo).with_suffix("").parts
            head = ["-m", ".".join(module[:-1] if module[-1] == "__main__" else module)]
        else:
            head = [_portable(argv[0], repo)]
    return " ".join(["python", *head, *(_portable(a, repo) for a in argv[1:])])


def _portable(arg: str, repo: Path) -> str:
    key, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if not value.startswith("/"):
        return arg
    path = Path(value).resolve()
    value = str(path.relative_to(repo)) if path.is_relative_to(repo) else f".../{path.name}"
    return key + eq + value


def write_result(name: str, data: dict[str, Any], markdown: str, module: str | None = None) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md``; returns the JSON path.

    ``module`` names the writing benchmark when it is not ``bench/<name>.py``.
    """
    env = environment()
    payload = {"benchmark": name, "environment": env, **data}
    path = write_json(RESULTS / f"{name}.json", payload)
    header = f"<!-- written by bench/{module or name}.py on {env['date']}: {env['command']} -->\n"
    write_text(RESULTS / f"{name}.md", header + markdown.rstrip() + "\n")
    return path


def md_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Render ``rows`` as a markdown table (floats with 4 significant digits)."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def data_dir_or_skip(name: str) -> Path | None:
    """Resolve a registered data set for a benchmark, or print why it is skipped and return None."""
    from seqkit.data.registry import resolve
    from seqkit.errors import SeqkitError

    try:
        return resolve(name)
    except SeqkitError as e:
        print(f"skipping {name}: {e}")
        return None


def headline_run(task: str, seed: int = 1) -> Path:
    """The run of ``task``'s default config with ``seed`` that ``bench.results`` trains (trained now if missing).

    The per-task benchmarks measure this run (speed, plots, samples) instead of training the
    default config once more: the numbers they report are then seed 1 of the headline table.
    """
    from bench.results import HEADLINES, WORK, train_seed

    headline = next(h for h in HEADLINES if h.task == task)
    run = train_seed(headline, seed, quiet=False)
    if not run.ok:
        raise SystemExit(f"bench: {task} seed {seed} did not finish: {run.message}")
    return WORK / task / f"seed-{seed}"
