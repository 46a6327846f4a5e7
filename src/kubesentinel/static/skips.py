"""``static.skip`` in config.yaml: findings a team has decided not to see, with a reason.

Each entry matches on any of rule id, namespace, kind, name and file path (globs, all given
keys must match) and may give a reason. Rule ids are checked against the catalogue later, when
it is known (``suppress.build``), still naming the config file and line.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from kubesentinel.errors import ConfigError
from kubesentinel.models import Finding
from kubesentinel.static.yamldoc import LineDict

MATCH_KEYS = ("rule", "namespace", "kind", "name", "path")
KEYS = (*MATCH_KEYS, "reason")


@dataclass(frozen=True, slots=True)
class SkipRule:
    rule: str | None = None  # rule id or alias, exact; the others are globs
    namespace: str | None = None
    kind: str | None = None
    name: str | None = None
    path: str | None = None
    reason: str | None = None
    file: str | None = None  # where the entry is written, for messages
    line: int | None = None

    def matches(self, finding: Finding) -> bool:
        obj = finding.obj
        # An object without metadata.namespace never matches a namespace pattern: a skip
        # written for one namespace must not also hide cluster-scoped objects.
        return (
            (self.rule is None or self.rule == finding.rule_id)
            and _glob(self.namespace, obj.namespace)
            and _glob(self.kind, obj.kind)
            and _glob(self.name, obj.name)
            and _glob(self.path, _normal_path(finding.file))
        )


def _glob(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and _compiled(pattern).fullmatch(value) is not None


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _cache.get(pattern)
    if compiled is None:
        compiled = _cache[pattern] = re.compile(fnmatch.translate(pattern))
    return compiled


def _normal_path(file: str) -> str:
    """Forward slashes, no leading ``./``: what a glob in config.yaml is written against."""
    path = file.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def parse_skips(value: Any, file: str, line: int) -> tuple[SkipRule, ...]:
    """The ``static.skip`` list, or a ConfigError naming the file and line of the problem."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("static.skip must be a list of mappings", file=file, line=line)
    lines = getattr(value, "item_lines", [])
    rules = []
    for index, entry in enumerate(value):
        entry_line = lines[index] if index < len(lines) else line
        rules.append(_entry(entry, file, entry_line, index))
    return tuple(rules)


def _entry(entry: Any, file: str, line: int, index: int) -> SkipRule:
    where = f"static.skip[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where} must be a mapping with any of {', '.join(KEYS)}", file=file, line=line
        )
    key_lines = entry.key_lines if isinstance(entry, LineDict) else {}
    values: dict[str, str] = {}
    for key, item in entry.items():
        key_line = key_lines.get(key, line)
        if key not in KEYS:
            raise ConfigError(
                f"unknown key {where}.{key} (allowed: {', '.join(KEYS)})", file=file, line=key_line
            )
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"{where}.{key} must be a non-empty string, got {type(item).__name__} {item!r}",
                file=file,
                line=key_line,
            )
        values[key] = item.strip()
    if not any(key in values for key in MATCH_KEYS):
        raise ConfigError(
            f"{where} matches everything: give at least one of {', '.join(MATCH_KEYS)}",
            file=file,
            line=line,
        )
    return SkipRule(**values, file=file, line=line)
