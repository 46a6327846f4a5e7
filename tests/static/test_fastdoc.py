"""Documents no rule reads take the fast parser: same identity, same errors, as the full path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml_rs

from kubesentinel.static import fastdoc
from kubesentinel.static.reader import ReadBatch, read_bytes
from kubesentinel.static.yamldoc import LineDict, ParsedFile, parse_file


def _fast(kind: str) -> bool:
    return False  # no rule reads any kind: every document may take the fast path


def _full(kind: str) -> bool:
    return True


def _parse(text: bytes, is_rule_target: Callable[[str], bool]) -> ParsedFile:
    fastdoc._seen.clear()  # each parse starts cold, so hits are what a test makes them
    return parse_file(text, "w.yaml", is_rule_target)


def _errors(parsed: ParsedFile) -> list[tuple[str | None, int | None, str]]:
    return [(e.code, e.line, e.message) for e in parsed.errors + parsed.warnings]


IDENTITY_CASES = {
    "block": b"apiVersion: x.io/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: ns\n"
    b"  labels:\n    app: web\n    tier: '1'\n  annotations:\n    note: |\n      two\n"
    b"      lines\nspec:\n  a: 1\n",
    "flow": b'apiVersion: x.io/v1\nkind: Widget\nmetadata: {"name": "w", labels: {"a": b}}\n'
    b'spec: {"x": [1, {"y": null}]}\n',
    "comments and marker": b"# head\n---\n# more\napiVersion: v1\nkind: Widget # end\n"
    b"metadata: {name: w, labels: {a: b}}\n",
    "kind last": b"metadata:\n  generateName: w-\nspec: {}\napiVersion: v1\nkind: Widget\n",
    "no metadata": b"apiVersion: v1\nkind: Widget\nspec: [a, b]\n",
    "aliases in spec": b"apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n"
    b"spec:\n  a: &x {p: 1}\n  b: *x\n",
    "anchor text in strings": b"apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n"
    b'spec:\n  a: "x &y z"\n  b: "x &y z"\n',
    "long folded scalars": b"apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n"
    b"spec:\n  description: >-\n" + b"    word, key: value\n" * 3000,
    "quoted name": b'apiVersion: v1\nkind: Widget\nmetadata:\n  name: "w\\u00e9"\n',
}


@pytest.mark.parametrize("text", IDENTITY_CASES.values(), ids=IDENTITY_CASES.keys())
def test_identity_equals_the_full_path(text: bytes) -> None:
    fast, full = _parse(text, _fast), _parse(text, _full)
    assert (fast.errors, full.errors) == ([], [])
    (fast_doc,), (full_doc,) = fast.documents, full.documents
    assert not isinstance(fast_doc.value, LineDict)  # the fast path took it
    assert fast_doc.line == full_doc.line
    assert fast_doc.value == {
        key: full_doc.value[key] for key in fastdoc.IDENTITY_KEYS if key in full_doc.value
    }


def test_objects_equal_the_full_path_in_the_reader() -> None:
    text = b"---\n".join(IDENTITY_CASES.values())
    fast, full = ReadBatch(), ReadBatch()
    fastdoc._seen.clear()
    read_bytes(text, "w.yaml", _fast, fast)
    read_bytes(text, "w.yaml", lambda kind: kind == "Widget", full)
    assert len(fast.objects) == len(IDENTITY_CASES)
    assert [(o.api_version, o.kind, o.namespace, o.name, o.source) for o in fast.objects] == [
        (o.api_version, o.kind, o.namespace, o.name, o.source) for o in full.objects
    ]
    for fast_obj, full_obj in zip(fast.objects, full.objects, strict=True):
        assert fast_obj.body == {
            key: full_obj.body[key] for key in fastdoc.IDENTITY_KEYS if key in full_obj.body
        }
    assert (fast.errors, fast.warnings) == (full.errors, full.warnings)


HEAD = b"apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n"
MALFORMED = {
    "bad indentation": (HEAD + b"spec:\n  a: 1\n b: 2\n", 7),
    "unclosed double quote": (HEAD + b'spec:\n  a: "abc\n  b: 1\n', 8),
    "unclosed single quote": (HEAD + b"spec:\n  a: 'abc\n  b: 1\n", 8),
    "unclosed bracket": (HEAD + b"spec:\n  a: [1, 2\n  b: 1\n", 7),
    "unclosed brace": (HEAD + b"spec:\n  a: {x: 1\n  b: 1\n", 7),
    "tab indentation": (HEAD + b"spec:\n\ta: 1\n", 6),
    # yaml_rs takes a tab after the spaces of an indentation; libyaml does not.
    "null key in metadata": (b"apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n:  x: 1\n", 5),
    "null key at the top": (HEAD + b": x\n", 5),
    "tab after indentation spaces": (HEAD + b"spec:\n  status:\n    \t type: string\n", 7),
    "key in a sequence": (HEAD + b"spec:\n  - 1\n  b: 2\n", 7),
    "two colons": (HEAD + b"spec: a: b\n", 5),
    "undefined alias": (HEAD + b"spec:\n  a: *nope\n", 6),
    "duplicate anchor": (HEAD + b"spec:\n  a: &x 1\n  b: &x 2\n", 7),
    "bad metadata": (b"apiVersion: v1\nkind: Widget\nmetadata:\n  name: [w\n", 5),
}


@pytest.mark.parametrize(("text", "line"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_report_the_full_path_error(text: bytes, line: int) -> None:
    fast, full = _parse(text, _fast), _parse(text, _full)
    assert _errors(fast) == _errors(full)
    ((code, error_line, message),) = _errors(fast)
    assert (code, error_line) == ("KS-E013", line)
    assert message.startswith("malformed YAML")


def test_duplicate_keys_are_warned_about_as_on_the_full_path() -> None:
    text = HEAD + b"spec:\n  a: 1\n  b:\n    c: 1\n    c: 2\n"
    fast = _parse(text, _fast)
    assert _errors(fast) == _errors(_parse(text, _full))
    assert [(w.code, w.line) for w in fast.warnings] == [("KS-W001", 9)]


@pytest.mark.parametrize("second", [b"Widget", b"Pod"])
def test_a_second_top_level_kind_takes_the_full_path(second: bytes) -> None:
    text = HEAD + b"kind: " + second + b"\n"
    parsed = _parse(text, lambda kind: kind == "Pod")
    assert _errors(parsed) == _errors(_parse(text, _full))
    assert [(w.code, w.line) for w in parsed.warnings] == [("KS-W001", 5)]
    assert isinstance(parsed.documents[0].value, LineDict)
    assert parsed.documents[0].value["kind"] == second.decode()


def test_a_later_document_of_the_file_keeps_its_line() -> None:
    text = b"apiVersion: v1\nkind: Widget\nmetadata: {name: a}\n---\n" + HEAD + b"spec: [\n"
    parsed = _parse(text, _fast)
    assert [d.value["metadata"]["name"] for d in parsed.documents] == ["a"]
    assert [(e.code, e.line) for e in parsed.errors] == [("KS-E013", 10)]


def test_copies_of_a_large_document_are_parsed_once_and_share_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[int] = []

    class Counting:
        @staticmethod
        def loads(text: str, parse_datetime: bool) -> object:
            parsed.append(len(text))
            return yaml_rs.loads(text, parse_datetime=parse_datetime)

    monkeypatch.setattr(fastdoc, "fast_parser", lambda: Counting)
    text = HEAD + b"spec:\n  description: >-\n" + b"    text\n" * (fastdoc.CACHE_MIN_BYTES // 8)
    fastdoc._seen.clear()
    first = parse_file(text, "a.yaml", _fast).documents[0].value
    second = parse_file(b"# moved down\n\n" + text, "b.yaml", _fast).documents[0]
    third = parse_file(text, "c.yaml", _fast).documents[0].value
    assert len(parsed) == 2  # the second text has a comment more: parsed anew; the third not
    assert first == third == second.value == {
        "apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"},
    }  # fmt: skip
    assert second.line == 3
    first["metadata"]["name"] = "edited"  # origins.py takes an annotation off a document
    assert third["metadata"]["name"] == "w"
    assert parse_file(text, "d.yaml", _fast).documents[0].value["metadata"]["name"] == "w"
    assert len(parsed) == 2


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastdoc, "CACHE_MIN_BYTES", 0)
    monkeypatch.setattr(fastdoc, "CACHE_MAX_ENTRIES", 3)
    fastdoc._seen.clear()
    for index in range(10):
        assert fastdoc.identity(HEAD.replace(b"w", str(index).encode())) is not None
        assert len(fastdoc._seen) <= 3


def test_small_documents_are_not_cached() -> None:
    fastdoc._seen.clear()
    assert fastdoc.identity(HEAD) == {
        "apiVersion": "v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
    }
    assert not fastdoc._seen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a: &x 1\nb: &x 2\n", True),
        (b"a: [&x 1, &x 2]\n", True),
        (b"a: &x 1\nb: &y 2\nc: *x\n", False),
        (b"a: x&y\nb: x&y\n", False),
        (b"a: b && c && d\n", False),
        (b"a: 'p &q'\nb: 'p &q'\n", True),  # may be text: libyaml decides
    ],
)
def test_repeated_anchor_names_are_spotted(text: bytes, expected: bool) -> None:
    assert fastdoc.repeats_anchor(text) is expected


def test_without_the_fast_parser_the_full_path_reads_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastdoc, "fast_parser", lambda: None)
    text = IDENTITY_CASES["block"]
    parsed = _parse(text, _fast)
    assert fastdoc.identity(text) is None
    (document,) = parsed.documents
    assert isinstance(document.value, LineDict)
    assert document.value == _parse(text, _full).documents[0].value


def test_a_parser_crash_falls_back_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    class Panicking:
        @staticmethod
        def loads(text: str, parse_datetime: bool) -> object:
            raise BaseException("panic in the Rust parser")  # as pyo3's PanicException

    monkeypatch.setattr(fastdoc, "fast_parser", lambda: Panicking)
    parsed = _parse(IDENTITY_CASES["block"], _fast)
    assert isinstance(parsed.documents[0].value, LineDict)


def test_ctrl_c_during_a_fast_parse_stops_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupted:
        @staticmethod
        def loads(text: str, parse_datetime: bool) -> object:
            raise KeyboardInterrupt

    monkeypatch.setattr(fastdoc, "fast_parser", lambda: Interrupted)
    with pytest.raises(KeyboardInterrupt):
        _parse(IDENTITY_CASES["block"], _fast)


def test_documents_rules_read_never_take_the_fast_path() -> None:
    parsed = _parse(IDENTITY_CASES["block"], lambda kind: kind == "Widget")
    assert isinstance(parsed.documents[0].value, LineDict)
    assert parsed.documents[0].value["spec"] == {"a": 1}
