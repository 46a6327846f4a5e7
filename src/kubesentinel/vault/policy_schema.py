"""Read retention policy files: YAML nodes checked against the schema in docs/vault-policies.md.

Nodes are only composed, never constructed, so no tag can run code; every error names the
file, line, column and key. Several files combine: rules concatenate in the order given;
classes, tiers and the context window may each be defined once.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import yaml

from kubesentinel.errors import PolicyError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy_match import INCIDENT_LINKS, MatchRule, compile_globs
from kubesentinel.vault.policy_model import (
    BUILTIN_PROTECTED,
    DEFAULT,
    DEFAULT_RANK,
    HOLD,
    INCIDENT,
    PROTECTED_CLASSES,
    Policy,
    RetentionClass,
)
from kubesentinel.vault.policy_nodes import NodeReader, Where, kind_of

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.yaml"
MAX_POLICY_BYTES = 1024 * 1024
MAX_FLOW_DEPTH = 50  # the schema nests 4 deep; deeper "[[[[" only risks the composer's stack
POLICY_VERSION = 1
MAX_KEEP_DAYS = 36_500  # a century; null keeps forever
MAX_CONTEXT_SECONDS = 7 * 86_400
MAX_RANK = 999  # protected classes rank above every evictable one
DEFAULT_CONTEXT_BEFORE_S = 15 * 60
DEFAULT_CONTEXT_AFTER_S = 5 * 60

ROOT_KEYS = ("version", "context", "classes", "tiers", "rules")
CONTEXT_KEYS = ("before_seconds", "after_seconds")
CLASS_KEYS = ("description", "keep_days", "rollup_after_days", "evict_rank")
# incident evidence is never rolled up nor evicted: only how long incidents are kept is said
INCIDENT_KEYS = ("description", "keep_days")
RULE_KEYS = ("name", "description", "class", "match")
MATCH_KEYS = (
    "priority",
    "min_priority",
    "rules",
    "tags",
    "sources",
    "namespaces",
    "workloads",
    "incident",
)

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)
_PRIORITIES = ", ".join(p.name.lower() for p in Priority)


@dataclass(slots=True)
class _Combined:
    """What the files give so far; class references are checked once all are read."""

    retention_days: int
    classes: dict[str, tuple[RetentionClass, Where | None]] = field(default_factory=dict)
    tiers: dict[Priority, tuple[str, Where]] = field(default_factory=dict)
    rules: list[MatchRule] = field(default_factory=list)
    rule_names: dict[str, Where] = field(default_factory=dict)
    context: tuple[int, int] | None = None
    context_at: Where | None = None
    references: list[tuple[str, str, Where]] = field(default_factory=list)  # name, key, where

    def __post_init__(self) -> None:
        for builtin in BUILTIN_PROTECTED:
            self.classes[builtin.name] = (builtin, None)
        self.classes[DEFAULT] = (
            RetentionClass(
                DEFAULT,
                self.retention_days,
                None,
                DEFAULT_RANK,
                description="What no rule or tier claims.",
            ),
            None,
        )


def load_policy_files(paths: Sequence[Path], *, retention_days: int = 90) -> Policy:
    """The policy the files give, in order; with no paths, the shipped default policy."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    files = list(paths) or [DEFAULT_POLICY]
    combined = _Combined(retention_days)
    for path in files:
        _read_file(path, combined)
    for class_name, key, where in combined.references:
        if class_name not in combined.classes:
            raise PolicyError(
                f"{key}: unknown class {class_name!r}",
                file=where.file,
                line=where.line,
                column=where.column,
                hint=f"classes: {', '.join(sorted(combined.classes))}",
            )
    before, after = combined.context or (DEFAULT_CONTEXT_BEFORE_S, DEFAULT_CONTEXT_AFTER_S)
    return Policy(
        classes=MappingProxyType({name: cls for name, (cls, _) in combined.classes.items()}),
        rules=tuple(combined.rules),
        tiers=MappingProxyType({p: name for p, (name, _) in combined.tiers.items()}),
        default_class=DEFAULT,
        context_before_s=before,
        context_after_s=after,
        sources=tuple(str(p) for p in files),
    )


