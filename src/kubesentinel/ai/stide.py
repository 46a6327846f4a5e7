"""STIDE: a per-process database of short system call sequences, scored with a locality frame.

After Forrest, Hofmeyr, Somayaji and Longstaff, "A Sense of Self for Unix Processes" (1996),
and Hofmeyr, Forrest and Somayaji, "Intrusion Detection using Sequences of System Calls"
(1998); Warrender, Forrest and Pearlmutter (1999) for the locality frame count.

- A **key** names a process kind: by default ``container.id/proc.name`` (just ``proc.name``
  when the trace carries no container id), so the same program in two containers learns two
  profiles; ``key_of`` replaces it (the analyzer maps containers to workloads).
- Only system call entries count: exit events (``evt.dir '<'``) repeat their entry, and
  sysdig's own events (``switch``, ``procinfo``, ``container``...) are scheduling or
  metadata. An event with no direction (a ``-p`` selection without ``%evt.dir``) counts.
- Sequences are cut per thread (``thread.tid``): threads of one process interleave at random.
  Each call that ends a full window of ``k`` calls (6 by default) gives one sequence;
  learning stores the distinct sequences per key, at most ``max_sequences`` (beyond that,
  new ones are counted as dropped and the profile says so in every explanation).
- Scoring: a window not in its key's database (or of a key never learned) is a mismatch.
  Each scored call gets the locality frame count (LFC), the mismatches among the last
  ``frame`` windows of its thread (20 by default), as the score ``LFC / frame`` in [0, 1]: an
  isolated rare window scores 0.05, a burst of new behaviour climbs to 1. The first ``k - 1``
  calls of a thread have no window and score its LFC so far (0).

Models save as JSON with a format name, a schema version and a sha256 digest of the content,
checked on load: edits and corruption are refused, nothing in the file is ever executed. The
digest detects change, not authorship (anyone can recompute it); signing is the vault's job.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import orjson

from kubesentinel.models.syscall_event import EXIT, SyscallEvent

__all__ = [
    "DEFAULT_FRAME",
    "DEFAULT_K",
    "FORMAT",
    "META_EVENTS",
    "VERSION",
    "ModelFormatError",
    "Stide",
    "StideScore",
    "default_key",
]

DEFAULT_K: Final = 6
DEFAULT_FRAME: Final = 20
DEFAULT_MAX_SEQUENCES: Final = 20_000  # a busy daemon shows a few thousand distinct 6-grams
DEFAULT_MAX_KEYS: Final = 10_000
MAX_SYSCALL_NAMES: Final = 4_096  # Linux has ~450 system calls; the rest is garbage input
MAX_MODEL_BYTES: Final = 512 << 20
FORMAT: Final = "kubesentinel-stide"
VERSION: Final = 1
_OTHER: Final = "<other>"  # every call name past MAX_SYSCALL_NAMES shares this one code

# sysdig's own events, not system calls: scheduler switches, metadata, drops, plugins.
META_EVENTS: Final = frozenset(
    {"switch", "procinfo", "container", "notification", "infra", "drop", "sysdigevent",
     "cpu_hotplug", "page_fault", "tracer", "k8s", "mesos", "pluginevent", "asyncevent"}
)  # fmt: skip


class ModelFormatError(ValueError):
    """A saved model cannot be loaded: not a STIDE model, another version, changed or invalid."""


class StideScore(NamedTuple):
    # Shadows tuple.index on purpose: callers unpack (index, score, reason), the agreed shape.
    index: int  # type: ignore[assignment]  # position of the event in the scored input
    score: float  # LFC / frame, in [0, 1]
    reason: str


def default_key(event: SyscallEvent) -> str:
    """``container.id/proc.name``; ``proc.name`` alone when the trace has no container ids."""
    name = event.proc_name or "?"
    return f"{event.container_id}/{name}" if event.container_id else name


def _counts(event: SyscallEvent) -> bool:
    return event.direction != EXIT and event.evt_type not in META_EVENTS


@dataclass(slots=True)
class _Profile:
    windows: int = 0  # windows seen while learning, repeats included
    dropped: int = 0  # distinct windows not stored once the profile was full
    sequences: set[tuple[int, ...]] = field(default_factory=set)


@dataclass(slots=True)
class _Stream:
    """One thread while scoring: its last k calls and the hits of its last frame windows."""

    names: deque[str]
    misses: deque[bool]
    lfc: int = 0


class Stide:
    """Learn normal sequences per process key; score traces by locality frame count."""

    def __init__(
        self,
        k: int = DEFAULT_K,
        frame: int = DEFAULT_FRAME,
        *,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
        max_keys: int = DEFAULT_MAX_KEYS,
        key_of: Callable[[SyscallEvent], str] = default_key,
    ) -> None:
        if not 1 <= k <= 64 or not 1 <= frame <= 10_000:
            raise ValueError(f"need 1 <= k <= 64 and 1 <= frame <= 10000, not k={k} frame={frame}")
        if max_sequences < 1 or max_keys < 1:
            raise ValueError("max_sequences and max_keys must be at least 1")
        self.k = k
        self.frame = frame
        self.max_sequences = max_sequences
        self.max_keys = max_keys
        self.key_of = key_of
        self.dropped_events = 0  # calls not learned: their key came after max_keys others
        self._codes: dict[str, int] = {}
        self._names: list[str] = []
        self._profiles: dict[str, _Profile] = {}

    # -- learning ------------------------------------------------------------------------

    def learn(self, events: Iterable[SyscallEvent]) -> int:
        """Add one trace's sequences to the database; the number of windows it held."""
        k = self.k
        windows: dict[tuple[str, int | None], deque[int]] = {}
        learned = 0
        for event in events:
            if not _counts(event):
                continue
            key = self.key_of(event)
            profile = self._profile_for(key)
            if profile is None:
                continue
            window = windows.get((key, event.tid))
            if window is None:
                window = windows[(key, event.tid)] = deque(maxlen=k)
            window.append(self._code(event.evt_type))
            if len(window) < k:
                continue
            learned += 1
            profile.windows += 1
            sequence = tuple(window)
            if sequence not in profile.sequences:
                if len(profile.sequences) < self.max_sequences:
                    profile.sequences.add(sequence)
                else:
                    profile.dropped += 1
        return learned

    def _profile_for(self, key: str) -> _Profile | None:
        profile = self._profiles.get(key)
        if profile is None:
            if len(self._profiles) >= self.max_keys:
                self.dropped_events += 1
                return None
            profile = self._profiles[key] = _Profile()
        return profile

    def _code(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            if len(self._names) >= MAX_SYSCALL_NAMES - 1 and name != _OTHER:
                return self._code(_OTHER)
            code = self._codes[name] = len(self._names)
            self._names.append(name)
        return code

    # -- scoring ---------------------------------------------------------------------------

    def score(self, events: Iterable[SyscallEvent]) -> list[StideScore]:
        """One score per system call entry of ``events``, in input order; learns nothing."""
        k, frame = self.k, self.frame
        codes = self._codes
        other = codes.get(_OTHER, -1)
        full = len(self._names) >= MAX_SYSCALL_NAMES
        streams: dict[tuple[str, int | None], _Stream] = {}
        scores: list[StideScore] = []
        for index, event in enumerate(events):
            if not _counts(event):
                continue
            key = self.key_of(event)
            stream = streams.get((key, event.tid))
            if stream is None:
                stream = streams[(key, event.tid)] = _Stream(deque(maxlen=k), deque(maxlen=frame))
            stream.names.append(event.evt_type)
            profile = self._profiles.get(key)
            if len(stream.names) < k:
                scores.append(StideScore(index, 0.0, self._warming(key, profile)))
                continue
            # A name never learned is a sure mismatch (-1); past the cap it maps as learning did.
            sequence = tuple(codes.get(n, other if full else -1) for n in stream.names)
            miss = profile is None or sequence not in profile.sequences
            if len(stream.misses) == frame:
                stream.lfc -= stream.misses[0]
            stream.misses.append(miss)
            stream.lfc += miss
            reason = self._reason(key, profile, stream, miss)
            scores.append(StideScore(index, stream.lfc / frame, reason))
        return scores

    def _warming(self, key: str, profile: _Profile | None) -> str:
        known = "" if profile is not None else f"{key} never learned; "
        return f"{known}fewer than {self.k} calls of this thread yet"

    def _reason(self, key: str, profile: _Profile | None, stream: _Stream, miss: bool) -> str:
        lfc, seen = stream.lfc, len(stream.misses)
        if lfc == 0:
            return f"all of the last {seen} windows of {key} seen in training"
        tail = f"{lfc} of the last {seen} windows mismatched"
        if profile is None:
            return f"{key} never learned; {tail}"
        capped = (
            f" (profile full at {self.max_sequences:,} sequences, {profile.dropped:,} not kept)"
            if profile.dropped
            else ""
        )
        if miss:
            calls = ",".join(stream.names)
            return (
                f"sequence {calls} never seen for {key} in {profile.windows:,} learned windows; "
                f"{tail}{capped}"
            )
        return f"{tail} for {key}; this window was seen in training{capped}"

    # -- inspection ------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """The learned process keys, sorted."""
        return sorted(self._profiles)

    def sequences(self, key: str) -> set[tuple[str, ...]]:
        """The distinct learned sequences of ``key`` as call names (empty if never learned)."""
        profile = self._profiles.get(key)
        if profile is None:
            return set()
        names = self._names
        return {tuple(names[c] for c in seq) for seq in profile.sequences}

    def windows(self, key: str) -> int:
        """How many windows of ``key`` learning saw, repeats included."""
        profile = self._profiles.get(key)
        return 0 if profile is None else profile.windows

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> str:
        """The model as one JSON document with its sha256 digest (key order is canonical)."""
        body = self._body()
        return orjson.dumps({**body, "digest": _digest(body)}, option=orjson.OPT_SORT_KEYS).decode()

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "k": self.k,
            "frame": self.frame,
            "max_sequences": self.max_sequences,
            "max_keys": self.max_keys,
            "dropped_events": self.dropped_events,
            "syscalls": list(self._names),
            "profiles": {
                key: {
                    "windows": p.windows,
                    "dropped": p.dropped,
                    "sequences": [list(s) for s in sorted(p.sequences)],
                }
                for key, p in sorted(self._profiles.items())
            },
        }

    @classmethod
    def from_json(
        cls, data: str | bytes, *, key_of: Callable[[SyscallEvent], str] = default_key
    ) -> Stide:
        """A model saved by ``to_json``; ``ModelFormatError`` for anything else or any change.

        ``key_of`` is code, so it is not saved: pass the one the model was trained with.
        """
        if len(data) > MAX_MODEL_BYTES:
            raise ModelFormatError(f"model larger than {MAX_MODEL_BYTES >> 20} MiB")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ModelFormatError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelFormatError(f'not a {FORMAT} model (no "format": "{FORMAT}")')
        if doc.get("version") != VERSION:
            raise ModelFormatError(
                f"model version {doc.get('version')!r} is not supported (this reads {VERSION})"
            )
        digest = doc.pop("digest", None)
        if digest != _digest(doc):
            raise ModelFormatError("digest mismatch: the model was changed after it was saved")
        return cls._from_body(doc, key_of)

    @classmethod
    def _from_body(cls, doc: dict[str, Any], key_of: Callable[[SyscallEvent], str]) -> Stide:
        try:
            model = cls(
                _int(doc, "k"),
                _int(doc, "frame"),
                max_sequences=_int(doc, "max_sequences"),
                max_keys=_int(doc, "max_keys"),
                key_of=key_of,
            )
        except ValueError as exc:
            raise ModelFormatError(str(exc)) from None
        model.dropped_events = _int(doc, "dropped_events")
        names = doc.get("syscalls")
        if (
            not isinstance(names, list)
            or len(names) > MAX_SYSCALL_NAMES
            or not all(type(n) is str and n for n in names)
            or len(set(names)) != len(names)
        ):
            raise ModelFormatError("syscalls must be a list of distinct names")
        model._names = names
        model._codes = {name: code for code, name in enumerate(names)}
        profiles = doc.get("profiles")
        if not isinstance(profiles, dict) or len(profiles) > model.max_keys:
            raise ModelFormatError(f"profiles must be an object of at most {model.max_keys} keys")
        for key, raw in profiles.items():
            model._profiles[key] = _profile(key, raw, model.k, len(names), model.max_sequences)
        return model


def _digest(body: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int or value < 0:
        raise ModelFormatError(f"{name} must be a non-negative integer")
    return value


def _profile(key: str, raw: object, k: int, names: int, cap: int) -> _Profile:
    if not isinstance(raw, dict):
        raise ModelFormatError(f"profile {key!r} must be an object")
    sequences = raw.get("sequences")
    if not isinstance(sequences, list) or len(sequences) > cap:
        raise ModelFormatError(f"profile {key!r}: sequences must be a list of at most {cap}")
    stored: set[tuple[int, ...]] = set()
    for seq in sequences:
        if (
            not isinstance(seq, list)
            or len(seq) != k
            or not all(type(c) is int and 0 <= c < names for c in seq)
        ):
            raise ModelFormatError(f"profile {key!r}: each sequence must be {k} syscall codes")
        stored.add(tuple(seq))
    return _Profile(_int(raw, "windows"), _int(raw, "dropped"), stored)
