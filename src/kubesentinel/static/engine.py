"""The scan pipeline: discover files, parse, build objects, run the rules, locate findings."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, K8sObject, ObjectRef, Rule, Severity, Suppressed
from kubesentinel.static.catalogue import CEL_PREDICATE, Catalogue
from kubesentinel.static.context import LATEST_PSS, ScanContext
from kubesentinel.static.inputs import InputFile, RenderTarget, discover
from kubesentinel.static.locate import line_of
from kubesentinel.static.objects import Notice
from kubesentinel.static.parallel import read_all
from kubesentinel.static.podspec import format_path
from kubesentinel.static.predicates import Predicate, load_builtin_predicates
from kubesentinel.static.reader import DEFAULT_MAX_FILE_BYTES, ReadBatch
from kubesentinel.static.render import RenderOptions, render_all
from kubesentinel.static.suppress import Suppressor, build


@dataclass(slots=True)
class ScanResult:
    findings: list[Finding] = field(default_factory=list)  # reported: not suppressed
    suppressed: list[Suppressed] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    objects: int = 0

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= threshold]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    pss_version: tuple[int, int] = LATEST_PSS
    workers: int = 0  # 0: one per core for large scans
    allowed_registries: tuple[str, ...] = ()
    # Config skips and baseline; None: skip annotations only, checked against the catalogue.
    suppressor: Suppressor | None = None
    render: RenderOptions = field(default_factory=RenderOptions)  # Helm and Kustomize inputs


def scan_paths(
    paths: Sequence[str],
    catalogue: Catalogue,
    options: ScanOptions,
    extra: Iterable[ReadBatch] = (),
) -> ScanResult:
    """Scan files, rendered charts and directories, and ``extra`` objects (a live cluster)."""
    result = ScanResult()
    sources: list[InputFile] = []
    targets: list[RenderTarget] = []
    for item in discover(paths):
        if isinstance(item, InputError):
            result.errors.append(item)
        elif isinstance(item, RenderTarget):
            targets.append(item)
        else:
            sources.append(item)
    batches = read_all(sources, catalogue.target_kinds, options.max_file_bytes, options.workers)
    if targets:
        rendered = render_all(
            targets, catalogue.target_kinds, options.render, options.max_file_bytes
        )
        batches = itertools.chain(batches, [rendered])
    return scan_batches(itertools.chain(batches, extra), catalogue, options, result)


def scan_batches(
    batches: Iterable[ReadBatch],
    catalogue: Catalogue,
    options: ScanOptions,
    result: ScanResult | None = None,
) -> ScanResult:
    """Evaluate the rules over objects read by any input (files, renders, a live cluster)."""
    result = result if result is not None else ScanResult()
    objects: list[K8sObject] = []
    for batch in batches:
        result.files.extend(batch.files)
        result.errors.extend(batch.errors)
        result.warnings.extend(batch.warnings)
        result.notices.extend(batch.notices)
        objects.extend(batch.objects)
    result.objects = len(objects)
    ctx = ScanContext.build(objects, options.pss_version, options.allowed_registries)
    findings = evaluate(objects, catalogue, ctx)
    outcome = (options.suppressor or build(catalogue.rules)).apply(objects, findings)
    result.findings, result.suppressed = outcome.findings, outcome.suppressed
    result.warnings.extend(outcome.warnings)
    return result


def evaluate(objects: Iterable[K8sObject], catalogue: Catalogue, ctx: ScanContext) -> list[Finding]:
    """Run every applicable rule over every object; findings sorted by file, line, rule."""
    predicates = load_builtin_predicates()
    by_kind: dict[str, list[tuple[Rule, Predicate]]] = {}
    findings: dict[tuple[str, str, int, int | None, str, str], Finding] = {}
    for obj in objects:
        rules = by_kind.get(obj.kind)
        if rules is None:
            rules = by_kind[obj.kind] = [
                (r, _check_of(r, predicates))
                for r in catalogue.rules
                if catalogue.applies(r, obj.kind)
            ]
        for rule, check in rules:
            for violation in check(obj, ctx, rule.params):
                finding = _finding(rule, obj, violation.message, violation.path)
                key = (
                    rule.id,
                    obj.source.file,
                    obj.source.doc_index,
                    obj.source.item_index,
                    finding.field_path,
                    finding.message,
                )
                findings.setdefault(key, finding)
    return sorted(findings.values(), key=lambda f: (f.file, f.line, f.rule_id, f.message))


def _check_of(rule: Rule, predicates: Mapping[str, Predicate]) -> Predicate:
    if rule.predicate != CEL_PREDICATE:
        return predicates[rule.predicate]
    from kubesentinel.static.cel_rules import cel_check  # CEL rules only: not at start-up

    return cel_check


def _finding(rule: Rule, obj: K8sObject, message: str, path: tuple[str | int, ...]) -> Finding:
    return Finding(
        rule_id=rule.id,
        severity=rule.severity,
        title=rule.title,
        message=message,
        remediation=rule.remediation,
        obj=ObjectRef(obj.kind, obj.namespace, obj.name, obj.api_version),
        file=obj.source.file,
        line=line_of(obj.body, path, obj.source.line),
        doc_index=obj.source.doc_index,
        item_index=obj.source.item_index,
        field_path=format_path(path),
        category=rule.category,
        object_line=obj.source.line,
    )
