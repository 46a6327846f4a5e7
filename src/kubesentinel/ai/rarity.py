"""Per-workload rarity of behaviour combinations, backed off to image, namespace and cluster.

Each event yields a few items (``tables.COMBINATIONS``): its process, (process, parent),
(process, executable), (process, peer class, port), its user, ... Every item is counted at four
levels: the workload, its image repository, its namespace and the cluster. An item's
familiarity in a workload is

    f = max(conf_w, a_i * conf_i, a_n * conf_n, a_c * conf_c, a_c * g_c * P_UNSEEN)

where ``conf_L = min(1, n_L / KNOWN_AFTER)`` is how surely level L knows the item from its
count, ``g_L = (T + 1) / (N + T + 1)`` is Witten-Bell's estimate that level L's next item of
that kind is a new one (N items of T distinct values seen), and ``a_L = max(g_w, FLOOR_L)``
lets a young workload (g_w near 1) borrow fully from the levels above while a mature one
(g_w near 0) borrows at most ``FLOOR_L``: something the cluster does is less telling than
something nobody does, but new for a workload that has always done the same few things.
Kinds that are new all the time (a high T/N, such as file paths of a busy writer) stay
mild when new. The item's evidence is ``-log2(f)`` bits times its weight; an event's is its
largest item's plus a quarter of the others'.

Memory is bounded: at most ``MAX_ITEMS`` distinct items per workload, image and namespace,
``MAX_CLUSTER_ITEMS`` per cluster and ``MAX_LEVELS`` levels in all. A full level learns no new
item (``dropped`` counts them), so its unseen items keep scoring as unseen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from kubesentinel.ai.explain import duration, shown, times
from kubesentinel.ai.features import Featurizer
from kubesentinel.ai.tables import COMBINATIONS, EXACT_PEER_CLASSES, SENSITIVE_PEER_WEIGHTS
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event
from kubesentinel.models.feature_vector import FeatureVector

__all__ = ["Evidence", "Item", "RarityDetector", "items_of"]

KNOWN_AFTER: Final = 3  # an item seen this often in a level is fully known there
FLOORS: Final = {"i": 0.25, "n": 0.1, "c": 0.03}  # FLOOR_L: image, namespace, cluster
P_UNSEEN: Final = 1 / 16  # the share of a never-seen item among a kind's new values
OTHERS_SHARE: Final = 0.25  # weight of an event's other items after its largest
# Known items still rank by how often they were seen: weight * FREQUENT_SHARE * log2(1 + 3/n),
# n rounded down to a power of 2
# bits (0.1 at n = 3, 0.01 at 40, 0.0001 at 4,000): far below anything that alarms, it only
# orders the ordinary (a behaviour seen 40 times above one seen 40,000 times).
FREQUENT_SHARE: Final = 0.1
# A new in-cluster peer (service, pod, node) is routine change (services are created, pods
# move): weaker than a new outside peer. A scan of many shows as many distinct weak signals.
IN_CLUSTER_SHARE: Final = 0.6
MAX_ITEMS: Final = 10_000
MAX_CLUSTER_ITEMS: Final = 200_000
MAX_LEVELS: Final = 50_000
SEP: Final = "\x1f"  # joins an item's kind and values: never in Falco's text fields
_LN2: Final = math.log(2)
_PEER_KINDS: Final = frozenset({"peer", "class", "remote", "network"})


@dataclass(frozen=True, slots=True)
class Item:
    kind: str
    key: str  # kind + SEP + values joined by SEP: the count table's key
    weight: float
    values: tuple[str, ...]


def items_of(fv: FeatureVector) -> tuple[Item, ...]:
    """The behaviour combinations of one event (an empty field leaves its kinds out)."""
    out: list[Item] = []
    sensitive = SENSITIVE_PEER_WEIGHTS.get(fv.peer_class, 1.0)
    for kind, names, weight in COMBINATIONS:
        if kind in ("remote", "network") and fv.peer_class not in EXACT_PEER_CLASSES:
            continue  # a pod's or node's address is not a behaviour: its class is
        values = tuple(str(getattr(fv, name)) for name in names)
        if kind == "network":
            values = (network_of(values[0]), *values[1:])
        if any(v in ("", "0") for v in values):
            continue
        in_cluster = kind == "peer" and fv.peer_class not in EXACT_PEER_CLASSES
        weighs = weight * IN_CLUSTER_SHARE if in_cluster else weight
        if kind in _PEER_KINDS:
            weighs *= sensitive
        out.append(Item(kind, SEP.join((kind, *values)), weighs, values))
    return tuple(out)


def network_of(address: str) -> str:
    """The network an external address is in: its /16 (IPv4) or /32 (IPv6). A SaaS endpoint's
    addresses churn within its provider's blocks; a new network is more telling than a new
    address."""
    if ":" in address:
        return ":".join(address.split(":")[:2]) + "::/32"
    return ".".join(address.split(".")[:2]) + ".0.0/16"


@dataclass(slots=True)
class _Level:
    """One node of the back-off: a workload, an image, a namespace or a cluster."""

    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, list[int]] = field(default_factory=dict)  # kind -> [N, T]
    first_ns: int = 0
    last_ns: int = 0

    def novelty(self, kind: str) -> float:
        """Witten-Bell: the chance that this level's next item of ``kind`` is a new one."""
        total = self.totals.get(kind)
        if total is None:
            return 1.0
        n, t = total
        return (t + 1) / (n + t + 1)