def _read_file(path: Path, combined: _Combined) -> None:
    file = str(path)
    root = _compose(path, file)
    reader = NodeReader(file)
    sections = reader.mapping(root, "", ROOT_KEYS)
    if "version" in sections:
        node = sections["version"]
        if reader.integer(node, "version", low=0, high=1 << 30) != POLICY_VERSION:
            reader.fail(
                node, "version", f"unsupported version (this release reads {POLICY_VERSION})"
            )
    if "context" in sections:
        _read_context(reader, sections["context"], combined)
    if "classes" in sections:
        for name, node in reader.mapping(sections["classes"], "classes", ()).items():
            _read_class(reader, name, node, combined)
    if "tiers" in sections:
        _read_tiers(reader, sections["tiers"], combined)
    if "rules" in sections:
        _read_rules(reader, sections["rules"], combined)


def _compose(path: Path, file: str) -> yaml.Node:
    """The file's single YAML document as nodes (tags resolved, nothing constructed)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file: {exc.strerror or exc}", file=file) from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy file larger than {MAX_POLICY_BYTES >> 20} MiB", file=file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PolicyError("invalid UTF-8", file=file, line=line, hint="save it as UTF-8") from None
    if _flow_depth(text) > MAX_FLOW_DEPTH:
        raise PolicyError(f"nesting deeper than {MAX_FLOW_DEPTH} levels", file=file, line=1)
    try:
        node = _single_node(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if "expected a single document" in (exc.context or ""):
            problem = "holds more than one YAML document; give one file per document"
        raise PolicyError(
            f"YAML syntax error: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character
        line = text.count("\n", 0, exc.position) + 1
        raise PolicyError(f"unreadable YAML: {exc.reason}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"unreadable YAML: {exc}", file=file, line=1) from None
    except RecursionError:
        raise PolicyError("nesting too deep to read", file=file, line=1) from None
    if node is None:
        raise PolicyError("empty policy file", file=file, line=1, hint="see the shipped default")
    if not isinstance(node, yaml.MappingNode):
        where = node.start_mark
        raise PolicyError(
            f"a policy file must be a mapping of sections, got {kind_of(node)}",
            file=file,
            line=where.line + 1,
            column=where.column + 1,
        )
    return node


def _single_node(text: str) -> yaml.Node | None:
    # Pure Python, not libyaml: very deep nesting is then a RecursionError, not a crash.
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _flow_depth(text: str) -> int:
    """Upper bound of "[{" nesting, counted without parsing (quotes are ignored: a bound)."""
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return 0
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def _read_context(reader: NodeReader, node: yaml.Node, combined: _Combined) -> None:
    if combined.context_at is not None:
        reader.fail(node, "context", f"defined twice (first at {combined.context_at})")
    values = reader.mapping(node, "context", CONTEXT_KEYS)
    before, after = DEFAULT_CONTEXT_BEFORE_S, DEFAULT_CONTEXT_AFTER_S
    if "before_seconds" in values:
        before = _seconds(reader, values["before_seconds"], "context.before_seconds")
    if "after_seconds" in values:
        after = _seconds(reader, values["after_seconds"], "context.after_seconds")
    combined.context, combined.context_at = (before, after), reader.at(node)


def _seconds(reader: NodeReader, node: yaml.Node, key: str) -> int:
    value = reader.integer(node, key, low=0, high=MAX_CONTEXT_SECONDS)
    assert value is not None  # not nullable
    return value


def _read_class(reader: NodeReader, name: str, node: yaml.Node, combined: _Combined) -> None:
    key = f"classes.{name}"
    if name == HOLD:
        reader.fail(
            node,
            key,
            "is built in and cannot be redefined",
            "a hold keeps evidence until it is released; define a class of your own",
        )
    if not _NAME.fullmatch(name):
        reader.fail(
            node,
            key,
            "is not a valid class name",
            "lower-case letters, digits, '-' and '_', starting with a letter",
        )
    existing, first = combined.classes.get(name, (None, None))
    if first is not None:
        reader.fail(node, key, f"duplicate class (first at {first})")
    values = reader.mapping(node, key, INCIDENT_KEYS if name == INCIDENT else CLASS_KEYS)
    if existing is None:  # a new class: keep_days and evict_rank must be said
        for required in ("keep_days", "evict_rank"):
            if required not in values:
                reader.fail(node, key, f"missing {required}")
        existing = RetentionClass(name, None, None, 0)
    cls = existing
    if "description" in values:
        cls = replace(cls, description=reader.string(values["description"], f"{key}.description"))
    if "keep_days" in values:
        days = reader.integer(
            values["keep_days"], f"{key}.keep_days", low=1, high=MAX_KEEP_DAYS, nullable=True
        )
        cls = replace(cls, keep_days=days)
    if "rollup_after_days" in values:
        rollup = reader.integer(
            values["rollup_after_days"],
            f"{key}.rollup_after_days",
            low=0,
            high=MAX_KEEP_DAYS,
            nullable=True,
        )
        cls = replace(cls, rollup_after_days=rollup)
    if "evict_rank" in values:
        rank = reader.integer(values["evict_rank"], f"{key}.evict_rank", low=0, high=MAX_RANK)
        assert rank is not None  # not nullable
        cls = replace(cls, evict_rank=rank)
    if (
        cls.rollup_after_days is not None
        and cls.keep_days is not None
        and cls.rollup_after_days >= cls.keep_days
    ):
        reader.fail(
            values.get("rollup_after_days", node),
            f"{key}.rollup_after_days",
            f"must be less than keep_days ({cls.keep_days}), or events are deleted "
            "before they are rolled up",
        )
    combined.classes[name] = (cls, reader.at(node))


def _priority(reader: NodeReader, node: yaml.Node, key: str) -> Priority:
    text = reader.string(node, key)
    try:
        return Priority.parse(text)
    except ValueError:
        reader.fail(node, key, f"unknown Falco priority {text!r}", f"one of: {_PRIORITIES}")


def _class_ref(reader: NodeReader, node: yaml.Node, key: str, combined: _Combined) -> str:
    name = reader.string(node, key)
    if name in PROTECTED_CLASSES:
        reader.fail(
            node,
            key,
            f"class {name!r} is given by a legal hold or an incident, not by a rule or tier",
        )
    combined.references.append((name, key, reader.at(node)))
    return name


def _read_tiers(reader: NodeReader, node: yaml.Node, combined: _Combined) -> None:
    for text, key_node, value_node in reader.entries(node, "tiers", ()):
        key = f"tiers.{text}"
        priority = _priority(reader, key_node, key)
        if priority in combined.tiers:
            first = combined.tiers[priority][1]
            reader.fail(key_node, key, f"tier defined twice (first at {first})")
        class_name = _class_ref(reader, value_node, key, combined)
        combined.tiers[priority] = (class_name, reader.at(key_node))


def _read_rules(reader: NodeReader, node: yaml.Node, combined: _Combined) -> None:
    for index, rule_node in enumerate(reader.sequence(node, "rules")):
        combined.rules.append(_read_rule(reader, rule_node, f"rules[{index}]", combined))


def _read_rule(reader: NodeReader, node: yaml.Node, key: str, combined: _Combined) -> MatchRule:
    values = reader.mapping(node, key, RULE_KEYS)
    for required in ("name", "class", "match"):
        if required not in values:
            reader.fail(node, key, f"missing {required}")
    name = reader.string(values["name"], f"{key}.name")
    if name in combined.rule_names:
        reader.fail(
            values["name"],
            f"{key}.name",
            f"duplicate rule name {name!r} (first at {combined.rule_names[name]})",
        )
    combined.rule_names[name] = reader.at(values["name"])
    description = ""
    if "description" in values:
        description = reader.string(values["description"], f"{key}.description")
    rule = MatchRule(
        name, _class_ref(reader, values["class"], f"{key}.class", combined), description=description
    )
    return _read_match(reader, values["match"], f"{key}.match", rule)


def _read_match(reader: NodeReader, node: yaml.Node, key: str, rule: MatchRule) -> MatchRule:
    match = reader.mapping(node, key, MATCH_KEYS)
    if not match:
        reader.fail(
            node, key, "needs at least one condition", f"conditions: {', '.join(MATCH_KEYS)}"
        )
    if "priority" in match:
        names = reader.strings(match["priority"], f"{key}.priority")
        priorities = frozenset(
            _priority(reader, item, f"{key}.priority[{i}]") for i, (_, item) in enumerate(names)
        )
        rule = replace(rule, priorities=priorities)
    if "min_priority" in match:
        rule = replace(
            rule, min_priority=_priority(reader, match["min_priority"], f"{key}.min_priority")
        )
    if "rules" in match:
        rule = replace(rule, rules=_globs(reader, match["rules"], f"{key}.rules"))
    if "tags" in match:
        rule = replace(rule, tags=_globs(reader, match["tags"], f"{key}.tags"))
    if "namespaces" in match:
        rule = replace(rule, namespaces=_globs(reader, match["namespaces"], f"{key}.namespaces"))
    if "workloads" in match:
        rule = replace(rule, workloads=_globs(reader, match["workloads"], f"{key}.workloads"))
    if "sources" in match:
        sources = reader.strings(match["sources"], f"{key}.sources")
        rule = replace(rule, sources=frozenset(text for text, _ in sources))
    if "incident" in match:
        links = reader.strings(match["incident"], f"{key}.incident")
        for i, (text, item) in enumerate(links):
            if text not in INCIDENT_LINKS:
                reader.fail(
                    item,
                    f"{key}.incident[{i}]",
                    f"unknown incident link {text!r}",
                    f"one of: {', '.join(INCIDENT_LINKS)}",
                )
        rule = replace(rule, incident=frozenset(text for text, _ in links))
    return rule


def _globs(reader: NodeReader, node: yaml.Node, key: str) -> tuple[str, ...]:
    items = reader.strings(node, key)
    for i, (text, item) in enumerate(items):
        if key.endswith(".workloads") and "/" not in text:
            reader.fail(
                item,
                f"{key}[{i}]",
                f"{text!r} is not Kind/name",
                "for example DaemonSet/node-agent* or */web-*",
            )
        problem = _glob_problem(text)
        if problem:
            reader.fail(
                item,
                f"{key}[{i}]",
                f"bad glob {text!r}: {problem}",
                "to match '[' itself write [[]",
            )
    return tuple(text for text, _ in items)


def _glob_problem(glob: str) -> str | None:
    """What fnmatch would silently read otherwise than meant: an unclosed "[" (taken
    literally) or a range matching nothing ("[z-a]")."""
    if "[" not in glob:
        return None  # "*" and "?" cannot be malformed
    at = 0
    while at < len(glob):
        if glob[at] != "[":
            at += 1
            continue
        end = at + 1
        end += glob.startswith("!", end)
        end += glob.startswith("]", end)  # a "]" first in a class is a member, as in fnmatch
        end = glob.find("]", end)
        if end == -1:
            return f"'[' at {at + 1} is never closed"
        at = end + 1
    if "(?!)" in fnmatch.translate(glob):
        return "a character range that matches nothing"
    try:
        compile_globs((glob,))
    except re.error as exc:  # fnmatch escapes everything today; kept should that change
        return str(exc.msg)
    return None
