"""Rendering: each alert layout rendered to JSON once, its three time slots filled per alert."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.simulate.constants import NS
from kubesentinel.runtime.simulate.rules import APPEND_SYSCALL, FIELD, RULES, Rule

_HMS: Final = "\x1bHMS\x1b"
_EVT: Final = "\x1bEVT\x1b"
_RFC: Final = "\x1bRFC\x1b"
_Template = tuple[str, str | None, str, str]  # head, middle (None: complete), tail, end


def _text(value: Any) -> str:
    return "<NA>" if value is None else str(value)


def _fill(template: str, fields: Mapping[str, Any]) -> str:
    return FIELD.sub(lambda m: _text(fields.get(m.group(1))), template)


@lru_cache(maxsize=64)
def _fields_of(rule: Rule) -> tuple[str, ...]:
    text = rule.output + (" " + APPEND_SYSCALL if rule.source == "syscall" else "")
    return tuple(dict.fromkeys(FIELD.findall(text)))


def _json_str(text: str) -> str:
    return json.dumps(text)[1:-1]


def dumps(alert: Mapping[str, Any]) -> str:
    return json.dumps(alert, separators=(",", ":"), ensure_ascii=False)


class Templates:
    """Pre-rendered alert layouts, addressed by index."""

    def __init__(self) -> None:
        self.parts: list[_Template] = []

    def add(self, host: str, rule_name: str, fields: Mapping[str, Any]) -> int:
        rule = RULES[rule_name]
        label = Priority.parse(rule.priority).label
        output = f"{_HMS}: {label} {_fill(rule.output, fields)}"
        if rule.source == "syscall":
            output += " " + _fill(APPEND_SYSCALL, fields)
        values = {name: fields.get(name) for name in _fields_of(rule)} | {"evt.time": _EVT}
        text = dumps({
            "hostname": host,
            "output": output,
            "output_fields": dict(sorted(values.items())),
            "priority": label,
            "rule": rule.name,
            "source": rule.source,
            "tags": sorted(rule.tags),
            "time": _RFC + "Z",
        })  # fmt: skip
        head, rest = text.split(_json_str(_HMS), 1)
        middle, rest = rest.split(f'"{_json_str(_EVT)}"', 1)
        tail, end = rest.split(_json_str(_RFC), 1)
        self.parts.append((head, middle, tail, end))
        return len(self.parts) - 1

    def add_line(self, line: str) -> int:
        """A fully rendered alert: its time is already in it."""
        self.parts.append((line, None, "", ""))
        return len(self.parts) - 1


@lru_cache(maxsize=8)
def utc_date(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def rfc3339(time_ns: int) -> str:
    sec, frac = divmod(time_ns, NS)
    day, sod = divmod(sec, 86400)
    return f"{utc_date(day)}T{sod // 3600:02d}:{sod % 3600 // 60:02d}:{sod % 60:02d}.{frac:09d}Z"
