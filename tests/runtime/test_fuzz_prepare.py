"""Property-based fuzzing of parse -> enrich -> correlate, seeded with real Falco alerts.

Inputs are mutations of the real samples in ../shared/falco/samples/alerts.jsonl (byte flips,
truncation, known fields given other types, huge numbers and strings, deep nesting, invalid
UTF-8, NaN/Infinity, duplicate keys, unknown fields, bogus times) mixed with arbitrary JSON and
bytes. The property: ``prepare`` and ``Correlator.add`` never raise, and every input item ends
up exactly once as an event, an internal alert or a Rejected with a reason, which the
dead-letter file then gives back byte for byte.

Derandomized with a fixed number of examples: the same inputs on every run, never flaky.
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesentinel.errors import EventError
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.deadletter import DeadLetter, read_dead_letter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_alert
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.workers import prepare
from tests.conftest import shared_path

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,  # a 100,000-level nesting takes a while to build; the whole test is bounded
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOP_FIELDS = ("rule", "priority", "time", "output", "output_fields", "source", "tags",
              "hostname", "uuid")  # fmt: skip
OUTPUT_FIELDS = (
    "evt.time", "evt.time.iso8601", "evt.rawtime", "evt.hostname", "k8s.ns.name",
    "k8s.pod.name", "k8smeta.ns.name", "k8smeta.pod.name", "container.id", "container.name",
    "container.image", "container.image.repository", "container.image.tag",
    "k8smeta.deployment.name", "ka.target.namespace", "ka.target.resource", "ka.target.name",
    "ka.resp.name", "ka.uri", "proc.cmdline",
)  # fmt: skip
HOLE = "\u0000HOLE\u0000"  # replaced by a raw JSON literal after encoding
RAW_LITERALS = [
    b"9" * 5000,  # over Python's int-string limit
    b"-" + b"9" * 4301,
    b"1" * 300,
    b"18446744073709551616",  # 2**64
    b"9223372036854775808",  # 2**63
    b"1e999",
    b"-1e999",
    b"1" + b"0" * 400 + b".5",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"[" * 5000 + b"]" * 5000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'"\\ud800"',  # a lone surrogate
    b'"\\udfff\\ud800x"',
    b'"' + b"x" * 200_000 + b'"',
    b"true",
    b"null",
]
BOGUS_TIMES = [
    "2024-01-01T00:00:00.00000000\u00b2Z",  # a superscript digit passes str.isdigit()
    "\u0662\u0660\u0662\u0664-01-01T00:00:00.000000000Z",  # Arabic-Indic digits
    "9999-12-31T23:59:59.999999999Z",  # beyond int64 nanoseconds
    "0001-01-01T00:00:00.000000000Z",
    "1970-01-01T00:00:00.000000000Z",
    "2024-02-30T00:00:00.000000000Z",
    "2024-01-01T25:00:00.000000000Z",
    "2024-01-01T00:00:00.000000000+99:99",
    "2024-01-01T00:00:00." + "9" * 100_000 + "Z",
    "",
    "Z" * 30,
]
BOGUS_RAWTIMES: list[Any] = ["1" * 5000, "9" * 25, "0", "-5", "1e18", "\u00b9" * 19,
                             2**64, -1, 0, 1e300, -1e300, True]  # fmt: skip


@lru_cache(maxsize=1)
def _sample_lines() -> tuple[bytes, ...]:
    return tuple(shared_path("falco", "samples", "alerts.jsonl").read_bytes().splitlines())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _encode(obj: Any, raw: bytes | None) -> bytes:
    text = json.dumps(obj, allow_nan=True).encode()
    if raw is None:
        return text
    return text.replace(json.dumps(HOLE).encode(), raw, 1)


@st.composite
def mutated_sample(  # noqa: PLR0912 - one branch per kind of mutation reads best
    draw: st.DrawFn, lines: tuple[bytes, ...]
) -> bytes:
    line = draw(st.sampled_from(lines))
    kind = draw(st.sampled_from([
        "flip", "truncate", "swap", "raw", "field_raw", "invalid_utf8", "duplicate",
        "unknown", "time", "rawtime", "drop", "splice",
    ]))  # fmt: skip
    if kind == "flip":
        data = bytearray(line)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "truncate":
        return line[: draw(st.integers(0, len(line) - 1))]
    if kind == "invalid_utf8":
        at = draw(st.integers(0, len(line)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"\x00", b"\xfe\xff"]))  # fmt: skip
        return line[:at] + junk + line[at:]
    if kind == "splice":
        other = draw(st.sampled_from(lines))
        return line[: draw(st.integers(0, len(line)))] + other[draw(st.integers(0, len(other))) :]
    obj = json.loads(line)
    fields = obj.get("output_fields")
    if not isinstance(fields, dict):
        fields = obj["output_fields"] = {}
    raw: bytes | None = None
    if kind == "swap":
        obj[draw(st.sampled_from(TOP_FIELDS))] = draw(json_values)
    elif kind == "raw":
        obj[draw(st.sampled_from(TOP_FIELDS))] = HOLE
        raw = draw(st.sampled_from(RAW_LITERALS))
    elif kind == "field_raw":
        fields[draw(st.sampled_from(OUTPUT_FIELDS))] = HOLE
        raw = draw(st.sampled_from(RAW_LITERALS))
    elif kind == "duplicate":
        text = _encode(obj, None)
        name = draw(st.sampled_from(TOP_FIELDS))
        value = json.dumps(draw(json_values), allow_nan=True)
        return text[:-1] + f', "{name}": {value}}}'.encode()
    elif kind == "unknown":
        for _ in range(draw(st.integers(1, 3))):
            obj[draw(st.text(max_size=12))] = draw(json_values)
            fields[draw(st.text(max_size=12))] = draw(json_values)
    elif kind == "time":
        obj["time"] = draw(st.sampled_from(BOGUS_TIMES) | st.text(max_size=40))
        if draw(st.booleans()):
            for name in ("evt.time", "evt.time.iso8601", "evt.rawtime"):
                fields.pop(name, None)
    elif kind == "rawtime":
        obj.pop("time", None)
        fields[draw(st.sampled_from(("evt.time", "evt.time.iso8601", "evt.rawtime")))] = draw(
            st.sampled_from(BOGUS_RAWTIMES) | json_values
        )
    elif kind == "drop":
        obj.pop(draw(st.sampled_from(TOP_FIELDS)), None)
    return _encode(obj, raw)


def inputs(lines: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(lines),
        mutated_sample(lines),
        mutated_sample(lines),
        mutated_sample(lines),
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


@FUZZ
@given(st.data())
def test_no_input_escapes_prepare_or_correlation(data: st.DataObject) -> None:
    lines = _sample_lines()
    items = data.draw(st.lists(inputs(lines), min_size=1, max_size=12), label="batch")
    batch = [RawAlert(item, f"fuzz:{n}", 1_700_000_000_000_000_000) for n, item in enumerate(items)]

    prepared = prepare(batch, Enricher(cluster="fuzz"))
    Correlator(window_s=60).add(prepared.events, 1_700_000_000_000_000_000)

    origins = [e.origin for e in prepared.events] + [a.origin for a in prepared.internal]
    origins += [r.origin for r in prepared.rejected]
    assert sorted(origins) == sorted(item.origin for item in batch)  # each item exactly once
    for rejected in prepared.rejected:
        assert rejected.reason.strip()
        assert batch[rejected.index].origin == rejected.origin
        assert rejected.data == items[rejected.index]
    for event in prepared.events:
        assert 0 < event.time_ns < 2**63  # storable as SQLite INTEGER

    with tempfile.TemporaryDirectory(prefix="ks-fuzz-") as tmp:
        letter = DeadLetter(Path(tmp) / "dl.jsonl")
        letter.write(prepared.rejected)
        letter.close()
        if prepared.rejected:
            back = list(read_dead_letter(Path(tmp) / "dl.jsonl"))
            assert [(r.origin, r.data) for r in back] == [
                (r.origin, r.data) for r in prepared.rejected
            ]


@FUZZ
@given(st.data())
def test_parse_alert_raises_only_event_errors(data: st.DataObject) -> None:
    item = data.draw(inputs(_sample_lines()))
    try:
        parse_alert(item, "fuzz:1")
    except EventError as exc:
        message = exc.message
    else:
        return
    assert message.startswith("malformed Falco alert from fuzz:1: ")


@pytest.mark.parametrize("raw", RAW_LITERALS[:5], ids=lambda r: f"{len(r)}-byte literal")
def test_huge_numbers_in_output_fields_are_rejected_not_raised(raw: bytes) -> None:
    line = _sample_lines()[0]
    data = line[:-1] + b', "evil": ' + raw + b"}"
    prepared = prepare([RawAlert(data, "f:1", 0), RawAlert(line, "f:2", 0)], Enricher())
    if raw.lstrip(b"-").isdigit() and len(raw.lstrip(b"-")) > 4300:
        (rejected,) = prepared.rejected
        assert rejected.reason == "not JSON: an integer of more than 4300 digits"
        assert [e.origin for e in prepared.events] == ["f:2"]
    else:  # within Python's limit: a valid alert
        assert len(prepared.events) == 2
