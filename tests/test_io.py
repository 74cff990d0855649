import json

import pytest

from seqkit import io
from seqkit.errors import SeqkitError


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text('{"a": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_run_dir_is_never_silently_overwritten(tmp_path):
    out = tmp_path / "run"
    io.new_run_dir("t", out)
    (out / "metrics.json").write_text("{}")
    with pytest.raises(SeqkitError, match="--overwrite"):
        io.new_run_dir("t", out)
    assert io.new_run_dir("t", out, overwrite=True) == out
    assert io.new_run_dir("t", out, resume=True) == out


def test_read_json_errors(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{\n  oops")
    with pytest.raises(SeqkitError, match=r"x.json:2: invalid JSON"):
        io.read_json(bad)
    with pytest.raises(SeqkitError, match="not found"):
        io.read_json(tmp_path / "none.json")
