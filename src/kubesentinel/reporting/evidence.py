"""The evidence manifest: an incident's vault records, their hashes, the segments and the
signed checkpoint that cover them, and the commands that prove it.

Hashes are recomputed from the sealed records (``vault/ledger``), as ``vault export`` does,
through the same readers (``vault.export.export_source``), inside one read snapshot. Whether
they are right is what ``verify_incident`` says; the manifest names them so a reader can check.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Final

from kubesentinel.models.report import Evidence, EvidenceRecord, EvidenceSegment
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.export import (
    EV_ID,
    EV_SEGMENT,
    EV_TIME,
    INCIDENT_SEGMENT,
    INCIDENT_SEQ,
    export_source,
)
from kubesentinel.vault.ledger import event_leaves, incident_leaf

__all__ = ["RECORDS_CAP", "SEGMENTS_CAP", "evidence_manifest"]

RECORDS_CAP: Final = 100  # records listed one by one (signals first); all are counted
SEGMENTS_CAP: Final = 50


def evidence_manifest(
    store: VaultStore,
    incident_id: str,
    roles: Mapping[str, str],
    *,
    verified: bool,
    problems: tuple[str, ...],
) -> Evidence:
    """``roles``: event id -> its role (signal, repeat...) from the events read."""
    with store.read_snapshot("read the incident's evidence") as db:
        source = export_source(store, db)
        record = source.incident(incident_id)
        rows = [] if record is None else source.events_of_incident(int(record[INCIDENT_SEQ]))
        leaves = event_leaves(rows)
        segment_ids = sorted({int(row[EV_SEGMENT]) for row in rows})
        if record is not None and record[INCIDENT_SEGMENT] is not None:
            segment_ids = sorted({*segment_ids, int(record[INCIDENT_SEGMENT])})
        segments: list[EvidenceSegment] = []
        note: str | None = None
        for segment_id in segment_ids[:SEGMENTS_CAP]:
            segment = source.segment(segment_id)
            checkpoint = source.covering_checkpoint(segment_id)
            if checkpoint is not None:
                note = checkpoint.note  # the last covers the others: segments ascend
            segments.append(
                EvidenceSegment(
                    segment_id,
                    "" if segment is None else segment.sha256,
                    None if checkpoint is None else checkpoint.id,
                    None if checkpoint is None else checkpoint.segment_id,
                )
            )
    records = [
        EvidenceRecord(
            str(row[EV_ID]),
            roles.get(str(row[EV_ID]), "signal"),
            int(row[EV_TIME]),
            int(row[EV_SEGMENT]),
            leaf.hex(),
        )
        for row, leaf in zip(rows, leaves, strict=True)
    ]
    records.sort(key=lambda r: (r.role != "signal", r.time_ns))
    store_arg = shlex.quote(store.name)
    bundle = shlex.quote(f"incident-{incident_id}.bundle")
    return Evidence(
        verified=verified,
        problems=problems,
        incident_record_hash=None if record is None else incident_leaf(record).hex(),
        records=tuple(records[:RECORDS_CAP]),
        record_count=len(records),
        cap=RECORDS_CAP,
        segments=tuple(segments),
        checkpoint_note=note,
        verify_command=f"kubesentinel vault verify --store {store_arg}",
        export_command=(
            f"kubesentinel vault export --incident-id {shlex.quote(incident_id)} "
            f"--store {store_arg} --output {bundle}"
        ),
    )