@dataclass(frozen=True, slots=True)
class Evidence:
    bits: float
    items: tuple[tuple[float, Item, tuple[int, int, int]], ...]  # (bits, item, (n_w, n_c, span))
    workload_events: int  # events the workload was learned from (0: a new workload)


def level_keys(fv: FeatureVector) -> tuple[str, ...]:
    """Workload, image (when there is one), namespace, cluster: the back-off chain."""
    keys = ["w" + SEP + fv.workload]
    if fv.image:
        keys.append("i" + SEP + fv.image)
    keys.append("n" + SEP + fv.cluster + "/" + fv.namespace)
    keys.append("c" + SEP + fv.cluster)
    return tuple(keys)


class RarityDetector:
    """The rarity detector: ``learn``/``score``/``score_batch`` over events (the contract),
    ``evidence``/``learn_vector`` over feature vectors for the analyzer's hot path."""

    name = "rarity"

    def __init__(self, featurizer: Featurizer | None = None) -> None:
        self.featurizer = featurizer if featurizer is not None else Featurizer()
        self.levels: dict[str, _Level] = {}
        self.dropped = 0
        # Bumped whenever a familiarity can have changed materially (a new item, a count
        # reaching KNOWN_AFTER): cached evidence older than it is recomputed.
        self.version = 0
        # Bumped when a known item's count reaches a power of 2 (its frequency evidence moves):
        # cached evidence of events whose items are all known is recomputed only then.
        self.counts_version = 0

    # -- the contract -------------------------------------------------------------------
    def learn(self, events: Sequence[Event]) -> None:
        for event in events:
            self.learn_vector(self.featurizer(event), event.time_ns)

    def score(self, event: Event) -> Scored:
        ev = self.evidence(self.featurizer(event))
        return Scored(
            1.0 - 2.0 ** (-ev.bits / 4), self.reasons(ev, self.featurizer(event)), ev.bits
        )

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        return [self.score(event) for event in events]

    # -- the hot path -------------------------------------------------------------------
    def evidence(self, fv: FeatureVector, items: tuple[Item, ...] | None = None) -> Evidence:
        if items is None:
            items = items_of(fv)
        keys = level_keys(fv)
        levels = [self.levels.get(k) for k in keys]
        own = levels[0]
        uppers = list(zip(keys[1:], levels[1:], strict=True))
        cluster = levels[-1]
        span = (own.last_ns - own.first_ns) if own is not None else -1
        scored: list[tuple[float, Item, tuple[int, int, int]]] = []
        for item in items:
            n_w = own.counts.get(item.key, 0) if own is not None else 0
            fam = min(1.0, n_w / KNOWN_AFTER)
            if fam < 1.0:
                # What a level may lend shrinks with every level below it that knows its kind
                # well: a new workload borrows from a mature namespace's habits, not the cluster's.
                carry = own.novelty(item.kind) if own is not None else 1.0
                for key, level in uppers:
                    if level is None:
                        continue
                    lend = max(carry, FLOORS[key[0]])
                    n = level.counts.get(item.key, 0)
                    if n:
                        fam = max(fam, lend * min(1.0, n / KNOWN_AFTER))
                    if key[0] == "c":
                        fam = max(fam, lend * level.novelty(item.kind) * P_UNSEEN)
                    carry *= level.novelty(item.kind)
                if cluster is None:
                    fam = max(fam, P_UNSEEN)
            if fam < 1.0:
                bits = -math.log(fam) / _LN2 * item.weight
            else:
                # n rounded down to a power of 2: counts_version changes when it does
                # (learn_vector), so cached evidence is never stale
                seen = 1 << (max(n_w, 1).bit_length() - 1)
                bits = math.log1p(KNOWN_AFTER / seen) / _LN2 * item.weight * FREQUENT_SHARE
            n_c = cluster.counts.get(item.key, 0) if cluster is not None else 0
            scored.append((bits, item, (n_w, n_c, span)))
        scored.sort(key=lambda s: -s[0])
        total = 0.0
        if scored:
            total = scored[0][0] + OTHERS_SHARE * sum(s[0] for s in scored[1:])
        return Evidence(total, tuple(scored), own.events if own is not None else 0)

    def learn_vector(
        self, fv: FeatureVector, time_ns: int, times: int = 1, items: tuple[Item, ...] | None = None
    ) -> None:
        """Count the event's items ``times`` times at each level of its back-off chain."""
        if items is None:
            items = items_of(fv)
        for key in level_keys(fv):
            level = self.levels.get(key)
            if level is None:
                if len(self.levels) >= MAX_LEVELS:
                    self.dropped += len(items) * times
                    continue
                level = self.levels[key] = _Level(first_ns=time_ns, last_ns=time_ns)
                self.version += 1
            level.events += times
            level.first_ns = min(level.first_ns, time_ns)
            level.last_ns = max(level.last_ns, time_ns)
            cap = MAX_CLUSTER_ITEMS if key[0] == "c" else MAX_ITEMS
            counts, totals = level.counts, level.totals
            for item in items:
                n = counts.get(item.key, 0)
                if n == 0 and len(counts) >= cap:
                    self.dropped += times
                    continue
                counts[item.key] = n + times
                total = totals.get(item.kind)
                if total is None:
                    total = totals[item.kind] = [0, 0]
                total[0] += times
                if n == 0:
                    total[1] += 1
                if n < KNOWN_AFTER:
                    self.version += 1
                elif (n + times).bit_length() != n.bit_length():
                    self.counts_version += 1  # a known item's frequency evidence moved

    # -- explanations -------------------------------------------------------------------
    def reasons(self, ev: Evidence, fv: FeatureVector, limit: int = 3) -> tuple[str, ...]:
        """The items that carry at least one bit, most telling first, in words."""
        out = []
        for bits, item, (n_w, n_c, span) in ev.items[:limit]:
            if bits < 1.0:
                break
            out.append(f"{_what(item)} {_seen(fv.workload, n_w, n_c, span, ev.workload_events)}")
        return tuple(out)

    # -- state --------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "dropped": self.dropped,
            "levels": {
                key: {
                    "events": lv.events,
                    "first_ns": lv.first_ns,
                    "last_ns": lv.last_ns,
                    "totals": lv.totals,
                    "counts": lv.counts,
                }
                for key, lv in self.levels.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], featurizer: Featurizer) -> RarityDetector:
        detector = cls(featurizer)
        detector.dropped = int(state["dropped"])
        # One string per item key, shared by the levels that count it (as when learned):
        # a parsed file has a copy per level.
        shared: dict[str, str] = {}
        one = shared.setdefault
        for key, lv in state["levels"].items():
            detector.levels[key] = _Level(
                counts={one(str(k), str(k)): int(v) for k, v in lv["counts"].items()},
                totals={
                    one(str(k), str(k)): [int(v[0]), int(v[1])] for k, v in lv["totals"].items()
                },
                events=int(lv["events"]),
                first_ns=int(lv["first_ns"]),
                last_ns=int(lv["last_ns"]),
            )
        return detector


