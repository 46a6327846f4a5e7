"""The static posture of workloads, read from the JSON that ``kubesentinel scan`` writes.

Only findings on workload kinds count: those are what a runtime alert can be tied to. A
finding's ``object.namespace`` is null when the manifest left it unset, which the API server
reads as "default". A rule failing on several containers of one workload counts once. The
format is described in docs/json-output.md; readers accept any 1.x (minor versions only add).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from kubesentinel.errors import RuntimeLayerError
from kubesentinel.models.finding import Finding
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.models.severity import Severity

__all__ = ["WORKLOAD_KINDS", "load_posture_file"]

WORKLOAD_KINDS: Final = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "ReplicationController",
    }
)
_READ_MAJOR: Final = "1"
_HINT: Final = (
    "create it with: kubesentinel scan --path DIR --format json --severity-threshold low "
    "--output FILE"
)


def load_posture_file(path: str | Path) -> Posture:
    """Read a scan result; raise RuntimeLayerError (with the file and a hint) if it is not one."""
    where = str(path)
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise _error(where, "posture file not found") from None
    except OSError as exc:
        raise _error(where, f"cannot read posture file: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _error(where, f"posture file is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _error(where, "posture file is not a kubesentinel scan result (not an object)")
    _check_version(where, document.get("schema_version"))
    findings = document.get("findings")
    if not isinstance(findings, list):
        raise _error(where, "posture file has no findings list")

    read = (_read_finding(where, index, finding) for index, finding in enumerate(findings))
    return _grouped((pair for pair in read if pair is not None), where)


def posture_from_findings(findings: Iterable[Finding], source: str) -> Posture:
    """The posture of a scan run in this process (``kubesentinel scan --store``)."""
    pairs = (
        (f"{f.obj.namespace or 'default'}/{f.obj.kind}/{f.obj.name}",
         PostureFinding(f.rule_id, f.severity, f.title))
        for f in findings
        if f.obj.kind in WORKLOAD_KINDS
    )  # fmt: skip
    return _grouped(pairs, source)


def _grouped(pairs: Iterable[tuple[str, PostureFinding]], source: str) -> Posture:
    """One entry per rule and workload (several containers failing count once), worst first."""
    by_workload: dict[str, dict[str, PostureFinding]] = {}
    for key, posture_finding in pairs:
        rules = by_workload.setdefault(key, {})
        known = rules.get(posture_finding.rule_id)
        if known is None or posture_finding.severity > known.severity:
            rules[posture_finding.rule_id] = posture_finding
    workloads = {
        key: tuple(sorted(rules.values(), key=lambda f: (-f.severity, f.rule_id)))
        for key, rules in sorted(by_workload.items())
    }
    return Posture(workloads=workloads, source=source)


def _check_version(where: str, version: object) -> None:
    if not isinstance(version, str):
        raise _error(where, "posture file has no schema_version: not a kubesentinel scan result")
    major = version.split(".", 1)[0]
    if major != _READ_MAJOR:
        raise _error(
            where,
            f"posture file has schema_version {version}; this version reads {_READ_MAJOR}.x",
        )


def _read_finding(where: str, index: int, finding: Any) -> tuple[str, PostureFinding] | None:
    """("namespace/Kind/name", finding), or None for a finding on a non-workload object."""
    obj = finding.get("object") if isinstance(finding, dict) else None
    if not isinstance(obj, dict):
        raise _error(where, f"findings[{index}] has no object")
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    namespace = obj.get("namespace") or "default"
    name = obj.get("name")
    rule_id = finding.get("rule_id")
    title = finding.get("title")
    severity = finding.get("severity")
    if not all(isinstance(v, str) for v in (namespace, name, rule_id, title, severity)):
        raise _error(
            where, f"findings[{index}] lacks a string rule_id, title, severity or object name"
        )
    try:
        parsed = Severity.parse(severity)
    except ValueError as exc:
        raise _error(where, f"findings[{index}]: {exc}") from None
    return f"{namespace}/{kind}/{name}", PostureFinding(rule_id, parsed, title)


def _error(where: str, message: str) -> RuntimeLayerError:
    return RuntimeLayerError(message, file=where, hint=_HINT)
