"""The behavioural analyzer: rarity and rate detectors, weak signals combined, one calibrated
score with its reasons, and learning that goes on through benign change but never learns an
attack.

    raw   = rarity bits + RATE_SHARE * rate bits + weak-signal bits
    score = calibration(raw)                       (ai/calibrate.py: what a threshold means)

Learning. ``fit`` learns a training window (trusted as normal): the first ``warmup`` share of
it only learns; the rest is scored before it is learned, and those scores calibrate the model.
``score_batch`` then keeps learning from the stream (``learning=True``): an event is learned
only when its score is below the threshold and its workload is not held (``hold``: inside an
incident). That is the poisoning guard: nothing anomalous, nothing inside an incident is ever
learned. A behaviour new to a workload is learned at once, so a rollout's new peers stop
looking new after ``rarity.KNOWN_AFTER`` (3) events below the threshold; behaviour already
known is counted a batch at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubesentinel.ai.calibrate import Calibration
from kubesentinel.ai.features import Featurizer, PeerClasses, signature
from kubesentinel.ai.rarity import (
    KNOWN_AFTER,
    SEP,
    Item,
    RarityDetector,
    items_of,
    network_of,
)
from kubesentinel.ai.rate import RateDetector
from kubesentinel.ai.tables import EXACT_PEER_CLASSES
from kubesentinel.ai.window import FLOOR_BITS, WeakSignals
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event
from kubesentinel.models.feature_vector import FeatureVector

__all__ = ["Analyzer", "Deferred", "TrainReport"]

RATE_SHARE: Final = 0.5
DEFAULT_THRESHOLD: Final = 0.75
DEFAULT_WARMUP: Final = 1 / 3
MAX_HOLDS: Final = 64  # held spans kept per workload
ROLLOUT_NS: Final = 1_800_000_000_000  # a workload's new image tag is a rollout for 30 min
STARTUP_NS: Final = 300_000_000_000  # a workload's new pod is starting up for 5 min
MAX_PODS: Final = 64  # pods remembered per workload
MAX_VERSIONS: Final = 16  # image tags remembered per workload
_LATEST: Final = 2**63  # beyond every end: bisects past spans starting at a time
MAX_LEVELS_TRACKED: Final = 50_000  # workloads whose versions are remembered
_ROLLOUT_REASON: Final = (
    "during a rollout or a new pod's start-up: judged by the cluster's calibration"
)
_PENDING_FLUSH: Final = 4096  # known behaviour is counted at least this often (events)


@dataclass(slots=True)
class _Entry:
    """Cached evidence of one event signature, valid while the rarity version stands."""

    version: int
    counts_version: int  # the rarity's counts_version it was built at (frequency evidence)
    fv: FeatureVector
    items: tuple[Item, ...]
    bits: float
    reasons: tuple[str, ...]
    known: bool  # every item known in the workload: learning it changes no score
    behaviour: str  # what it does (see _entry): weak signals count distinct behaviours
    # The event's Scored when neither its rate nor weak signals add anything (most events):
    # built once per entry and calibration, shared (it is immutable).
    scored: Scored | None = None
    scored_by: Calibration | None = None
    rolled: Scored | None = None  # the same in a rollout or start-up (the cluster's curve)
    # Its signature's record in Analyzer._pending, valid while the pending generation stands:
    # counting known behaviour needs no dict look-up on the signature.
    slot: list[Any] | None = None
    slot_gen: int = -1


# Events a deferred score_batch let through, to learn once holds are placed:
# (signature, entry, time_ns, workload key, rate key: the workload's pod) each.
Deferred = list[tuple[tuple[Any, ...], _Entry, int, str, str]]


@dataclass(frozen=True, slots=True)
class TrainReport:
    events: int  # learned in all
    warmup_events: int  # learned without being scored
    calibration_events: int  # scored, then learned: the calibration sample
    workloads: int
    start_ns: int
    end_ns: int


class Analyzer:
    name = "analyzer"

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        peers: PeerClasses | None = None,
        rarity: RarityDetector | None = None,
        rate: RateDetector | None = None,
        signals: WeakSignals | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self.threshold = threshold
        self.featurizer = Featurizer(peers)
        self.rarity = rarity if rarity is not None else RarityDetector(self.featurizer)
        self.rarity.featurizer = self.featurizer
        self.rate = rate if rate is not None else RateDetector()
        self.signals = signals if signals is not None else WeakSignals()
        self.calibration = calibration if calibration is not None else Calibration.fit(())
        self.learning = True
        self._cache: dict[tuple[Any, ...], _Entry] = {}
        self._holds: dict[str, list[tuple[int, int]]] = {}
        # workload -> image tag -> when first seen: a tag newer than the workload's first is
        # a rollout, whose new behaviour is judged by the cluster's calibration (see _version)
        self.versions: dict[str, dict[str, int]] = {}
        self.pods: dict[str, dict[str, int]] = {}  # workload -> pod -> first seen (see _starting)
        self._pending: dict[tuple[Any, ...], list[Any]] = {}  # key -> [entry, times, last_ns]
        self._pending_events = 0
        self._pending_gen = 0  # bumped when _pending is emptied (see _Entry.slot)
        # What a deferred score_batch would learn, once the caller has placed its holds.
        self._deferred: Deferred | None = None
        self.learned_events = 0  # deferred events learned, and those a hold kept out
        self.held_events = 0

    # -- the contract -------------------------------------------------------------------
    def learn(self, events: Sequence[Event]) -> None:
        """Learn events as normal, unconditionally (a trusted window)."""
        self._run(events, mode="learn")

    def score(self, event: Event) -> Scored:
        return self.score_batch([event])[0]

    def score_batch(self, events: Sequence[Event], *, defer: bool = False) -> list[Scored]:
        """One Scored per event, in order; with ``learning`` on, the stream is learned
        behind the poisoning guard.

        ``defer``: learn nothing yet; ``learn_deferred`` learns what the guard lets through,
        judging holds then. The monitor scores a batch, correlates it, holds the incidents it
        touched, and only then learns, so a batch's ordinary events inside an incident that
        the same batch opened are not learned.
        """
        if self._deferred:
            self.learn_deferred()  # a caller that never asked for them: learn them now
        if defer and self.learning:
            self._deferred = []
            try:
                return self._run(events, mode="guarded")
            except BaseException:
                self._deferred = None
                raise
        return self._run(events, mode="guarded" if self.learning else "score")

    def take_deferred(self) -> Deferred:
        """What the last deferred ``score_batch`` would learn, handed to the caller (who
        passes it to ``learn_deferred`` later, or drops it: then it is never learned)."""
        deferred, self._deferred = self._deferred, None
        return deferred or []

    def learn_deferred(self, deferred: Deferred | None = None) -> None:
        """Learn the events a deferred ``score_batch`` let through (the last one's, or
        ``deferred`` from ``take_deferred``) that are not held now. A held one taints its
        workload's rate minute if that minute is still open. ``learned_events`` counts the
        events learned here; ``held_events`` those a hold kept out, here or when scored."""
        if deferred is None:
            deferred, self._deferred = self._deferred, None
        if not deferred:
            return
        held = 0
        holds = self._holds
        taint = self.rate.taint
        learn = self._learn
        bisect_right = bisect.bisect_right
        for key, entry, time_ns, workload, counted in deferred:
            spans = holds.get(workload) if holds else None
            if spans:  # held: one of the workload's sorted, disjoint spans holds time_ns
                n = bisect_right(spans, (time_ns, _LATEST)) - 1
                if n >= 0 and spans[n][1] >= time_ns:
                    taint(counted)
                    held += 1
                    continue
            learn(key, entry, time_ns)
        self._flush()
        self.held_events += held
        self.learned_events += len(deferred) - held

    def hold(self, workload: str, start_ns: int, end_ns: int) -> None:
        """Learn nothing from ``workload`` between the two times (an incident's span).

        A workload's spans are kept sorted and disjoint, so checking an event is one bisection:
        a span overlapping held ones merges with them (the monitor holds a growing incident
        again with every batch, and its spans must not pile up). A workload keeps its
        ``MAX_HOLDS`` latest spans (older ones are long past: no event of theirs is coming).
        """
        spans = self._holds.setdefault(workload, [])
        lo = bisect.bisect_left(spans, (start_ns,))
        if lo and spans[lo - 1][1] >= start_ns:
            lo -= 1  # the span before reaches into this one
        hi = lo
        while hi < len(spans) and spans[hi][0] <= end_ns:
            hi += 1
        if hi > lo:
            start_ns = min(start_ns, spans[lo][0])
            end_ns = max(end_ns, spans[hi - 1][1])
        spans[lo:hi] = [(start_ns, end_ns)]
        if len(spans) > MAX_HOLDS:
            del spans[: len(spans) - MAX_HOLDS]

    # -- training -----------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        events: Iterable[Event],
        *,
        warmup: float = DEFAULT_WARMUP,
        threshold: float = DEFAULT_THRESHOLD,
        peers: PeerClasses | None = None,
    ) -> tuple[Analyzer, TrainReport]:
        """Train on a window of normal events (sorted by time here) and calibrate."""
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup must be within [0, 1), got {warmup}")
        ordered = sorted(events, key=lambda e: e.time_ns)
        analyzer = cls(threshold=threshold, peers=peers)
        if not ordered:
            return analyzer, TrainReport(0, 0, 0, 0, 0, 0)
        start, end = ordered[0].time_ns, ordered[-1].time_ns
        cut = start + int((end - start) * warmup)
        split = next((i for i, e in enumerate(ordered) if e.time_ns > cut), len(ordered))
        if warmup == 0:
            split = 0
        analyzer.learn(ordered[:split])
        scored = analyzer._run(ordered[split:], mode="calibrate")
        analyzer.calibration = Calibration.fit(
            [s.bits for s in scored], [e.workload.key for e in ordered[split:]]
        )
        workloads = len({e.workload.key for e in ordered})
        report = TrainReport(len(ordered), split, len(ordered) - split, workloads, start, end)
        return analyzer, report

    # -- the loop -----------------------------------------------------------------------
    def _run(  # noqa: PLR0912, PLR0915 - the hot path is one loop: a helper costs a call an event
        self, events: Sequence[Event], mode: str
    ) -> list[Scored]:
        """mode: "learn" (no scores), "calibrate" (score then learn all), "guarded" (score,
        learn what the guard lets through), "score" (score only)."""
        rarity, rate, signals = self.rarity, self.rate, self.signals
        vector = self.featurizer.vector
        cache = self._cache
        calibration = self.calibration
        calibrate = calibration.score
        threshold = self.threshold
        holds = self._holds
        deferred = self._deferred
        observe, taint, prior = rate.observe, rate.taint, signals.prior
        version, starting = self._version, self._starting
        bisect_right = bisect.bisect_right
        scoring = mode != "learn"
        calibrating = mode == "calibrate"
        guarded = mode == "guarded"
        held = 0  # events inside a hold, kept from learning
        out: list[Scored] = []
        append = out.append
        for event in events:
            # One signature and one look-up: the featurizer is asked only for an entry to
            # (re)build (its cache holds the same signatures as this one).
            key = signature(event)
            try:
                entry = cache.get(key)
            except TypeError:  # a list or object where Falco writes text: no caching
                entry = None
            # A known entry (every item familiar in its workload) stays valid as new items
            # appear (on a big cluster something is always new somewhere); it is rebuilt when a
            # known count reaches a power of 2 (counts_version: its frequency evidence moved).
            # The others are rebuilt whenever the rarity version moves.
            if (
                entry is None
                or entry.counts_version != rarity.counts_version
                or (entry.version != rarity.version and not entry.known)
            ):
                entry = self._entry(key, vector(key, event))
            workload = key[0]  # the event's workload key (FeatureVector.workload)
            t = event.time_ns
            # Rates are per pod (a scale-up adds pods, not load per pod); a new pod borrows the
            # cluster's rates until it has its own.
            pod = event.pod
            counted = workload + SEP + pod if pod else workload
            rate_bits, rate_reason = observe(counted, t)
            tag = event.fields.get("container.image.tag")
            rolling = version(workload, tag, t) if type(tag) is str and tag else False
            if pod and not rolling:
                rolling = starting(workload, pod, t)
            if not scoring:
                self._learn(key, entry, t)
                continue
            bits = entry.bits
            # Weak signals raise only events with some evidence of their own: after an
            # attack, the workload's ordinary events stay ordinary.
            if bits >= FLOOR_BITS:
                weak_bits, weak_reason = prior(workload, t, entry.behaviour)
                raw = bits + RATE_SHARE * rate_bits + weak_bits
                signals.add(workload, t, bits, entry.behaviour)
            else:  # no weak bits (adding 0.0 changes no sum here: bits >= 0, never -0.0)
                weak_reason = ""
                raw = bits + RATE_SHARE * rate_bits
            if calibrating:
                self._learn(key, entry, t)
                scored = Scored(0.0, _reasons(entry.reasons, rate_reason, weak_reason), raw)
            elif rolling:
                if raw == bits and not rate_reason and not weak_reason:
                    own = entry.rolled  # shared, as entry.scored is
                    if own is None or entry.scored_by is not calibration:
                        own = self._rolled(entry)
                    scored = own
                else:
                    reasons = _reasons(entry.reasons, rate_reason, weak_reason)
                    scored = Scored(calibrate(raw), (*reasons, _ROLLOUT_REASON), raw)
            elif raw == bits and not rate_reason and not weak_reason:
                # Nothing added (raw is bits, bit for bit: bits >= 0): the entry's own Scored.
                own = entry.scored
                scored = (
                    own if own is not None and entry.scored_by is calibration else self._own(entry)
                )
            else:
                reasons = _reasons(entry.reasons, rate_reason, weak_reason)
                scored = Scored(calibrate(raw, workload), reasons, raw)
            if guarded:
                if scored.score >= threshold:
                    taint(counted)
                    append(scored)
                    continue
                spans = holds.get(workload) if holds else None
                if spans:  # held (as in learn_deferred)
                    n = bisect_right(spans, (t, _LATEST)) - 1
                    if n >= 0 and spans[n][1] >= t:
                        taint(counted)
                        held += 1
                        append(scored)
                        continue
                if deferred is not None:
                    deferred.append((key, entry, t, workload, counted))
                else:
                    self._learn(key, entry, t)
            append(scored)
        self._flush()
        self.held_events += held
        return out

    def _version(self, workload: str, tag: str, time_ns: int) -> bool:
        """Whether ``tag`` is a version of ``workload`` rolled out in the last ROLLOUT_NS (a tag
        first seen after the workload's first). A rollout's new binaries and peers are the
        operator's change, not the workload's: they are judged as the cluster judges new
        behaviour, without the workload's own, stricter calibration; the poisoning guard and
        the threshold apply as ever."""
        versions = self.versions.get(workload)
        if versions is None:
            if len(self.versions) >= MAX_LEVELS_TRACKED:
                self.versions.clear()
            self.versions[workload] = {tag: time_ns, "": time_ns}  # "": the first tag's time
            return False
        first = versions.get(tag)
        if first is None:
            if len(versions) > MAX_VERSIONS:
                oldest = min((t for t in versions if t), key=versions.__getitem__)
                del versions[oldest]
            first = versions[tag] = time_ns
            versions[""] = min(versions[""], time_ns)
        return 0 <= time_ns - first < ROLLOUT_NS and first > versions[""]

    def _starting(self, workload: str, pod: str, time_ns: int) -> bool:
        """Whether ``pod`` is a new pod of a known workload in its first STARTUP_NS (a scale-up,
        a replacement): its start-up runs the entrypoint chain that pods older than the
        training window never showed. Judged as a rollout is."""
        pods = self.pods.get(workload)
        if pods is None:
            if len(self.pods) >= MAX_LEVELS_TRACKED:
                self.pods.clear()
            self.pods[workload] = {pod: time_ns, "": time_ns}  # "": the first pod's time
            return False
        first = pods.get(pod)
        if first is None:
            if len(pods) > MAX_PODS:
                del pods[min((p for p in pods if p), key=pods.__getitem__)]
            first = pods[pod] = time_ns
            pods[""] = min(pods[""], time_ns)
        return 0 <= time_ns - first < STARTUP_NS and first > pods[""]

    def _entry(self, key: tuple[Any, ...], fv: FeatureVector) -> _Entry:
        rarity = self.rarity
        items = items_of(fv)
        evidence = rarity.evidence(fv, items)
        known = all(n_w >= KNOWN_AFTER for _, _, (n_w, _, _) in evidence.items)
        # What the event does, stable as counts change: weak signals count distinct ones. An
        # external peer counts by its network: a SaaS's churning addresses are one behaviour.
        peer = network_of(fv.peer) if fv.peer_class in EXACT_PEER_CLASSES else ""
        top = SEP.join((fv.rule, fv.process, fv.parent, fv.exe, fv.file, fv.peer_class,
                        str(fv.port), peer, fv.user, fv.action))  # fmt: skip
        entry = _Entry(
            rarity.version,
            rarity.counts_version,
            fv,
            items,
            evidence.bits,
            rarity.reasons(evidence, fv),
            known,
            top,
        )
        try:
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[key] = entry
        except TypeError:  # an unhashable field value: no caching
            pass
        return entry

    def _rolled(self, entry: _Entry) -> Scored:
        """The Scored of ``entry``'s events in a rollout or start-up when rate and weak signals
        add nothing: the cluster's calibration."""
        if entry.scored_by is not self.calibration:
            entry.scored = None  # both are rebuilt for this calibration
        entry.rolled = Scored(
            self.calibration.score(entry.bits), (*entry.reasons, _ROLLOUT_REASON), entry.bits
        )
        entry.scored_by = self.calibration
        return entry.rolled

    def _own(self, entry: _Entry) -> Scored:
        """The Scored of ``entry``'s events when rate and weak signals add nothing."""
        if entry.scored_by is not self.calibration:
            entry.rolled = None  # both are rebuilt for this calibration
        score = self.calibration.score(entry.bits, entry.fv.workload)
        entry.scored = Scored(score, entry.reasons, entry.bits)
        entry.scored_by = self.calibration
        return entry.scored

    def _learn(self, key: tuple[Any, ...], entry: _Entry, time_ns: int) -> None:
        if not entry.known:
            self.rarity.learn_vector(entry.fv, time_ns, items=entry.items)
            return
        pending = entry.slot
        if pending is not None and entry.slot_gen == self._pending_gen:
            pending[1] += 1
            pending[2] = time_ns
        else:
            try:
                pending = self._pending.get(key)
            except TypeError:
                self.rarity.learn_vector(entry.fv, time_ns, items=entry.items)
                return
            if pending is None:
                pending = self._pending[key] = [entry, 1, time_ns]
            else:
                pending[1] += 1
                pending[2] = time_ns
            entry.slot = pending
            entry.slot_gen = self._pending_gen
        self._pending_events += 1
        if self._pending_events >= _PENDING_FLUSH:
            self._flush()

    def _flush(self) -> None:
        learn = self.rarity.learn_vector
        for entry, times, last_ns in self._pending.values():
            learn(entry.fv, last_ns, times=times, items=entry.items)
        self._pending.clear()
        self._pending_events = 0
        self._pending_gen += 1

    # -- state --------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        self.learn_deferred()
        self._flush()
        peers = self.featurizer.peers
        return {
            "threshold_at_training": self.threshold,
            "peers": {
                "service_cidrs": list(peers.service_cidrs),
                "pod_cidrs": list(peers.pod_cidrs),
            },
            "rarity": self.rarity.to_state(),
            "rate": self.rate.to_state(),
            "signals": self.signals.to_state(),
            "calibration": self.calibration.to_state(),
            "versions": self.versions,
            "pods": self.pods,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], *, threshold: float | None = None) -> Analyzer:
        peers = PeerClasses(state["peers"]["service_cidrs"], state["peers"]["pod_cidrs"])
        featurizer = Featurizer(peers)
        analyzer = cls(
            threshold=float(state["threshold_at_training"]) if threshold is None else threshold,
            peers=peers,
            rarity=RarityDetector.from_state(state["rarity"], featurizer),
            rate=RateDetector.from_state(state["rate"]),
            signals=WeakSignals.from_state(state["signals"]),
            calibration=Calibration.from_state(state["calibration"]),
        )
        analyzer.versions = {
            str(w): {str(tag): int(ns) for tag, ns in tags.items()}
            for w, tags in state.get("versions", {}).items()
        }
        analyzer.pods = {
            str(w): {str(pod): int(ns) for pod, ns in pods.items()}
            for w, pods in state.get("pods", {}).items()
        }
        return analyzer


def _reasons(reasons: tuple[str, ...], rate_reason: str, weak_reason: str) -> tuple[str, ...]:
    if rate_reason or weak_reason:
        return (*reasons, *(r for r in (rate_reason, weak_reason) if r))
    return reasons