# How each kind of item reads, its values in order (an unknown kind: its name and values).
_PHRASES: Final = {
    "process": "process {0}",
    "parent": "parent {1} of {0}",
    "ancestry": "ancestry {2} > {1} > {0}",
    "exe": "executable {1} of {0}",
    "file": "file {1} opened by {0}",
    "peer": "{0} connecting to a {1} peer on port {2}",
    "remote": "peer {0}:{1}",
    "network": "peer network {0} port {1}",
    "class": "peer class {0}",
    "user": "user {0}",
    "process-user": "{0} run as {1}",
    "action": "{0} doing {1}",
    "rule": "Falco rule {0!r}",
}


def _what(item: Item) -> str:
    v = [shown(x) for x in item.values]
    phrase = _PHRASES.get(item.kind)
    return phrase.format(*v) if phrase else f"{item.kind} {' '.join(v)}"


def _seen(workload: str, n_w: int, n_c: int, span: int, events: int) -> str:
    where = shown(workload.split("/", 1)[-1])  # namespace/Kind/name: the cluster is implied
    if events == 0:
        text = f"in {where}, a workload never seen before"
    else:
        over = f" over {duration(span)}" if span >= 60_000_000_000 else ""
        seen = "never seen" if n_w == 0 else f"seen only {times(n_w)}"
        text = f"{seen} in {events} event{'' if events == 1 else 's'} of {where}{over}"
    elsewhere = n_c - n_w
    if n_c == 0:
        return text + ", nor anywhere in the cluster"
    if elsewhere > 0:
        return text + f" (elsewhere in the cluster {times(elsewhere)})"
    return text
