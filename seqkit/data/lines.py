"""Lines that look empty but are not: byte-order marks and zero-width characters.

U+FEFF (byte-order mark / zero-width no-break space), U+200B (zero-width space),
U+200C / U+200D (zero-width non-joiner / joiner) and U+2060 (word joiner) are
not whitespace to ``str.isspace``, so a line holding only them would be read as
a token, a CSV row or a text. Such lines are common in files concatenated from
parts that each began with a byte-order mark, or edited in tools that insert
zero-width spaces; every reader treats them as the blank lines they look like.
Inside a token or a text the characters are kept: there they may be data.
"""

from __future__ import annotations

ZERO_WIDTH = "\ufeff\u200b\u200c\u200d\u2060"
_DROP = str.maketrans("", "", ZERO_WIDTH)


def is_blank(line: str) -> bool:
    """True when ``line`` holds nothing but whitespace and zero-width characters."""
    return not line.translate(_DROP).strip()


def blank_invisible_lines(text: str) -> str:
    """``text`` with every line that holds only zero-width characters (and whitespace) emptied.

    Line ends are kept, so line numbers do not move. Lines inside a quoted CSV
    field are lines too: a quoted text holding a zero-width-only line loses it.
    """
    if not any(c in text for c in ZERO_WIDTH):
        return text
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body and is_blank(body) and not body.isspace():
            line = line[len(body) :]
        out.append(line)
    return "".join(out)
