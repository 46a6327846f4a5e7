"""Escaping of untrusted text (from alerts) for each format, and small display helpers.

- ``printable``: control and invisible formatting characters (ANSI escapes, bidi overrides
  such as U+202E, zero-width characters, line breaks) become visible escapes (``\\x1b``,
  ``\\u202e``, ``\\n``): shown, never acted on by a terminal, browser or Markdown renderer.
- ``md_text``: Markdown inline text and table cells: every character Markdown or GitHub's
  extensions (tables, autolinks, HTML) would read as markup is backslash-escaped.
- ``fence``: a fenced code block whose fence is longer than any backtick run in its text.
HTML and SVG are escaped by Jinja's autoescaping (and ``html.escape`` in ``svg.py``), after
``printable``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from kubesentinel.models.report import ProcessNode

__all__ = ["MAX_CELL", "age", "clip", "fence", "md_text", "printable", "tree_text", "when"]

MAX_CELL: Final = 300  # characters of untrusted text in one table cell
# Cc: controls (C0, DEL, C1); Cf: format characters (bidi overrides and isolates, zero-width
# joiners, the BOM...); Zl/Zp: line and paragraph separators; Co/Cs/Cn are left as they are.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Escaped wherever they are: the templates never start a line with untrusted text, so the
# characters that only mean something there (- + = . digits) need no escape.
_MD_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()<>#!|~&@:$^])")
_WWW: Final = re.compile(r"(?i)(www)\.")  # GitHub autolinks www.example.com


def _escape_char(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


def printable(text: str) -> str:
    """``text`` with every control or invisible formatting character shown as an escape."""
    if text.isascii() and text.isprintable():
        return text  # the common case, without a per-character pass
    return "".join(
        _escape_char(char) if unicodedata.category(char) in _INVISIBLE else char for char in text
    )


def clip(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def md_text(text: str) -> str:
    """``text`` as literal Markdown inline text (fit for a table cell): no markup, no link,
    no HTML, one line. Every punctuation character that any Markdown construct starts with
    is backslash-escaped (CommonMark lets any ASCII punctuation be escaped), so ``[x](...)``,
    ``<script>``, ``| --- |``, autolinks (``https\\://``) and emphasis stay text."""
    return printable(_WWW.sub(r"\1\\.", _MD_SPECIAL.sub(r"\\\1", text)))


def fence(text: str, info: str = "") -> str:
    """A fenced code block holding ``text`` (control characters escaped, lines kept): its
    fence is one backtick longer than the longest run of backticks in it, at least three."""
    body = "\n".join(printable(line) for line in text.rstrip("\n").split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body}\n{ticks}"


def when(time_ns: int | None, *, precise: bool = False) -> str:
    """``2026-01-01 00:10:54 UTC`` (``.123456789`` when ``precise``); "-" for None."""
    if time_ns is None:
        return "-"
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{nanos:09d} UTC" if precise else f"{text} UTC"


def age(saved_ns: int | None, now_ns: int) -> str:
    """How long before ``now_ns`` a posture was saved: "3 d 4 h", "25 min", "unknown"."""
    if saved_ns is None:
        return "unknown (saved before KubeSentinel recorded the time)"
    seconds = max(0, (now_ns - saved_ns) // 1_000_000_000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def tree_text(roots: Sequence[ProcessNode]) -> str:
    """The process tree as indented plain text (for a fenced block): each process with its pid
    when known, its events and rules, then its command lines after ``$``."""
    lines: list[str] = []

    def walk(node: ProcessNode, depth: int) -> None:
        pad = "    " * depth
        pid = f" [pid {node.pid}]" if node.pid is not None else ""
        what = f"  ({node.events} event(s): {', '.join(node.rules)})" if node.events else ""
        lines.append(f"{pad}{node.name}{pid}{what}")
        lines.extend(f"{pad}  $ {clip(cmd)}" for cmd in node.cmdlines)
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)
