import dataclasses
from typing import Literal

import pytest

from seqkit.config import RecurrentConfig, from_dict, load_yaml, parse_override, resolve_config
from seqkit.errors import SeqkitError


@dataclasses.dataclass
class Cfg(RecurrentConfig):
    mode: Literal["a", "b"] = "a"
    max_len: int = 10
    name: str | None = None


def test_defaults_then_yaml_then_overrides_then_extra(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("units: [8, 8]\ncell: gru\nmax_len: 5\n")
    cfg = resolve_config(Cfg, f, ["max_len=7", "learning_rate=0.01"], {"seed": 3})
    assert cfg.units == [8, 8] and cfg.cell == "gru"
    assert cfg.max_len == 7 and cfg.learning_rate == 0.01 and cfg.seed == 3
    assert cfg.mode == "a"


def test_types_are_checked_and_coerced():
    assert from_dict(Cfg, {"units": 16}).units == [16]
    assert from_dict(Cfg, {"learning_rate": 1}).learning_rate == 1.0
    assert from_dict(Cfg, {"clipnorm": None}).clipnorm is None
    with pytest.raises(SeqkitError, match="field 'max_len': expected int"):
        from_dict(Cfg, {"max_len": "ten"}, source="x.yaml")
    with pytest.raises(SeqkitError, match="field 'mode': expected one of 'a', 'b'"):
        from_dict(Cfg, {"mode": "c"})
    with pytest.raises(SeqkitError, match="expected bool"):
        from_dict(Cfg, {"bidirectional": "yes please"})
    with pytest.raises(SeqkitError, match="expected list of int"):
        from_dict(Cfg, {"units": ["a"]})


def test_unknown_key_names_the_source_and_suggests():
    with pytest.raises(SeqkitError) as e:
        from_dict(Cfg, {"learnig_rate": 0.1}, source="my.yaml")
    assert "my.yaml" in str(e.value) and "did you mean 'learning_rate'" in str(e.value)


def test_override_parsing():
    assert parse_override("units=[64, 32]") == ("units", [64, 32])
    assert parse_override("bidirectional=true") == ("bidirectional", True)
    assert parse_override("name=abc") == ("name", "abc")
    with pytest.raises(SeqkitError, match="key=value"):
        parse_override("units")


def test_bad_yaml_reports_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("units: [1, 2\ncell: lstm\n")
    with pytest.raises(SeqkitError, match=r"bad.yaml:\d+: invalid YAML"):
        load_yaml(f)
    g = tmp_path / "list.yaml"
    g.write_text("- 1\n- 2\n")
    with pytest.raises(SeqkitError, match="mapping"):
        load_yaml(g)
    with pytest.raises(SeqkitError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_run_config_with_task_key_is_accepted(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("task: sentiment\nunits: [4]\n")
    assert resolve_config(Cfg, f).units == [4]


def test_shipped_config_files_load_into_their_task():
    from pathlib import Path

    from seqkit.task import get_task

    files = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert files
    for path in files:
        task = get_task(path.stem.split("-")[0])
        cfg = resolve_config(task.config_cls, path)
        cfg.validate(str(path))
