"""A rule violation on one object, located to a file and line."""

from __future__ import annotations

from dataclasses import dataclass

from kubesentinel.models.severity import Severity


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str | None
    name: str
    api_version: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
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
