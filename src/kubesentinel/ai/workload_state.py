"""One workload's own part of an analyzer's state, exported and imported on its own.

For scale-out (docs/scale-out.md): when a partition moves, what the analyzer learned about
each of its workloads moves with it: the workload's rarity level (``w<SEP><workload key>``
in ``RarityDetector.levels``), the rate statistics and open minute of each of its pods
(``RateDetector``, keyed ``<workload><SEP><pod>``, and the workload's own key for events
without a pod), its recent weak signals (``WeakSignals``), and when each image tag and pod was
first seen (``Analyzer.versions``, ``Analyzer.pods``: rollouts and start-ups). Shared levels
(image, namespace, cluster) are not a workload's own and stay with each analyzer.

Read from the analyzer's public state only; the analyzer's internals are not changed. What a
batch deferred is learned first (``learn_deferred``); counts of behaviour a workload already
knew, which the analyzer folds in every few thousand events, may not be in the export yet:
by construction they change no score.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kubesentinel.ai.rarity import SEP, RarityDetector

if TYPE_CHECKING:
    from kubesentinel.ai.analyzer import Analyzer

__all__ = ["export_workload", "forget_workload", "import_workload", "known_workloads"]

_PREFIX = "w" + SEP


def known_workloads(analyzer: Analyzer) -> set[str]:
    """Keys of every workload the analyzer holds state of."""
    keys = {k[len(_PREFIX) :] for k in analyzer.rarity.levels if k.startswith(_PREFIX)}
    for table in (analyzer.rate.stats, analyzer.rate.live):
        keys.update(key.split(SEP, 1)[0] for key in table)
    keys.update(analyzer.signals.recent, analyzer.versions, analyzer.pods)
    return keys


def export_workload(analyzer: Analyzer, workload: str) -> dict[str, Any]:
    """The workload's own state, as JSON-ready data (empty parts are None)."""
    analyzer.learn_deferred()
    level = analyzer.rarity.levels.get(_PREFIX + workload)
    rarity = None
    if level is not None:
        holder = RarityDetector()  # its to_state is the one encoding of a level
        holder.levels[_PREFIX + workload] = level
        rarity = holder.to_state()["levels"][_PREFIX + workload]
    recent = analyzer.signals.recent.get(workload)
    return {
        "rarity": rarity,
        "rate_stats": _own(analyzer.rate.stats, workload),
        "rate_live": _own(analyzer.rate.live, workload),
        "recent": None if recent is None else [[t, b, what] for t, b, what in recent],
        "versions": _copy(analyzer.versions.get(workload)),
        "pods": _copy(analyzer.pods.get(workload)),
    }


def import_workload(analyzer: Analyzer, workload: str, state: dict[str, Any]) -> None:
    """Replace the workload's own state with ``state`` (from ``export_workload``)."""
    forget_workload(analyzer, [workload])
    if state.get("rarity") is not None:
        parsed = RarityDetector.from_state(
            {"dropped": 0, "levels": {_PREFIX + workload: state["rarity"]}},
            analyzer.featurizer,
        )
        analyzer.rarity.levels[_PREFIX + workload] = parsed.levels[_PREFIX + workload]
    for table, name in ((analyzer.rate.stats, "rate_stats"), (analyzer.rate.live, "rate_live")):
        for key, value in (state.get(name) or {}).items():
            if key == workload or key.startswith(workload + SEP):  # its own keys only
                table[key] = [int(x) for x in value]
    recent = state.get("recent")
    if recent is not None:
        analyzer.signals.recent[workload] = [(int(t), float(b), str(w)) for t, b, w in recent]
    for first_seen, name in ((analyzer.versions, "versions"), (analyzer.pods, "pods")):
        value = state.get(name)
        if value is not None:
            first_seen[workload] = {str(k): int(v) for k, v in value.items()}
    analyzer.rarity.version += 1  # cached evidence of the workload is stale now


def forget_workload(analyzer: Analyzer, workloads: Iterable[str]) -> None:
    """Drop the workloads' own state (their partition moved away)."""
    for workload in workloads:
        analyzer.rarity.levels.pop(_PREFIX + workload, None)
        for table in (analyzer.rate.stats, analyzer.rate.live):
            for key in [k for k in table if k == workload or k.startswith(workload + SEP)]:
                del table[key]
        analyzer.signals.recent.pop(workload, None)
        analyzer.versions.pop(workload, None)
        analyzer.pods.pop(workload, None)
    analyzer.rarity.version += 1


def _own(table: dict[str, list[int]], workload: str) -> dict[str, list[int]] | None:
    """The entries of ``workload`` and of its pods (``<workload><SEP><pod>``)."""
    prefix = workload + SEP
    found = {k: list(v) for k, v in table.items() if k == workload or k.startswith(prefix)}
    return found or None


def _copy(value: dict[str, int] | None) -> dict[str, int] | None:
    return None if value is None else dict(value)
