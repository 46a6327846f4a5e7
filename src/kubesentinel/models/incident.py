"""One workload's bounded episode of alerts, with a risk score and its reasons."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Final, overload

from kubesentinel.models.event import Workload
from kubesentinel.models.falco_alert import Priority
from kubesentinel.models.severity import Severity

# Why an event of an incident is context, not one of its signals.
TELEMETRY: Final = "telemetry"  # its rule is tagged "telemetry"
LOW_PRIORITY: Final = "low_priority"  # Informational or Debug
REPEAT: Final = "repeat"  # the same rule, process and command line as an alert already in it
CONTEXT_REASONS: Final = (TELEMETRY, LOW_PRIORITY, REPEAT)


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    count: int  # its signals and their repeats: repeats are counted, not listed
    priority: Priority  # the highest Falco priority it fired with


@dataclass(frozen=True, slots=True)
class RiskReason:
    points: float
    reason: str  # "3 MITRE tactics in sequence: execution -> credential_access -> exfiltration"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An event of the incident that the behavioural analyzer scored at or above
    ``ai.threshold``: its id, its score and the analyzer's top reason."""

    event_id: str
    score: float  # calibrated, in [0, 1]
    reason: str  # "process xmrig never seen in shop/Deployment/api, nor anywhere in the cluster"


@dataclass(frozen=True, slots=True)
class ContextCounts:
    """How many of an incident's events are context, per reason (see ``CONTEXT_REASONS``)."""

    telemetry: int = 0
    low_priority: int = 0
    repeat: int = 0

    @property
    def total(self) -> int:
        return self.telemetry + self.low_priority + self.repeat


class EventIds(Sequence[str]):
    """An incident's signal ids, oldest first: an immutable sequence over shared blocks.

    A growing incident's next state reuses the blocks of the previous one, so building it costs
    the new ids, not all of them. Equal to any tuple or list of the same ids.
    """

    __slots__ = ("_blocks", "_len")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        block = tuple(ids)
        self._blocks: tuple[tuple[str, ...], ...] = (block,) if block else ()
        self._len = len(block)

    @classmethod
    def of_blocks(cls, blocks: tuple[tuple[str, ...], ...], length: int) -> EventIds:
        """Over ``blocks`` (not copied), which hold ``length`` ids in all."""
        ids = cls()
        ids._blocks, ids._len = blocks, length
        return ids

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._blocks)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("event id index out of range")
        for block in self._blocks:
            if index < len(block):
                return block[index]
            index -= len(block)
        raise IndexError("event id index out of range")  # pragma: no cover (lengths agree)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventIds | tuple | list):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"EventIds({tuple(self)!r})"


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    workload: Workload
    first_ns: int  # its first signal
    last_ns: int  # its last signal: it closes a gap after this, and spans the max duration at most
    severity: Severity
    risk_score: float  # 0..100
    reasons: tuple[RiskReason, ...]
    rules: tuple[RuleCount, ...]  # in the order first seen
    tactics: tuple[str, ...]  # in the order they were first seen
    techniques: tuple[str, ...]
    event_count: int  # its signals (qualifying events); context events are in ``context``
    event_ids: Sequence[str]  # every signal's id, in arrival order (an EventIds)
    posture: tuple[str, ...]  # static rule ids failing on this workload ("KS-0001", ...)
    status: str = "open"  # open until a gap without signals closes it, then "closed"
    previous_id: str | None = None  # the incident this one continues (it hit the max duration)
    context: ContextCounts = ContextCounts()
    context_ids: tuple[str, ...] = ()  # the first context events' ids (a sample)
    # Its events the analyzer found anomalous: the first ANOMALY_SAMPLE (runtime/correlate.py),
    # in arrival order, and how many there were in all.
    anomalies: tuple[Anomaly, ...] = ()
    anomaly_count: int = 0
    # What this state added since the incident's previous one: signal ids, and (id, reason) of
    # context events. The store files each event of a write under its incident from these.
    added_ids: tuple[str, ...] = field(default=(), compare=False, repr=False)
    added_context: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
