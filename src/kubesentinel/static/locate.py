"""Map a field path inside an object to its line in the manifest."""

from __future__ import annotations

from typing import Any

from kubesentinel.static.podspec import Path
from kubesentinel.static.yamldoc import LineDict, LineList


def line_of(body: Any, path: Path, object_line: int) -> int:
    """Line of the field at ``path``; the object's line when the field does not exist."""
    node = body
    line = object_line
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not 0 <= step < len(node):
                return object_line
            if isinstance(node, LineList):
                line = node.item_lines[step]
            node = node[step]
        elif isinstance(node, LineDict):  # parsed from a file
            if step not in node:
                return object_line
            line = node.key_lines.get(step, line)
            node = node[step]
        else:  # read from a cluster (plain dicts), or not a mapping at all
            if not isinstance(node, dict) or step not in node:
                return object_line
            node = node[step]
    return line
