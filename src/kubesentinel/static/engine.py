"""The scan pipeline: discover files, parse, build objects, run the rules, locate findings."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, K8sObject, Severity, Suppressed
from kubesentinel.static.catalogue import Catalogue
from kubesentinel.static.context import LATEST_PSS, ScanContext
from kubesentinel.static.evaluation import deferred_hits, findings_from, object_hits
from kubesentinel.static.folding import fold
from kubesentinel.static.inputs import InputFile, RenderTarget, discover
from kubesentinel.static.objects import Notice
from kubesentinel.static.parallel import (
    PARALLEL_MIN_OBJECTS,
    cpu_workers,
    fork_map,
    gc_paused,
    read_all,
    stripes,
)
from kubesentinel.static.reader import DEFAULT_MAX_FILE_BYTES, Deferred, Hit, ReadBatch
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
    # The objects scanned, in input order. Kept with the result, which also spares the CLI
    # freeing the whole parsed corpus object by object before it exits (14 ms on the corpus).
    scanned: list[K8sObject] = field(default_factory=list)

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
    # Fold implied findings into their implier's (static/folding.py), as `scan` shows them;
    # False keeps one finding per rule (`scan --all-findings`, peer-compatible counting).
    # A suppressed implier covers the findings it implies either way.
    fold: bool = False


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
    batches: Iterable[ReadBatch] = read_all(
        sources,
        catalogue.target_kinds,
        options.max_file_bytes,
        options.workers,
        after_read=_batch_checker(catalogue, options),
    )
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
    """Evaluate the rules over objects read by any input (files, renders, a live cluster).

    Rules that read one object ran on each batch where it was read (or run here for batches
    that come without); rules that ask about other objects run last, with the whole scan."""
    result = result if result is not None else ScanResult()
    check = _batch_checker(catalogue, options)
    objects: list[K8sObject] = []
    hit_lists: list[list[Hit]] = []
    deferred: list[Deferred] = []
    for batch in batches:
        result.files.extend(batch.files)
        result.errors.extend(batch.errors)
        result.warnings.extend(batch.warnings)
        result.notices.extend(batch.notices)
        if batch.hits is None:
            check(batch)
        offset = len(objects)
        objects.extend(batch.objects)
        hit_lists.append(_shifted(batch.hits or [], offset))
        deferred.extend((rule, offset + obj) for rule, obj in batch.deferred)
    result.objects = len(objects)
    result.scanned = objects
    ctx = ScanContext.build(objects, options.pss_version, options.allowed_registries)
    # Serial: the cross-object rules index the scan once (ScanContext.memo), after which the
    # 2,500 deferred pairs of the shared corpus take 0.025 s, less than forking would cost.
    hit_lists.append(deferred_hits(objects, deferred, catalogue, ctx))
    findings = findings_from(hit_lists, objects, catalogue)
    outcome = (options.suppressor or build(catalogue.rules)).apply(objects, findings)
    result.findings, result.suppressed = fold(
        outcome.findings, outcome.suppressed, objects, catalogue.rules, combine=options.fold
    )
    result.warnings.extend(outcome.warnings)
    return result


def _shifted(hits: list[Hit], offset: int) -> list[Hit]:
    """A batch's hits with object indexes counted from the start of the scan."""
    if not offset:
        return hits
    return [(rule, offset + obj, message, line, path) for rule, obj, message, line, path in hits]


def _batch_checker(catalogue: Catalogue, options: ScanOptions) -> Callable[[ReadBatch], None]:
    """Run the rules that read one object over a batch, deferring those that ask for more."""
    ctx = ScanContext.local(options.pss_version, options.allowed_registries)

    def check(batch: ReadBatch) -> None:
        deferred: list[Deferred] = []
        batch.hits = object_hits(batch.objects, range(len(batch.objects)), catalogue, ctx, deferred)
        batch.deferred = deferred

    return check


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
    found = fork_map(lambda i: object_hits(objs, parts[i], catalogue, ctx), len(parts), count)
    return findings_from(found, objs, catalogue)
