"""One Falco alert as Falco or falcosidekick emitted it, validated once at the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    """Falco priorities, ordered from least to most severe (Falco's own names)."""

    DEBUG = 0
    INFORMATIONAL = 1
    NOTICE = 2
    WARNING = 3
    ERROR = 4
    CRITICAL = 5
    ALERT = 6
    EMERGENCY = 7

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Any case, with the aliases Falco accepts (info, warn, err, crit, emerg)."""
        key = text.strip().upper()
        key = _ALIASES.get(key, key)
        try:
            return cls[key]
        except KeyError:
            valid = ", ".join(p.label for p in cls)
            raise ValueError(
                f"unknown Falco priority {text!r} (expected one of: {valid})"
            ) from None

    @property
    def label(self) -> str:
        return self.name.capitalize() if self is not Priority.INFORMATIONAL else "Informational"


_ALIASES = {
    "INFO": "INFORMATIONAL",
    "WARN": "WARNING",
    "ERR": "ERROR",
    "CRIT": "CRITICAL",
    "EMERG": "EMERGENCY",
}


# Not frozen: a frozen dataclass pays object.__setattr__ per field in __init__, and alerts are
# built on the monitor's hot path. Treat it as immutable.
@dataclass(slots=True)
class FalcoAlert:
    time_ns: int  # from "time" (RFC 3339) or output_fields evt.time / evt.time.iso8601
    rule: str
    priority: Priority
    source: str  # "syscall" when absent (Falco < 0.30), "k8s_audit", "internal", plugins...
    output: str
    hostname: str  # "" when absent
    tags: tuple[str, ...]
    output_fields: Mapping[str, Any]
    uuid: str | None  # falcosidekick adds one; Falco itself does not
    origin: str  # where it was read: "file.jsonl:12", "http", "nats:falco.warning.x#5"
    # The alert's bytes as received (surrounding whitespace removed): the evidence the store
    # keeps and the input of the content id. Empty for an alert built in code.
    raw: bytes = field(default=b"", compare=False, repr=False)
