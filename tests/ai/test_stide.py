"""STIDE: exact windows, mismatches and locality frame counts; bounds; JSON and tampering."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import orjson
import pytest

from kubesentinel.ai.stide import ModelFormatError, Stide, StideScore
from kubesentinel.ai.sysdig import read_events
from kubesentinel.models.syscall_event import SyscallEvent
from tests.ai.sysdig_capture import sysdig_json


def ev(evt_type: str, proc: str = "app", tid: int | None = 1, direction: str | None = ">",
       container: str | None = None) -> SyscallEvent:  # fmt: skip
    return SyscallEvent(evt_type, direction, None, proc, tid, None, container, None)


def trace(calls: str, **kw: object) -> list[SyscallEvent]:
    return [ev(c, **kw) for c in calls]  # type: ignore[arg-type]


def test_learns_exactly_the_sliding_windows() -> None:
    model = Stide(k=3)
    assert model.learn(trace("abcdefg")) == 5
    assert model.keys == ["app"]
    assert model.sequences("app") == {tuple("abc"), tuple("bcd"), tuple("cde"), tuple("def"),
                                      tuple("efg")}  # fmt: skip
    assert model.windows("app") == 5
    model.learn(trace("abcd"))  # repeats add windows, not sequences
    assert len(model.sequences("app")) == 5
    assert model.windows("app") == 7


def test_exits_meta_events_and_threads_do_not_mix() -> None:
    """Exit events and sysdig's own events are skipped; each thread is its own sequence."""
    events: list[SyscallEvent] = []
    for c in "abcd":
        events += [ev(c, tid=1), ev(c, tid=1, direction="<"), ev("switch", tid=1),
                   ev(c.upper(), tid=2)]  # fmt: skip
    model = Stide(k=3)
    assert model.learn(events) == 4
    assert model.sequences("app") == {tuple("abc"), tuple("bcd"), tuple("ABC"), tuple("BCD")}


def test_keys_are_container_and_process() -> None:
    model = Stide(k=2)
    model.learn([*trace("ab", proc="nginx", container="c1"), *trace("ab", proc="nginx")])
    assert model.keys == ["c1/nginx", "nginx"]


def test_locality_frame_count_exact() -> None:
    model = Stide(k=3, frame=4)
    model.learn(trace("abc" * 10))
    scores = model.score(trace("abcabXabcabc"))
    # Indexes 0-1 have no full window; windows ending at 5 (abX), 6 (bXa), 7 (Xab) mismatch.
    misses = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]  # windows ending at indexes 2..11
    expected = [sum(misses[max(0, i - 3) : i + 1]) / 4 for i in range(len(misses))]
    assert [s.index for s in scores] == list(range(12))
    assert [s.score for s in scores] == [0.0, 0.0, *expected]
    assert scores[5].reason == (
        "sequence a,b,X never seen for app in 28 learned windows; 1 of the last 4 windows "
        "mismatched"
    )
    assert (
        scores[8].reason
        == "3 of the last 4 windows mismatched for app; this window was seen in training"
    )
    assert scores[11].reason == "all of the last 4 windows of app seen in training"
    assert scores[0].reason == "fewer than 3 calls of this thread yet"


def test_indexes_point_into_the_input_and_skip_exits() -> None:
    model = Stide(k=2, frame=2)
    model.learn(trace("ab"))
    events = [ev("a"), ev("a", direction="<"), ev("switch"), ev("b"), ev("z", direction=None)]
    scores = model.score(events)
    assert [(s.index, s.score) for s in scores] == [(0, 0.0), (3, 0.0), (4, 0.5)]
    index, score, reason = scores[-1]  # unpacks as the agreed (index, score, reason)
    assert (index, score) == (4, 0.5)
    assert reason.startswith("sequence b,z never seen for app")


def test_unknown_process_saturates() -> None:
    model = Stide(k=2, frame=3)
    model.learn(trace("abab"))
    scores = model.score(trace("abcd", proc="xmrig"))
    assert [s.score for s in scores] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert scores[0].reason == "xmrig never learned; fewer than 2 calls of this thread yet"
    assert scores[-1].reason == "xmrig never learned; 3 of the last 3 windows mismatched"


def test_scoring_learns_nothing() -> None:
    model = Stide(k=2)
    model.learn(trace("ab"))
    before = model.to_json()
    model.score(trace("xyzxyz"))
    assert model.to_json() == before


def test_memory_is_bounded() -> None:
    model = Stide(k=2, frame=2, max_sequences=2, max_keys=1)
    model.learn(trace("abcde"))
    model.learn(trace("ab", proc="other"))
    assert model.sequences("app") == {("a", "b"), ("b", "c")}
    assert model.keys == ["app"]
    assert model.dropped_events == 2  # both calls of the second key
    scores = model.score(trace("de"))
    assert scores[-1].reason.endswith("(profile full at 2 sequences, 2 not kept)")


