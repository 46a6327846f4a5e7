"""The stored posture's age: recorded when saved, unknown for documents saved before."""

from __future__ import annotations

import json

from kubesentinel.bridge import posture_document, posture_from_document
from kubesentinel.models import Severity
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.reporting.formats.text import age

S = 1_000_000_000


def test_the_document_keeps_when_it_was_saved_and_old_ones_still_read() -> None:
    posture = Posture(
        workloads={"default/prod/Deployment/web": (
            PostureFinding("KS-0001", Severity.CRITICAL, "Privileged container", "privileged"),
        )},
        source="scan.json",
    )  # fmt: skip
    document = posture_document(posture, saved_ns=1_767_225_600 * S)
    again = posture_from_document(document)
    assert again == posture
    assert again.saved_ns == 1_767_225_600 * S
    older = json.loads(document)
    del older["saved_ns"]  # a version 2 document written before the time was kept
    assert posture_from_document(json.dumps(older)).saved_ns is None
    assert posture_from_document(json.dumps(older)) == posture


def test_age_reads_in_days_hours_and_minutes() -> None:
    now = 1_767_225_600 * S
    assert age(now - (3 * 86400 + 4 * 3600) * S, now) == "3 d 4 h"
    assert age(now - (2 * 3600 + 5 * 60) * S, now) == "2 h 5 min"
    assert age(now - 59 * S, now) == "0 min"
    assert age(None, now).startswith("unknown")
