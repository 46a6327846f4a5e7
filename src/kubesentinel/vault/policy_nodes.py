"""Typed reads of composed YAML nodes, each failure a PolicyError at the node's file:line:column.

The policy loader reads nodes, never constructed objects: a tag such as !!python/object is
only a value of the wrong type here. Keys are given as a dotted path ("classes.noise.keep_days")
so that every error names the key as well as the place.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import yaml

from kubesentinel.errors import PolicyError

MAX_NODES = 100_000  # after aliases are followed: "*big" repeated must not hang the loader
TAG = "tag:yaml.org,2002:"
_DECIMAL = re.compile(r"[-+]?[0-9]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NodeReader:
    """Typed reads of one file's nodes; each failure raises PolicyError at the node."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.nodes_left = MAX_NODES

    def at(self, node: yaml.Node) -> Where:
        return Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, key: str, message: str, hint: str | None = None) -> NoReturn:
        where = self.at(node)
        raise PolicyError(
            f"{key}: {message}" if key else message,
            file=self.file,
            line=where.line,
            column=where.column,
            hint=hint,
        )

    def count(self, node: yaml.Node, key: str) -> None:
        self.nodes_left -= 1
        if self.nodes_left < 0:
            self.fail(node, key, f"more than {MAX_NODES:,} YAML nodes once aliases are expanded")

    def entries(
        self, node: yaml.Node, key: str, allowed: Sequence[str]
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """A mapping's (key, key node, value node); unknown and duplicate keys are errors.
        ``allowed`` empty: any key (names chosen by the user, as class names)."""
        self.count(node, key)
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, f"must be a mapping, got {kind_of(node)}")
        entries: list[tuple[str, yaml.Node, yaml.Node]] = []
        firsts: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = self.key(key_node, key)
            path = f"{key}.{name}" if key else name
            if allowed and name not in allowed:
                self.fail(key_node, path, "unknown key", did_you_mean(name, allowed))
            if name in firsts:
                first = self.at(firsts[name])
                self.fail(key_node, path, f"duplicate key (first at line {first.line})")
            firsts[name] = key_node
            entries.append((name, key_node, value_node))
        return entries

    def mapping(self, node: yaml.Node, key: str, allowed: Sequence[str]) -> dict[str, yaml.Node]:
        return {name: value for name, _, value in self.entries(node, key, allowed)}

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        self.count(node, key)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, key, f"must be a list, got {kind_of(node)}", "write [a, b] or - items")
        return list(node.value)

    def key(self, node: yaml.Node, parent: str) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag == TAG + "merge":
            self.fail(node, parent, "merge keys (<<) are not supported", "repeat the keys")
        if not (isinstance(node, yaml.ScalarNode) and node.tag == TAG + "str"):
            self.fail(node, parent, f"keys must be strings, got {kind_of(node)}")
        return str(node.value)

    def string(self, node: yaml.Node, key: str) -> str:
        self.count(node, key)
        if not (isinstance(node, yaml.ScalarNode) and node.tag == TAG + "str"):
            self.fail(node, key, f"must be a string, got {kind_of(node)}", quote_hint(node))
        text = str(node.value)
        if not text.strip():
            self.fail(node, key, "must not be empty")
        return text

    def integer(
        self, node: yaml.Node, key: str, *, low: int, high: int, nullable: bool = False
    ) -> int | None:
        self.count(node, key)
        if isinstance(node, yaml.ScalarNode) and node.tag == TAG + "null" and nullable:
            return None
        if not (isinstance(node, yaml.ScalarNode) and node.tag == TAG + "int"):
            want = "a whole number or null" if nullable else "a whole number"
            self.fail(node, key, f"must be {want}, got {kind_of(node)}")
        text = str(node.value).replace("_", "")
        if not _DECIMAL.fullmatch(text):
            self.fail(node, key, f"must be a decimal number, got {node.value!r}")
        value = int(text) if len(text) <= 30 else None  # int() of 5,000 digits is slow
        if value is None or not low <= value <= high:
            self.fail(node, key, f"must be between {low} and {high:,}, got {text[:30]}")
        return value

    def strings(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node]]:
        """A non-empty list of non-empty strings, each with its node for later errors."""
        items = self.sequence(node, key)
        if not items:
            self.fail(node, key, "an empty list matches nothing", "remove the key")
        return [(self.string(item, f"{key}[{i}]"), item) for i, item in enumerate(items)]


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = str(node.tag).removeprefix(TAG)
    return {
        "str": "a string",
        "int": "a number",
        "float": "a number",
        "bool": "a boolean",
        "null": "null",
    }.get(tag, f"a value tagged {tag!r} ({node.value!r})")


def quote_hint(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag != TAG + "null":
        return f'quote it to mean the text: "{node.value}"'
    return None


def did_you_mean(name: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    maybe = f"did you mean {close[0]!r}? " if close else ""
    return f"{maybe}allowed: {', '.join(allowed)}"
