"""One workload's own part of an analyzer's state, exported and imported on its own.

For scale-out (docs/scale-out.md): when a partition moves, what the analyzer learned about
each of its workloads moves with it: the workload's rarity level (``w<SEP><workload key>``
in ``RarityDetector.levels``), its rate statistics and open minute (``RateDetector``) and its
recent weak signals (``WeakSignals``). Shared levels (image, namespace, cluster) are not a
workload's own and stay with each analyzer.

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
    keys.update(analyzer.rate.stats, analyzer.rate.live, analyzer.signals.recent)
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
        "rate_stats": analyzer.rate.stats.get(workload),
        "rate_live": analyzer.rate.live.get(workload),
        "recent": None if recent is None else [[t, b] for t, b in recent],
    }


def import_workload(analyzer: Analyzer, workload: str, state: dict[str, Any]) -> None:
    """Replace the workload's own state with ``state`` (from ``export_workload``)."""
    if state.get("rarity") is not None:
        parsed = RarityDetector.from_state(
            {"dropped": 0, "levels": {_PREFIX + workload: state["rarity"]}},
            analyzer.featurizer,
        )
        analyzer.rarity.levels[_PREFIX + workload] = parsed.levels[_PREFIX + workload]
    else:
        analyzer.rarity.levels.pop(_PREFIX + workload, None)
    _put(analyzer.rate.stats, workload, state.get("rate_stats"))
    _put(analyzer.rate.live, workload, state.get("rate_live"))
    recent = state.get("recent")
    if recent is None:
        analyzer.signals.recent.pop(workload, None)
    else:
        analyzer.signals.recent[workload] = [(int(t), float(b)) for t, b in recent]
    analyzer.rarity.version += 1  # cached evidence of the workload is stale now


def forget_workload(analyzer: Analyzer, workloads: Iterable[str]) -> None:
    """Drop the workloads' own state (their partition moved away)."""
    for workload in workloads:
        analyzer.rarity.levels.pop(_PREFIX + workload, None)
        analyzer.rate.stats.pop(workload, None)
        analyzer.rate.live.pop(workload, None)
        analyzer.signals.recent.pop(workload, None)
    analyzer.rarity.version += 1


def _put(table: dict[str, list[int]], workload: str, value: Any) -> None:
    if value is None:
        table.pop(workload, None)
    else:
        table[workload] = [int(x) for x in value]
