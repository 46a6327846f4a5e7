"""`kubesentinel fix`: scan, edit what has a mechanical fix, scan the result, keep what is safe.

Each file is read once; its text is scanned, edited, and the edited text scanned again under
the same name (so config skips and annotations apply alike). A file whose edited text shows a
finding the original did not have is left as it was: a fix never trades one problem for
another. What is left at or above the threshold is listed with the reason a person must look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, Severity
from kubesentinel.static.catalogue import Catalogue
from kubesentinel.static.engine import ScanOptions, ScanResult, scan_batches
from kubesentinel.static.fix.defaults import FixDefaults
from kubesentinel.static.fix.documents import read_manifest
from kubesentinel.static.fix.edits import Edit, prepare
from kubesentinel.static.fix.specs import REASONS, specs_for
from kubesentinel.static.folding import fold
from kubesentinel.static.inputs import InputFile, RenderTarget, discover, read_limited
from kubesentinel.static.reader import ReadBatch, read_bytes

Key = tuple[str, int, int | None, str]
_INDEX = re.compile(r"\[\d+\]")
_HELM = re.compile(
    r"\{\{-?\s*(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files|include\s|template\s)"
)


@dataclass(frozen=True, slots=True)
class Left:
    """A finding the fix leaves: as the original file shows it, and as the fixed file does."""

    before: Finding
    after: Finding
    reason: str
    also: tuple[str, ...] = ()  # rules folded into it, as `scan` shows them (static/folding.py)


@dataclass(slots=True)
class FileFix:
    name: str
    path: str
    original: str
    fixed: str
    fixed_count: int = 0


@dataclass(slots=True)
class FixResult:
    files: list[FileFix] = field(default_factory=list)  # every file read, changed or not
    left: list[Left] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (file, message)

    @property
    def changed(self) -> list[FileFix]:
        return [f for f in self.files if f.fixed != f.original]

    def left_at_or_above(self, threshold: Severity) -> list[Left]:
        return [item for item in self.left if item.after.severity >= threshold]


def key_of(finding: Finding) -> Key:
    """A finding's identity across the edit: lines move, and removing a capability moves
    the list indexes after it."""
    path = (
        _INDEX.sub("[]", finding.field_path)
        if ".add[" in finding.field_path
        else (finding.field_path)
    )
    return (finding.rule_id, finding.doc_index, finding.item_index, path)


def fix_paths(
    paths: Sequence[str],
    catalogue: Catalogue,
    options: ScanOptions,
    defaults: FixDefaults,
    only: frozenset[str] = frozenset(),
) -> FixResult:
    result = FixResult()
    for item in discover(paths):
        if isinstance(item, InputError):
            result.errors.append(item)
        elif isinstance(item, RenderTarget):
            why = f"{item.tool} sources are left as they are: fix the templates or values"
            result.messages.append((str(item.directory), why))
        elif item.path is not None:
            _read(item, options.max_file_bytes, result)
    before = _scan([(f.name, f.original) for f in result.files], catalogue, options)
    result.errors.extend(before.errors)
    broken = {e.file for e in before.errors}
    by_file = _by_file(before.findings)
    reasons: dict[tuple[str, Key], str] = {}
    for fix in result.files:
        if fix.name not in broken:
            _edit(fix, findings=by_file.get(fix.name, []), defaults=defaults, only=only,
                  reasons=reasons, result=result)  # fmt: skip
    after = _scan([(f.name, f.fixed) for f in result.files], catalogue, options)
    if _keep_safe(result, by_file, _by_file(after.findings)):
        after = _scan([(f.name, f.fixed) for f in result.files], catalogue, options)
    _left(result, by_file, _by_file(after.findings), reasons, only)
    _fold_left(result, after, catalogue)
    return result


def _read(source: InputFile, max_bytes: int, result: FixResult) -> None:
    try:
        text = read_limited(source, max_bytes).decode("utf-8")
    except InputError as exc:
        result.errors.append(exc)
        return
    except UnicodeDecodeError:
        result.errors.append(InputError("not UTF-8 text", file=source.name, code="KS-E011"))
        return
    result.files.append(FileFix(source.name, str(source.path), text, text))


def _scan(
    texts: Iterable[tuple[str, str]], catalogue: Catalogue, options: ScanOptions
) -> ScanResult:
    batch = ReadBatch()
    targets = catalogue.target_kinds
    every_kind = "*" in targets

    def is_rule_target(kind: str) -> bool:
        return every_kind or kind in targets or kind.endswith("List")

    for name, text in texts:
        batch.files.append(name)
        read_bytes(text.encode("utf-8"), name, is_rule_target, batch)
    return scan_batches([batch], catalogue, options)


def _by_file(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.file, []).append(finding)
    return grouped


def _edit(
    fix: FileFix,
    *,
    findings: list[Finding],
    defaults: FixDefaults,
    only: frozenset[str],
    reasons: dict[tuple[str, Key], str],
    result: FixResult,
) -> None:
    wanted = [f for f in findings if specs_for(f.rule_id) and (not only or f.rule_id in only)]
    if not wanted:
        return
    if _HELM.search(fix.original):
        # A chart's template that happens to parse: the chart is what to fix. (Other "{{"
        # text, such as Prometheus alert templates in a string, is no reason to stop.)
        template = "a Helm template ({{ .Values ... }}): fix the chart"
        result.messages.append((fix.name, f"left as it is: {template}"))
        reasons.update({(fix.name, key_of(f)): f"the file is {template}" for f in wanted})
        return
    manifest = read_manifest(fix.original, fix.name, {f.doc_index for f in wanted})
    result.messages += [(fix.name, message) for message in manifest.problems]
    documents = {d.index: d for d in manifest.documents if d.index is not None}
    edits: list[Edit] = []
    noted: set[int] = set()
    for finding in wanted:
        doc = documents.get(finding.doc_index)
        why: Edit | str
        if doc is not None and doc.problem is not None:
            why = "document left as it is (see the notice)"
            if doc.index not in noted:
                noted.add(finding.doc_index)
                result.messages.append(
                    (fix.name, f"line {doc.line}: document left as it is: {doc.problem}")
                )
        else:
            target = _object(doc.data if doc else None, finding)
            why = (
                prepare(target, finding.rule_id, finding.field_path, defaults, manifest.factories)
                if target is not None
                else "the object could not be found in the file again"
            )
        if isinstance(why, str):
            reasons[fix.name, key_of(finding)] = why
        else:
            edits.append(why)
    changed = [edit.run() for edit in sorted(edits, key=lambda e: e.last)]
    if not any(changed):
        return
    fix.fixed, messages = manifest.render()
    result.messages += [(fix.name, message) for message in messages]


def _object(data: Any, finding: Finding) -> Any:
    """The finding's object in a parsed document, checked by kind and name."""
    target = data
    if finding.item_index is not None:
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or finding.item_index >= len(items):
            return None
        target = items[finding.item_index]
    if not isinstance(target, dict) or target.get("kind") != finding.obj.kind:
        return None
    metadata = target.get("metadata")
    name = (
        metadata.get("name") or metadata.get("generateName") if isinstance(metadata, dict) else None
    )
    return target if str(name or "<unnamed>") == finding.obj.name else None


