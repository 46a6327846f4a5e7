"""Map a CEL error position (line:column inside an expression) to a line of the rule file.

The YAML parser keeps the line of each key; an expression written as a block scalar (``|`` or
``>``) or continued over several lines starts on a later line, which we find in the source.
"""

from __future__ import annotations

from collections.abc import Sequence


def expression_line(source: Sequence[str], key_line: int, cel_line: int, cel_column: int) -> int:
    """The file line holding the error; ``key_line`` when the position cannot be mapped."""
    if cel_line <= 0 or not 1 <= key_line <= len(source):
        return key_line
    text = source[key_line - 1]
    after = text.partition(":")[2].strip()
    key_indent = len(text) - len(text.lstrip(" -"))
    following = _continuation(source, key_line, key_indent)
    if after.startswith("|"):  # literal: expression line n is the n-th line below the key
        return min(key_line + cel_line, key_line + len(following)) if following else key_line
    if cel_line != 1:
        return key_line + 1 if following else key_line
    if after.startswith(">"):  # folded: lines joined by single spaces
        segments, first_line = following, key_line + 1
    else:  # plain or quoted, maybe continued on the next lines
        segments, first_line = [after.lstrip("'\""), *following], key_line
    end = 0
    for offset, segment in enumerate(segments):
        end += len(segment) + 1
        if cel_column <= end:
            return first_line + offset
    return first_line


def _continuation(source: Sequence[str], key_line: int, key_indent: int) -> list[str]:
    """Stripped lines after the key that are indented deeper than it (its value's lines)."""
    lines: list[str] = []
    for text in source[key_line:]:
        stripped = text.strip()
        indent = len(text) - len(text.lstrip(" "))
        if stripped and indent <= key_indent:
            break
        lines.append(stripped)
    while lines and not lines[-1]:
        lines.pop()
    return lines
