"""``python -m seqkit.tuning_distributed TASK --workers N [tune options]``: a keras-tuner chief and N workers.

Starts ``python -m seqkit tune TASK [tune options]`` once as the chief (it
serves the oracle over gRPC and writes the results) and N times as workers
(each asks the chief for trials and runs them), all on this machine's
loopback, and waits for every one of them. Each process logs to
``OUT/logs/<id>.log``. To spread workers over several machines, start the
processes by hand with the same environment variables (docs/tuning.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from seqkit.errors import SeqkitError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _stop(procs: dict[str, subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM the processes still running, then SIGKILL those that ignore it."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(
    task: str,
    workers: int,
    tune_args: list[str],
    out: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float | None = None,
    start_timeout: float = 600.0,
    chief_grace: float = 120.0,
    module: str = "seqkit",
) -> int:
    """Run the chief and ``workers`` workers; returns 0 when all of them succeeded."""
    if workers < 1:
        raise SeqkitError(f"--workers must be at least 1, got {workers}")
    port = port or free_port(host)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", module, "tune", task, *tune_args, "--out", str(out)]
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port)}
    base_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    procs: dict[str, subprocess.Popen] = {}
    files = []

    def start(tuner_id: str) -> None:
        f = open(logs / f"{tuner_id}.log", "w")  # noqa: SIM115 - closed below, after the process ends
        files.append(f)
        env = {**base_env, "KERASTUNER_TUNER_ID": tuner_id}
        procs[tuner_id] = subprocess.Popen(command, env=env, stdout=f, stderr=subprocess.STDOUT)
        print(f"started {tuner_id} (pid {procs[tuner_id].pid}), log {logs / f'{tuner_id}.log'}", flush=True)

    t0 = time.monotonic()
    try:
        start("chief")
        # The chief prepares the data and builds one model before it listens: wait for it, so a
        # chief started with --overwrite has cleared the search directory before any worker reads it.
        while not _listening(host, port):
            if procs["chief"].poll() is not None:
                raise SeqkitError(f"the chief exited with status {procs['chief'].returncode}; see {logs / 'chief.log'}")
            if time.monotonic() - t0 > start_timeout:
                raise SeqkitError(f"the chief did not listen on {host}:{port} within {start_timeout:.0f} s")
            time.sleep(0.2)
        for i in range(workers):
            start(f"tuner{i}")
        workers_done_at = None
        while True:
            if all(p.poll() is not None for p in procs.values()):
                break
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise SeqkitError(f"distributed search did not finish within {timeout:.0f} s; stopped every process")
            if workers_done_at is None and all(p.poll() is not None for k, p in procs.items() if k != "chief"):
                workers_done_at = time.monotonic()
            if workers_done_at is not None and time.monotonic() - workers_done_at > chief_grace:
                raise SeqkitError(
                    f"every worker exited but the chief still waits for trials after {chief_grace:.0f} s "
                    "(a worker died during a trial: restart it with the same KERASTUNER_TUNER_ID to finish it)"
                )
            time.sleep(0.2)
    except BaseException:
        _stop(procs)
        raise
    finally:
        for f in files:
            f.close()
    status = {k: p.returncode for k, p in procs.items()}
    failed = {k: v for k, v in status.items() if v != 0}
    for k, v in failed.items():
        print(f"{k} exited with status {v}; see {logs / f'{k}.log'}", file=sys.stderr)
    summary = out / "summary.json"
    if not failed and summary.exists():
        print(summary.read_text(encoding="utf-8"), end="")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m seqkit.tuning_distributed",
        description="keras-tuner chief + N workers on this machine; other options go to `seqkit tune`.",
    )
    p.add_argument("task")
    p.add_argument("--workers", type=int, default=2, help="number of worker processes")
    p.add_argument("--out", help="tune directory (default tune/TASK)")
    p.add_argument("--host", default="127.0.0.1", help="address the chief listens on")
    p.add_argument("--port", type=int, help="chief port (default: a free one)")
    p.add_argument("--timeout", type=float, help="stop everything after this many seconds")
    p.add_argument("--module", default="seqkit", help=argparse.SUPPRESS)  # tests: python -m MODULE tune ...
    args, rest = p.parse_known_args(argv)
    out = Path(args.out or Path("tune") / args.task)
    try:
        return run(args.task, args.workers, rest, out, args.host, args.port, args.timeout, module=args.module)
    except SeqkitError as e:
        print(f"seqkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("seqkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
