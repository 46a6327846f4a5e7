"""Evidence documents for alerts built in code: Falco's own JSON layout, read back exactly."""

from __future__ import annotations

import json

from kubesentinel.models.falco_alert import FalcoAlert, Priority
from kubesentinel.runtime.evidence import falco_document, rfc3339
from kubesentinel.runtime.parse import parse_alert

T = 1_767_225_600_013_324_350


def _alert(**changes: object) -> FalcoAlert:
    values: dict[str, object] = {
        "time_ns": T, "rule": "Terminal shell in container", "priority": Priority.NOTICE,
        "source": "syscall", "output": "a shell", "hostname": "node-1",
        "tags": ("container", "T1059"), "output_fields": {"proc.name": "bash", "n": None},
        "uuid": None, "origin": "code",
    }  # fmt: skip
    values.update(changes)
    return FalcoAlert(**values)  # type: ignore[arg-type]


def test_rfc3339_is_falcos_time_format() -> None:
    assert rfc3339(T) == "2026-01-01T00:00:00.013324350Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000000000Z"


def test_document_parses_back_to_the_same_alert() -> None:
    alert = _alert(uuid="3b3e8f4e-6c1d-4e0f-9d52-2d6f0a1b9c77")
    document = falco_document(alert)
    assert list(json.loads(document)) == sorted(json.loads(document))  # keys sorted
    assert parse_alert(document, "code") == alert


def test_values_orjson_refuses_are_still_written_exactly() -> None:
    huge = _alert(output_fields={"big": 2**70}, output="x\ud800y")
    document = falco_document(huge)
    assert document.isascii()  # lone surrogate escaped: the document is valid UTF-8
    back = parse_alert(document, "code")
    assert (back.output, back.output_fields) == ("x\ud800y", {"big": 2**70})