def _keep_safe(
    result: FixResult, before: dict[str, list[Finding]], after: dict[str, list[Finding]]
) -> bool:
    """Undo a file's edits when they show a finding the original did not have."""
    undone = False
    for fix in result.changed:
        known = {key_of(f) for f in before.get(fix.name, [])}
        new = [f for f in after.get(fix.name, []) if key_of(f) not in known]
        if new:
            fix.fixed, undone = fix.original, True
            first = new[0]
            result.messages.append((fix.name, f"left as it is: the edit would add {first.rule_id} "
                                    f"at line {first.line} ({first.message})"))  # fmt: skip
    return undone


def _fold_left(result: FixResult, after: ScanResult, catalogue: Catalogue) -> None:
    """One line per problem in what is left, as `scan` reports: an implied rule's finding is
    named beside its implier's (``also``), not listed again."""
    folded, _ = fold(after.findings, [], after.scanned, catalogue.rules)
    heads = {(f.file, key_of(f)): f.folded_ids for f in folded if f.folded}
    members = {(m.file, key_of(m)) for f in folded for m in f.folded}
    kept = []
    for item in result.left:
        spot = (item.after.file, key_of(item.after))
        if spot in members:
            continue
        kept.append(replace(item, also=heads.get(spot, ())))
    result.left = kept


def _left(
    result: FixResult,
    before: dict[str, list[Finding]],
    after: dict[str, list[Finding]],
    reasons: dict[tuple[str, Key], str],
    only: frozenset[str],
) -> None:
    for fix in result.files:
        originals = {key_of(f): f for f in before.get(fix.name, [])}
        remaining = after.get(fix.name, [])
        fix.fixed_count = len(originals.keys() - {key_of(f) for f in remaining})
        for finding in remaining:
            key = key_of(finding)
            why = reasons.get((fix.name, key)) or REASONS.get(finding.rule_id)
            if why is None and only and finding.rule_id not in only:
                why = "not selected (--rule)"
            elif why is None:
                why = "left as it is" if specs_for(finding.rule_id) else "no mechanical fix"

            result.left.append(Left(originals.get(key, finding), finding, why))
