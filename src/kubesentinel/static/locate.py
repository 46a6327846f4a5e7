"""Map a field path inside an object to its line in the manifest."""

from __future__ import annotations

from typing import Any

from kubesentinel.static.podspec import Path
from kubesentinel.static.yamldoc import LineDict, LineList


def line_of(body: Any, path: Path, object_line: int) -> int:
    """Line of the field at ``path``, or of the deepest part of it that exists.

    A finding about a missing field (``securityContext.runAsNonRoot``) points where the fix
    goes: the ``securityContext:`` line, else the container's ``- name:`` line, else the pod
    spec. Objects without lines (read from a cluster) keep ``object_line``.
    """
    node = body
    line = object_line
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not 0 <= step < len(node):
                return line
            if isinstance(node, LineList):
                line = node.item_lines[step]
            node = node[step]
        elif isinstance(node, LineDict):  # parsed from a file
            if step not in node:
                return line
            line = node.key_lines.get(step, line)
            node = node[step]
        else:  # read from a cluster (plain dicts), or not a mapping at all
            if not isinstance(node, dict) or step not in node:
                return line
            node = node[step]
    return line
