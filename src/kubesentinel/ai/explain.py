"""Explanation text: untrusted strings escaped and cut, durations and counts in words."""

from __future__ import annotations

from typing import Final

MAX_SHOWN: Final = 80


def shown(text: str) -> str:
    """``text`` safe to print: control and other non-printable characters (terminal escapes,
    newlines, bidi overrides) as backslash escapes; cut to 80 characters with an ellipsis."""
    if text.isprintable() and len(text) <= MAX_SHOWN:
        return text
    out = []
    for ch in text[:MAX_SHOWN]:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    if len(text) > MAX_SHOWN:
        out.append("...")
    return "".join(out)


def duration(ns: int) -> str:
    """A span in the largest sensible unit: "40 s", "25 min", "6 h", "3 d"."""
    seconds = max(ns, 0) / 1e9
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


def times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"
