"""Predicate registry. A predicate is a small named function: object in, violations out.

Rules (YAML data in ``static/rules/``) name a predicate and give it params; the same predicate
serves several rules where only the params differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import Path


@dataclass(frozen=True, slots=True)
class Violation:
    message: str
    path: Path  # the offending field; the object's line is used when it does not exist


Params = Mapping[str, Any]
Predicate = Callable[[K8sObject, ScanContext, Params], Iterable[Violation]]

REGISTRY: dict[str, Predicate] = {}


def predicate(name: str) -> Callable[[Predicate], Predicate]:
    """Register a predicate under the name rule files use."""

    def register(func: Predicate) -> Predicate:
        if name in REGISTRY:
            raise RuntimeError(f"predicate {name!r} registered twice")
        REGISTRY[name] = func
        return func

    return register


def load_builtin_predicates() -> Mapping[str, Predicate]:
    """Import every predicate module once so each registers itself."""
    from kubesentinel.static.predicates import _modules  # noqa: F401 - import registers

    return REGISTRY
