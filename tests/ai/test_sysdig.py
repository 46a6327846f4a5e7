"""sysdig -j reader: real captures through Debian's sysdig, every layout, bad lines skipped."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesentinel.ai.sysdig import (
    MAX_LINE_BYTES,
    Malformed,
    SysdigLineError,
    parse_line,
    read_events,
    read_path,
)
from kubesentinel.models.syscall_event import SyscallEvent
from tests.ai.sysdig_capture import sysdig_json

CONTAINER = "697956520d89"  # the nginx container of run_as_user_0_container.scap


def read(data: bytes, origin: str = "t.jsonl") -> tuple[list[SyscallEvent], list[Malformed]]:
    bad: list[Malformed] = []
    return list(read_events(io.BytesIO(data), origin, bad.append)), bad


# -- real captures ---------------------------------------------------------------------------


def test_default_layout_of_a_real_capture() -> None:
    out = sysdig_json("cat_write.scap")
    events, bad = read(out)
    assert bad == []
    assert len(events) == len(out.splitlines()) == 85
    first = events[0]
    assert first == SyscallEvent(
        evt_type="execve", direction="<", time_ns=1470327477881730713, proc_name="cat",
        tid=20072, pid=None, container_id=None, fd_name=None, num=131,
    )  # fmt: skip
    # The default layout has no fd.name: it comes from the arguments sysdig renders.
    opens = [e for e in events if e.evt_type == "open" and e.direction == "<"]
    assert opens[0].fd_name == "/etc/ld.so.cache"
    times = [e.time_ns for e in events]
    assert times == sorted(times)


def test_connection_tuple_and_unknown_process_name() -> None:
    events, bad = read(sysdig_json("connect_localhost.scap"))
    assert bad == []
    connect_exit = next(e for e in events if e.evt_type == "connect" and e.direction == "<")
    assert connect_exit.fd_name == "127.0.0.1:47192->127.0.0.1:80"
    assert connect_exit.proc_name is None  # sysdig prints "<NA>": the process predates capture


def test_container_layout_names_containers_and_host() -> None:
    events, bad = read(sysdig_json("run_as_user_0_container.scap", "-pc"))
    assert bad == []
    by_proc = {(e.container_id, e.proc_name) for e in events if e.proc_name}
    assert (CONTAINER, "ls") in by_proc
    assert (CONTAINER, "bash") in by_proc
    assert ("host", "sshd") in by_proc
    switch = next(e for e in events if e.evt_type == "switch")
    assert switch.tid == 0  # the idle task


def test_custom_field_selection_agrees_with_default_layout() -> None:
    # A leading "*" makes sysdig print events that lack some selected field (as null).
    fields = "*%evt.num %evt.rawtime %evt.type %evt.dir %proc.name %proc.pid %thread.tid %fd.name"
    custom, bad = read(sysdig_json("run_as_user_0_container.scap", "-p", fields))
    assert bad == []
    default, _ = read(sysdig_json("run_as_user_0_container.scap"))
    by_num = {e.num: e for e in default}
    assert len(custom) > 3700
    for event in custom:
        same = by_num[event.num]
        assert (event.time_ns, event.evt_type, event.direction, event.tid) == (
            same.time_ns, same.evt_type, same.direction, same.tid,
        )  # fmt: skip
        assert (event.pid is None) == (event.proc_name is None)
    assert any(e.fd_name == "/dev/pts/0" and e.proc_name == "bash" for e in custom)


def test_recorded_fixture_with_corrupt_lines(tmp_path: pytest.TempPathFactory) -> None:
    """A fixture recorded from a real capture, with bad lines spliced in: each bad line is
    reported at its line number, and every real event still comes through unchanged."""
    real = sysdig_json("run_as_user_0_container.scap", "-pc").splitlines()[:40]
    garbage = [
        b"\x00\x01\x02\xff binary",
        real[5][: len(real[5]) // 2],  # truncated mid-object
        b'{"evt.type": 7}',
        b'{"evt.num": 1}',
        b'["not", "an", "object"]',
        b'{"evt.type": "read", "evt.dir": "?"}',
        b'{"evt.type": "read", "thread.tid": "abc"}',
        b"x" * (MAX_LINE_BYTES + 10),
    ]
    lines = [*real[:10], *garbage, *real[10:]]
    path = tmp_path / "recorded.jsonl"  # type: ignore[operator]
    path.write_bytes(b"\n".join(lines) + b"\n")
    bad: list[Malformed] = []
    events = list(read_path(path, bad.append))
    expected, _ = read(b"\n".join(real))
    assert events == expected
    assert [b.line for b in bad] == list(range(11, 11 + len(garbage)))
    reasons = [b.reason for b in bad]
    assert reasons[0].startswith("binary data")
    assert reasons[1].startswith("not JSON")
    assert reasons[2] == "evt.type must be a non-empty string, not a number"
    assert reasons[3].startswith("no evt.type")
    assert reasons[4] == "not a JSON object but an array"
    assert reasons[5] == "evt.dir must be '>' or '<', not '?'"
    assert reasons[6] == "thread.tid must be an integer, not a string"
    assert reasons[7] == f"line longer than {MAX_LINE_BYTES} bytes"
    assert str(bad[0]) == f"{path}:11: {reasons[0]}"


# -- layouts and fields ----------------------------------------------------------------------


def line(**fields: object) -> bytes:
    return json.dumps({"evt.type": "open", "evt.dir": ">", **fields}).encode()


@pytest.mark.parametrize(
    ("fields", "time_ns"),
    [
        ({"evt.outputtime": 1562711470509982263}, 1562711470509982263),
        ({"evt.time": "1562711470509982263"}, 1562711470509982263),
        ({"evt.rawtime": 5, "evt.time": 7}, 5),  # rawtime first
        ({"evt.datetime": "2019-07-09 22:31:10.509982263"}, 1562711470509982263),
        ({"evt.time.iso8601": "2019-07-10T00:31:10.5+02:00"}, 1562711470500000000),
        ({"evt.time": "22:31:10.509982263"}, None),  # a time of day has no date
        ({}, None),
    ],
)
def test_time_forms(fields: dict[str, object], time_ns: int | None) -> None:
    event = parse_line(line(**fields))
    assert event is not None
    assert event.time_ns == time_ns


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"evt.time": 1.5e18}, "evt.time must be integer nanoseconds or a date-time, not 1.5e+18"),
        ({"evt.time": -1}, "evt.time -1 is outside int64 nanoseconds since 1970"),
        ({"evt.time": "yesterday"}, "evt.time must be integer nanoseconds or a date-time, not"),
        ({"evt.time": "2019-13-40 00:00:00"}, "evt.time must be integer nanoseconds"),
        ({"proc.name": ["a"]}, "proc.name must be a string, not an array"),
        ({"thread.tid": True}, "thread.tid must be an integer, not a boolean"),
        ({"fd.name": 3}, "fd.name must be a string, not a number"),
        ({"evt.type": ""}, "evt.type must be a non-empty string, not a string"),
    ],
)
def test_wrong_types_are_named(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(SysdigLineError) as caught:
        parse_line(line(**fields))
    assert str(caught.value).startswith(reason)


def test_unknown_values_become_none() -> None:
    fields = {
        "proc.name": "<NA>", "thread.tid": -1, "proc.pid": "12", "container.id": "",
        "fd.name": "N/A", "evt.info": "fd=3(<f>/etc/passwd) ",
    }  # fmt: skip
    event = parse_line(line(**fields))
    assert event is not None
    assert (event.proc_name, event.tid, event.pid, event.container_id) == (None, None, 12, None)
    assert event.fd_name is None  # fd.name given (as unknown) wins over the arguments


@pytest.mark.parametrize(
    ("info", "fd_name"),
    [
        (
            "fd=3(<f>/etc/ld.so.cache) name=/etc/ld.so.cache flags=4097(O_RDONLY)",
            "/etc/ld.so.cache",
        ),
        ("res=-2(ENOENT) name=/etc/ld.so.nohwcap ", "/etc/ld.so.nohwcap"),
        (
            "res=-115(EINPROGRESS) tuple=127.0.0.1:47192->127.0.0.1:80 ",
            "127.0.0.1:47192->127.0.0.1:80",
        ),
        ("fd=4(<4>) ", None),
        ("addr=0 ", None),
    ],
)
def test_fd_name_from_arguments(info: str, fd_name: str | None) -> None:
    event = parse_line(line(**{"evt.info": info}))
    assert event is not None
    assert event.fd_name == fd_name


def test_old_array_layout_and_blank_lines() -> None:
    data = b'[\n{"evt.type":"open","evt.num":1},\n\n{"evt.type":"read","evt.num":2}\n]\n'
    events, bad = read(data)
    assert bad == []
    assert [(e.evt_type, e.num) for e in events] == [("open", 1), ("read", 2)]


def test_line_numbers_survive_an_overlong_line() -> None:
    data = b'{"evt.type":"a"}\n' + b"y" * (MAX_LINE_BYTES * 2) + b'\n{"evt.type":"b"}'
    events, bad = read(data)
    assert [e.evt_type for e in events] == ["a", "b"]
    assert [(b.line, b.reason) for b in bad] == [(2, f"line longer than {MAX_LINE_BYTES} bytes")]


# -- fuzz ------------------------------------------------------------------------------------

SEEDS = [
    b'{"evt.cpu":0,"evt.dir":">","evt.info":"fd=3(<f>/etc/ld.so.cache) ","evt.num":142,'
    b'"evt.outputtime":1470327477881786291,"evt.type":"fstat","proc.name":"cat","thread.tid":1}',
    b'{"container.id":"697956520d89","evt.args":"res=1 data=l ","evt.dir":"<","evt.num":1611,'
    b'"evt.rawtime":1562711472092764936,"evt.type":"read","fd.name":"/dev/pts/0","proc.pid":7}',
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(SEEDS),
            st.binary(max_size=200),
            st.builds(
                lambda seed, cut, junk: seed[:cut] + junk + seed[cut:],
                st.sampled_from(SEEDS), st.integers(0, 200), st.binary(max_size=8),
            ),
            st.dictionaries(
                st.sampled_from(["evt.type", "evt.dir", "evt.time", "thread.tid", "proc.pid",
                                 "proc.name", "fd.name", "evt.info", "container.id", "evt.num"]),
                st.recursive(
                    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3),
                    max_leaves=5,
                ),
            ).map(lambda d: json.dumps(d).encode()),
        ),
        max_size=8,
    )
)  # fmt: skip
def test_fuzz_never_raises(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    events, bad = read(data)
    assert len(events) + len(bad) <= data.count(b"\n") + 1
    for event in events:
        assert isinstance(event.evt_type, str)
        assert event.evt_type
        assert event.direction in (">", "<", None)
        assert event.tid is None or event.tid >= 0
    for malformed in bad:
        assert malformed.reason
        assert 1 <= malformed.line <= data.count(b"\n") + 1
