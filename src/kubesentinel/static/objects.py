"""Turn parsed YAML documents into Kubernetes objects: List expansion, identity, notices."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import K8sObject, SourceRef
from kubesentinel.static.yamldoc import Document, LineDict, LineList


@dataclass(frozen=True, slots=True)
class Notice:
    """Something skipped on purpose; printed, never an error."""

    file: str
    line: int
    message: str

    def __reduce__(self) -> tuple[Any, ...]:  # as SourceRef's: notices cross from helpers too
        return Notice, (self.file, self.line, self.message)


def objects_from(document: Document, file: str) -> Iterator[K8sObject | Notice]:
    value = document.value
    if not isinstance(value, Mapping):
        found = type(value).__name__ if not isinstance(value, list) else "a list"
        yield Notice(
            file, document.line, f"document {document.index} is {found}, not an object; skipped"
        )
        return
    kind = value.get("kind")
    items = value.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            line = items.item_lines[index] if isinstance(items, LineList) else document.line
            yield _object(item, file, document.index, index, line)
        return
    yield _object(value, file, document.index, None, document.line)


def _object(
    value: Any, file: str, doc_index: int, item_index: int | None, line: int
) -> K8sObject | Notice:
    where = f"document {doc_index}" + (f" item {item_index}" if item_index is not None else "")
    if not isinstance(value, Mapping):
        return Notice(file, line, f"{where} is not an object; skipped")
    api_version, kind = value.get("apiVersion"), value.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        missing = " and ".join(
            k
            for k, v in (("apiVersion", api_version), ("kind", kind))
            if not isinstance(v, str) or not v
        )
        return Notice(file, line, f"{where} has no {missing}; not a Kubernetes object, skipped")
    metadata = value.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name") or metadata.get("generateName") or "<unnamed>"
    namespace = metadata.get("namespace")
    if isinstance(value, LineDict):
        line = value.line
    return K8sObject(
        api_version=api_version,
        kind=kind,
        namespace=str(namespace) if namespace not in (None, "") else None,
        name=str(name),
        body=value,
        source=SourceRef(file=file, doc_index=doc_index, item_index=item_index, line=line),
    )
