"""``make bench``: run every benchmark, each in its own process, and write a summary.

Usage: ``python -m bench.run [NAME ...]`` (default: all). Each benchmark writes
``bench/results/<name>.json`` and ``.md``; this collects the markdown files
into ``bench/results/README.md`` with each run's wall time and peak memory, and
rewrites the top-level README's results block (the three-seed headline table of
``bench.results`` and a three-line speed summary).
"""

from __future__ import annotations

import importlib.util
import json
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
    "results",
]


# Result files a benchmark writes besides its own name's, shown after it in the summary.
ALSO_WRITES = {"forecast_series": ["forecast_series_as_file"]}


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


README = RESULTS.parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def speed_summary() -> list[str]:
    """Three lines: seqkit's training and inference throughput over PyTorch's ``nn.LSTM``/``nn.GRU``, same run."""
    path = RESULTS / "speed.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))

    def ratios(table: str) -> str:
        parts = []
        for row in data.get(table, []):
            seqkit, torch = row.get("seqkit"), row.get("torch")
            if seqkit and torch:
                parts.append(f"{row['config']} {seqkit / torch:.2f}x")
        return ", ".join(parts)

    date = data["environment"]["date"][:10]
    return [
        f"Speed, seqkit over PyTorch on the same shapes in the same run ({date}, 2 threads each, "
        "`python -m bench.speed`; higher is faster):",
        "",
        f"- training (forward + backward + update), tokens/s: {ratios('train')}",
        f"- inference (forward pass), tokens/s: {ratios('inference')}",
    ]


def _update_readme() -> None:
    """Rewrite the README's results block: the three-seed headline table and the speed summary."""
    if not README.exists():
        return
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return
    from bench.results import headline_table

    lines = [START]
    results = RESULTS / "results.json"
    if results.exists():
        data = json.loads(results.read_text(encoding="utf-8"))
        lines += [headline_table(data["rows"]).rstrip(), ""]
    lines += speed_summary()
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
    elif (RESULTS / "run.json").exists():
        rows = json.loads((RESULTS / "run.json").read_text(encoding="utf-8"))["runs"]
    parts = [
        f"# Benchmark results\n\nWritten by `make bench` (`python -m bench.run`) on {env['date']} "
        f"(Python {env['python']}, TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['cpus']} CPUs).\n",
        md_table(rows),
    ]
    # The headline table first, then every benchmark in the order they run.
    shown = ["results"] + [n for n in ORDER if n != "results"]
    for name in shown + [n for n in names if n not in shown]:
        for result in [name, *ALSO_WRITES.get(name, [])]:
            md = RESULTS / f"{result}.md"
            if md.exists():
                parts.append(f"\n## {result}\n\n" + md.read_text(encoding="utf-8"))
    write_text(RESULTS / "README.md", "\n".join(parts))
    _update_readme()
    print(f"\nsummary: {RESULTS / 'README.md'}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
