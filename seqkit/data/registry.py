"""The registry of standard data sets and where to find them.

Resolution order for a data set: an explicit path, then ``$SEQKIT_DATA_DIR``,
then the local cache (``$SEQKIT_CACHE_DIR``, default ``~/.cache/seqkit``),
then a download from the canonical public URL, checked against its sha256.
A copy found under ``SEQKIT_DATA_DIR`` is used as is (a repacked IMDB archive
there has a different checksum than the official one). Archives are
extracted without ever writing outside the target folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from seqkit.errors import SeqkitError
from seqkit.io import atomic_path


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A public data set: where it lives in a data dir, and where it comes from.

    ``path`` is the file or folder inside ``SEQKIT_DATA_DIR`` / the cache.
    ``url`` is downloaded to ``download_name``; when it is an archive,
    ``extract`` maps member paths in the archive to paths under the cache.
    """

    name: str
    path: str
    url: str
    sha256: str
    description: str
    download_name: str | None = None
    extract: dict[str, str] | None = None
    file_sha256: dict[str, str] | None = None


DATASETS: dict[str, DataSource] = {
    s.name: s
    for s in [
        DataSource(
            name="imdb",
            path="aclImdb_v1.tar.gz",
            url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            description="IMDB movie reviews (Maas et al. 2011), 25,000 train + 25,000 test",
        ),
        DataSource(
            name="conll2003",
            path="conll2003",
            url="https://data.deepai.org/conll2003.zip",
            sha256="96a104d174ddae7558bab603f19382c5fe02ff1da5c077a7f3ce2ced1578a2c3",
            description="CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003), IOB2",
            download_name="conll2003.zip",
            extract={
                "train.txt": "conll2003/train.txt",
                "valid.txt": "conll2003/valid.txt",
                "test.txt": "conll2003/test.txt",
            },
            file_sha256={
                "conll2003/train.txt": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
                "conll2003/valid.txt": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
                "conll2003/test.txt": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
            },
        ),
        DataSource(
            name="tinyshakespeare",
            path="tinyshakespeare.txt",
            url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            description="Tiny Shakespeare, 1,115,394 characters (karpathy/char-rnn)",
        ),
        DataSource(
            name="etth1",
            path="ett/ETTh1.csv",
            url="https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv",
            sha256="f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
            description="Electricity Transformer Temperature, hourly (Zhou et al. 2021)",
        ),
        DataSource(
            name="airline",
            path="series/airline-passengers.csv",
            url="https://raw.githubusercontent.com/jbrownlee/Datasets/master/airline-passengers.csv",
            sha256="8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
            description="Monthly international airline passengers 1949-1960 (Box & Jenkins)",
        ),
        DataSource(
            name="sunspots",
            path="series/monthly-sunspots.csv",
            url="https://raw.githubusercontent.com/jbrownlee/Datasets/master/monthly-sunspots.csv",
            sha256="c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
            description="Monthly mean sunspot numbers from 1749",
        ),
    ]
}


def cache_dir() -> Path:
    return Path(os.environ.get("SEQKIT_CACHE_DIR", Path.home() / ".cache" / "seqkit"))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_source(name: str) -> DataSource:
    try:
        return DATASETS[name]
    except KeyError:
        raise SeqkitError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}") from None


def resolve(name: str, explicit: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the local path of data set ``name`` (a file or folder), fetching it if needed."""
    if explicit is not None:
        p = Path(explicit)
        if not p.exists():
            raise SeqkitError(f"{p}: no such file or directory")
        return p
    src = get_source(name)
    env = os.environ.get("SEQKIT_DATA_DIR")
    if env:
        p = Path(env) / src.path
        if p.exists():
            return p
    p = cache_dir() / src.path
    if p.exists():
        return p
    if download and os.environ.get("SEQKIT_OFFLINE") != "1":
        try:
            return _download(src)
        except OSError as e:  # no network: fall through to the one clear message below
            reason = f" ({e.__class__.__name__}: {e})"
        except SeqkitError:
            raise
    else:
        reason = ""
    raise SeqkitError(
        f"data set '{name}' not found and could not be downloaded{reason}: fetch {src.url} "
        f"and place it as $SEQKIT_DATA_DIR/{src.path} (SEQKIT_DATA_DIR="
        f"{env or 'unset'}), or pass an explicit path"
    )


def _download(src: DataSource) -> Path:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / (src.download_name or src.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    print(f"downloading {src.name} from {src.url}")
    with urllib.request.urlopen(src.url, timeout=60) as resp, open(tmp, "wb") as f:
        shutil.copyfileobj(resp, f)
    digest = sha256_file(tmp)
    if digest != src.sha256:
        tmp.unlink(missing_ok=True)
        raise SeqkitError(f"{src.url}: checksum mismatch (sha256 {digest}, expected {src.sha256}); download discarded")
    os.replace(tmp, target)
    if src.extract:
        extract_members(target, root, src.extract)
        target.unlink()
        for rel, expected in (src.file_sha256 or {}).items():
            got = sha256_file(root / rel)
            if got != expected:
                raise SeqkitError(
                    f"{root / rel}: checksum mismatch after extraction (sha256 {got}, expected {expected})"
                )
    return root / src.path


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    drive = bool(p.parts) and p.parts[0].endswith(":")  # a Windows drive such as C:
    if p.is_absolute() or ".." in p.parts or drive:
        raise SeqkitError(f"{archive}: refusing unsafe archive member path {name!r}")
    return p


def extract_members(
    archive: str | os.PathLike, dest: str | os.PathLike, members: dict[str, str] | None = None
) -> list[Path]:
    """Extract ``archive`` (tar or zip) into ``dest`` safely.

    Absolute paths, ``..`` components, links and device files are refused, so
    nothing is ever written outside ``dest``. With ``members``, only those
    archive paths (matched by their trailing name) are extracted, to the mapped
    paths.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def out_path(name: str) -> Path | None:
        rel = _safe_member(name, archive)
        if members is not None:
            for want, mapped in members.items():
                if rel.as_posix() == want or rel.as_posix().endswith("/" + want):
                    return dest / mapped
            return None
        return dest / Path(*rel.parts)

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    _safe_member(info.filename, archive)
                    continue
                out = out_path(info.filename)
                if out is None:
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                # Atomic: a kill mid-extraction must not leave a truncated file that resolve() later trusts.
                with zf.open(info) as src, atomic_path(out) as tmp, open(tmp, "wb") as f:
                    shutil.copyfileobj(src, f)
                written.append(out)
        return written
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as e:
        raise SeqkitError(f"{archive}: not a readable tar or zip archive ({e})") from None
    with tf:
        for m in tf:
            if m.isdir():
                _safe_member(m.name, archive)
                continue
            if not m.isfile():
                raise SeqkitError(
                    f"{archive}: refusing archive member {m.name!r} (links and devices are not extracted)"
                )
            out = out_path(m.name)
            if out is None:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None
            with src, atomic_path(out) as tmp, open(tmp, "wb") as f:
                shutil.copyfileobj(src, f)
            written.append(out)
    return written
