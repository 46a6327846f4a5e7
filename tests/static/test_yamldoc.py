"""YAML as kubectl reads it, with lines; one broken document does not hide the others."""

from __future__ import annotations

import math
import pickle

import pytest

from kubesentinel.static import yamldoc
from kubesentinel.static.yamldoc import LineDict, LineList, parse_file, resolve_plain


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True), ("y", True), ("On", True), ("TRUE", True),
        ("no", False), ("N", False), ("off", False),
        ("~", None), ("null", None), ("", None),
        ("0644", 420), ("0x1F", 31), ("0o17", 15), ("0b101", 5), ("1_000", 1000), ("-12", -12),
        ("1.5", 1.5), ("1e3", 1000.0), (".inf", math.inf),
        ("1:20", "1:20"), ("2024-01-01", "2024-01-01"), ("nginx:1.25", "nginx:1.25"),
        ("089", 89.0), ("v1", "v1"),
    ],
)  # fmt: skip
def test_plain_scalars_resolve_as_go_yaml_v2(text: str, value: object) -> None:
    assert resolve_plain(text) == value
    assert type(resolve_plain(text)) is type(value)


def test_quoted_and_tagged_scalars_stay_strings() -> None:
    doc = parse_file(b"a: \"yes\"\nb: '0644'\nc: !Ref web\nd: !!python/object:os.system ls\n", "t")
    assert doc.documents[0].value == {"a": "yes", "b": "0644", "c": "web", "d": "ls"}


def test_lines_of_keys_and_items() -> None:
    parsed = parse_file(b"# c\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n", "t")
    doc = parsed.documents[0]
    assert doc.line == 2
    value = doc.value
    assert isinstance(value, LineDict)
    assert value.key_lines == {"apiVersion": 2, "kind": 3, "spec": 4}
    containers = value["spec"]["containers"]
    assert isinstance(containers, LineList)
    assert containers.item_lines == [6]


def test_merge_keys_earlier_sources_win_and_explicit_keys_win() -> None:
    text = b"a: &a {p: 1, q: 1}\nb: &b {q: 2, r: 2}\nm:\n  <<: [*a, *b]\n  p: 0\n"
    assert parse_file(text, "t").documents[0].value["m"] == {"p": 0, "q": 1, "r": 2}


def test_broken_document_does_not_hide_the_others() -> None:
    text = b"kind: A\n---\nkind: [unclosed\n---\nkind: C\nname: ok\n"
    parsed = parse_file(text, "f.yaml")
    assert [d.value["kind"] for d in parsed.documents] == ["A", "C"]
    assert [d.line for d in parsed.documents] == [1, 5]
    assert len(parsed.errors) == 1
    assert (parsed.errors[0].file, parsed.errors[0].line) == ("f.yaml", 4)


def test_document_indexes_count_non_empty_documents_only() -> None:
    parsed = parse_file(b"---\n# nothing\n---\nkind: A\n---\n---\nkind: B\n", "t")
    assert [(d.index, d.line) for d in parsed.documents] == [(0, 4), (1, 7)]


def test_duplicate_key_warns_with_both_lines_and_keeps_the_last() -> None:
    parsed = parse_file(b"kind: Pod\nspec:\n  hostPID: false\n  hostPID: true\n", "d.yaml")
    assert parsed.documents[0].value["spec"]["hostPID"] is True
    (warning,) = parsed.warnings
    assert (warning.file, warning.line, warning.code) == ("d.yaml", 4, "KS-W001")
    assert "first at line 3" in warning.message


def test_json_with_tabs_loads_through_the_json_fallback() -> None:
    parsed = parse_file(b'{\n\t"kind": "Pod",\n\t"apiVersion": "v1"\n}\n', "p.json")
    assert not parsed.errors
    assert parsed.documents[0].value["kind"] == "Pod"


