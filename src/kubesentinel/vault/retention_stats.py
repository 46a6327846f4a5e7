"""Retention's figures for ``vault stats``: events per class now, rollups, tombstones, holds."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.policy import Policy
from kubesentinel.vault.prune import BATCH, ROWID, Session
from kubesentinel.vault.retention_backend import queries_for

__all__ = ["retention_stats"]

_ALL_TIME = 1 << 62


def retention_stats(store: VaultStore, policy: Policy) -> dict[str, Any]:
    """Events per retention class (classified as ``vault prune`` would now), and what
    retention has removed, rolled up and held, from one committed state."""
    per_class: Counter[str] = Counter()
    sql = queries_for(store)
    session = Session(policy, sql)
    with store.read_snapshot("read retention figures") as db:
        session.refresh(db)
        after_rowid = 0
        while rows := sql.event_rows(db, after_rowid, _ALL_TIME, BATCH):
            after_rowid = rows[-1][ROWID]
            for row in rows:
                per_class[session.verdict(db, row).class_name] += 1
        figures = sql.stats(db)
    return {"records_per_class": dict(sorted(per_class.items())), **figures}
