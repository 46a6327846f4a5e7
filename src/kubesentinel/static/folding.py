"""Fold the findings of implied rules into the finding of the rule that implies them.

A rule's ``implies`` (in its YAML) lists rules that always fail with it on the same container,
volume or field: a privileged container also allows privilege escalation (KS-0001 implies
KS-0022), a docker.sock hostPath is also a sensitive path and a hostPath (KS-0036 implies
KS-0035, which implies KS-0005). Where both fail on the same spot, the report shows one
finding, the implier's, whose ``folded`` holds the implied findings (chains included), so one
problem reads as one finding and takes one suppression.

Where a finding is ("scope"): a container (``containers[0]``, also init and ephemeral
containers), a volume (``volumes[2]`` and every ``volumeMounts`` entry naming it, so a mount
and its hostPath volume meet), or the pod/object itself. Inside a container, the first list
entry below it narrows the spot: ``capabilities.add[0]`` (SYS_ADMIN) and ``add[1]`` (NET_ADMIN)
are two problems, while ``capabilities.add`` or ``allowPrivilegeEscalation`` meet any entry.
A pod-level finding meets each of its containers, since the pod's value is what they inherit.
Of several findings that may take an implied one, the closest (same field, then the list
holding it) takes it.

Suppression runs first, finding by finding. A suppressed implier then covers what it implies
(one annotation for the docker.sock mount covers its five findings); a suppressed implied
finding stays suppressed while its implier, still reported, folds nothing suppressed.

Severity: a rule is never less severe than a rule it implies (the catalogue checks it), so the
folded finding's severity, the highest of its members, is the implier's.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubesentinel.models import Finding, K8sObject, Rule, Suppressed, Suppression
from kubesentinel.static.catalogue import implied_closure

Step = str | int
# ("pod", ()), ("container", path of the container) or ("volume", name), and the list entry
# below it (or None: the whole scope).
Where = tuple[tuple[str, Any], tuple[Step, ...] | None]
ObjectKey = tuple[str, int, int | None]  # file, document, List item: one object of the scan

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_VOLUME_LISTS = frozenset({"volumes", "volumeMounts"})
_POD: tuple[str, Any] = ("pod", ())


@functools.lru_cache(maxsize=4096)  # scans repeat the same few hundred field paths
def _steps(field_path: str) -> tuple[Step, ...]:
    """spec.containers[0].image -> ("spec", "containers", 0, "image")"""
    return tuple(
        match.group(1) if match.group(1) is not None else int(match.group(2))
        for match in _STEP.finditer(field_path)
    )


def where_of(body: Mapping[str, Any], field_path: str) -> Where:
    """The scope of a finding at ``field_path`` in an object whose manifest is ``body``."""
    where, volume = _where_by_path(field_path)
    if where is not None:
        return where
    entry = _walk(body, volume)
    name = entry.get("name")
    # An unnamed volume mounts nowhere: its own path keeps it apart from the others.
    return ("volume", name if isinstance(name, str) and name else volume), None


@functools.lru_cache(maxsize=4096)  # scans repeat the same few hundred field paths
def _where_by_path(field_path: str) -> tuple[Where | None, tuple[Step, ...]]:
    """The scope when the path alone says it, else the path of the volume (or mount) entry
    whose name does."""
    steps = _steps(field_path)
    pairs = list(itertools.pairwise(steps))
    for index, (step, nxt) in enumerate(pairs):
        if step in _VOLUME_LISTS and isinstance(nxt, int):
            return None, steps[: index + 2]
    for index, (step, nxt) in enumerate(pairs):
        if step in _CONTAINER_LISTS and isinstance(nxt, int):
            base = steps[: index + 2]
            return (("container", base), _entry(steps, len(base))), ()
    return (_POD, _entry(steps, 0)), ()


def _entry(steps: tuple[Step, ...], start: int) -> tuple[Step, ...] | None:
    for index in range(start, len(steps)):
        if isinstance(steps[index], int):
            return steps[: index + 1]
    return None


def _walk(body: Any, steps: tuple[Step, ...]) -> Mapping[str, Any]:
    node = body
    for step in steps:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return {}
    return node if isinstance(node, Mapping) else {}


def meets(a: Where, b: Where) -> bool:
    """Whether findings at ``a`` and ``b`` are about the same spot (see the module docstring)."""
    (base_a, entry_a), (base_b, entry_b) = a, b
    if base_a != base_b:
        pod_a, pod_b = base_a == _POD, base_b == _POD
        return (pod_a and base_b[0] == "container" and entry_a is None) or (
            pod_b and base_a[0] == "container" and entry_b is None
        )
    return entry_a is None or entry_b is None or entry_a == entry_b


class _Entry:
    """One finding of a fold group: where it sits in its input list (reported: 0, 1, ...;
    suppressed: -1, -2, ...), its suppression (None: reported) and its scope."""

    __slots__ = ("finding", "head", "members", "position", "suppression", "where")

    def __init__(self, finding: Finding, suppression: Suppression | None, position: int) -> None:
        self.finding = finding
        self.suppression = suppression
        self.position = position
        self.where: Where = (_POD, None)
        self.head: _Entry | None = None
        self.members: list[_Entry] = []


def fold(
    findings: Sequence[Finding],
    suppressed: Sequence[Suppressed],
    objects: Sequence[K8sObject],
    rules: Sequence[Rule],
    *,
    combine: bool = True,
) -> tuple[list[Finding], list[Suppressed]]:
    """Reported and suppressed findings after folding.

    With ``combine`` each implier's finding carries its implied ones in ``folded`` (one
    finding per problem); without it (``scan --all-findings``) every finding stays on its own
    and only the coverage by a suppressed implier applies. Only findings of rules that imply
    or are implied, on objects holding both, are looked at (~10% of the corpus's)."""
    closure = {rule_id: ids for rule_id, ids in implied_closure(rules).items() if ids}
    if not closure or not (combine or suppressed):
        return list(findings), list(suppressed)  # nothing to fold, nothing to cover
    related = set(closure).union(*closure.values())
    implied_by = {
        rule_id: frozenset(p for p, ids in closure.items() if rule_id in ids) for rule_id in related
    }
    groups: dict[ObjectKey, list[_Entry]] = {}
    # f[0] is f.rule_id: indexing a named tuple skips the property call, 11,000 times a scan.
    for position, f in [(i, f) for i, f in enumerate(findings) if f[0] in related]:
        key = (f.file, f.doc_index, f.item_index)
        groups.setdefault(key, []).append(_Entry(f, None, position))
    for position, item in enumerate(suppressed, 1):
        f = item.finding
        if f.rule_id in related:
            key = (f.file, f.doc_index, f.item_index)
            groups.setdefault(key, []).append(_Entry(f, item.suppression, -position))
    groups = {key: group for key, group in groups.items() if _may_fold(group, closure)}
    if not groups:
        return list(findings), list(suppressed)
    bodies = {key: obj.body for obj in objects if (key := _key(obj)) in groups}
    for key, group in groups.items():
        body = bodies.get(key, {})
        for entry in group:
            entry.where = where_of(body, entry.finding.field_path)
        _assign_heads(group, implied_by)
    return _results(findings, suppressed, groups.values(), combine)


def _key(obj: K8sObject) -> ObjectKey:
    return (obj.source.file, obj.source.doc_index, obj.source.item_index)


def _may_fold(group: list[_Entry], closure: Mapping[str, frozenset[str]]) -> bool:
    if len(group) < 2:
        return False
    ids = {entry.finding.rule_id for entry in group}
    return any(closure.get(rule_id, frozenset()) & ids for rule_id in ids)


def _absorbs(head: _Entry, member: _Entry) -> bool:
    """``head``, whose rule implies ``member``'s, may take it: they meet, and a reported
    finding never takes a suppressed one (suppressing only the implied rule must not hide the
    implier)."""
    return (head.suppression is not None or member.suppression is None) and meets(
        head.where, member.where
    )


def _assign_heads(group: list[_Entry], implied_by: Mapping[str, frozenset[str]]) -> None:
    """Link each finding that some other finding of the group takes to its best head."""
    by_rule: dict[str, list[_Entry]] = {}
    for entry in group:
        by_rule.setdefault(entry.finding.rule_id, []).append(entry)
    takers = {
        id(m): [
            h
            for rule_id in implied_by.get(m.finding.rule_id, ())
            for h in by_rule.get(rule_id, ())
            if _absorbs(h, m)
        ]
        for m in group
    }
    for member in group:
        candidates = [h for h in takers[id(member)] if not takers[id(h)]]
        if not candidates:
            continue  # only takers that are folded themselves, elsewhere: stays on its own
        best = min(candidates, key=lambda h: _rank(h, member))
        member.head = best
        best.members.append(member)


def _rank(head: _Entry, member: _Entry) -> tuple[int, int, int, str, int]:
    """Prefer a suppressed head (its suppression covers), then the head closest to the member
    (the same field, then its list or entry: KS-0020 on capabilities.drop goes to KS-0028 there,
    not to a capability added beside it), the most severe rule, then a stable order."""
    f = head.finding
    return (
        head.suppression is None,
        _distance(f.field_path, member.finding.field_path),
        -f.severity,
        f.rule_id,
        f.line,
    )


def _distance(a: str, b: str) -> int:
    """0: the same field; 1: one holds the other; 2: elsewhere in the scope."""
    if a == b:
        return 0
    if a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "[")):
        return 1
    return 2


