"""Baseline files: findings accepted once (``--write-baseline``), then not reported again.

A finding is identified by rule id, file, object kind/namespace/name and field path, never by
line, so edits elsewhere in a file keep it matched. Files are stored relative to the baseline's
own directory, so a scan from another directory, or with absolute paths, still matches.
The format is JSON, one finding per line for readable diffs, documented in the README.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesentinel.errors import BaselineError
from kubesentinel.models import Finding

FORMAT = "kubesentinel-baseline"
VERSION = 1
MAX_BASELINE_BYTES = 64 * 1024 * 1024
_FIELDS = ("rule_id", "file", "kind", "namespace", "name", "field_path")
_HINT = "create one with `kubesentinel scan --write-baseline FILE`"

# rule id, file (relative to the baseline), kind, namespace ("" when unset), name, field path
Key = tuple[str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Baseline:
    path: str
    keys: frozenset[Key]

    @property
    def base_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def matches(self, finding: Finding) -> bool:
        return key_of(finding, self.base_dir) in self.keys


def key_of(finding: Finding, base_dir: str) -> Key:
    obj = finding.obj
    file = portable_path(finding.file, base_dir)
    return (finding.rule_id, file, obj.kind, obj.namespace or "", obj.name, finding.field_path)


def portable_path(file: str, base_dir: str) -> str:
    """``file`` relative to ``base_dir`` with forward slashes; ``<stdin>`` stays as it is."""
    if file.startswith("<"):
        return file
    try:
        relative = os.path.relpath(os.path.abspath(file), base_dir)
    except ValueError:  # another drive on Windows: no relative path exists
        relative = os.path.abspath(file)
    return relative.replace(os.sep, "/")


def load_baseline(path: str, canonical: Mapping[str, str] | None = None) -> Baseline:
    """Read a baseline; ``canonical`` maps upper-cased ids and aliases to current rule ids."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_BASELINE_BYTES + 1)
    except OSError as exc:
        raise BaselineError(
            f"cannot read baseline: {exc.strerror or exc}", file=path, hint=_HINT
        ) from None
    if len(data) > MAX_BASELINE_BYTES:
        raise BaselineError("baseline file larger than 64 MB", file=path)
    try:
        root = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BaselineError(f"baseline is not UTF-8 text: {exc.reason}", file=path) from None
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"baseline is not valid JSON: {exc.msg}", file=path, line=exc.lineno
        ) from None
    return Baseline(path, frozenset(_keys(root, path, canonical or {})))


def _keys(root: Any, path: str, canonical: Mapping[str, str]) -> Iterable[Key]:
    if not isinstance(root, dict) or root.get("format") != FORMAT:
        raise BaselineError(
            f'not a KubeSentinel baseline (no "format": "{FORMAT}")', file=path, hint=_HINT
        )
    version = root.get("version")
    if version != VERSION:
        raise BaselineError(
            f"baseline version {version!r} is not supported (this KubeSentinel reads {VERSION})",
            file=path,
            hint="write it again with `kubesentinel scan --write-baseline FILE`",
        )
    findings = root.get("findings")
    if not isinstance(findings, list):
        raise BaselineError('baseline has no "findings" list', file=path)
    for index, entry in enumerate(findings):
        yield _key(entry, f"findings[{index}]", path, canonical)


def _key(entry: Any, where: str, path: str, canonical: Mapping[str, str]) -> Key:
    if not isinstance(entry, dict):
        raise BaselineError(f"{where} must be an object", file=path)
    values: list[str] = []
    for name in _FIELDS:
        value = entry.get(name)
        if name == "namespace" and value is None:
            value = ""
        if not isinstance(value, str):
            raise BaselineError(
                f"{where}.{name} must be a string, got {type(value).__name__}", file=path
            )
        values.append(value)
    rule_id = values[0]
    # Renamed rules keep their old ids as aliases: an old baseline still matches.
    values[0] = canonical.get(rule_id.upper(), rule_id)
    rule, file, kind, namespace, name, field_path = values
    return (rule, file, kind, namespace, name, field_path)


def dumps(findings: Iterable[Finding], base_dir: str) -> str:
    """The baseline text for ``findings``: sorted, without duplicates, one finding per line."""
    return _render(sorted({key_of(f, base_dir) for f in findings}))


def _render(keys: list[Key]) -> str:
    entries = [
        json.dumps({**dict(zip(_FIELDS, key, strict=True)), "namespace": key[3] or None})
        for key in keys
    ]
    body = ",\n".join(f"    {entry}" for entry in entries)
    head = f'{{\n  "format": "{FORMAT}",\n  "version": {VERSION},\n  "findings": ['
    return f"{head}\n{body}\n  ]\n}}\n" if entries else f"{head}]\n}}\n"


def write_baseline(path: str, findings: Iterable[Finding]) -> int:
    """Write the baseline atomically (a crash leaves the old file); returns the entry count."""
    base_dir = os.path.dirname(os.path.abspath(path))
    keys = sorted({key_of(f, base_dir) for f in findings})
    text = _render(keys)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise BaselineError(f"cannot write baseline: {exc.strerror or exc}", file=path) from None
    return len(keys)
