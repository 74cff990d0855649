"""``make bench``: run every benchmark, each in its own process, and write a summary.

Usage: ``python -m bench.run [NAME ...]`` (default: all). Each benchmark writes
``bench/results/<name>.json`` and ``.md``; this collects the markdown files
into ``bench/results/README.md`` with each run's wall time and peak memory.
"""

from __future__ import annotations

import importlib.util
import resource
import subprocess
import sys
import time

from bench.common import RESULTS, environment, md_table
from seqkit.io import write_json, write_text

# Cheap, machine-level measurements first; the long task trainings after.
ORDER = [
    "speed",
    "gradients",
    "regularizers",
    "forecast",
    "forecast_ablation",
    "forecast_series",
    "season_rule",
    "sentiment",
    "ner",
    "charlm",
    "tuning",
]


# Result files a benchmark writes besides its own name's, shown after it in the summary.
ALSO_WRITES = {"forecast_series": ["forecast_series_as_file"]}


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


README = RESULTS.parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _update_readme(env: dict, rows: list[dict]) -> None:
    """Replace the block between the bench markers in the top-level README with the latest headline table."""
    if not README.exists():
        return
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return
    headline = RESULTS / "headline.md"
    lines = [
        START,
        f"Summary rebuilt {env['date']} by `python -m bench.run` from `bench/results/*.md`; "
        "each table names the date and command that measured it (2 shared CPU cores).",
        "",
    ]
    for name in ORDER:
        md = RESULTS / f"{name}.md"
        if md.exists():
            text_lines = md.read_text(encoding="utf-8").splitlines()
            stamp = [ln[4:-3].strip() for ln in text_lines if ln.startswith("<!--") and ln.endswith("-->")]
            body = "\n".join(ln for ln in text_lines if not ln.startswith("<!--"))
            lines += [f"#### {name}", ""] + ([f"_{stamp[0]}_", ""] if stamp else []) + [body.strip(), ""]
    if headline.exists():
        lines.insert(3, headline.read_text(encoding="utf-8"))
    lines.append(END)
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    write_text(README, before + "\n".join(lines) + after)


def main(argv: list[str] | None = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    summary_only = "--summary-only" in argv  # rebuild the summaries from the result files already written
    names = [a for a in argv if a != "--summary-only"] or [n for n in ORDER if _available(n)]
    if summary_only:
        names = []
    rows = []
    for name in names:
        if not _available(name):
            print(f"bench: no module bench/{name}.py", file=sys.stderr)
            return 2
        print(f"\n=== bench {name} ===", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # ru_maxrss of children is the largest child so far; report it only when this child raised it.
        rows.append(
            {
                "benchmark": name,
                "status": "ok" if rc == 0 else f"failed ({rc})",
                "wall_seconds": round(seconds, 1),
                "peak_rss_mb": round(peak / 1024, 1) if peak > before else None,
            }
        )
    env = environment()
    if not summary_only:
        write_json(RESULTS / "run.json", {"environment": env, "runs": rows})
    parts = [
        f"# Benchmark results\n\nWritten by `make bench` (`python -m bench.run`) on {env['date']} "
        f"(Python {env['python']}, TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['cpus']} CPUs).\n",
        md_table(rows),
    ]
    for name in ORDER + [n for n in names if n not in ORDER]:
        for result in [name, *ALSO_WRITES.get(name, [])]:
            md = RESULTS / f"{result}.md"
            if md.exists():
                parts.append(f"\n## {result}\n\n" + md.read_text(encoding="utf-8"))
    write_text(RESULTS / "README.md", "\n".join(parts))
    _update_readme(env, rows)
    print(f"\nsummary: {RESULTS / 'README.md'}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