@pytest.mark.parametrize(("k", "frame"), [(0, 20), (65, 20), (6, 0)])
def test_bad_parameters(k: int, frame: int) -> None:
    with pytest.raises(ValueError, match="need 1 <= k"):
        Stide(k=k, frame=frame)


# -- persistence -----------------------------------------------------------------------------


def trained() -> Stide:
    model = Stide(k=3, frame=5)
    model.learn(trace("openreadclose" * 3))
    model.learn(trace("execve", proc="sh", container="c1", tid=7))
    return model


def test_json_round_trip() -> None:
    model = trained()
    text = model.to_json()
    again = Stide.from_json(text)
    probe = trace("openreadXclose") + trace("exec", proc="sh", container="c1")
    assert again.score(probe) == model.score(probe)
    assert again.to_json() == text
    doc = json.loads(text)
    assert (doc["format"], doc["version"], doc["k"], doc["frame"]) == (
        "kubesentinel-stide",
        1,
        3,
        5,
    )
    assert doc["digest"].startswith("sha256:")


def edited(change: object) -> str:
    doc = orjson.loads(trained().to_json())
    change(doc)  # type: ignore[operator]
    return orjson.dumps(doc).decode()


def app_sequences(doc: dict[str, Any]) -> list[list[int]]:
    return doc["profiles"]["app"]["sequences"]  # type: ignore[no-any-return]


def resealed(change: object) -> str:
    """An edit whose digest is recomputed, as a careless tool would: caught by validation."""
    doc = orjson.loads(trained().to_json())
    del doc["digest"]
    change(doc)  # type: ignore[operator]
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    doc["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    return orjson.dumps(doc).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a kubesentinel-stide model"),
        ('{"format": "x"}', "not a kubesentinel-stide model"),
        (edited(lambda d: d.update(version=2)), "model version 2 is not supported"),
        (edited(lambda d: d["profiles"]["app"]["sequences"].pop()), "digest mismatch"),
        (edited(lambda d: d.update(frame=6)), "digest mismatch"),
        (edited(lambda d: d.pop("digest")), "digest mismatch"),
        (resealed(lambda d: app_sequences(d).append([0, 1])), "each sequence must be 3"),
        (resealed(lambda d: app_sequences(d).append([0, 1, 99])), "each sequence must be 3"),
        (resealed(lambda d: d.update(syscalls=["a", "a"])), "syscalls must be a list of distinct"),
        (resealed(lambda d: d.update(k=0)), "need 1 <= k"),
        (resealed(lambda d: d.update(k="3")), "k must be a non-negative integer"),
        (resealed(lambda d: d["profiles"].update(x=[])), "profile 'x' must be an object"),
        (resealed(lambda d: d.update(max_keys=1)), "profiles must be an object of at most 1 keys"),
    ],
)  # fmt: skip
def test_tampered_or_foreign_models_are_refused(text: str, message: str) -> None:
    with pytest.raises(ModelFormatError, match=message):
        Stide.from_json(text)


# -- real captures ---------------------------------------------------------------------------


def real_trace() -> list[SyscallEvent]:
    return list(read_events(io.BytesIO(sysdig_json("run_as_user_0_container.scap", "-pc")), "t"))


def test_a_training_trace_scores_zero_on_itself() -> None:
    events = real_trace()
    model = Stide()
    model.learn(events)
    scores = model.score(events)
    assert len(scores) > 1000
    assert all(s.score == 0.0 for s in scores)


def test_a_process_only_seen_later_is_anomalous() -> None:
    """Train on the first second of the capture; `ls`, run later in the nginx container, is
    new, while the host daemons seen in training stay mostly quiet."""
    events = real_trace()
    start = next(e.time_ns for e in events if e.time_ns is not None)
    assert start is not None
    cut = next(i for i, e in enumerate(events) if (e.time_ns or 0) > start + 1_000_000_000)
    model = Stide()
    model.learn(events[:cut])
    assert "697956520d89/ls" not in model.keys
    scores = model.score(events[cut:])
    by_key: dict[str, list[StideScore]] = {}
    for s in scores:
        by_key.setdefault(model.key_of(events[cut + s.index]), []).append(s)
    ls = by_key["697956520d89/ls"]
    assert max(s.score for s in ls) == 1.0
    assert "697956520d89/ls never learned" in ls[-1].reason
    sshd = by_key["host/sshd"]
    assert sum(s.score for s in sshd) / len(sshd) < 0.2
