"""What cross-object rules may ask about the whole scan: policies, roles, service accounts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubesentinel.models import K8sObject

LATEST_PSS = (1, 37)
T = TypeVar("T")


def namespace_of(obj: K8sObject) -> str:
    """Unset namespaces land in "default" when applied without -n."""
    return obj.namespace or "default"


class NeedsWholeScan(BaseException):
    """A rule asked about other objects of a context that holds none (ScanContext.local).

    The engine catches it and evaluates that rule on that object again once every file is
    read. A BaseException, so that no ``except Exception`` in a rule can swallow it."""


@dataclass(slots=True)
class ScanContext:
    _objects: Sequence[K8sObject] = ()
    pss_version: tuple[int, int] = LATEST_PSS
    # static.allowed_registries: registries (or registry/path prefixes) images may come from;
    # empty means any.
    allowed_registries: tuple[str, ...] = ()
    _by_kind: dict[str, list[K8sObject]] = field(default_factory=dict)
    _by_kind_ns: dict[tuple[str, str], list[K8sObject]] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)
    whole_scan: bool = True

    @classmethod
    def build(
        cls,
        objects: Iterable[K8sObject],
        pss_version: tuple[int, int] = LATEST_PSS,
        allowed_registries: tuple[str, ...] = (),
    ) -> ScanContext:
        objs = list(objects)
        by_kind: dict[str, list[K8sObject]] = defaultdict(list)
        by_kind_ns: dict[tuple[str, str], list[K8sObject]] = defaultdict(list)
        for obj in objs:
            by_kind[obj.kind].append(obj)
            by_kind_ns[obj.kind, namespace_of(obj)].append(obj)
        return cls(objs, pss_version, allowed_registries, dict(by_kind), dict(by_kind_ns))

    @classmethod
    def local(
        cls, pss_version: tuple[int, int] = LATEST_PSS, allowed_registries: tuple[str, ...] = ()
    ) -> ScanContext:
        """The settings without the objects: rules that read one object run on it while other
        files are still being read; asking about the others raises NeedsWholeScan."""
        return cls((), pss_version, allowed_registries, whole_scan=False)

    @property
    def objects(self) -> Sequence[K8sObject]:
        self._needs_whole_scan()
        return self._objects

    def memo(self, name: str, build: Callable[[], T]) -> T:
        """A derived index over the whole scan, built once (cross-object rules ask per object)."""
        self._needs_whole_scan()
        return self.cache(name, build)

    def cache(self, name: str, build: Callable[[], T]) -> T:
        """A cache of work on single objects (a role's parsed rules), kept for the scan or the
        worker; unlike memo it asks nothing about other objects, so local contexts have it."""
        if name not in self._memo:
            self._memo[name] = build()
        value: T = self._memo[name]
        return value

    def of_kind(self, *kinds: str) -> list[K8sObject]:
        self._needs_whole_scan()
        return [obj for kind in kinds for obj in self._by_kind.get(kind, ())]

    def in_namespace(self, kind: str, namespace: str) -> list[K8sObject]:
        self._needs_whole_scan()
        return list(self._by_kind_ns.get((kind, namespace), ()))

    def find(self, kind: str, name: str, namespace: str | None = None) -> K8sObject | None:
        self._needs_whole_scan()
        for obj in self._by_kind.get(kind, ()):
            if obj.name == name and (namespace is None or namespace_of(obj) == namespace):
                return obj
        return None

    def pss_at_least(self, major: int, minor: int) -> bool:
        return self.pss_version >= (major, minor)

    def _needs_whole_scan(self) -> None:
        if not self.whole_scan:
            raise NeedsWholeScan
