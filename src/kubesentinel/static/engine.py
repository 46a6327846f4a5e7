"""The scan pipeline: discover files, parse, build objects, run the rules, locate findings."""

from __future__ import annotations

import functools
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
from kubesentinel.static.parallel import (
    PARALLEL_MIN_OBJECTS,
    cpu_workers,
    fork_map,
    gc_paused,
    read_all,
    stripes,
)
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
    with gc_paused():
        return _scan_paths(paths, catalogue, options, extra)


def _scan_paths(
    paths: Sequence[str], catalogue: Catalogue, options: ScanOptions, extra: Iterable[ReadBatch]
) -> ScanResult:
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
    findings = evaluate(objects, catalogue, ctx, options.workers)
    outcome = (options.suppressor or build(catalogue.rules)).apply(objects, findings)
    result.findings, result.suppressed = outcome.findings, outcome.suppressed
    result.warnings.extend(outcome.warnings)
    return result


def evaluate(
    objects: Iterable[K8sObject], catalogue: Catalogue, ctx: ScanContext, workers: int = 1
) -> list[Finding]:
    """Run every applicable rule over every object; findings sorted by file, line, rule.

    Many objects are cut into slices evaluated in forked workers (``workers`` 0: one per core);
    rules only read the objects and the context, so the slices are independent. Workers send
    back small hit tuples, not Finding records, as pickling those cost as much as the rules.
    """
    objs = list(objects)
    count = cpu_workers(workers) if len(objs) >= PARALLEL_MIN_OBJECTS else 1
    parts = stripes(len(objs), count)
    found = fork_map(lambda i: _hits(objs, parts[i], catalogue, ctx), len(parts), count)
    hits = found[0] if len(found) == 1 else sorted(itertools.chain(*found), key=_object_index)
    # An object has many findings: its reference and source are looked up once, the source as
    # a small int, so that the key of a finding hashes only strings it already hashed before.
    sources: dict[tuple[str, int, int | None], int] = {}
    seen: dict[int, tuple[int, ObjectRef]] = {}
    findings: dict[tuple[str, int, str, str], Finding] = {}
    for rule_index, obj_index, message, line, field_path in hits:
        rule, obj = catalogue.rules[rule_index], objs[obj_index]
        known = seen.get(obj_index)
        if known is None:
            src = obj.source
            source = sources.setdefault((src.file, src.doc_index, src.item_index), len(sources))
            ref = ObjectRef(obj.kind, obj.namespace, obj.name, obj.api_version)
            known = seen[obj_index] = (source, ref)
        key = (rule.id, known[0], field_path, message)
        if key not in findings:
            findings[key] = _finding(
                rule, obj, known[1], message=message, line=line, field_path=field_path
            )
    # Files ranked once: comparing ints is much faster than comparing long shared-prefix paths.
    rank = {file: i for i, file in enumerate(sorted({f.file for f in findings.values()}))}
    return sorted(findings.values(), key=lambda f: (rank[f.file], f.line, f.rule_id, f.message))


# (rule index in the catalogue, object index, message, line, dotted field path)
_Hit = tuple[int, int, str, int, str]


def _object_index(hit: _Hit) -> int:
    return hit[1]  # a stable sort on it restores the serial order of the hits


def _hits(
    objects: Sequence[K8sObject], indexes: range, catalogue: Catalogue, ctx: ScanContext
) -> list[_Hit]:
    predicates = load_builtin_predicates()
    by_kind: dict[str, list[tuple[int, Rule, Predicate]]] = {}
    hits: list[_Hit] = []
    for obj_index in indexes:
        obj = objects[obj_index]
        rules = by_kind.get(obj.kind)
        if rules is None:
            rules = by_kind[obj.kind] = [
                (i, r, _check_of(r, predicates))
                for i, r in enumerate(catalogue.rules)
                if catalogue.applies(r, obj.kind)
            ]
        for rule_index, rule, check in rules:
            for violation in check(obj, ctx, rule.params):
                path = violation.path
                line = line_of(obj.body, path, obj.source.line)
                hits.append((rule_index, obj_index, violation.message, line, _dotted(path)))
    return hits


# Objects share their field paths (spec.template.spec.containers[0].securityContext...).
_dotted = functools.lru_cache(maxsize=4096)(format_path)


def _check_of(rule: Rule, predicates: Mapping[str, Predicate]) -> Predicate:
    if rule.predicate != CEL_PREDICATE:
        return predicates[rule.predicate]
    from kubesentinel.static.cel_rules import cel_check  # CEL rules only: not at start-up

    return cel_check


def _finding(
    rule: Rule, obj: K8sObject, ref: ObjectRef, *, message: str, line: int, field_path: str
) -> Finding:
    return Finding(
        rule_id=rule.id,
        severity=rule.severity,
        title=rule.title,
        message=message,
        remediation=rule.remediation,
        obj=ref,
        file=obj.source.file,
        line=line,
        doc_index=obj.source.doc_index,
        item_index=obj.source.item_index,
        field_path=field_path,
        category=rule.category,
        object_line=obj.source.line,
    )
