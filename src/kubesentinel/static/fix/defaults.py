"""``static.fix_defaults``: the resource requests and limits `fix` writes where they are missing.

Kept apart from the fixer so that reading config.yaml never imports ruamel.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubesentinel.errors import ConfigError

# A Kubernetes resource quantity, as the API server accepts it for cpu and memory.
_QUANTITY = re.compile(
    r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
)
_FACTORS = {
    "": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
SECTIONS = ("requests", "limits")
RESOURCES = ("cpu", "memory")


@dataclass(frozen=True, slots=True)
class FixDefaults:
    """Modest values: enough for a small web service, low enough to schedule anywhere."""

    requests_cpu: str = "100m"
    requests_memory: str = "128Mi"
    limits_cpu: str = "500m"
    limits_memory: str = "512Mi"

    def value(self, section: str, resource: str) -> str:
        text: str = getattr(self, f"{section}_{resource}")
        return text


def quantity(text: object) -> float | None:
    """A quantity's value in base units (cores, bytes); None when it is not one."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    match = _QUANTITY.match(str(text))
    if match is None:
        return None
    suffix = match.group(1) or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return float(str(text))  # decimal exponent: 1e3
    return float(str(text)[: len(str(text)) - len(suffix)]) * _FACTORS[suffix]


def parse_fix_defaults(value: Any, file: str, line: int) -> FixDefaults:
    """``{requests: {cpu, memory}, limits: {cpu, memory}}``; keys left out keep their default."""
    if value is None:
        return FixDefaults()
    if not isinstance(value, dict):
        raise ConfigError("static.fix_defaults must be a mapping", file=file, line=line)
    found: dict[str, str] = {}
    for section, inner in value.items():
        where = _line(value, section, line)
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown key static.fix_defaults.{section} (allowed: {', '.join(SECTIONS)})",
                file=file,
                line=where,
            )
        if not isinstance(inner, dict):
            raise ConfigError(
                f"static.fix_defaults.{section} must be a mapping", file=file, line=where
            )
        for resource, amount in inner.items():
            dotted = f"static.fix_defaults.{section}.{resource}"
            at = _line(inner, resource, where)
            if resource not in RESOURCES:
                raise ConfigError(
                    f"unknown key {dotted} (allowed: {', '.join(RESOURCES)})", file=file, line=at
                )
            if quantity(amount) is None:
                raise ConfigError(
                    f"{dotted} must be a quantity such as 100m, 0.5 or 128Mi, got {amount!r}",
                    file=file,
                    line=at,
                )
            found[f"{section}_{resource}"] = str(amount)
    defaults = FixDefaults(**found)
    for resource in RESOURCES:
        request = quantity(defaults.value("requests", resource))
        limit = quantity(defaults.value("limits", resource))
        if request is not None and limit is not None and request > limit:
            raise ConfigError(
                f"static.fix_defaults: the {resource} request is above its limit",
                file=file,
                line=line,
            )
    return defaults


def _line(mapping: Any, key: str, default: int) -> int:
    lines = getattr(mapping, "key_lines", None)
    return int(lines.get(key, default)) if isinstance(lines, dict) else default
