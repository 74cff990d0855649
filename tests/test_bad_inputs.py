"""Malformed inputs across the loaders, the config, the run directory and the command line.

Every case must raise :class:`SeqkitError` with one short line that names the file
and its line, row or field; through the command line it exits with status 2,
prints one line and no traceback, and writes nothing. Most cases call the loaders
in-process; a handful go through ``python -m seqkit``, started concurrently.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from seqkit.errors import SeqkitError

MB10 = 10 * 1024 * 1024


def _write(tmp: Path, name: str, data: str | bytes) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


@dataclasses.dataclass
class Case:
    id: str
    call: Callable[[Path], object]  # gets a temp dir; must raise SeqkitError
    match: str  # regex the message must match (location first)


# --- loaders ----------------------------------------------------------------------------------
def conll(text: str | bytes, **kw):
    from seqkit.data.conll import read_conll

    return lambda tmp: read_conll(_write(tmp, "train.txt", text), **kw)


def table(text: str | bytes, name: str = "reviews.csv"):
    from seqkit.data.text import load_texts

    return lambda tmp: load_texts(_write(tmp, name, text))


def series(text: str | bytes, **kw):
    from seqkit.data.series import read_series_csv

    return lambda tmp: read_series_csv(_write(tmp, "series.csv", text), **kw)


def corpus(text: str | bytes):
    from seqkit.data.corpus import CharVocab, read_text

    return lambda tmp: CharVocab.build(read_text(_write(tmp, "corpus.txt", text)))


def config(data: dict | None = None, yaml_text: str | None = None):
    def call(tmp):
        from seqkit.config import resolve_config
        from tasks.sentiment import TASK

        path = _write(tmp, "cfg.yaml", yaml_text if yaml_text is not None else json.dumps(data))
        return resolve_config(TASK.config_cls, path)

    return call


def override(item: str):
    def call(tmp):
        from seqkit.config import resolve_config
        from tasks.ner import TASK

        return resolve_config(TASK.config_cls, None, [item])

    return call


def run_dir(config_text: str | None, model: bytes | None = None, task: str | None = "sentiment"):
    def call(tmp):
        from seqkit.training import load_run

        d = tmp / "run"
        d.mkdir()
        if config_text is not None:
            _write(d, "config.json", config_text)
        if model is not None:
            _write(d, "model.keras", model)
        return load_run(d, task)

    return call


def model_file(data: bytes):
    def call(tmp):
        from seqkit.training import load_model

        return load_model(_write(tmp, "model.keras", data))

    return call


def unknown_char(tmp):
    from seqkit.data.corpus import CharVocab

    CharVocab.build("abc\n", unknown="error").encode("ab\nz", source="--prime")


def class_folders(tmp):
    from seqkit.data.text import load_texts

    (tmp / "data" / "pos").mkdir(parents=True)
    _write(tmp, "data/pos/1.txt", "   ")
    return load_texts(tmp / "data")


def registry_missing(tmp):
    from seqkit.data.registry import resolve

    return resolve("conll2003", tmp / "nowhere.txt")


def registry_unknown(tmp):
    from seqkit.data.registry import get_source

    return get_source("imbd")


OK_SERIES = "date,y\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n2020-01-04,4\n"

CASES = [
    # CoNLL
    Case("conll-wrong-columns", conll("EU NNP B-ORG\nrejects VBZ\n"), r"train.txt:2: expected 3 columns, found 2"),
    Case("conll-truncated-line", conll("EU B-ORG\nrejects O\nGerman\n"), r"train.txt:3: expected 2 columns"),
    Case("conll-bad-prefix", conll("EU X-ORG\n"), r"train.txt:1: .*X-ORG"),
    Case("conll-iobes-tag-in-iob2", conll("EU S-ORG\n", scheme="IOB2"), r"train.txt:1: tag 'S-ORG' is not valid"),
    Case("conll-empty-tag", conll("EU\t\n"), r"train.txt:1: empty tag"),
    Case("conll-empty-file", conll(""), r"train.txt: no sentences found"),
    Case("conll-docstart-only", conll("-DOCSTART- -X- O O\n\n"), r"train.txt: no sentences found"),
    Case("conll-not-utf8", conll(b"EU B-ORG\nM\xfcller B-PER\n"), r"train.txt: not valid UTF-8"),
    Case("conll-10mb-line", conll("x" * MB10), r"train.txt:1: "),
    Case("conll-missing-file", lambda tmp: _missing_conll(tmp), r"absent.txt: file not found"),
    # text tables and folders
    Case("csv-no-text-column", table("review,label\ngood,pos\n"), r"reviews.csv: no column 'text'"),
    Case("csv-no-label-column", table("text,y\ngood,pos\n"), r"reviews.csv: no column 'label'"),
    Case("csv-empty-file", table(""), r"reviews.csv: empty file"),
    Case("csv-header-only", table("text,label\n"), r"reviews.csv: no data rows"),
    Case("csv-zero-length-text", table('text,label\ngood,pos\n"",neg\n'), r"reviews.csv:3: empty text"),
    Case("csv-empty-label", table("text,label\ngood,\n"), r"reviews.csv:2: field 'label': empty label"),
    Case("csv-not-utf8", table(b"text,label\ngood,pos\nna\xefve,neg\n"), r"reviews.csv:3: not valid UTF-8"),
    Case("csv-extra-field", table("text,label\ngood,pos\nbad,neg,extra\n"), r"reviews.csv:3: expected 2 fields"),
    Case("tsv-extra-field-first-row", table("text\tlabel\ngood\tpos\textra\n", "r.tsv"), r"r.tsv:2: expected 2 fields"),
    Case("class-folder-empty-text", class_folders, r"1.txt: empty text"),
    # series
    Case("series-non-numeric", series("date,y\n2020-01-01,1\n2020-01-02,abc\n"), r"series.csv:3: field 'y': non-"),
    Case("series-nan", series(OK_SERIES.replace(",3\n", ",NaN\n")), r"series.csv"),
    Case("series-unsorted", series("date,y\n2020-01-02,1\n2020-01-01,2\n"), r"series.csv:3: field 'date': .*sorted"),
    Case("series-duplicate-time", series("date,y\n2020-01-01,1\n2020-01-01,2\n"), r"series.csv:3: .*duplicate"),
    Case("series-bad-date", series("date,y\n2020-01-01,1\nyesterday,2\n"), r"series.csv:3: field 'date': cannot"),
    Case("series-unknown-column", series(OK_SERIES, targets=["z"]), r"series.csv: field 'z': column not found"),
    Case("series-empty", series(""), r"series.csv: empty file"),
    Case("series-10mb-line", series("1" * MB10), r"series.csv: "),
    # character language model
    Case("corpus-not-utf8", corpus(b"to be\nor not \xff\n"), r"corpus.txt:2: not valid UTF-8"),
    Case("corpus-empty", corpus(""), r"empty text"),
    Case("prime-outside-vocab", unknown_char, r"--prime:2: character 'z'"),
    # config
    Case("config-unknown-key", config({"unitz": 8}), r"cfg.yaml: unknown config key 'unitz' \(did you mean 'units'"),
    Case("config-wrong-type", config({"units": "many"}), r"cfg.yaml: field 'units': expected list of int"),
    Case("config-bad-literal", config({"cell": "rnn"}), r"cfg.yaml: field 'cell': expected one of"),
    Case("config-bool-as-int", config({"bidirectional": 3}), r"cfg.yaml: field 'bidirectional': expected bool"),
    Case("config-invalid-yaml", config(yaml_text="units: [8\nepochs: 2\n"), r"cfg.yaml:\d+: invalid YAML"),
    Case("config-not-mapping", config(yaml_text="- 8\n- 9\n"), r"cfg.yaml: expected a mapping"),
    Case("override-wrong-type", override("epochs=ten"), r"--set epochs=ten: field 'epochs': expected int"),
    Case("override-no-equals", override("epochs"), r"--set 'epochs': expected key=value"),
    # data registry
    Case("registry-missing-path", registry_missing, r"nowhere.txt: no such file"),
    Case("registry-unknown-name", registry_unknown, r"imbd"),
    # model directories
    Case(
        "model-dir-missing", lambda tmp: __import__("seqkit.training").training.load_run(tmp / "gone"), r"gone: model"
    ),
    Case("model-dir-no-config", run_dir(None), r"run: not a seqkit run directory"),
    Case("model-dir-other-task", run_dir('{"task": "ner"}', b"PK"), r"run: this model is from task 'ner', not 'sen"),
    Case("model-dir-garbled-config", run_dir('{"task": "ner",\n oops'), r"config.json:2: invalid JSON"),
    Case("model-dir-unfinished", run_dir('{"task": "sentiment"}'), r"run: no model.keras"),
    Case("model-file-not-keras", model_file(b"not a zip file at all"), r"model.keras: not a Keras model archive"),
]


def _missing_conll(tmp):
    from seqkit.data.conll import read_conll

    return read_conll(tmp / "absent.txt")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_naming_where(case, tmp_path):
    before = set(Path.cwd().iterdir())
    with pytest.raises(SeqkitError) as e:
        case.call(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg[:400]
    assert __import__("re").search(case.match, msg), msg
    assert set(Path.cwd().iterdir()) == before  # nothing written outside the test folder


def test_the_suite_is_big_enough():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


# --- through the command line ---------------------------------------------------------------------
CLI_CASES = {
    # id: (argv builder, message regex); every case names an --out that must not be created
    "train-csv-without-columns": (
        lambda t: ["train", "sentiment", "--data", str(_write(t, "d.csv", "a,b\n1,2\n"))],
        r"d.csv: no column 'text'",
    ),
    "train-unsorted-series": (
        lambda t: ["train", "forecast", "--data", str(_write(t, "s.csv", "date,y\n2020-01-02,1\n2020-01-01,2\n"))],
        r"s.csv:3: field 'date'",
    ),
    "train-bad-conll": (
        lambda t: ["train", "ner"] + [a for s in ("train", "valid", "test") for a in (f"--{s}", str(_conll(t)))],
        r"n.txt:2: expected 2 columns",
    ),
    "sample-model-of-another-task": (
        lambda t: ["sample", "--model", str(_fake_run(t, "sentiment")), "--length", "5"],
        r"this model is from task 'sentiment', not 'charlm'",
    ),
}


def _conll(tmp: Path) -> Path:
    return _write(tmp, "n.txt", "EU B-ORG\nx\n")


def _fake_run(tmp: Path, task: str) -> Path:
    d = tmp / "otherrun"
    _write(d, "config.json", json.dumps({"task": task}))
    _write(d, "model.keras", b"PK")
    return d


def test_cli_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", SEQKIT_OFFLINE="1")
    procs = {}
    for name, (argv, _) in CLI_CASES.items():
        d = tmp_path / name
        d.mkdir()
        args = argv(d)
        if args[0] == "train":
            args += ["--out", str(d / "out")]
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "seqkit", *args], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    failures = []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        err = err.decode()
        lines = [line for line in err.splitlines() if line.strip()]
        ok = (
            proc.returncode == 2
            and len(lines) == 1
            and "Traceback" not in err
            and __import__("re").search(CLI_CASES[name][1], lines[0]) is not None
            and not (tmp_path / name / "out").exists()
            and not (tmp_path / name / "runs").exists()
        )
        if not ok:
            failures.append(f"{name}: exit {proc.returncode}, stderr {err[-500:]!r}")
    assert not failures, "\n".join(failures)
