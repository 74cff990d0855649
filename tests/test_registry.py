import io
import tarfile
import zipfile

import pytest

from seqkit.data import registry
from seqkit.data.registry import DATASETS, extract_members, resolve, sha256_file
from seqkit.errors import SeqkitError


def test_every_dataset_has_url_and_sha256():
    assert {"imdb", "conll2003", "tinyshakespeare", "etth1", "airline", "sunspots"} <= set(DATASETS)
    for s in DATASETS.values():
        assert s.url.startswith("https://") and len(s.sha256) == 64


def test_resolution_order(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "series").mkdir(parents=True)
    (cache / "series").mkdir(parents=True)
    (data / "series/airline-passengers.csv").write_text("in data dir")
    (cache / "series/airline-passengers.csv").write_text("in cache")
    explicit = tmp_path / "mine.csv"
    explicit.write_text("explicit")
    monkeypatch.setenv("SEQKIT_DATA_DIR", str(data))
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(cache))
    assert resolve("airline", explicit) == explicit
    assert resolve("airline").read_text() == "in data dir"
    monkeypatch.delenv("SEQKIT_DATA_DIR")
    assert resolve("airline").read_text() == "in cache"


def test_offline_with_nothing_found_gives_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SEQKIT_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("SEQKIT_OFFLINE", "1")
    with pytest.raises(SeqkitError) as e:
        resolve("tinyshakespeare")
    msg = str(e.value)
    assert "tinyshakespeare" in msg and DATASETS["tinyshakespeare"].url in msg and "SEQKIT_DATA_DIR" in msg
    assert "\n" not in msg
    with pytest.raises(SeqkitError, match="unknown data set"):
        resolve("nope")
    with pytest.raises(SeqkitError, match="no such file"):
        resolve("airline", tmp_path / "missing.csv")


def test_download_verifies_checksum(tmp_path, monkeypatch):
    payload = b"hello world\n"
    src = tmp_path / "remote.txt"
    src.write_bytes(payload)
    good = registry.DataSource("toy", "toy.txt", src.as_uri(), sha256_file(src), "toy")
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert registry._download(good).read_bytes() == payload
    bad = registry.DataSource("toy2", "toy2.txt", src.as_uri(), "0" * 64, "toy")
    with pytest.raises(SeqkitError, match="checksum mismatch"):
        registry._download(bad)
    assert not (tmp_path / "cache" / "toy2.txt").exists()


def _tar_with(tmp_path, names):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name in names:
            data = b"x"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "ok/../../escape.txt"])
def test_tar_path_traversal_is_refused(tmp_path, name):
    archive = _tar_with(tmp_path, ["fine.txt", name])
    dest = tmp_path / "out"
    with pytest.raises(SeqkitError, match="unsafe archive member"):
        extract_members(archive, dest)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_tar_symlink_is_refused(tmp_path):
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(SeqkitError, match="links"):
        extract_members(path, tmp_path / "out")


def test_zip_traversal_refused_and_member_mapping(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("conll/train.txt", "a")
        zf.writestr("conll/other.txt", "b")
    written = extract_members(good, tmp_path / "o", {"train.txt": "x/train.txt"})
    assert [p.relative_to(tmp_path / "o").as_posix() for p in written] == ["x/train.txt"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../evil.txt", "a")
    with pytest.raises(SeqkitError, match="unsafe"):
        extract_members(evil, tmp_path / "o2")
