"""Interpretable cells of a character language model: text properties, correlations, an HTML page.

Every character position of a text gets a few simple properties (inside quotes,
inside brackets, position in the line, indentation depth, just after a newline);
every recurrent cell gets an activation per position (``tanh(c)`` of an LSTM cell,
or the hidden unit ``h``). Cells are ranked by the absolute Pearson correlation of
their activation with each property, and a self-contained HTML page colours the
text by the best cells (red positive, blue negative), in the manner of Karpathy,
Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015).

All properties describe the state *after reading* the character at that position,
which is what the activation there has seen.
"""

from __future__ import annotations

import html

import numpy as np

PROPERTIES = ("in_quotes", "in_brackets", "line_position", "indentation", "after_newline")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = set(_OPEN.values())


def text_properties(text: str) -> dict[str, np.ndarray]:
    """Per-character properties of ``text``, each ``(len(text),)`` float.

    - ``in_quotes``: 1 after an opening ``"`` (or ``“``) up to, not including, its closing quote.
    - ``in_brackets``: 1 while at least one ``(``, ``[`` or ``{`` is open (the opening bracket counts,
      the closing one that ends the last open bracket does not).
    - ``line_position``: characters read since the last newline (0 on the newline itself).
    - ``indentation``: leading spaces of the current line (a tab counts 4), 0 on the newline.
    - ``after_newline``: 1 on a newline character (the state right after reading it).
    """
    n = len(text)
    props = {k: np.zeros(n, np.float32) for k in PROPERTIES}
    in_q = False
    depth = 0
    col = 0
    indent = 0
    leading = True
    for i, ch in enumerate(text):
        if ch == '"':
            in_q = not in_q
        elif ch == "“":
            in_q = True
        elif ch == "”":
            in_q = False
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        if ch == "\n":
            col, indent, leading = 0, 0, True
        else:
            col += 1
            if leading and ch in " \t":
                indent += 4 if ch == "\t" else 1
            else:
                leading = False
        props["in_quotes"][i] = in_q
        props["in_brackets"][i] = depth > 0
        props["line_position"][i] = col
        props["indentation"][i] = indent
        props["after_newline"][i] = ch == "\n"
    return props


def correlations(acts: np.ndarray, props: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pearson correlation of every cell ``acts (length, cells)`` with every property; ``{name: (cells,)}``.

    A constant property or cell has correlation 0 (undefined otherwise).
    """
    a = np.asarray(acts, np.float64)
    a = a - a.mean(axis=0)
    a_norm = np.sqrt((a * a).sum(axis=0))
    out = {}
    for name, p in props.items():
        p = np.asarray(p, np.float64) - np.mean(p)
        p_norm = np.sqrt((p * p).sum())
        denom = a_norm * p_norm
        num = p @ a
        out[name] = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return out


def best_cells(corr: dict[str, np.ndarray], top: int = 5) -> dict[str, list[tuple[int, float]]]:
    """For each property the ``top`` cells by ``|r|``: ``{name: [(cell, r), ...]}``."""
    ranked = {}
    for name, r in corr.items():
        order = np.argsort(-np.abs(r), kind="stable")[:top]
        ranked[name] = [(int(i), float(r[i])) for i in order]
    return ranked


def _colour(v: float) -> str:
    v = float(np.clip(v, -1.0, 1.0))
    if v >= 0:
        return f"rgba(220,60,40,{v:.2f})"
    return f"rgba(40,100,220,{-v:.2f})"


def coloured_text(text: str, values: np.ndarray) -> str:
    """HTML spans colouring each character of ``text`` by ``values`` in ``[-1, 1]``."""
    parts = []
    for ch, v in zip(text, values):
        shown = "↵\n" if ch == "\n" else html.escape(ch)
        parts.append(f'<span style="background:{_colour(v)}">{shown}</span>')
    return "".join(parts)


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1100px; }
.text { font-family: monospace; font-size: 13px; line-height: 1.5; white-space: pre-wrap;
        border: 1px solid #ccc; padding: 0.6em; background: #fff; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; font-size: 13px; text-align: left; }
.legend span { padding: 0 6px; }
h2 { font-size: 1.05em; margin-top: 1.4em; }
"""


def render_page(
    text: str,
    acts: np.ndarray,
    corr: dict[str, np.ndarray],
    ranked: dict[str, list[tuple[int, float]]],
    cell_names: list[str],
    title: str = "Interpretable cells",
    activation: str = "tanh(c)",
    chosen: int | None = None,
    max_chars: int = 2000,
    panels_per_property: int = 1,
) -> str:
    """One self-contained HTML page: a score table and the text coloured by the chosen and best cells."""
    shown_text = text[:max_chars]
    esc = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(text)} characters, {acts.shape[1]} cells; activation {esc(activation)}. Cells are ranked by the "
        "absolute Pearson correlation <i>r</i> of their activation with each text property. "
        "<span class='legend'><span style='background:rgba(220,60,40,0.8)'>positive</span>"
        "<span style='background:rgba(40,100,220,0.8)'>negative</span></span></p>",
        "<table><tr><th>property</th><th>best cells (r)</th></tr>",
    ]
    flat = {name for name, r in corr.items() if not np.any(r)}  # e.g. no quotes in the text: nothing to rank
    for name, cells in ranked.items():
        best = (
            "(constant in this text)"
            if name in flat
            else ", ".join(f"{esc(cell_names[i])} ({r:+.3f})" for i, r in cells)
        )
        out.append(f"<tr><td>{esc(name)}</td><td>{best}</td></tr>")
    out.append("</table>")
    panels: list[tuple[int, str]] = []
    if chosen is not None:
        scores = ", ".join(f"{k} {corr[k][chosen]:+.3f}" for k in corr)
        panels.append((chosen, f"chosen cell {cell_names[chosen]}: r = {scores}"))
    for name, cells in ranked.items():
        if name in flat:
            continue
        for i, r in cells[:panels_per_property]:
            panels.append((i, f"{name}: cell {cell_names[i]}, r = {r:+.3f}"))
    for i, caption in panels:
        out.append(f"<h2>{esc(caption)}</h2>")
        out.append(f"<div class='text'>{coloured_text(shown_text, acts[: len(shown_text), i])}</div>")
    if len(text) > max_chars:
        out.append(f"<p>(the first {max_chars} of {len(text)} characters are shown; scores use all of them)</p>")
    out.append("</body></html>")
    return "\n".join(out)
