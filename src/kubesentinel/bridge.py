"""The bridge: static findings ("posture") joined to runtime incidents, in one module.

**Posture** is what ``kubesentinel scan`` found on each workload: the failing rules, with their
severity and title, keyed by :func:`posture_key` (``cluster/namespace/Kind/name``, the runtime's
``Workload.key``). It comes from a scan's JSON file (``monitor --posture FILE``, read by
:func:`load_posture_file`), from a scan in this process (``scan --store``,
:func:`posture_from_findings`), or from the monitor's store (the JSON document of
:func:`posture_document`). A posture describes one cluster: the one named by the monitor's
``--cluster`` when it was loaded ("default" unless given), so a workload of another cluster with
the same namespace, kind and name gets none of it. Only findings on workload kinds count
(``models/kinds.py``: the kinds a runtime alert is named by); a finding's unset namespace is
"default"; a rule failing on several containers of one workload counts once.

**Scoring.** When a workload's incident opens, the correlator asks :func:`posture_score` for
the posture part of its risk: each failing rule with a runtime impact adds points by severity
(critical 12, high 7, medium 3, low 1), capped at 25, and the incident's reason names them
("workload posture: KS-0001 privileged (critical), ...").

**Rule data.** Which rules have a runtime impact is not listed here: a rule file says so with
``runtime: {impact: LABEL}`` (``static/rules/*.yaml``, checked by ``static/catalogue.py``; custom
rules may set it too, see docs/custom-rules.md). Each :class:`PostureFinding` carries its rule's
impact, looked up once when the posture is built: from the rules of the scan that found it, or
from the built-in rules' bundle (read on first use and cached; the scanner's modules stay
unloaded) plus the user rule files at ``static.rules_path``, when there are any. The
correlator's hot path reads only the findings. The scan JSON format is described in
docs/json-output.md; readers accept any 1.x.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.errors import RuntimeLayerError
from kubesentinel.models.finding import Finding
from kubesentinel.models.incident import RiskReason
from kubesentinel.models.kinds import RUNTIME_WORKLOAD_KINDS
from kubesentinel.models.posture import DEFAULT_CLUSTER, Posture, PostureFinding, posture_key
from kubesentinel.models.severity import Severity

if TYPE_CHECKING:
    from kubesentinel.models.rule import Rule

__all__ = [
    "POSTURE_CAP",
    "POSTURE_POINTS",
    "impacts_of",
    "load_posture_file",
    "posture_document",
    "posture_from_document",
    "posture_from_findings",
    "posture_key",
    "posture_score",
    "runtime_impacts",
]

POSTURE_POINTS: Final[Mapping[Severity, float]] = {
    Severity.CRITICAL: 12.0,
    Severity.HIGH: 7.0,
    Severity.MEDIUM: 3.0,
    Severity.LOW: 1.0,
}
POSTURE_CAP: Final = 25.0
DOCUMENT_VERSION: Final = 2  # the stored document; version 1 had no cluster and no impacts

_READ_MAJOR: Final = "1"
_HINT: Final = (
    "create it with: kubesentinel scan --path DIR --format json --severity-threshold low "
    "--output FILE"
)

PostureScore = tuple[tuple[str, ...], RiskReason | None]


# -- scoring ------------------------------------------------------------------------------------


def posture_score(findings: Iterable[PostureFinding]) -> PostureScore:
    """All failing rule ids (sorted) and the reason for those with a runtime impact, if any."""
    worst: dict[str, PostureFinding] = {}
    for finding in findings:
        seen = worst.get(finding.rule_id)
        if seen is None or finding.severity > seen.severity:
            worst[finding.rule_id] = finding
    ids = tuple(sorted(worst))
    relevant = [worst[rule_id] for rule_id in ids if worst[rule_id].impact is not None]
    if not relevant:
        return ids, None
    points = min(POSTURE_CAP, sum(POSTURE_POINTS[f.severity] for f in relevant))
    named = ", ".join(f"{f.rule_id} {f.impact} ({f.severity.label})" for f in relevant)
    return ids, RiskReason(points, f"workload posture: {named}")


# -- which rules matter at runtime ---------------------------------------------------------------


def impacts_of(rules: Iterable[Rule]) -> dict[str, str]:
    """Rule id -> runtime impact label, for the rules that have one."""
    return {rule.id: rule.runtime_impact for rule in rules if rule.runtime_impact is not None}


@lru_cache(maxsize=8)
def runtime_impacts(rules_path: str | None = None) -> Mapping[str, str]:
    """The runtime impacts of the built-in rules, plus those of the rule files at
    ``rules_path`` (``static.rules_path``) when it exists. Read once per path.

    The built-in rules come from their JSON bundle (quick to read, and none of the scanner's
    modules); only a bundle of another layout, or user rules, bring in the YAML loader.
    """
    from kubesentinel.static import rulebundle

    try:
        bundled = rulebundle.load(
            rulebundle.BUNDLE.read_bytes(), rulebundle.BUNDLE.parent / "rules"
        )
    except FileNotFoundError:
        bundled = None
    if bundled is None:
        from kubesentinel.static.catalogue import builtin_catalogue

        bundled = builtin_catalogue().rules
    impacts = impacts_of(bundled)
    if rules_path and Path(rules_path).exists():
        from kubesentinel.static.catalogue import load_catalogue

        impacts.update(impacts_of(load_catalogue([Path(rules_path)]).rules))
    return MappingProxyType(impacts)  # cached and shared: read-only


# -- building a posture -------------------------------------------------------------------------


def posture_from_findings(
    findings: Iterable[Finding],
    source: str,
    *,
    cluster: str = DEFAULT_CLUSTER,
    impacts: Mapping[str, str] | None = None,
) -> Posture:
    """The posture of a scan run in this process (``kubesentinel scan --store``); ``impacts``
    from the scan's own rules (:func:`impacts_of`), else the built-in ones."""
    table = runtime_impacts() if impacts is None else impacts
    pairs = (
        (posture_key(cluster, f.obj.namespace, f.obj.kind, f.obj.name),
         PostureFinding(f.rule_id, f.severity, f.title, table.get(f.rule_id)))
        for f in findings
        if f.obj.kind in RUNTIME_WORKLOAD_KINDS
    )  # fmt: skip
    return _grouped(pairs, source, cluster)


