"""Atomic file output and run directories.

Every file seqkit writes goes to a temporary name in the same folder and is
renamed into place, so a killed process never leaves a truncated file that
looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqkit.errors import SeqkitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The real suffix stays last: writers that pick a format by extension (Keras, matplotlib) still work.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqkitError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise SeqkitError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


def save_model(model, path: str | os.PathLike) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_run_dir(task: str, out: str | os.PathLike | None, overwrite: bool = False, resume: bool = False) -> Path:
    """The run directory ``new_run_dir`` would use, checked but not created.

    ``out`` defaults to ``runs/<task>/<timestamp>``. An existing non-empty
    directory is only reused with ``resume`` (continue a killed run) or
    ``overwrite`` (start again); otherwise it is an error, never a silent
    overwrite.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / task / stamp
        n = 1
        while Path(out).exists():
            n += 1
            out = Path("runs") / task / f"{stamp}-{n}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SeqkitError(f"{out}: exists and is not a directory; choose another --out")
    # ``.worker-*`` folders belong to the other workers of a multi-worker run sharing this folder.
    if out.exists() and any(not p.name.startswith(".worker-") for p in out.iterdir()) and not (overwrite or resume):
        raise SeqkitError(
            f"{out}: run directory exists and is not empty; pass --resume to continue it, "
            "--overwrite to replace its results, or choose another --out"
        )
    return out


def new_run_dir(task: str, out: str | os.PathLike | None, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the run directory for ``task`` (see :func:`check_run_dir` for the rules)."""
    out = check_run_dir(task, out, overwrite=overwrite, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    return out
