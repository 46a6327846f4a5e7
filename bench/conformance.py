"""Agreement of the built-in rules with the peer-labelled fixtures of shared/conformance.

Follows shared/conformance/README.md: every label's ``scan_unit`` is scanned once (cached) with
the real engine and the built-in catalogue, at every severity, and a label is matched to the
findings on (fixture, doc_index, item_index, concept); a rule's concept is its
``references.concepts``. RBAC labels also accept a finding on the role or binding that the
labelled object is linked to through a ``roleRef`` in the same scan unit, since peers flag
different ends of that link. ``granularity: file`` labels fail when some listed object (or,
when the record lists none, some object of the fixture file) has a finding. Labels of a
concept with no rule are disagreements ("no rule"). Labels listed in the exceptions file are
reported with their reason and left out of the agreement.

Usage:
    python bench/conformance.py [--dir DIR] [--exceptions FILE] [--report FILE] [--json FILE]

DIR defaults to $KUBESENTINEL_CONFORMANCE, else $KUBESENTINEL_SHARED/conformance, else
../shared/conformance beside the repository. Exit 0 after printing the report (also when the
folder is absent: the report is skipped with a message), 2 when the inputs are malformed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, K8sObject
from kubesentinel.static.catalogue import Catalogue, builtin_catalogue
from kubesentinel.static.context import namespace_of
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.inputs import InputFile, discover, read_limited
from kubesentinel.static.objects import objects_from
from kubesentinel.static.yamldoc import parse_file

ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS_FILE = ROOT / "tests" / "conformance" / "exceptions.yaml"

FAIL, PASS = "fail", "pass"
NO_RULE = "no rule"
CRASH = "error"  # the engine raised while scanning the label's unit
SCORED = ("TP", "TN", "FP", "FN", CRASH)
VERDICTS = (*SCORED, NO_RULE)
ROLE_KINDS = frozenset({"Role", "ClusterRole"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})
EXCEPTION_KEYS = ("source", "fixture", "concept", "doc_index", "item_index", "reason")
_CONCEPT_ROW = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|", re.MULTILINE)

# (fixture path under fixtures/, doc_index, item_index): one object of a scan unit.
ObjKey = tuple[str, int, int | None]


class HarnessError(Exception):
    """A labels or exceptions file that the harness cannot read."""


@dataclass(frozen=True, slots=True)
class Label:
    line: int  # line in labels.jsonl, to name the record in messages
    source: str
    fixture: str
    scan_unit: str
    concept: str
    expected: str
    doc_index: int | None
    item_index: int | None
    kind: str
    namespace: str | None
    name: str
    granularity: str = "resource"
    peer_check_id: str = ""
    listed: tuple[tuple[int, int | None], ...] = ()  # objects a file-granularity record names

    @property
    def object_ref(self) -> str:
        parts = (self.kind, self.namespace, self.name)
        return "/".join(p for p in parts if p) or "<file>"

    @property
    def where(self) -> str:
        if self.doc_index is None:
            return self.fixture
        item = "" if self.item_index is None else f".{self.item_index}"
        return f"{self.fixture}#{self.doc_index}{item}"

    @property
    def exception_key(self) -> tuple[str, str, str, int | None, int | None]:
        return (self.source, self.fixture, self.concept, self.doc_index, self.item_index)


@dataclass(frozen=True, slots=True)
class ExceptionEntry:
    source: str
    fixture: str
    concept: str
    doc_index: int | None
    item_index: int | None
    reason: str

    @property
    def key(self) -> tuple[str, str, str, int | None, int | None]:
        return (self.source, self.fixture, self.concept, self.doc_index, self.item_index)


@dataclass(slots=True)
class UnitScan:
    """One scan unit: its objects, the findings per object and concept, and read errors."""

    objects: dict[ObjKey, K8sObject] = field(default_factory=dict)
    hits: dict[ObjKey, dict[str, list[Finding]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    crash: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    label: Label
    verdict: str  # TP, TN, FP, FN, "error" or "no rule"
    got: str | None  # fail/pass, None without a rule
    rules: tuple[str, ...]
    evidence: tuple[str, ...] = ()  # "KS-0001 file:line message" of the matching findings
    exception: str | None = None  # the reason, when the label is excepted

    @property
    def agrees(self) -> bool:
        return self.verdict in ("TP", "TN")


@dataclass(slots=True)
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    excepted: int = 0

    def add(self, outcome: Outcome) -> None:
        if outcome.exception is not None:
            self.excepted += 1
        else:
            self.counts[outcome.verdict] += 1

    @property
    def scored(self) -> int:
        """Labels of concepts that have a rule (exceptions left out)."""
        return sum(self.counts[v] for v in SCORED)

    @property
    def agreed(self) -> int:
        return self.counts["TP"] + self.counts["TN"]

    @property
    def with_rule(self) -> float | None:
        return self.agreed / self.scored if self.scored else None

    @property
    def overall(self) -> float | None:
        total = self.scored + self.counts[NO_RULE]
        return self.agreed / total if total else None


@dataclass(slots=True)
class Report:
    directory: Path
    catalogue_size: int
    vocabulary: tuple[str, ...]
    rules_by_concept: dict[str, tuple[str, ...]]
    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unused_exceptions: list[ExceptionEntry] = field(default_factory=list)

    def tally(self, key: str) -> dict[str, Tally]:
        """Tallies grouped by ``source`` or ``concept``."""
        tallies: dict[str, Tally] = defaultdict(Tally)
        for outcome in self.outcomes:
            tallies[getattr(outcome.label, key)].add(outcome)
        return dict(sorted(tallies.items()))

    def total(self) -> Tally:
        tally = Tally()
        for outcome in self.outcomes:
            tally.add(outcome)
        return tally

    def disagreements(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.agrees and o.exception is None]


# ---------------------------------------------------------------------------- inputs


def default_directory() -> Path:
    if "KUBESENTINEL_CONFORMANCE" in os.environ:
        return Path(os.environ["KUBESENTINEL_CONFORMANCE"])
    shared = Path(os.environ.get("KUBESENTINEL_SHARED", ROOT.parent / "shared"))
    return shared / "conformance"


def load_labels(path: Path) -> list[Label]:
    labels = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            labels.append(_label(record, number))
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path}:{number}: bad label record: {exc}") from None
    return labels


def _label(record: Mapping[str, Any], line: int) -> Label:
    expected = record["expected"]
    if expected not in (FAIL, PASS):
        raise ValueError(f"expected must be fail or pass, not {expected!r}")
    fixture = _relative(record["fixture"])
    return Label(
        line=line,
        source=str(record["source"]),
        fixture=fixture,
        scan_unit=_relative(record.get("scan_unit") or fixture),
        concept=str(record["concept"]),
        expected=expected,
        doc_index=_optional_int(record.get("doc_index")),
        item_index=_optional_int(record.get("item_index")),
        kind=str(record.get("kind") or ""),
        namespace=None if record.get("namespace") in (None, "") else str(record["namespace"]),
        name=str(record.get("name") or ""),
        granularity=str(record.get("granularity") or "resource"),
        peer_check_id=str(record.get("peer_check_id") or ""),
        listed=_listed(record),
    )


def _listed(record: Mapping[str, Any]) -> tuple[tuple[int, int | None], ...]:
    # The public half has no file-granularity records; accept an explicit object list if one comes.
    for key in ("objects", "resources"):
        entries = record.get(key)
        if isinstance(entries, list):
            return tuple(
                (int(e["doc_index"]), _optional_int(e.get("item_index")))
                for e in entries
                if isinstance(e, Mapping) and isinstance(e.get("doc_index"), int)
            )
    return ()


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"index must be an integer or null, not {value!r}")
    return value


def _relative(value: Any) -> str:
    """A path under fixtures/, refusing absolute paths and ``..`` (labels are data)."""
    text = str(value).strip().strip("/")
    if not text or str(value).startswith("/") or ".." in Path(text).parts:
        raise ValueError(f"fixture path {value!r} must stay under fixtures/")
    return text


def load_exceptions(path: Path) -> list[ExceptionEntry]:
    """Read the exceptions file; every entry names one label and cites the spec with a URL."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("exceptions") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise HarnessError(f"{path}: expected a mapping with an 'exceptions' list")
    seen: set[tuple[str, str, str, int | None, int | None]] = set()
    out = []
    for number, entry in enumerate(entries, start=1):
        item = _exception(entry, f"{path}: exception {number}")
        if item.key in seen:
            raise HarnessError(f"{path}: exception {number} repeats an earlier entry")
        seen.add(item.key)
        out.append(item)
    return out