def test_truncated_json_names_the_line() -> None:
    parsed = parse_file(b'{\n  "kind": "Pod",\n  "spec": {\n', "p.json")
    assert not parsed.documents
    (error,) = parsed.errors
    assert error.file == "p.json"
    assert error.line == 4
    assert "JSON" in error.message


def test_fast_path_documents_of_kinds_no_rule_reads() -> None:
    text = b"apiVersion: x/v1\nkind: Widget\nmetadata: {name: w}\nspec: {a: 1}\n"
    parsed = parse_file(text, "w.yaml", lambda kind: kind != "Widget")
    assert parsed.documents[0].value["metadata"] == {"name": "w"}
    assert parsed.documents[0].line == 1


def test_keys_resolve_as_go_yaml_v2_then_become_strings() -> None:
    text = b'yes: 1\n"no": 2\n010: 3\n~: 4\n1.5: 5\nplain: 6\n"<<": 7\n0x1F: 8\n'
    value = parse_file(text, "k.yaml").documents[0].value
    assert value == {
        "true": 1, "no": 2, "8": 3, "null": 4, "1.5": 5, "plain": 6, "<<": 7, "31": 8,
    }  # fmt: skip
    assert value.key_lines == {key: line for line, key in enumerate(value, start=1)}


def test_parsed_documents_pickle_with_their_lines() -> None:
    """Parse workers send documents back by pickle: values and every line must survive."""
    text = b"a:\n  b:\n    - x\n    - {c: 1}\n  d: [1, 2]\n"
    value = parse_file(text, "p.yaml").documents[0].value
    copy = pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes
    assert copy == value
    assert isinstance(copy, LineDict)
    assert (copy.line, copy.key_lines) == (1, {"a": 1})
    assert copy["a"].key_lines == {"b": 2, "d": 5}
    items = copy["a"]["b"]
    assert isinstance(items, LineList)
    assert (items.line, items.item_lines) == (3, [3, 4])
    assert isinstance(items[1], LineDict)
    assert items[1].key_lines == {"c": 4}


def test_a_directive_before_a_document_belongs_to_that_document() -> None:
    data = (
        b"kind: ConfigMap\nmetadata: {name: a}\ndata: {ratio: 100%}\n"
        b"%YAML 1.1\n---\nkind: ConfigMap\nmetadata: {name: b}\n"
    )
    parsed = parse_file(data, "d.yaml")
    assert not parsed.errors
    assert [d.value["metadata"]["name"] for d in parsed.documents] == ["a", "b"]
    assert parsed.documents[0].value["data"]["ratio"] == "100%"
    assert [d.line for d in parsed.documents] == [1, 6]
    assert parsed.documents[1].value.key_lines["metadata"] == 7


@pytest.mark.parametrize(
    "chunk",
    [b"", b"%", b"%YAML 1.1\n", b"a: 100%\n", b"a: 1\n%TAG ! x\n", b"\n%", b"%%\n%", b"a%\n b%"],
)
def test_directive_lines_are_found_as_a_newline_then_percent(chunk: bytes) -> None:
    assert yamldoc._has_directive_line(chunk) == (b"\n%" in chunk)


def test_objects_and_notices_pickle_whole() -> None:
    """Scan helpers send objects and notices back by pickle (through their own __reduce__)."""
    from kubesentinel.models import K8sObject, SourceRef
    from kubesentinel.static.objects import Notice

    body = parse_file(b"kind: Pod\nmetadata: {name: p}\n", "p.yaml").documents[0].value
    items = [
        K8sObject("v1", "Pod", None, "p", body, SourceRef("p.yaml", 0, None, 1)),
        K8sObject("v1", "Pod", "ns", "q", {}, SourceRef("l.yaml", 2, 5, 9)),
        Notice("p.yaml", 3, "kind X is not a built-in Kubernetes kind"),
    ]
    copies = pickle.loads(pickle.dumps(items, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes
    assert copies == items
    assert [type(c) for c in copies] == [type(i) for i in items]
    assert copies[0].body.key_lines == {"kind": 1, "metadata": 2}
