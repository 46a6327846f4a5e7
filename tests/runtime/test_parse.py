"""Parsing Falco and falcosidekick JSON: every real layout in, a clear reason for the rest."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

import kubesentinel.runtime.parse as parse_module
from kubesentinel.errors import EventError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.parse import MAX_ALERT_BYTES, Rejected, parse_alert, parse_batch
from kubesentinel.runtime.sources.interface import RawAlert
from tests.conftest import shared_path

SHELL = {
    "hostname": "falco-xczjd",
    "output": "13:44:05.478445995: Critical A shell was spawned in a container",
    "output_fields": {
        "container.id": "ee97d9c4186f",
        "evt.time": 1685022245478445995,
        "k8s.ns.name": "default",
        "k8s.pod.name": "kubecon",
        "proc.aname[2]": "runc",
    },
    "priority": "Critical",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": ["container", "mitre_execution", "shell"],
    "time": "2023-05-25T13:44:05.478445995Z",
}
SHELL_NS = 1685022245478445995


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _with(**changes: Any) -> dict[str, Any]:
    alert = dict(SHELL)
    for key, value in changes.items():
        if value is _DROP:
            del alert[key]
        else:
            alert[key] = value
    return alert


_DROP = object()


def _rfc3339_to_ns(text: str) -> int:
    """Reference conversion through datetime (microseconds) plus the nanosecond digits."""
    head, _, rest = text.partition(".")
    digits = rest.rstrip("Z")
    stamp = datetime.fromisoformat(head + "+00:00")
    return int(stamp.timestamp()) * 1_000_000_000 + int(digits.ljust(9, "0"))


def test_public_names() -> None:
    assert sorted(parse_module.__all__) == [
        "MAX_ALERT_BYTES",
        "Rejected",
        "decode_json",
        "internal_error",
        "parse_alert",
        "parse_batch",
    ]


def test_every_real_sample_parses_with_its_rule_priority_source_and_time() -> None:
    path = shared_path("falco", "samples", "alerts.jsonl")
    lines = path.read_bytes().splitlines()
    assert len(lines) == 98
    items = [RawAlert(line, f"alerts.jsonl:{n}", n) for n, line in enumerate(lines, 1)]
    parsed, rejected = parse_batch(items)
    assert rejected == []
    assert len(parsed) == 98
    for (alert, received_ns), line, item in zip(parsed, lines, items, strict=True):
        raw = json.loads(line)
        assert received_ns == item.received_ns
        assert alert.origin == item.origin
        assert alert.rule == raw["rule"]
        assert alert.priority is Priority.parse(raw["priority"])
        assert alert.priority.label == raw["priority"]
        assert alert.source == (raw.get("source") or "syscall")
        assert alert.time_ns == _rfc3339_to_ns(raw["time"])
        assert alert.tags == tuple(raw.get("tags") or ())
        assert alert.output == raw["output"]
        assert alert.hostname == raw.get("hostname", "")
        assert alert.output_fields == raw["output_fields"]
        assert alert.uuid is None
        # evt.time agrees with "time" wherever both are present, to within the float64
        # rounding a falcosidekick round trip leaves (line 10 went through one).
        fields = raw["output_fields"]
        for name in ("evt.time", "evt.time.iso8601"):
            if isinstance(fields.get(name), int):
                assert abs(fields[name] - alert.time_ns) < 1000


def test_sample_layouts_old_new_internal_k8s_audit() -> None:
    path = shared_path("falco", "samples", "alerts.jsonl")
    lines = path.read_bytes().splitlines()
    old = parse_alert(lines[6], "s:7")  # Falco < 0.30: no source, no tags, no hostname
    assert (old.source, old.tags, old.hostname) == ("syscall", (), "")
    internal = parse_alert(lines[14], "s:15")
    assert internal.source == "internal"
    assert internal.rule == "Falco internal: metrics snapshot"
    assert internal.priority is Priority.INFORMATIONAL
    audit = parse_alert(lines[3], "s:4")
    assert audit.source == "k8s_audit"
    assert audit.output_fields["ka.uri.param[command]"] == "cat"
    bracketed = parse_alert(lines[16], "s:17")
    assert bracketed.output_fields["proc.aname[2]"] == "sudo"
    short_fraction = parse_alert(lines[9], "s:10")  # "...19.82302759Z": 8 digits
    assert short_fraction.time_ns == 1610408779823027590


def test_falcosidekick_payload_with_uuid_and_float_fields() -> None:
    # falcosidekick re-marshals output_fields from a Go map: numbers become float64.
    payload = {
        "uuid": "0f3bfc2d-3c5e-4c36-9f7e-1e0c2f1a5b6d",
        "output": SHELL["output"],
        "priority": "Critical",
        "rule": SHELL["rule"],
        "time": "2023-05-25T13:44:05.478445995Z",
        "output_fields": {"evt.time": 1.685022245478446e18, "k8s.pod.name": "kubecon"},
        "source": "syscall",
        "tags": ["container", "mitre_execution"],
        "hostname": "falco-xczjd",
    }
    alert = parse_alert(json.dumps(payload), "http:127.0.0.1")
    assert alert.uuid == payload["uuid"]
    assert alert.time_ns == SHELL_NS
    assert alert.origin == "http:127.0.0.1"


def test_falcosidekick_empty_source_and_omitted_tags_hostname() -> None:
    payload = _with(source="", tags=_DROP, hostname=_DROP)
    alert = parse_alert(_line(payload), "nats:falco.critical.x#1")
    assert (alert.source, alert.tags, alert.hostname) == ("syscall", (), "")


def test_time_from_evt_time_iso8601_integer_when_time_is_absent() -> None:
    fields = {"evt.time.iso8601": 1775503890725992942, "container.id": "host"}
    alert = parse_alert(_line(_with(time=_DROP, output_fields=fields)), "f:1")
    assert alert.time_ns == 1775503890725992942


@pytest.mark.parametrize(
    "fields",
    [
        {"evt.time": 1685022245478445995},
        {"evt.time": "1685022245478445995"},
        {"evt.rawtime": 1685022245478445995},
        {"evt.time.iso8601": "2023-05-25T13:44:05.478445995Z"},
    ],
)
def test_time_fallbacks(fields: dict[str, Any]) -> None:
    for time in (_DROP, None, "yesterday"):
        alert = parse_alert(_line(_with(time=time, output_fields=fields)), "f:1")
        assert alert.time_ns == SHELL_NS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-25T13:44:05.478445995Z", SHELL_NS),
        ("2023-05-25T13:44:05.478445995z", SHELL_NS),
        ("2023-05-25t13:44:05.478445995Z", SHELL_NS),
        ("2023-05-25T15:44:05.478445995+02:00", SHELL_NS),
        ("2023-05-25T11:44:05.478445995-0200", SHELL_NS),
        ("2023-05-25T13:44:05.4784Z", 1685022245478400000),
        ("2023-05-25T13:44:05Z", 1685022245000000000),
        ("2023-05-25 13:44:05.478445995Z", SHELL_NS),
        ("2023-05-25T13:44:05.4784459951234Z", SHELL_NS),  # beyond ns: cut
    ],
)
def test_rfc3339_forms(text: str, expected: int) -> None:
    assert parse_alert(_line(_with(time=text, output_fields={})), "f:1").time_ns == expected


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-30T13:44:05.478445995Z",
        "2023-05-25T24:00:00Z",
        "2023-05-25T13:60:00Z",
        "2023-05-25T13:44:05.478445995",  # no zone
        "0001-01-01T00:00:00Z",  # Go's zero time
        "2023-05-25T13:44:05.47844599xZ",
        "2023-05-25T13:44:05+24:00",
        "2023-05-25T13:44:05-00:60",
        "",
    ],
)
def test_unusable_time_without_fallback_is_rejected(text: str) -> None:
    with pytest.raises(EventError, match="not an RFC 3339 timestamp"):
        parse_alert(_line(_with(time=text, output_fields={})), "f:9")


@pytest.mark.parametrize("value", [0, -5, True, 1e30, -1.0, "0", "soon", [1], {"seconds": 1}])
def test_unusable_evt_time_values(value: object) -> None:
    data = _line(_with(time=_DROP, output_fields={"evt.time": value}))
    with pytest.raises(EventError, match=r"no time and no evt\.time"):
        parse_alert(data, "f:1")


def test_fast_and_slow_time_paths_agree() -> None:
    rng = random.Random(7)  # noqa: S311 - seeded test data, not secrets
    for _ in range(200):
        seconds, nanos = rng.randrange(1, 4_000_000_000), rng.randrange(1_000_000_000)
        stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        text = f"{stamp}.{nanos:09d}Z"
        for _ in range(2):  # first through the regex, then through the cache
            alert = parse_alert(_line(_with(time=text)), "f:1")
            assert alert.time_ns == seconds * 1_000_000_000 + nanos


def test_key_order_does_not_matter() -> None:
    reference = parse_alert(_line(SHELL), "f:1")
    rng = random.Random(3)  # noqa: S311 - seeded test data, not secrets
    for _ in range(20):
        keys = list(SHELL)
        rng.shuffle(keys)
        shuffled = json.dumps({key: SHELL[key] for key in keys})
        assert parse_alert(shuffled, "f:1") == reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Warning", Priority.WARNING),
        ("WARNING", Priority.WARNING),
        ("warn", Priority.WARNING),
        ("Informational", Priority.INFORMATIONAL),
        ("info", Priority.INFORMATIONAL),
        ("INFO", Priority.INFORMATIONAL),
        ("err", Priority.ERROR),
        ("crit", Priority.CRITICAL),
        ("emerg", Priority.EMERGENCY),
        ("Emergency", Priority.EMERGENCY),
        ("debug", Priority.DEBUG),
        ("notice", Priority.NOTICE),
        ("alert", Priority.ALERT),
    ],
)
def test_priority_any_case_and_aliases(text: str, expected: Priority) -> None:
    assert parse_alert(_line(_with(priority=text)), "f:1").priority is expected


def test_null_fields_take_defaults() -> None:
    alert = parse_alert(
        _line(_with(source=None, tags=None, hostname=None, output=None, output_fields=None)),
        "f:1",
    )
    assert alert.source == "syscall"
    assert alert.tags == ()
    assert alert.hostname == ""
    assert alert.output == ""
    assert alert.output_fields == {}
    assert alert.time_ns == SHELL_NS


def test_hostname_falls_back_to_evt_hostname() -> None:
    fields = {"evt.hostname": "node-1", "evt.time": 1}
    alert = parse_alert(_line(_with(hostname=_DROP, output_fields=fields)), "f:1")
    assert alert.hostname == "node-1"


def test_unknown_fields_ignored_and_source_lowercased() -> None:
    alert = parse_alert(_line(_with(extra={"a": 1}, source="K8S_AUDIT")), "f:1")
    assert alert.source == "k8s_audit"


def test_invalid_utf8_inside_a_valid_alert_is_replaced() -> None:
    data = _line(_with(output="cmd=XX")).replace(b"XX", b"\xff\xfe")
    alert = parse_alert(data, "f:1")
    assert alert.output == "cmd=\ufffd\ufffd"


def test_str_and_bytes_give_the_same_alert() -> None:
    assert parse_alert(json.dumps(SHELL), "f:1") == parse_alert(_line(SHELL), "f:1")


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not json", b"hello world", "not JSON: expecting value at char 0"),
    ("truncated", _line(SHELL)[:-40], "truncated JSON"),
    ("truncated inside a string", b'{"rule": "Terminal sh', "truncated JSON"),
    ("two objects", _line(SHELL) + b" {}", "not JSON: extra data"),
    ("array", b"[1, 2]", "not a JSON object but an array"),
    ("string", b'"alert"', "not a JSON object but a string"),
    ("number", b"42", "not a JSON object but a number"),
    ("null", b"null", "not a JSON object but null"),
    ("empty", b"", "empty input"),
    ("blank", b"  \r\n", "empty input"),
    ("binary", bytes(range(256)) * 4, "binary data, not JSON"),
    ("binary with nul", b"\x00\x01\x02\x03garbage", "binary data, not JSON"),
    ("missing rule", _line(_with(rule=_DROP)), "missing rule"),
    ("null rule", _line(_with(rule=None)), "missing rule"),
    ("empty rule", _line(_with(rule="  ")), "empty rule"),
    ("numeric rule", _line(_with(rule=5)), "rule is a number"),
    ("missing priority", _line(_with(priority=_DROP)), "missing priority"),
    ("unknown priority", _line(_with(priority="Severe")), "unknown priority 'Severe'"),
    ("numeric priority", _line(_with(priority=4)), "priority is a number, expected a string"),
    (
        "no time",
        _line(_with(time=_DROP, output_fields={"proc.name": "sh"})),
        "no time and no evt.time",
    ),
    ("bad tags", _line(_with(tags="shell")), "tags is a string, expected an array"),
    ("bad tag item", _line(_with(tags=["a", 1])), "tags holds a number"),
    ("bad fields", _line(_with(output_fields=[1])), "output_fields is an array"),
    ("bad output", _line(_with(output=["x"])), "output is an array"),
    ("bad hostname", _line(_with(hostname=1)), "hostname is a number"),
    ("bad uuid", _line(_with(uuid=7)), "uuid is a number"),
    ("bad source", _line(_with(source=True)), "source is a boolean"),
    ("deep nesting", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
]


@pytest.mark.parametrize(("case", "data", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_rejected_with_a_reason(case: str, data: bytes, reason: str) -> None:
    with pytest.raises(EventError) as info:
        parse_alert(data, "alerts.jsonl:12")
    error = info.value
    assert error.code == "KS-E031"
    assert error.message.startswith("malformed Falco alert from alerts.jsonl:12: ")
    assert reason in error.message, case
    assert error.hint is not None
    [rejected] = parse_batch([RawAlert(data, "alerts.jsonl:12", 5)])[1]
    assert rejected == Rejected("alerts.jsonl:12", rejected.reason, data)
    assert reason in rejected.reason
    assert error.message.endswith(rejected.reason)


def test_line_over_the_limit_is_rejected_before_decoding() -> None:
    big = _line(_with(output="x" * MAX_ALERT_BYTES))
    with pytest.raises(EventError, match=r"over the 1048576 byte limit"):
        parse_alert(big, "f:3")
    with pytest.raises(EventError, match=r"over the 1048576 byte limit"):
        parse_alert(big.decode(), "f:3")
    wide = json.dumps(_with(output="\u00e9" * (MAX_ALERT_BYTES // 2 + 10)), ensure_ascii=False)
    assert len(wide) < MAX_ALERT_BYTES < len(wide.encode())
    with pytest.raises(EventError, match="byte limit"):
        parse_alert(wide, "f:3")
    just_under = _line(_with(output="x" * (MAX_ALERT_BYTES - 1000)))
    assert parse_alert(just_under, "f:4").rule == SHELL["rule"]


def test_batch_keeps_good_events_around_bad_ones_in_order() -> None:
    items = [
        RawAlert(_line(SHELL), "f:1", 101),
        RawAlert(b"{not json", "f:2", 102),
        RawAlert(_line(_with(rule="Second")), "f:3", 103),
        RawAlert(_line(_with(priority="nope")), "f:4", 104),
        RawAlert(_line(_with(rule="Third")), "f:5", 105),
    ]
    parsed, rejected = parse_batch(items)
    assert [(a.rule, a.origin, r) for a, r in parsed] == [
        (SHELL["rule"], "f:1", 101),
        ("Second", "f:3", 103),
        ("Third", "f:5", 105),
    ]
    assert [(r.origin, r.data) for r in rejected] == [("f:2", b"{not json"), ("f:4", items[3].data)]
    assert parse_batch([]) == ([], [])


def test_internal_drop_alert_parses() -> None:
    drop = {
        "hostname": "node-1",
        "output": "Falco internal: syscall event drop. 9 system calls dropped in last second.",
        "output_fields": {"ebpf_enabled": "1", "n_drops": "9", "n_evts": "9000"},
        "priority": "Debug",
        "rule": "Falco internal: syscall event drop",
        "source": "internal",
        "time": "2024-01-01T00:00:00.000000001Z",
    }
    alert = parse_alert(_line(drop), "f:1")
    assert (alert.source, alert.priority, alert.time_ns) == (
        "internal",
        Priority.DEBUG,
        1704067200000000001,
    )


def test_rejected_is_frozen() -> None:
    rejected = Rejected("f:1", "why", b"x")
    with pytest.raises(AttributeError):
        rejected.reason = "other"  # type: ignore[misc]


def test_the_bytes_as_received_are_kept_as_evidence() -> None:
    line = _line(_with())
    assert parse_alert(b"  " + line + b"\r\n", "x").raw == line  # surrounding space dropped
    assert parse_alert(line.decode(), "x").raw == line  # text is kept as its UTF-8
    lossy = _line(_with(output="cmd=XX")).replace(b"XX", b"\xff\xfe")
    assert parse_alert(lossy, "x").raw == lossy  # the evidence keeps the invalid bytes


def test_decode_json_reads_like_the_parser_and_names_the_fault() -> None:
    assert parse_module.decode_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_module.decode_json(b'{"a": "\xff"}') == {"a": "\ufffd"}
    with pytest.raises(EventError, match="truncated JSON"):
        parse_module.decode_json(b'{"a": ')


def test_bytearray_and_memoryview_inputs_parse_like_bytes() -> None:
    line = _line(_with())
    for data in (bytearray(line), memoryview(line)):
        assert parse_alert(data, "x").raw == line  # type: ignore[arg-type]
    parsed, rejected = parse_batch(
        [
            RawAlert(bytearray(b"\x00\x01 garbage"), "a", 0),
            RawAlert(memoryview(b'{"rule": '), "b", 0),
        ]  # type: ignore[arg-type]
    )
    assert parsed == []
    assert [r.reason.split(" ")[0] for r in rejected] == ["binary", "truncated"]
    assert [type(r.data) for r in rejected] == [bytes, bytes]  # the dead-letter file writes them


@pytest.mark.parametrize(
    ("fields", "time"),
    [
        ({}, "2023-05-25T13:44:05.47844599\u00b2Z"),  # str.isdigit() takes a superscript two
        ({}, "\u0662\u0660\u0662\u0663-05-25T13:44:05.478445995Z"),  # Arabic-Indic digits
        ({}, "2263-01-01T00:00:00.000000000Z"),  # past int64 nanoseconds
        ({"evt.rawtime": "1" * 5000}, None),  # more digits than int() converts
        ({"evt.rawtime": "9" * 20}, None),
        ({"evt.time": 2**63}, None),
        ({"evt.time": 1e19}, None),
        ({"evt.time": float("nan")}, None),
    ],
)
def test_times_beyond_int64_or_not_in_ascii_digits_are_unusable(
    fields: dict[str, Any], time: str | None
) -> None:
    parse_alert(_line(SHELL), "warm")  # the seconds of SHELL's time are in the cache now
    data = _line(_with(time=time, output_fields=fields))
    [rejected] = parse_batch([RawAlert(data, "f:1", 0)])[1]
    assert "time" in rejected.reason


def test_a_five_thousand_digit_integer_is_rejected_with_a_reason() -> None:
    data = _line(_with(output_fields={"n": 0})).replace(b'"n": 0', b'"n": ' + b"9" * 5000)
    items = [RawAlert(_line(SHELL), "f:1", 1), RawAlert(data, "f:2", 2), RawAlert(data, "f:3", 3)]
    parsed, rejected = parse_batch(items, offset=10)
    assert [a.origin for a, _ in parsed] == ["f:1"]
    assert [(r.origin, r.index, r.data) for r in rejected] == [("f:2", 11, data), ("f:3", 12, data)]
    assert {r.reason for r in rejected} == {"not JSON: an integer of more than 4300 digits"}
    with pytest.raises(EventError, match="an integer of more than 4300 digits"):
        parse_alert(data, "f:2")


def test_internal_error_names_the_stage_type_and_a_short_message() -> None:
    assert parse_module.internal_error("parsing", ValueError("a\nb  c")) == (
        "internal error while parsing: ValueError: a b c"
    )
    assert parse_module.internal_error("enriching", KeyError()) == (
        "internal error while enriching: KeyError"
    )
    long = parse_module.internal_error("parsing", RuntimeError("x" * 500))
    assert long.endswith("...")
    assert len(long) < 200