def _exception(entry: Any, where: str) -> ExceptionEntry:
    if not isinstance(entry, Mapping) or set(entry) != set(EXCEPTION_KEYS):
        raise HarnessError(f"{where}: needs exactly the keys {', '.join(EXCEPTION_KEYS)}")
    reason = entry["reason"]
    if not isinstance(reason, str) or "https://" not in reason:
        raise HarnessError(f"{where}: the reason must cite the official spec with an https:// URL")
    try:
        return ExceptionEntry(
            source=str(entry["source"]),
            fixture=_relative(entry["fixture"]),
            concept=str(entry["concept"]),
            doc_index=_optional_int(entry["doc_index"]),
            item_index=_optional_int(entry["item_index"]),
            reason=" ".join(reason.split()),
        )
    except ValueError as exc:
        raise HarnessError(f"{where}: {exc}") from None


def load_vocabulary(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ()
    return tuple(dict.fromkeys(_CONCEPT_ROW.findall(path.read_text(encoding="utf-8"))))


# ---------------------------------------------------------------------------- scanning


class UnitScanner:
    """Scans each scan unit once with the real engine; results are cached per unit."""

    def __init__(self, fixtures: Path, catalogue: Catalogue) -> None:
        self.fixtures = fixtures
        self.catalogue = catalogue
        self.concepts = {rule.id: rule.references.concepts for rule in catalogue.rules}
        self._cache: dict[str, UnitScan] = {}

    def scan(self, unit: str) -> UnitScan:
        if unit not in self._cache:
            self._cache[unit] = self._scan(unit)
        return self._cache[unit]

    def _scan(self, unit: str) -> UnitScan:
        target = self.fixtures / unit
        scan = UnitScan(objects=read_objects(self.fixtures, unit))
        if not target.exists():
            scan.errors.append(f"scan unit {unit} does not exist")
            return scan
        try:
            # One finding per rule (never folded): each label is matched to its concept's rule.
            result = scan_paths([str(target)], self.catalogue, ScanOptions(fold=False))
        except Exception as exc:  # one broken predicate must not hide every other result
            scan.crash = f"{type(exc).__name__}: {exc}"
            scan.errors.append(f"the scan raised {scan.crash}")
            return scan
        scan.errors.extend(str(error) for error in result.errors)
        for finding in result.findings:
            key = (self._rel(finding.file), finding.doc_index, finding.item_index)
            for concept in self.concepts.get(finding.rule_id, ()):
                scan.hits.setdefault(key, {}).setdefault(concept, []).append(finding)
        return scan

    def units(self) -> list[tuple[str, UnitScan]]:
        return sorted(self._cache.items())

    def _rel(self, file: str) -> str:
        return Path(file).relative_to(self.fixtures).as_posix()


def read_objects(fixtures: Path, unit: str) -> dict[ObjKey, K8sObject]:
    """Every object of a scan unit, numbered as the engine numbers them."""
    objects: dict[ObjKey, K8sObject] = {}
    for item in discover([str(fixtures / unit)]):
        if not isinstance(item, InputFile):  # errors, and charts/kustomizations (none there)
            continue
        try:
            data = read_limited(item, ScanOptions().max_file_bytes)
        except InputError:
            continue
        rel = Path(item.name).relative_to(fixtures).as_posix()
        for document in parse_file(data, item.name).documents:
            for obj in objects_from(document, item.name):
                if isinstance(obj, K8sObject):
                    objects[(rel, obj.source.doc_index, obj.source.item_index)] = obj
    return objects


# ---------------------------------------------------------------------------- matching


def is_rbac_concept(concept: str) -> bool:
    return concept.startswith("rbac_") or concept == "cluster_admin_binding"


def label_targets(label: Label, unit: UnitScan) -> set[ObjKey]:
    """Objects whose findings decide the label."""
    if label.granularity == "file":
        listed = {(label.fixture, doc, item) for doc, item in label.listed}
        targets = listed or {key for key in unit.objects if key[0] == label.fixture}
    else:
        targets = {(label.fixture, label.doc_index or 0, label.item_index)}
    if is_rbac_concept(label.concept):
        for key in list(targets):
            targets |= rbac_linked(key, unit)
    return targets


def rbac_linked(key: ObjKey, unit: UnitScan) -> set[ObjKey]:
    """The role a binding's roleRef names, or the bindings naming a role, in the same unit."""
    obj = unit.objects.get(key)
    if obj is None:
        return set()
    if obj.kind in BINDING_KINDS:
        ref = role_ref(obj)
        return {k for k, o in unit.objects.items() if o.kind in ROLE_KINDS and role_id(o) == ref}
    if obj.kind in ROLE_KINDS:
        me = role_id(obj)
        return {k for k, o in unit.objects.items() if o.kind in BINDING_KINDS and role_ref(o) == me}
    return set()


def role_id(role: K8sObject) -> tuple[str, str, str | None]:
    return (role.kind, role.name, namespace_of(role) if role.kind == "Role" else None)


def role_ref(binding: K8sObject) -> tuple[str, str, str | None] | None:
    ref = binding.body.get("roleRef")
    if not isinstance(ref, Mapping):
        return None
    kind, name = ref.get("kind"), ref.get("name")
    if kind not in ROLE_KINDS or not isinstance(name, str):
        return None
    # A roleRef to a Role names one in the binding's own namespace.
    return (kind, name, namespace_of(binding) if kind == "Role" else None)


def judge(label: Label, unit: UnitScan, rules: tuple[str, ...]) -> Outcome:
    if not rules:
        return Outcome(label, NO_RULE, None, rules)
    if unit.crash is not None:
        return Outcome(label, CRASH, None, rules, (unit.crash,))
    findings = [
        finding
        for key in sorted(label_targets(label, unit), key=str)
        for finding in unit.hits.get(key, {}).get(label.concept, ())
    ]
    got = FAIL if findings else PASS
    verdict = {(FAIL, FAIL): "TP", (PASS, PASS): "TN", (PASS, FAIL): "FP", (FAIL, PASS): "FN"}
    evidence = tuple(f"{f.rule_id} {Path(f.file).name}:{f.line} {f.message}" for f in findings)
    return Outcome(label, verdict[(label.expected, got)], got, rules, evidence)


def evaluate(
    directory: Path,
    catalogue: Catalogue,
    exceptions: Sequence[ExceptionEntry] = (),
    labels: Sequence[Label] | None = None,
) -> Report:
    """Scan every label's unit and score the labels; exceptions are scored but set aside."""
    fixtures = directory / "fixtures"
    if labels is None:
        labels = load_labels(directory / "labels.jsonl")
    report = Report(
        directory=directory,
        catalogue_size=len(catalogue.rules),
        vocabulary=load_vocabulary(directory / "concepts.md"),
        rules_by_concept=rules_by_concept(catalogue),
    )
    scanner = UnitScanner(fixtures, catalogue)
    reasons = {entry.key: entry.reason for entry in exceptions}
    used: set[tuple[str, str, str, int | None, int | None]] = set()
    for label in labels:
        unit = scanner.scan(label.scan_unit)
        outcome = judge(label, unit, report.rules_by_concept.get(label.concept, ()))
        if label.exception_key in reasons:
            used.add(label.exception_key)
            outcome = _with_exception(outcome, reasons[label.exception_key])
        report.outcomes.append(outcome)
        report.warnings.extend(_label_warnings(label, unit))
    report.unused_exceptions = [e for e in exceptions if e.key not in used]
    report.warnings.extend(_catalogue_warnings(catalogue, report.vocabulary))
    report.warnings.extend(_peer_warnings(report.outcomes, catalogue))
    for unit_name, unit in scanner.units():
        report.warnings.extend(f"scan of {unit_name}: {error}" for error in unit.errors)
    report.warnings = list(dict.fromkeys(report.warnings))
    return report


def rules_by_concept(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rule in catalogue.rules:
        for concept in rule.references.concepts:
            out[concept].append(rule.id)
    return {concept: tuple(ids) for concept, ids in out.items()}


def _with_exception(outcome: Outcome, reason: str) -> Outcome:
    o = outcome
    return Outcome(o.label, o.verdict, o.got, o.rules, o.evidence, reason)


def _label_warnings(label: Label, unit: UnitScan) -> Iterable[str]:
    """Labels whose position does not hold the labelled object (a numbering mismatch)."""
    if label.granularity != "resource" or label.doc_index is None:
        return
    obj = unit.objects.get((label.fixture, label.doc_index, label.item_index))
    if obj is None:
        yield f"labels.jsonl:{label.line}: no object at {label.where} (label: {label.object_ref})"
    elif (obj.kind, obj.name, obj.namespace) != (label.kind, label.name, label.namespace):
        yield (
            f"labels.jsonl:{label.line}: {label.where} holds {obj.ref}, "
            f"the label names {label.object_ref}"
        )


def _catalogue_warnings(catalogue: Catalogue, vocabulary: Sequence[str]) -> Iterable[str]:
    known = set(vocabulary)
    for rule in catalogue.rules:
        if not rule.references.concepts:
            yield f"{rule.id} names no concept (references.concepts); it is not scored"
        for concept in rule.references.concepts:
            if known and concept not in known:
                yield f"{rule.id} names concept {concept!r}, which concepts.md does not define"


def _peer_warnings(outcomes: Iterable[Outcome], catalogue: Catalogue) -> Iterable[str]:
    """Peer ids that the rule of the label's concept does not list (other harnesses map by them)."""
    claimed: dict[str, set[str]] = defaultdict(set)
    for rule in catalogue.rules:
        for peer in rule.references.peers:
            claimed[peer].update(rule.references.concepts)
    for outcome in outcomes:
        peer, concept = outcome.label.peer_check_id, outcome.label.concept
        if not peer or not outcome.rules:
            continue
        if concept not in claimed.get(peer, set()):
            rules = ", ".join(outcome.rules)
            yield f"peer check {peer} ({concept}) is not in the peers of {rules}"
        for other in sorted(claimed.get(peer, set()) - {concept}):
            yield f"peer check {peer} is labelled {concept} but a rule of {other} lists it"


# ---------------------------------------------------------------------------- rendering


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _tally_row(name: str, tally: Tally) -> list[str]:
    c = tally.counts
    return [
        name,
        str(tally.scored + c[NO_RULE] + tally.excepted),
        str(c["TP"]),
        str(c["TN"]),
        str(c["FP"]),
        str(c["FN"]),
        str(c[CRASH]),
        str(c[NO_RULE]),
        str(tally.excepted),
        _percent(tally.with_rule),
        _percent(tally.overall),
    ]


_TALLY_HEADERS = (
    "labels",
    "TP",
    "TN",
    "FP",
    "FN",
    "error",
    "no rule",
    "excepted",
    "agree(rule)",
    "agree(all)",
)


def render(report: Report) -> str:
    total = report.total()
    sources = report.tally("source")
    lines = [
        f"KubeSentinel conformance: {report.directory}",
        f"{len(report.outcomes)} labels, {len(sources)} sources, "
        f"{len({o.label.concept for o in report.outcomes})} concepts; "
        f"catalogue: {report.catalogue_size} rules, "
        f"covering {len(report.rules_by_concept)} concepts",
        "agree(rule) = (TP+TN) / labels of concepts that have a rule; "
        "agree(all) also counts 'no rule' labels as disagreements; exceptions are left out.",
        "",
        "Per source",
        *_table(
            ("source", *_TALLY_HEADERS),
            [*(_tally_row(s, t) for s, t in sources.items()), _tally_row("TOTAL", total)],
        ),
        "",
        "Per concept",
        *_concept_table(report),
        "",
        *_disagreement_lines(report),
        "",
        *_exception_lines(report),
        *_warning_lines(report),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _concept_table(report: Report) -> list[str]:
    by_source: dict[str, set[str]] = defaultdict(set)
    for outcome in report.outcomes:
        by_source[outcome.label.concept].add(outcome.label.source)
    rows = [
        [
            *_tally_row(concept, tally)[:1],
            ",".join(report.rules_by_concept.get(concept, ())) or "-",
            ",".join(sorted(by_source[concept])),
            *_tally_row(concept, tally)[1:],
        ]
        for concept, tally in report.tally("concept").items()
    ]
    return _table(("concept", "rules", "sources", *_TALLY_HEADERS), rows)


def _disagreement_lines(report: Report) -> list[str]:
    found = report.disagreements()
    ruled = [o for o in found if o.verdict != NO_RULE]
    lines = [f"Disagreements ({len(ruled)} with a rule, {len(found) - len(ruled)} without)"]
    order = {CRASH: 0, "FP": 1, "FN": 2, NO_RULE: 3}
    for o in sorted(found, key=lambda o: (order[o.verdict], o.label.concept, o.label.where)):
        got = o.got or NO_RULE
        rules = f" [{','.join(o.rules)}]" if o.rules else ""
        lines.append(
            f"  {o.verdict:<7} {o.label.concept}  {o.label.source}  {o.label.object_ref}  "
            f"{o.label.where}  expected {o.label.expected}, got {got}{rules}"
        )
        lines.extend(f"            found: {e}" for e in o.evidence[:3])
    return lines


def _exception_lines(report: Report) -> list[str]:
    excepted = [o for o in report.outcomes if o.exception is not None]
    lines = [f"Exceptions ({len(excepted)} labels, not scored)"]
    for o in excepted:
        lines.append(
            f"  {o.label.concept}  {o.label.source}  {o.label.object_ref}  {o.label.where}  "
            f"expected {o.label.expected}, got {o.got or NO_RULE}"
        )
        lines.append(f"            reason: {o.exception}")
    lines.extend(
        f"  unused (no such label here): {e.source} {e.fixture}#{e.doc_index} {e.concept}"
        for e in report.unused_exceptions
    )
    return [*lines, ""]


def _warning_lines(report: Report) -> list[str]:
    labelled: dict[str, int] = defaultdict(int)
    for outcome in report.outcomes:
        labelled[outcome.label.concept] += 1
    missing = [c for c in (*report.vocabulary, *labelled) if c not in report.rules_by_concept]
    missing = list(dict.fromkeys(missing))
    lines = [f"Concepts without a rule ({len(missing)}; vocabulary: {len(report.vocabulary)})"]
    lines.extend(f"  {c} ({labelled[c]} labels here)" for c in missing)
    lines.extend(["", f"Warnings ({len(report.warnings)})"])
    return [*lines, *(f"  {w}" for w in report.warnings)]


def as_json(report: Report) -> dict[str, Any]:
    def tallies(key: str) -> dict[str, Any]:
        return {
            name: {
                **t.counts,
                "excepted": t.excepted,
                "agreement_with_rule": t.with_rule,
                "agreement_all": t.overall,
            }
            for name, t in report.tally(key).items()
        }

    return {
        "directory": str(report.directory),
        "by_source": tallies("source"),
        "by_concept": tallies("concept"),
        "outcomes": [
            {
                "line": o.label.line,
                "source": o.label.source,
                "fixture": o.label.fixture,
                "doc_index": o.label.doc_index,
                "item_index": o.label.item_index,
                "object": o.label.object_ref,
                "concept": o.label.concept,
                "expected": o.label.expected,
                "got": o.got,
                "verdict": o.verdict,
                "rules": list(o.rules),
                "evidence": list(o.evidence),
                "exception": o.exception,
            }
            for o in report.outcomes
        ],
        "warnings": report.warnings,
    }


# ---------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Agreement with the peer-labelled fixtures.")
    parser.add_argument("--dir", type=Path, default=None, help="conformance folder")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS_FILE)
    parser.add_argument("--report", type=Path, help="also write the text report here")
    parser.add_argument("--json", type=Path, help="write the per-label outcomes as JSON here")
    args = parser.parse_args(argv)
    directory = args.dir or default_directory()
    if not (directory / "labels.jsonl").exists():
        print(f"conformance: skipped, {directory}/labels.jsonl is absent")
        return 0
    try:
        report = evaluate(directory, builtin_catalogue(), load_exceptions(args.exceptions))
    except HarnessError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    text = render(report)
    print(text, end="")
    for target, body in ((args.report, text), (args.json, json.dumps(as_json(report), indent=2))):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
