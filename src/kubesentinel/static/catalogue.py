"""Load rule files (built-in and user) into validated Rule records. One loader for both."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NoReturn

from kubesentinel.errors import RuleError
from kubesentinel.models import References, Rule, Severity
from kubesentinel.models.kinds import WORKLOAD_KINDS
from kubesentinel.static.predicates import load_builtin_predicates
from kubesentinel.static.yamldoc import LineDict, parse_file

BUILTIN_DIR = Path(__file__).parent / "rules"
KIND_GROUPS: Mapping[str, tuple[str, ...]] = {"workloads": WORKLOAD_KINDS}
ALL_KINDS = "*"
CEL_PREDICATE = "cel"  # the predicate of rules with CEL validations (static/cel_rules.py)
RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*-[A-Za-z0-9_-]+$")
PSS_REF = re.compile(r"^(baseline|restricted):[a-z0-9-]+$")

_REQUIRED = (
    "id",
    "title",
    "severity",
    "category",
    "description",
    "remediation",
    "kinds",
)
_OPTIONAL = ("params", "references", "aliases", "reads", "runtime", "implies")
# A rule checks with a built-in predicate or with CEL validations (static/cel_rules.py).
_PREDICATE_KEYS = ("predicate", *_OPTIONAL)
_CEL_KEYS = ("validations", "variables", "references", "aliases", "runtime", "implies")
_REFERENCE_KEYS = ("pss", "cis", "nsa", "peers", "concepts", "urls")
_RUNTIME_KEYS = ("impact",)
MAX_IMPACT_LENGTH = 40  # the label goes into an incident's one-line risk reason


@dataclass(frozen=True, slots=True)
class Catalogue:
    rules: tuple[Rule, ...]

    def get(self, rule_id: str) -> Rule | None:
        wanted = rule_id.upper()
        for rule in self.rules:
            if rule.id.upper() == wanted or wanted in (a.upper() for a in rule.aliases):
                return rule
        return None

    @property
    def target_kinds(self) -> frozenset[str]:
        """Kinds some rule reads field by field; other documents skip the line-aware parser.

        Built-in rules on every kind ("*") read only metadata, which the fast path keeps; a CEL
        rule on every kind may read any field, so "*" stays in the set and the reader keeps
        every object whole.
        """
        kinds: set[str] = set()
        for rule in self.rules:
            kinds.update(rule.kinds)
            kinds.update(rule.reads)
        if not any(r.predicate == CEL_PREDICATE and ALL_KINDS in r.kinds for r in self.rules):
            kinds.discard(ALL_KINDS)
        return frozenset(kinds)

    def applies(self, rule: Rule, kind: str) -> bool:
        return ALL_KINDS in rule.kinds or kind in rule.kinds

    def select(self, framework: str) -> Catalogue:
        """The rules a framework references (``--framework``); "all" keeps every rule."""
        wanted = FRAMEWORKS[framework]
        return Catalogue(tuple(rule for rule in self.rules if wanted(rule)))


def _pss(*levels: str) -> Callable[[Rule], bool]:
    return lambda rule: any(ref.split(":", 1)[0] in levels for ref in rule.references.pss)


# The Restricted profile includes every Baseline control, as the Pod Security Standards define.
FRAMEWORKS: Mapping[str, Callable[[Rule], bool]] = {
    "all": lambda rule: True,
    "pss-baseline": _pss("baseline"),
    "pss-restricted": _pss("baseline", "restricted"),
    "nsa": lambda rule: bool(rule.references.nsa),
    "cis": lambda rule: bool(rule.references.cis),
}


@cache
def builtin_catalogue() -> Catalogue:
    """The shipped rules, from their bundle (rulebundle.py) or, without one, their YAML files."""
    from kubesentinel.static import rulebundle

    try:
        bundled = rulebundle.load(rulebundle.BUNDLE.read_bytes(), BUILTIN_DIR)
    except FileNotFoundError:
        bundled = None
    return Catalogue(bundled) if bundled is not None else load_catalogue([BUILTIN_DIR])


def load_catalogue(paths: Sequence[Path], base: Iterable[Rule] = ()) -> Catalogue:
    """Rules from files and directories (``*.yaml``/``*.yml``), added to ``base``."""
    rules = list(base)
    seen = {r.id: r.source_file for r in rules}
    implies_lines: dict[str, int] = {}  # new rules only: the base was checked when it loaded
    for file in _rule_files(paths):
        for rule, line in _load_rules(file):
            if rule.id in seen:
                raise RuleError(
                    f"duplicate rule id {rule.id} (also in {seen[rule.id]})", file=str(file)
                )
            seen[rule.id] = str(file)
            rules.append(rule)
            implies_lines[rule.id] = line
    rules.sort(key=lambda r: r.id)
    check_implications(rules, implies_lines)
    return Catalogue(tuple(rules))


def check_implications(rules: Sequence[Rule], lines: Mapping[str, int]) -> None:
    """``implies`` of the rules in ``lines`` names known rules, no rule implies itself through
    a chain, and no rule is less severe than one it implies (a folded finding keeps the
    implier's severity, which must be the highest of the group)."""
    by_id = {rule.id: rule for rule in rules}
    for rule in rules:
        if rule.id not in lines:
            continue
        file, line = rule.source_file, lines[rule.id]
        for implied_id in rule.implies:
            implied = by_id.get(implied_id)
            if implied is None:
                raise RuleError(f"implies unknown rule {implied_id!r}", file=file, line=line)
            if implied.severity > rule.severity:
                raise RuleError(
                    f"{rule.id} ({rule.severity.label}) implies {implied_id} "
                    f"({implied.severity.label}): a rule must be at least as severe as the "
                    "rules it implies",
                    file=file,
                    line=line,
                )
        cycle = _cycle_from(rule.id, by_id)
        if cycle:
            raise RuleError(f"implies makes a cycle: {' -> '.join(cycle)}", file=file, line=line)


def _cycle_from(start: str, by_id: Mapping[str, Rule]) -> list[str]:
    """A chain of ``implies`` from ``start`` back to it, or [] when there is none."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        rule_id, chain = stack.pop()
        for implied in by_id[rule_id].implies if rule_id in by_id else ():
            if implied == start:
                return [*chain, implied]
            if implied not in visited:
                visited.add(implied)
                stack.append((implied, [*chain, implied]))
    return []


def implied_closure(rules: Iterable[Rule]) -> dict[str, frozenset[str]]:
    """Every rule id mapped to all rules it implies, directly or through a chain."""
    direct = {rule.id: rule.implies for rule in rules}
    closure: dict[str, frozenset[str]] = {}
    for rule_id, implies in direct.items():
        found: set[str] = set()
        todo = list(implies)
        while todo:
            implied = todo.pop()
            if implied not in found:
                found.add(implied)
                todo.extend(direct.get(implied, ()))
        closure[rule_id] = frozenset(found)
    return closure


def _rule_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise RuleError("rules path does not exist", file=str(path))
    return files


def load_rule_file(file: Path) -> list[Rule]:
    """Every rule of a file: one YAML document each (built-ins keep one rule per file)."""
    return [rule for rule, _line in _load_rules(file)]


def _load_rules(file: Path) -> list[tuple[Rule, int]]:
    """Every rule of a file with the line of its ``implies`` key (of the rule without one)."""
    name = str(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise RuleError(f"cannot read rule file: {exc.strerror}", file=name) from None
    parsed = parse_file(data, name)
    if parsed.errors:
        raise RuleError(parsed.errors[0].message, file=name, line=parsed.errors[0].line)
    if not parsed.documents:
        raise RuleError("rule file holds no rule", file=name, line=1)
    rules: list[tuple[Rule, int]] = []
    source = data.decode("utf-8-sig").splitlines()
    for document in parsed.documents:
        if not isinstance(document.value, LineDict):
            raise RuleError("each YAML document of a rule file must be a mapping (one rule)",
                            file=name, line=document.line)  # fmt: skip
        line = document.value.key_lines.get("implies", document.value.line)
        rules.append((_rule_from(document.value, name, source), line))
    return rules


def _rule_from(doc: LineDict, file: str, source: list[str]) -> Rule:
    check = _Checker(doc, file)
    is_cel = "validations" in doc
    check.keys(_REQUIRED, _CEL_KEYS if is_cel else _PREDICATE_KEYS)
    if not is_cel and "predicate" not in doc:
        raise RuleError("a rule needs either 'predicate' (a built-in check) or 'validations' "
                        "(CEL conditions)", file=file, line=doc.line)  # fmt: skip
    rule_id = check.string("id")
    if not RULE_ID.match(rule_id):
        check.fail("id", f"rule id {rule_id!r} must look like KS-0001")
    params: dict[str, object]
    if is_cel:
        from kubesentinel.static.cel_load import compile_rule  # CEL rules only: not at start-up

        predicate, params = CEL_PREDICATE, {"program": compile_rule(doc, file, source)}
    else:
        predicate, params = _predicate(check)
    try:
        severity = Severity.parse(check.string("severity"))
    except ValueError as exc:
        check.fail("severity", str(exc))
    remediation = check.string("remediation")
    if not remediation.endswith("."):
        check.fail("remediation", "remediation must be one sentence ending with a period")
    return Rule(
        id=rule_id,
        title=check.string("title"),
        severity=severity,
        category=check.string("category"),
        description=" ".join(check.string("description").split()),
        remediation=remediation,
        kinds=_expand_kinds(check.strings("kinds"), check),
        predicate=predicate,
        params=dict(params),
        references=_references(doc, check),
        aliases=tuple(check.strings("aliases")) if "aliases" in doc else (),
        reads=tuple(check.strings("reads")) if "reads" in doc else (),
        runtime_impact=_runtime_impact(doc, check),
        source_file=file,
        implies=_implies(doc, check, rule_id),
    )


def _implies(doc: LineDict, check: _Checker, rule_id: str) -> tuple[str, ...]:
    if "implies" not in doc:
        return ()
    implied = check.strings("implies")
    for other in implied:
        if other == rule_id:
            check.fail("implies", f"{rule_id} implies itself")
        if not RULE_ID.match(other):
            check.fail("implies", f"implies: {other!r} is not a rule id such as KS-0001")
    if len(set(implied)) != len(implied):
        check.fail("implies", "implies lists a rule twice")
    return tuple(implied)


def _predicate(check: _Checker) -> tuple[str, dict[str, object]]:
    predicate = check.string("predicate")
    if predicate not in load_builtin_predicates():
        check.fail("predicate", f"unknown predicate {predicate!r}")
    params = check.doc.get("params", {})
    if not isinstance(params, Mapping):
        check.fail("params", "params must be a mapping")
    return predicate, dict(params)


def _expand_kinds(kinds: list[str], check: _Checker) -> tuple[str, ...]:
    if not kinds:
        check.fail("kinds", "kinds must list at least one kind")
    out: list[str] = []
    for kind in kinds:
        out.extend(KIND_GROUPS.get(kind, (kind,)))
    return tuple(dict.fromkeys(out))


def _references(doc: LineDict, check: _Checker) -> References:
    refs = doc.get("references", {})
    if not isinstance(refs, LineDict):
        if "references" in doc:
            check.fail("references", "references must be a mapping")
        return References()
    sub = _Checker(refs, check.file)
    sub.keys((), _REFERENCE_KEYS)
    pss = sub.strings("pss") if "pss" in refs else []
    for ref in pss:
        if not PSS_REF.match(ref):
            sub.fail("pss", f"PSS reference {ref!r} must look like baseline:capabilities")
    return References(
        **{key: tuple(sub.strings(key)) if key in refs else () for key in _REFERENCE_KEYS}
    )


def _runtime_impact(doc: LineDict, check: _Checker) -> str | None:
    """``runtime: {impact: LABEL}``: the label, or None for a rule without runtime impact."""
    if "runtime" not in doc:
        return None
    runtime = doc["runtime"]
    if not isinstance(runtime, LineDict):
        check.fail("runtime", "runtime must be a mapping, e.g. {impact: privileged}")
    sub = _Checker(runtime, check.file)
    sub.keys(_RUNTIME_KEYS, ())
    impact = " ".join(sub.string("impact").split())
    if len(impact) > MAX_IMPACT_LENGTH:
        sub.fail("impact", f"runtime impact must be at most {MAX_IMPACT_LENGTH} characters")
    return impact


class _Checker:
    """Type checks on a rule mapping that fail with the file and the line of the key."""

    def __init__(self, doc: LineDict, file: str) -> None:
        self.doc = doc
        self.file = file

    def fail(self, key: str, message: str) -> NoReturn:
        raise RuleError(message, file=self.file, line=self.doc.key_lines.get(key, self.doc.line))

    def keys(self, required: Sequence[str], optional: Sequence[str]) -> None:
        for key in self.doc:
            if key not in required and key not in optional:
                allowed = ", ".join((*required, *optional))
                self.fail(key, f"unknown key {key!r} (allowed: {allowed})")
        for key in required:
            if key not in self.doc:
                raise RuleError(f"missing key {key!r}", file=self.file, line=self.doc.line)

    def string(self, key: str) -> str:
        value = self.doc.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"{key} must be a non-empty string")
        return str(value)

    def strings(self, key: str) -> list[str]:
        value = self.doc.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"{key} must be a list of strings")
        return [str(v) for v in value]
