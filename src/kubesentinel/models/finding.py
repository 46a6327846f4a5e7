"""A rule violation on one object, located to a file and line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kubesentinel.models.severity import Severity


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str | None
    name: str
    api_version: str = ""


class Finding(NamedTuple):
    """Immutable and hashable by value. A named tuple rather than a frozen dataclass: a scan
    makes one per finding (thousands on a large tree), and a frozen dataclass's __init__
    (one object.__setattr__ per field) costs several times as much; ``_replace`` is the
    ``dataclasses.replace`` of a named tuple."""

    rule_id: str
    severity: Severity
    title: str
    message: str
    remediation: str
    obj: ObjectRef
    file: str
    line: int
    doc_index: int
    item_index: int | None
    # Dotted path of the offending field, e.g. spec.template.spec.containers[0].image.
    field_path: str
    category: str = ""
    object_line: int = 0  # where the object starts (its first key), for grouping in reports
    # Findings of implied rules on the same container, volume or field, folded into this one
    # (static/folding.py); each has no folded findings of its own. Severity is already the
    # highest of the group.
    folded: tuple[Finding, ...] = ()

    @property
    def folded_ids(self) -> tuple[str, ...]:
        """Rule ids of the folded findings, each once, in order."""
        return tuple(dict.fromkeys(f.rule_id for f in self.folded))
