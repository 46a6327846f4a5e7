"""Helpers shared by the renderers: labels, counts, grouping and text made safe for output."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

from kubesentinel.models import Finding, ObjectRef, Rule, Severity, Suppressed
from kubesentinel.static.formats import ScanReport

TOOL_NAME = "kubesentinel"
# Highest first: the order every report lists severities in.
SEVERITIES = tuple(sorted(Severity, reverse=True))

# Manifests are untrusted: control characters could rewrite a terminal (ANSI escapes) or make
# XML unparsable (XML 1.0 forbids them, and lone surrogates), so they are shown as escapes.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAK = re.compile(r"[\r\n\t]+")


def printable(text: str) -> str:
    """``text`` on one line, with control characters written as ``\\x1b``-style escapes."""
    text = _LINE_BREAK.sub(" ", text)
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def object_label(obj: ObjectRef) -> str:
    """``Deployment prod/web``, or ``ClusterRole admin`` when the object has no namespace."""
    name = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
    return f"{obj.kind} {name}"


def object_ref(obj: ObjectRef) -> str:
    """``Deployment/prod/web``, or ``Kind/name`` without a namespace (as rule fixtures write it)."""
    return "/".join(part for part in (obj.kind, obj.namespace, obj.name) if part)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per severity label, highest first, every severity present (zero when none)."""
    counts = {severity.label: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding.severity.label] += 1
    return counts


def suppression_counts(suppressed: Iterable[Suppressed]) -> dict[str, int]:
    """Suppressed findings per source (annotation, config, baseline); sources with none left out."""
    counts = {"annotation": 0, "config": 0, "baseline": 0}
    for item in suppressed:
        counts[item.suppression.kind] += 1
    return {kind: n for kind, n in counts.items() if n}


def suppressed_note(suppressed: list[Suppressed]) -> str:
    """``3 suppressed (1 by annotation, 2 by baseline)``; empty when nothing was suppressed."""
    if not suppressed:
        return ""
    counts = ", ".join(f"{n} by {kind}" for kind, n in suppression_counts(suppressed).items())
    return f"{len(suppressed)} suppressed ({counts})"


def by_file(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by file, files in order of their first finding, findings kept in order."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.file, []).append(finding)
    return list(groups.items())


def by_object(findings: Iterable[Finding]) -> list[tuple[ObjectRef, list[Finding]]]:
    """Findings of one file grouped by object, objects in order of their first finding."""
    groups: dict[tuple[ObjectRef, int, int | None], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.obj, finding.doc_index, finding.item_index), []).append(finding)
    return [(key[0], group) for key, group in groups.items()]


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Highest severity first, then by rule, line and message (stable, so deterministic)."""
    return sorted(findings, key=lambda f: (-f.severity, f.rule_id, f.line, f.message))


def folded_note(finding: Finding) -> str:
    """``KS-0035 (Sensitive host path mounted), KS-0005 (HostPath volume)``: the implied rules
    a folded finding holds, each once."""
    titles = {f.rule_id: f.title for f in finding.folded}
    return ", ".join(f"{rule_id} ({titles[rule_id]})" for rule_id in finding.folded_ids)


def rules_of(report: ScanReport) -> dict[str, Rule]:
    return {rule.id: rule for rule in report.catalogue.rules}


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def artifact_uri(file: str) -> tuple[str, bool]:
    """A URI for a scanned path and whether it is relative (to the directory the scan ran in).

    Relative paths become forward-slash URI references without ``./``; absolute ones become
    ``file://`` URIs; other names (``<stdin>``) are percent-encoded so the URI stays valid.
    """
    if _URI.match(file):  # already a URI: objects read by `scan --cluster` (cluster://...)
        return file, False
    if PureWindowsPath(file).is_absolute() and not file.startswith("/"):
        return PureWindowsPath(file).as_uri(), False
    posix = file.replace("\\", "/")
    if PurePosixPath(posix).is_absolute():
        return PurePosixPath(posixpath.normpath(posix)).as_uri(), False
    return quote(posixpath.normpath(posix), safe="/-._~!$&'()*+,;=@"), True


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
