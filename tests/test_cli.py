import subprocess
import sys

import pytest

from seqkit.cli import main


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "seqkit", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_subcommands():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("train", "evaluate", "predict", "tune", "sample", "visualize"):
        assert cmd in r.stdout


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict", "tune", "sample", "visualize"])
def test_each_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["train"], ["train", "nosuchtask"], ["train", "sentiment", "--seed", "x"]],
)
def test_bad_usage_exits_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_user_errors_exit_2_without_traceback(tmp_path):
    r = run("predict", "--model", str(tmp_path / "missing"), "hello")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "model directory not found" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("train", "sentiment", "--set", "no_such_key=1", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "unknown config key 'no_such_key'" in r.stderr
    assert not (tmp_path / "run").exists()


def test_data_list():
    r = run("data", "list")
    assert r.returncode == 0 and "tinyshakespeare" in r.stdout and "etth1" in r.stdout
