"""Malformed policy files: each error is a PolicyError naming file:line:column and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesentinel.errors import ConfigError, PolicyError
from kubesentinel.vault.policy import load_policy

GOOD_CLASS = "classes:\n  keep: {keep_days: 30, evict_rank: 5}\n"

# (file text, line, column, the message after "file:line:column: ")
MALFORMED = [
    ("classes: [a\n", 2, 1, "YAML syntax error: expected ',' or ']'"),
    ("version: 1\n---\nversion: 1\n", 2, 1, "YAML syntax error: holds more than one YAML"),
    ("- a\n- b\n", 1, 1, "a policy file must be a mapping of sections, got a list"),
    ("just text\n", 1, 1, "a policy file must be a mapping of sections, got a string"),
    ("versoin: 1\n", 1, 1, "versoin: unknown key"),
    ("version: 2\n", 1, 10, "version: unsupported version"),
    ("version: one\n", 1, 10, "version: must be a whole number, got a string"),
    ("version: 1\nversion: 1\n", 2, 1, "version: duplicate key (first at line 1)"),
    ("context: {before_seconds: -1}\n", 1, 27, "context.before_seconds: must be between 0"),
    ("context: {before_seconds: 1.5}\n", 1, 27, "context.before_seconds: must be a whole number"),
    ("context: {after_seconds: 0x10}\n", 1, 26, "context.after_seconds: must be a decimal number"),
    ("context: {after: 1}\n", 1, 11, "context.after: unknown key"),
    ("context: [1]\n", 1, 10, "context: must be a mapping, got a list"),
    ("classes:\n  keep: {keep_days: -3, evict_rank: 1}\n", 2, 21,
     "classes.keep.keep_days: must be between 1 and 36,500, got -3"),
    ("classes:\n  keep: {keep_days: 3, evict_rank: 1, protected: true}\n", 2, 39,
     "classes.keep.protected: unknown key"),
    ("classes:\n  keep: {keep_days: 3}\n", 2, 9, "classes.keep: missing evict_rank"),
    ("classes:\n  keep: {evict_rank: 3}\n", 2, 9, "classes.keep: missing keep_days"),
    ("classes:\n  keep: {keep_days: 3, evict_rank: 1000}\n", 2, 36,
     "classes.keep.evict_rank: must be between 0 and 999"),
    ("classes:\n  keep: {keep_days: 7, rollup_after_days: 7, evict_rank: 1}\n", 2, 43,
     "classes.keep.rollup_after_days: must be less than keep_days (7)"),
    ("classes:\n  keep: {keep_days: '7', evict_rank: 1}\n", 2, 21,
     "classes.keep.keep_days: must be a whole number or null, got a string"),
    ("classes:\n  hold: {keep_days: 7, evict_rank: 1}\n", 2, 9,
     "classes.hold: is built in and cannot be redefined"),
    ("classes:\n  Keep: {keep_days: 7, evict_rank: 1}\n", 2, 9,
     "classes.Keep: is not a valid class name"),
    ("classes:\n  keep: {keep_days: 7, evict_rank: 1}\n  keep: {keep_days: 7, evict_rank: 1}\n",
     3, 3, "classes.keep: duplicate key (first at line 2)"),
    ("classes:\n  keep: {keep_days: 7, evict_rank: 1, description: !!python/object:os.system x}\n",
     2, 52, "classes.keep.description: must be a string, got a value tagged 'python/object"),
    ("tiers: {warning: nope}\n", 1, 18, "tiers.warning: unknown class 'nope'"),
    ("tiers: {warnings: default}\n", 1, 9, "tiers.warnings: unknown Falco priority 'warnings'"),
    ("tiers: {warning: hold}\n", 1, 18, "tiers.warning: class 'hold' is given by a legal hold"),
    ("tiers: {warn: default, warning: default}\n", 1, 24, "tiers.warning: tier defined twice"),
    ("tiers: {1: default}\n", 1, 9, "tiers: keys must be strings, got a number"),
    ("rules: {name: x}\n", 1, 8, "rules: must be a list, got a mapping"),
    ("rules:\n  - {class: default, match: {tags: [x]}}\n", 2, 5, "rules[0]: missing name"),
    ("rules:\n  - {name: x, match: {tags: [x]}}\n", 2, 5, "rules[0]: missing class"),
    ("rules:\n  - {name: x, class: default}\n", 2, 5, "rules[0]: missing match"),
    ("rules:\n  - {name: x, class: default, match: {}}\n", 2, 38,
     "rules[0].match: needs at least one condition"),
    ("rules:\n  - {name: x, class: nope, match: {tags: [x]}}\n", 2, 22,
     "rules[0].class: unknown class 'nope'"),
    ("rules:\n  - {name: x, class: incident, match: {tags: [x]}}\n", 2, 22,
     "rules[0].class: class 'incident' is given by a legal hold or an incident"),
    ("rules:\n  - {name: x, class: default, match: {tag: [x]}}\n", 2, 39,
     "rules[0].match.tag: unknown key"),
    ("rules:\n  - {name: x, class: default, match: {tags: x}}\n", 2, 45,
     "rules[0].match.tags: must be a list, got a string"),
    ("rules:\n  - {name: x, class: default, match: {tags: []}}\n", 2, 45,
     "rules[0].match.tags: an empty list matches nothing"),
    ("rules:\n  - {name: x, class: default, match: {namespaces: [on]}}\n", 2, 52,
     "rules[0].match.namespaces[0]: must be a string, got a boolean"),
    ("rules:\n  - {name: x, class: default, match: {priority: [sever]}}\n", 2, 50,
     "rules[0].match.priority[0]: unknown Falco priority 'sever'"),
    ("rules:\n  - {name: x, class: default, match: {min_priority: [error]}}\n", 2, 53,
     "rules[0].match.min_priority: must be a string, got a list"),
    ("rules:\n  - {name: x, class: default, match: {rules: ['[z-a]*']}}\n", 2, 47,
     "rules[0].match.rules[0]: bad glob '[z-a]*': a character range that matches nothing"),
    ("rules:\n  - {name: x, class: default, match: {tags: ['T1059[']}}\n", 2, 46,
     "rules[0].match.tags[0]: bad glob 'T1059[': '[' at 6 is never closed"),
    ("rules:\n  - {name: x, class: default, match: {namespaces: ['[!]', ci]}}\n", 2, 52,
     "rules[0].match.namespaces[0]: bad glob '[!]': '[' at 1 is never closed"),
    ("rules:\n  - {name: x, class: default, match: {workloads: [node-agent]}}\n", 2, 51,
     "rules[0].match.workloads[0]: 'node-agent' is not Kind/name"),
    ("rules:\n  - {name: x, class: default, match: {incident: [maybe]}}\n", 2, 50,
     "rules[0].match.incident[0]: unknown incident link 'maybe'"),
    ("rules:\n  - {name: x, class: default, match: {sources: ['']}}\n", 2, 49,
     "rules[0].match.sources[0]: must not be empty"),
    ("rules:\n  - {name: x, class: default, match: {tags: [a]}}\n"
     "  - {name: x, class: default, match: {tags: [b]}}\n", 3, 12,
     "rules[1].name: duplicate rule name 'x' (first at"),
    ("base: &b {tags: [x]}\n", 1, 1, "base: unknown key"),
    ("rules:\n  - {<<: {name: x}, class: default, match: {tags: [a]}}\n", 2, 6,
     "rules[0]: merge keys (<<) are not supported"),
    ("classes: {keep: {keep_days: 9999999999999, evict_rank: 1}}\n", 1, 29,
     "classes.keep.keep_days: must be between 1 and 36,500, got 9999999999999"),
    ("version: 1\n\tcontext: {}\n", 2, 1, "YAML syntax error"),
    ("classes: " + "[" * 60 + "]" * 60 + "\n", 1, None, "nesting deeper than 50 levels"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "column", "message"), MALFORMED)
def test_malformed_file_names_file_line_column_and_key(
    tmp_path: Path, text: str, line: int, column: int | None, message: str
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    where = f"{path}:{line}:{column}" if column else f"{path}:{line}"
    assert str(caught.value).startswith(f"{where}: {message}")
    assert caught.value.code == "KS-E003"
    assert isinstance(caught.value, ConfigError)  # exit 2, caught where config errors are


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD_CLASS.replace("keep_days", "keep_day"), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("did you mean 'keep_days'?")


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "empty policy file", 1),
        (b"# only a comment\n\n", "empty policy file", 1),
        (b"version: 1\nx: \xff\n", "invalid UTF-8", 2),
        (b"version: 1\n\x00\n", "unreadable YAML: special characters are not allowed", 2),
    ],
)
def test_unreadable_files(tmp_path: Path, data: bytes, message: str, line: int) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    assert caught.value.message.startswith(message)
    assert (caught.value.file, caught.value.line) == (str(path), line)


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (1024 * 1024) + "\nversion: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="larger than 1 MiB") as caught:
        load_policy([path])
    assert caught.value.file == str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file") as caught:
        load_policy([tmp_path / "absent.yaml"])
    assert caught.value.file == str(tmp_path / "absent.yaml")
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy([tmp_path])


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    tags = ", ".join(f"t{i}" for i in range(2000))
    first = f"  - {{name: r0, class: default, match: {{tags: &t [{tags}]}}}}\n"
    more = "".join(
        f"  - {{name: r{i}, class: default, match: {{tags: *t}}}}\n" for i in range(1, 100)
    )
    path = tmp_path / "bomb.yaml"
    path.write_text(f"rules:\n{first}{more}", encoding="utf-8")
    with pytest.raises(PolicyError, match="more than 100,000 YAML nodes"):
        load_policy([path])


def test_deep_block_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(1300))
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="nesting too deep to read"):
        load_policy([path])
