"""One Kubernetes object read from a manifest, with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an object sits: file, YAML document (non-empty ones counted) and List item."""

    file: str
    doc_index: int
    item_index: int | None
    line: int

    def __reduce__(self) -> tuple[Any, ...]:
        # Scan helpers send objects back by pickle: a frozen slotted dataclass pickles through
        # Python-level __getstate__/__setstate__, slower than its constructor's arguments.
        return SourceRef, (self.file, self.doc_index, self.item_index, self.line)


@dataclass(frozen=True, slots=True)
class K8sObject:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    body: Mapping[str, Any]
    source: SourceRef

    def __reduce__(self) -> tuple[Any, ...]:  # as SourceRef's
        return K8sObject, (self.api_version, self.kind, self.namespace, self.name, self.body,
                           self.source)  # fmt: skip

    @property
    def ref(self) -> str:
        """Human label such as ``Deployment/prod/web`` (namespace omitted when unset)."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"