def _results(
    findings: Sequence[Finding],
    suppressed: Sequence[Suppressed],
    groups: Iterable[list[_Entry]],
    combine: bool,
) -> tuple[list[Finding], list[Suppressed]]:
    """The input lists with the folding applied: members dropped into their heads (combine)
    or, without combine, reported members of a suppressed head moved to the suppressed."""
    replaced: dict[int, Finding | None] = {}  # position -> new finding, None: dropped
    covered: list[Suppressed] = []
    for entry in (entry for group in groups for entry in group):
        head = entry.head
        if head is not None:
            if combine:
                replaced[entry.position] = None  # inside its head's finding
            elif entry.suppression is None and head.suppression is not None:
                replaced[entry.position] = None  # covered by its implier's suppression
                covered.append(Suppressed(entry.finding, head.suppression))
        elif combine and entry.members:
            f = entry.finding
            members = sorted((m.finding for m in entry.members), key=_by_rule)
            severity = max(f.severity, *(m.severity for m in members))
            replaced[entry.position] = f._replace(severity=severity, folded=tuple(members))
    if not replaced:
        return list(findings), list(suppressed)
    updated: list[Finding | None] = list(findings)
    for position, new in replaced.items():
        if position >= 0:
            updated[position] = new
    reported = [f for f in updated if f is not None]
    kept: list[Suppressed] = []
    for position, item in enumerate(suppressed, 1):
        new = replaced.get(-position, item.finding)
        if new is not None:
            kept.append(item if new is item.finding else Suppressed(new, item.suppression))
    if covered:  # back into report order among the others
        kept = sorted([*kept, *covered], key=lambda s: _order(s.finding))
    return reported, kept


def _order(finding: Finding) -> tuple[str, int, str, str]:
    return (finding.file, finding.line, finding.rule_id, finding.message)


def unfold(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per rule again: each folded finding followed by the findings it holds."""
    out: list[Finding] = []
    for finding in findings:
        if finding.folded:
            out.append(finding._replace(folded=()))
            out.extend(finding.folded)
        else:
            out.append(finding)
    return out


def _by_rule(finding: Finding) -> tuple[str, int, str]:
    return (finding.rule_id, finding.line, finding.message)
