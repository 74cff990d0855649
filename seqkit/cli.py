"""``python -m seqkit``: one command line for every task.

Exit status: 0 on success, 2 on bad input or usage (one line on stderr, no
traceback), 1 on an unexpected internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from seqkit.errors import SeqkitError
from seqkit.task import TASK_NAMES, DataArgs

_TUNERS = ("hyperband", "bayesian", "random")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (default: the task's standard data set)")
    g.add_argument("--data", help="a data file or folder (CSV/TSV, class folders, text file, ...)")
    g.add_argument("--train", help="training split file (tasks with split files, e.g. CoNLL)")
    g.add_argument("--valid", help="validation split file")
    g.add_argument("--test", help="test split file")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of config values")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable), e.g. --set units=[256,256] --set cell=gru",
    )
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="seqkit", description="Recurrent sequence models: train, evaluate, predict, tune.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train a task and write a run directory")
    p.add_argument("task", choices=TASK_NAMES)
    _add_config_args(p)
    _add_data_args(p)
    p.add_argument("--out", help="run directory (default runs/TASK/TIMESTAMP)")
    p.add_argument("--overwrite", action="store_true", help="replace the results in an existing --out")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out from its last saved state")

    p = sub.add_parser("evaluate", help="evaluate a trained model on test data")
    p.add_argument("--model", required=True, metavar="RUN_DIR")
    _add_data_args(p)

    p = sub.add_parser("predict", help="predict with a trained model (raw text or a file in, labels out)")
    p.add_argument("--model", required=True, metavar="RUN_DIR")
    p.add_argument("inputs", nargs="*", metavar="TEXT", help="raw inputs (e.g. a review or a sentence)")
    p.add_argument("--input", help="a file of inputs (CSV, text, ...)")
    p.add_argument("--output", help="write predictions here instead of printing them")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("tune", help="hyperparameter search with keras-tuner")
    p.add_argument("task", choices=TASK_NAMES)
    _add_config_args(p)
    _add_data_args(p)
    p.add_argument("--tuner", choices=_TUNERS, default="hyperband")
    p.add_argument("--trials", type=int, default=10, help="maximum number of trials")
    p.add_argument("--max-epochs", type=int, help="epochs per trial (Hyperband: the maximum)")
    p.add_argument("--space", metavar="FILE.yaml", help="YAML file that narrows or overrides the search space")
    p.add_argument("--out", help="tune directory (default tune/TASK)")
    p.add_argument("--project", default="search", help="keras-tuner project name inside --out")
    p.add_argument("--overwrite", action="store_true", help="start a new search instead of resuming")
    p.add_argument("--minutes", type=float, help="start no new trial after this many minutes of search")

    p = sub.add_parser("sample", help="generate text with a character language model")
    p.add_argument("--model", required=True, metavar="RUN_DIR")
    p.add_argument("--prime", default="", help="text the model continues")
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--streams", type=int, default=1, help="number of independent samples generated in one batch")

    p = sub.add_parser("visualize", help="HTML page colouring text by a character LM cell's activation")
    p.add_argument("--model", required=True, metavar="RUN_DIR")
    p.add_argument("--text", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="PAGE.html")
    p.add_argument("--cell", type=int, help="cell index to show (default: the best cells found by the search)")
    p.add_argument("--top", type=int, default=5, help="number of best cells to show")

    p = sub.add_parser("data", help="list or fetch the standard data sets")
    p.add_argument("action", choices=("list", "fetch", "where"))
    p.add_argument("name", nargs="?")
    return parser


def _version() -> str:
    from seqkit import __version__

    return f"seqkit {__version__}"


def _data_args(args) -> DataArgs:
    return DataArgs(data=args.data, train=args.train, valid=args.valid, test=args.test)


def _resolve_cfg(task, args):
    from seqkit.config import resolve_config

    extra = {"seed": args.seed} if args.seed is not None else None
    return resolve_config(task.config_cls, args.config, args.overrides, extra)


def _cmd_train(args) -> int:
    from seqkit.task import get_task
    from seqkit.training import train

    task = get_task(args.task)
    cfg = _resolve_cfg(task, args)
    run_dir, metrics = train(task, cfg, _data_args(args), out=args.out, overwrite=args.overwrite, resume=args.resume)
    print(f"run directory: {run_dir}")
    print(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    return 0


def _task_of_run(run_dir: str):
    from seqkit.task import get_task
    from seqkit.training import load_run

    run_dir, config = load_run(run_dir)
    return get_task(config.get("task", "")), run_dir


def _cmd_evaluate(args) -> int:
    task, run_dir = _task_of_run(args.model)
    evaluate_run = getattr(task, "evaluate_run", None)
    if evaluate_run is None:
        raise SeqkitError(f"task '{task.name}' does not support evaluate")
    metrics = evaluate_run(run_dir, _data_args(args))
    print(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    return 0


def _cmd_predict(args) -> int:
    task, run_dir = _task_of_run(args.model)
    if not args.inputs and not args.input:
        raise SeqkitError("predict: give TEXT arguments or --input FILE")
    task.predict_cli(run_dir, args.inputs, args.input, args.output, args.json)
    return 0


def _cmd_tune(args) -> int:
    from seqkit.task import get_task
    from seqkit.tuning import tune

    task = get_task(args.task)
    cfg = _resolve_cfg(task, args)
    out = Path(args.out or Path("tune") / task.name)
    summary = tune(
        task,
        cfg,
        _data_args(args),
        out=out,
        tuner=args.tuner,
        trials=args.trials,
        max_epochs=args.max_epochs,
        space_file=args.space,
        project=args.project,
        overwrite=args.overwrite,
        minutes=args.minutes,
    )
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return 0


def _cmd_charlm(args, method: str) -> int:
    from seqkit.task import get_task
    from seqkit.training import load_run

    run_dir, _ = load_run(args.model, task_name="charlm")
    getattr(get_task("charlm"), method)(run_dir, args)
    return 0


def _cmd_data(args) -> int:
    from seqkit.data.registry import DATASETS, get_source, resolve

    if args.action == "list":
        for s in DATASETS.values():
            print(f"{s.name:16s} {s.path:32s} {s.description}")
        return 0
    if not args.name:
        raise SeqkitError(f"data {args.action}: name a data set ({', '.join(DATASETS)})")
    get_source(args.name)
    print(resolve(args.name, download=args.action == "fetch"))
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.command != "data":
        from seqkit._quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
    handlers = {
        "train": _cmd_train,
        "evaluate": _cmd_evaluate,
        "predict": _cmd_predict,
        "tune": _cmd_tune,
        "sample": lambda a: _cmd_charlm(a, "sample_cli"),
        "visualize": lambda a: _cmd_charlm(a, "visualize_cli"),
        "data": _cmd_data,
    }
    try:
        return handlers[args.command](args)
    except SeqkitError as e:
        print(f"seqkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("seqkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