def load_posture_file(
    path: str | Path, *, cluster: str = DEFAULT_CLUSTER, rules_path: str | None = None
) -> Posture:
    """Read a scan result as the posture of ``cluster``; raise RuntimeLayerError (with the file
    and a hint) if it is not one. Impacts: the built-in rules' and those at ``rules_path``."""
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

    impacts = runtime_impacts(rules_path)
    facts = _builtin_facts()
    read = (
        _read_finding(where, index, finding, cluster, impacts)
        for index, finding in enumerate(findings)
    )
    pairs = (
        pair
        for index, head in enumerate(read)
        if head is not None
        for pair in (head, *_folded_pairs(head, findings[index], impacts, facts))
    )
    return _grouped(pairs, where, cluster)


def _folded_pairs(
    head: tuple[str, PostureFinding],
    finding: dict[str, Any],
    impacts: Mapping[str, str],
    facts: Mapping[str, tuple[Severity, str]],
) -> Iterator[tuple[str, PostureFinding]]:
    """The implied rules a folded finding holds (schema 1.2 ``folded``), each a finding of the
    workload too: with its built-in severity and title, else the folded finding's severity."""
    key, posture_finding = head
    folded = finding.get("folded")
    for rule_id in folded if isinstance(folded, list) else ():
        if isinstance(rule_id, str):
            severity, title = facts.get(rule_id, (posture_finding.severity, rule_id))
            yield key, PostureFinding(rule_id, severity, title, impacts.get(rule_id))


