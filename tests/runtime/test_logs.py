"""The monitor's log lines: text with control characters escaped, or one JSON object a line;
"reading"/"listening on" at start and one line per incident opened or escalated."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models import Event, Priority, Workload
from kubesentinel.runtime import logs
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.incident_log import IncidentLog

BASE = "2026-01-01T00:00:0{}.000000000Z"


def alert(second: int, priority: str, rule: str, pod: str = "web-6d4cf56db6-x7k2p") -> str:
    return json.dumps(
        {
            "rule": rule,
            "priority": priority,
            "time": BASE.format(second),
            "output": rule,
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": pod},
            "tags": ["mitre_execution"],
        }
    )


def test_text_lines_escape_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text")
    logs.log.warning("workload %s", "evil\x1b[31m\nkubesentinel: ERROR: forged")
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # the forged second line stays on the first
    assert "\x1b" not in err
    assert "\\x1b[31m\\nkubesentinel: ERROR: forged" in err


def test_json_lines_carry_the_structured_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    logs.log.info("incident x opened", extra={"incident": {"id": "x", "severity": "high"}})
    line = json.loads(capsys.readouterr().err)
    assert line["level"] == "info"
    assert line["message"] == "incident x opened"
    assert line["incident"] == {"id": "x", "severity": "high"}


def test_a_monitor_logs_its_input_and_each_incident_opened_or_escalated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = tmp_path / "falco.jsonl"
    stream.write_text(
        "\n".join(
            [
                alert(1, "Warning", "Terminal shell in container"),
                alert(2, "Critical", "Read sensitive file untrusted"),  # the same incident
                alert(3, "Warning", "Terminal shell in container", pod="api-7c9d8f5b6d-x7k2p"),
            ]
        )
        + "\n"
    )
    code = main(["monitor", "--source", str(stream), "--until-eof", "--log-format", "json",
                 "--store", str(tmp_path / "ks.db"), "--no-k8s-lookup"])  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    # The shipped ai.model_path is a .pkl: scoring is off, said once, first.
    assert lines[0]["message"].startswith("anomaly scoring off: ai.model_path ")
    assert lines[1]["message"] == f"reading {stream}"
    changes = [(line["incident"]["workload"], line["incident"]["change"]) for line in lines[2:]]
    # One batch: the web incident opens already at its worst (two alerts, one Critical).
    assert changes == [
        ("default/shop/Deployment/web", "opened"),
        ("default/shop/Deployment/api", "opened"),
    ]
    assert lines[2]["incident"]["severity"] == "high"
    logging.getLogger(logs.LOGGER).handlers.clear()


def test_an_incident_logs_again_only_when_its_severity_rises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [_event("a", 1, Priority.NOTICE), _event("b", 2, Priority.NOTICE)]
    worse = _event("c", 3, Priority.CRITICAL)
    correlator, incident_log = Correlator(), IncidentLog()
    with caplog.at_level(logging.INFO, logger="kubesentinel.monitor"):
        incident_log.changed(correlator.add(events[:1], 0))
        incident_log.changed(correlator.add(events[1:], 0))  # same severity: no line
        incident_log.changed(correlator.add([worse], 0))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert " opened: low " in messages[0] or " opened: medium " in messages[0]
    assert " escalated from " in messages[1]
    assert caplog.records[1].levelno == logging.WARNING  # high or critical: a warning


def _event(event_id: str, second: int, priority: Priority) -> Event:
    time_ns = 1_767_225_600_000_000_000 + second * 1_000_000_000
    return Event(
        event_id, time_ns, time_ns, f"rule {event_id}", priority, "syscall", "node-1",
        Workload("default", "shop", "Deployment", "web"), "web-0", None, None,
        ("execution",), (), (), "output", {}, f"test:{event_id}",
    )  # fmt: skip
