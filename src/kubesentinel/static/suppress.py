"""Suppressions: split findings into reported and suppressed, keeping the reason of each.

Three sources, tried in this order for each finding:

1. Annotations on the object or on its pod template, one rule per annotation, as Checkov's
   ``checkov.io/skip1: CKV_K8S_20=reason``::

       kubesentinel.io/skip: "KS-0001=reason"       # whole object; skip2, skip3 ... for more
       kubesentinel.io/skip.app: "KS-0001=reason"   # only findings inside container "app"
       kubesentinel.io/skip2.app: "KS-0003"         # numbered, per container; reason optional

2. ``static.skip`` entries of config.yaml (see ``skips.py``).
3. A baseline file (``--baseline``, see ``baseline.py``).

A bad annotation is a warning naming its file and line and suppresses nothing: an unknown rule
id must never widen into "skip everything".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kubesentinel.errors import ConfigError, InputError
from kubesentinel.models import Finding, K8sObject, Rule, Suppressed, Suppression
from kubesentinel.static.podspec import containers, format_path, mapping, pod_spec
from kubesentinel.static.skips import SkipRule
from kubesentinel.static.yamldoc import LineDict

if TYPE_CHECKING:  # baselines load only with --baseline
    from kubesentinel.static.baseline import Baseline

PREFIX = "kubesentinel.io/skip"
# skip, skip2, skip.app, skip2.app: container names are DNS labels, so the key stays valid.
_KEY = re.compile(r"kubesentinel\.io/skip([0-9]*)(?:\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?))?")
WARNING_CODE = "KS-W010"
_FORM = 'the form is kubesentinel.io/skip[N][.CONTAINER]: "RULE_ID=reason"'

ObjectKey = tuple[str, int, int | None]  # file, document, List item: one object of the scan


@dataclass(frozen=True, slots=True)
class _Directive:
    """One parsed skip annotation."""

    rule_id: str
    suppression: Suppression
    container_paths: tuple[str, ...] | None  # None: the whole object

    def matches(self, finding: Finding) -> bool:
        if finding.rule_id != self.rule_id:
            return False
        if self.container_paths is None:
            return True
        return any(_under(finding.field_path, path) for path in self.container_paths)


def _under(field_path: str, prefix: str) -> bool:
    return field_path == prefix or field_path.startswith((prefix + ".", prefix + "["))


@dataclass(slots=True)
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Suppressor:
    canonical: Mapping[str, str]  # upper-cased rule id or alias -> rule id
    skips: tuple[SkipRule, ...] = ()
    baseline: Baseline | None = None

    def apply(self, objects: Iterable[K8sObject], findings: Iterable[Finding]) -> Outcome:
        outcome = Outcome()
        directives: dict[ObjectKey, list[_Directive]] = {}
        for obj in objects:
            found = list(self._directives(obj, outcome.warnings))
            if found:
                source = obj.source
                directives[source.file, source.doc_index, source.item_index] = found
        if not directives and not self.skips and self.baseline is None:
            outcome.findings.extend(findings)  # nothing can suppress: skip the matching
            return outcome
        for finding in findings:
            own = directives.get((finding.file, finding.doc_index, finding.item_index), ())
            suppression = self._match(finding, own)
            if suppression is None:
                outcome.findings.append(finding)
            else:
                outcome.suppressed.append(Suppressed(finding, suppression))
        return outcome

    def _match(self, finding: Finding, directives: Sequence[_Directive]) -> Suppression | None:
        for directive in directives:
            if directive.matches(finding):
                return directive.suppression
        for skip in self.skips:
            if skip.matches(finding):
                return Suppression("config", skip.reason, skip.file, skip.line)
        if self.baseline is not None and self.baseline.matches(finding):
            return Suppression("baseline", "baseline", self.baseline.path, None)
        return None

    def _directives(self, obj: K8sObject, warnings: list[InputError]) -> Iterator[_Directive]:
        sources = [mapping(obj.body.get("metadata")).get("annotations")]
        pod = pod_spec(obj)
        if pod is not None and pod.metadata_path != ("metadata",):  # a Pod is its own template
            sources.append(pod.metadata.get("annotations"))
        for notes in sources:
            if not isinstance(notes, dict):
                continue
            for key, value in notes.items():
                if not (isinstance(key, str) and key.startswith(PREFIX)):
                    continue
                line = notes.key_lines.get(key) if isinstance(notes, LineDict) else None
                try:
                    yield self._directive(obj, key, value, line or obj.source.line)
                except _Ignored as exc:
                    warnings.append(_warning(obj, key, line or obj.source.line, str(exc)))

    def _directive(self, obj: K8sObject, key: str, value: object, line: int) -> _Directive:
        match = _KEY.fullmatch(key)
        if match is None:
            raise _Ignored("not a suppression annotation key")
        if not isinstance(value, str):
            raise _Ignored(f"the value must be a string, got {type(value).__name__}")
        written, _, reason = value.partition("=")
        written = written.strip()
        if not written:
            raise _Ignored("no rule id")
        rule_id = self.canonical.get(written.upper())
        if rule_id is None:
            several = " (one rule per annotation: add skip2, skip3 ...)" if "," in written else ""
            raise _Ignored(f"unknown rule id {written!r}; nothing is suppressed{several}")
        suppression = Suppression("annotation", reason.strip() or None, obj.source.file, line)
        container = match.group(2)
        if container is None:
            return _Directive(rule_id, suppression, None)
        return _Directive(rule_id, suppression, _container_paths(obj, container))


class _Ignored(Exception):
    """An annotation that suppresses nothing; becomes a warning."""


def _container_paths(obj: K8sObject, name: str) -> tuple[str, ...]:
    pod = pod_spec(obj)
    paths = tuple(
        format_path(c.path) for c in (containers(pod) if pod else ()) if c.spec.get("name") == name
    )
    if not paths:
        raise _Ignored(f'{obj.ref} has no container named "{name}"')
    return paths


def _warning(obj: K8sObject, key: str, line: int, problem: str) -> InputError:
    return InputError(
        f"ignored annotation {key}: {problem}",
        file=obj.source.file,
        line=line,
        hint=_FORM + "; `kubesentinel rules list` shows the rule ids",
        code=WARNING_CODE,
    )


def canonical_ids(rules: Sequence[Rule]) -> dict[str, str]:
    """Upper-cased rule ids and aliases mapped to rule ids (ids are matched case-insensitively)."""
    ids: dict[str, str] = {}
    for rule in rules:
        for alias in rule.aliases:
            ids.setdefault(alias.upper(), rule.id)
    for rule in rules:
        ids[rule.id.upper()] = rule.id  # an id wins over another rule's alias
    return ids


def build(
    rules: Sequence[Rule], skips: Iterable[SkipRule] = (), baseline_path: str | None = None
) -> Suppressor:
    """A suppressor knowing every rule (not only the ``--framework`` selection).

    Unknown rule ids in config skips are ConfigErrors naming the config line; a bad baseline
    file is a BaselineError.
    """
    canonical = canonical_ids(rules)
    resolved: list[SkipRule] = []
    for skip in skips:
        if skip.rule is None:
            resolved.append(skip)
            continue
        rule_id = canonical.get(skip.rule.upper())
        if rule_id is None:
            raise ConfigError(
                f"static.skip: unknown rule id {skip.rule!r}",
                file=skip.file,
                line=skip.line,
                hint="`kubesentinel rules list` shows the rule ids",
            )
        resolved.append(replace(skip, rule=rule_id))
    baseline = None
    if baseline_path:
        from kubesentinel.static.baseline import load_baseline

        baseline = load_baseline(baseline_path, canonical)
    return Suppressor(canonical, tuple(resolved), baseline)