@cache
def _builtin_facts() -> Mapping[str, tuple[Severity, str]]:
    """Severity and title of each built-in rule, from the rule bundle (as runtime_impacts)."""
    from kubesentinel.static import rulebundle

    try:
        rules = rulebundle.load(rulebundle.BUNDLE.read_bytes(), rulebundle.BUNDLE.parent / "rules")
    except FileNotFoundError:
        rules = None
    return MappingProxyType({r.id: (r.severity, r.title) for r in rules or ()})


def _grouped(pairs: Iterable[tuple[str, PostureFinding]], source: str, cluster: str) -> Posture:
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
    return Posture(workloads=workloads, source=source, cluster=cluster)


def _check_version(where: str, version: object) -> None:
    if not isinstance(version, str):
        raise _error(where, "posture file has no schema_version: not a kubesentinel scan result")
    major = version.split(".", 1)[0]
    if major != _READ_MAJOR:
        raise _error(
            where,
            f"posture file has schema_version {version}; this version reads {_READ_MAJOR}.x",
        )


def _read_finding(
    where: str, index: int, finding: Any, cluster: str, impacts: Mapping[str, str]
) -> tuple[str, PostureFinding] | None:
    """(posture key, finding), or None for a finding on a non-workload object."""
    obj = finding.get("object") if isinstance(finding, dict) else None
    if not isinstance(obj, dict):
        raise _error(where, f"findings[{index}] has no object")
    kind = obj.get("kind")
    if kind not in RUNTIME_WORKLOAD_KINDS:
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
    key = posture_key(cluster, namespace, str(kind), str(name))
    return key, PostureFinding(rule_id, parsed, title, impacts.get(rule_id))


def _error(where: str, message: str) -> RuntimeLayerError:
    return RuntimeLayerError(message, file=where, hint=_HINT)


# -- the stored document ------------------------------------------------------------------------


def posture_document(posture: Posture, saved_ns: int | None = None) -> str:
    """The posture as the JSON document the store keeps (version 2: with its cluster, full
    keys and each finding's impact; ``saved_ns``, when the store saved it, added later and
    optional, so older version 2 documents read as they are)."""
    return json.dumps(
        {
            "version": DOCUMENT_VERSION,
            "cluster": posture.cluster,
            "source": posture.source,
            "saved_ns": time.time_ns() if saved_ns is None else saved_ns,
            "workloads": {
                key: [_finding_item(f) for f in findings]
                for key, findings in posture.workloads.items()
            },
        }
    )


def posture_from_document(text: str) -> Posture:
    """A stored posture. A version 1 document (no ``version``) describes cluster "default",
    keys its workloads "namespace/Kind/name" and has no impacts: the built-in rules' apply."""
    data = json.loads(text)
    if data.get("version") is None:
        cluster, prefix, impacts = DEFAULT_CLUSTER, f"{DEFAULT_CLUSTER}/", runtime_impacts()
    else:
        cluster, prefix, impacts = data["cluster"], "", None

    def finding(item: dict[str, str]) -> PostureFinding:
        rule_id = item["rule_id"]
        impact = item.get("impact") if impacts is None else impacts.get(rule_id)
        return PostureFinding(rule_id, Severity.parse(item["severity"]), item["title"], impact)

    workloads = {
        prefix + key: tuple(finding(item) for item in items)
        for key, items in data["workloads"].items()
    }
    saved = data.get("saved_ns")
    saved_ns = saved if isinstance(saved, int) and not isinstance(saved, bool) else None
    return Posture(workloads=workloads, source=data["source"], cluster=cluster, saved_ns=saved_ns)


def _finding_item(finding: PostureFinding) -> dict[str, str]:
    item = {"rule_id": finding.rule_id, "severity": finding.severity.label, "title": finding.title}
    if finding.impact is not None:
        item["impact"] = finding.impact
    return item
