"""User-facing errors.

Anything the user can fix (bad input file, bad config value, bad CLI usage)
raises :class:`SeqkitError`. The CLI prints its message on one line and exits
with status 2; programming errors keep their traceback.
"""

from __future__ import annotations

import os


class SeqkitError(Exception):
    """An error caused by the user's input, reported as one line (exit status 2)."""

    exit_code = 2


def where(path: str | os.PathLike | None, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix such as ``data/train.txt:12`` or ``config.yaml: field 'units'``."""
    parts = []
    if path is not None:
        loc = str(path)
        if line is not None:
            loc += f":{line}"
        parts.append(loc)
    elif line is not None:
        parts.append(f"line {line}")
    if field is not None:
        parts.append(f"field '{field}'")
    return ": ".join(parts)


def fail(message: str, path=None, line: int | None = None, field: str | None = None) -> SeqkitError:
    """Build a :class:`SeqkitError` whose message starts with its location."""
    loc = where(path, line, field)
    return SeqkitError(f"{loc}: {message}" if loc else message)
