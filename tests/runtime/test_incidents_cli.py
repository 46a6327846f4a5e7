"""`kubesentinel incidents list|show` and the monitor's incident options, on real stores."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models import Event, Incident, Priority, Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import SQLiteStore

S = 1_000_000_000
NOW = time.time_ns()
WEB = Workload("default", "prod", "Deployment", "web")


def event(event_id: str, ago_s: float, workload: Workload = WEB, **changes: object) -> Event:
    time_ns = NOW - int(ago_s * S)
    values: dict[str, object] = {
        "id": event_id, "time_ns": time_ns, "received_ns": time_ns,
        "rule": "Terminal shell in container", "priority": Priority.WARNING,
        "source": "syscall", "hostname": "node-1", "workload": workload, "pod": "web-0",
        "container_id": "3ad7b26ded6d", "container_image": "nginx:1.27", "tactics": (),
        "techniques": (), "tags": (), "output": "a shell",
        "fields": {"proc.name": "bash", "proc.cmdline": f"bash -c {event_id}"},
        "origin": f"test:{event_id}",
    }  # fmt: skip
    values.update(changes)
    return Event(**values)  # type: ignore[arg-type]


def write(path: Path, events: list[Event], correlator: Correlator) -> list[Incident]:
    incidents = correlator.add(events, events[-1].time_ns) + correlator.expire(NOW)
    with SQLiteStore(path) as store:
        store.write(events, incidents)
    return incidents


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """12 incidents on 12 workloads, one every 10 minutes back from now; the newest 2 open."""
    path = tmp_path / "ks.db"
    correlator = Correlator(gap_s=900)
    events = [
        event(f"e{n}", (11 - n) * 600, workload=Workload("default", "prod", "Deployment", f"w{n}"),
              priority=Priority.CRITICAL if n % 4 == 0 else Priority.NOTICE)
        for n in range(12)
    ]  # fmt: skip
    for one in events:
        write(path, [one], correlator)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[list[str], str]:
    code, out, err = run(capsys, "incidents", "list", "--store", str(store), "-f", "json", *args)
    assert code == 0, err
    return [i["workload"]["name"] for i in json.loads(out)], err


def test_list_says_when_the_limit_cut_it(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names, err = listed(capsys, store, "--limit", "5")
    assert names == ["w11", "w10", "w9", "w8", "w7"]
    assert (
        err == "kubesentinel: showing 5 of 12 incidents (--limit N for more, --limit 0 for all)\n"
    )
    names, err = listed(capsys, store, "--limit", "0")  # 0: no limit
    assert (len(names), err) == (12, "")
    names, err = listed(capsys, store, "--limit", "12")
    assert (len(names), err) == (12, "")
    code, out, err = run(capsys, "incidents", "list", "--store", str(store), "--limit", "3")
    assert code == 0
    assert out.splitlines()[-1] == "3 incidents (3 low); 2 open"
    assert "showing 3 of 12" in err


@pytest.mark.parametrize("limit", ["-1", "ten", "2.5"])
def test_a_bad_limit_is_a_usage_error(
    store: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["incidents", "list", "--store", str(store), "--limit", limit])
    assert caught.value.code == 2
    assert "0 for no limit" in capsys.readouterr().err


def test_list_filters(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert listed(capsys, store, "--severity", "high")[0] == ["w8", "w4", "w0"]
    assert listed(capsys, store, "--status", "open")[0] == ["w11", "w10"]
    assert listed(capsys, store, "--status", "closed", "--severity", "HIGH")[0] == [
        "w8", "w4", "w0"
    ]  # fmt: skip
    assert listed(capsys, store, "--since", "25m")[0] == ["w11", "w10", "w9"]
    assert listed(capsys, store, "--since", "1h", "--severity", "high")[0] == ["w8"]
    assert len(listed(capsys, store, "--since", "2d")[0]) == 12
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW / S - 25 * 60))
    assert listed(capsys, store, "--since", f"{since}.000000000Z")[0] == ["w11", "w10", "w9"]
    assert listed(capsys, store, "--since", f"{since}+00:00")[0] == ["w11", "w10", "w9"]
    names, err = listed(capsys, store, "--severity", "low", "--limit", "2", "--status", "closed")
    assert (names, err) == (["w9", "w8"], err)
    assert "showing 2 of 10 incidents" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--since", "yesterday"), ("--since", "2026-01-01T00:00:00"), ("--since", "-2h"),
     ("--severity", "urgent"), ("--status", "gone")],
)  # fmt: skip
def test_bad_filters_are_usage_errors(
    store: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["incidents", "list", "--store", str(store), option, value])
    assert caught.value.code == 2
    assert option in capsys.readouterr().err


def test_show_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ks.db"
    correlator = Correlator(gap_s=300, max_duration_s=600)
    kworker = {"proc.name": "kworker", "proc.cmdline": "kw"}
    events = [
        event("a", 900, rule="Drop and execute new binary in container",
              priority=Priority.CRITICAL, fields=kworker),
        event("r", 840, rule="Drop and execute new binary in container",
              priority=Priority.CRITICAL, fields=kworker),  # a repeat
        event("d", 830, priority=Priority.DEBUG,
              fields={"proc.name": "evil\x1b[2J", "proc.cmdline": "x\ny"}),
        event("b", 650),
        event("b2", 400),
        event("c", 250),  # 650 s after "a": past the 600 s max duration, a linked incident
    ]  # fmt: skip
    first, second = correlator.add(events, NOW)
    with SQLiteStore(path) as store:
        store.write(events, [first, second])
    code, out, err = run(capsys, "incidents", "show", first.id, "--store", str(path))
    assert (code, err) == (0, "")
    assert out.startswith(f"Incident {first.id} (closed)\n")
    assert f"  continued by: {second.id}\n" in out
    assert "  events:       3 signals; 2 context (telemetry 0, low priority 1, repeat 1)" in out
    table = out.split("\n\n", 1)[1].splitlines()
    roles = [line.split()[1] for line in table[1:6]]
    assert roles == ["signal", "signal", "signal", "repeat", "low"]
    assert "Drop and execute new binary in container" in table[1]
    assert table[1].rstrip().endswith("segment 1 @ 0+" + table[1].rsplit("+", 1)[1])
    assert "evil\\x1b[2J" in table[5]
    assert "x\\x0ay" in table[5]
    assert "\x1b" not in out
    code, out, err = run(capsys, "incidents", "show", second.id, "--store", str(path), "-f", "json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["incident"]["previous_id"] == first.id
    assert document["next_id"] is None
    assert [(e["id"], e["role"]) for e in document["events"]] == [("c", "signal")]
    assert document["events"][0]["evidence"]["ref"].startswith("segment 1 @ ")


def test_show_limits_context_unless_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ks.db"
    repeat = {"proc.name": "curl", "proc.cmdline": "curl http://169.254.169.254/"}
    events = [event(f"r{n}", 100 - n, fields=repeat) for n in range(30)]
    (incident,) = Correlator().add(events, NOW)
    with SQLiteStore(path) as store:
        store.write(events, [incident])
    _, out, _ = run(capsys, "incidents", "show", incident.id, "--store", str(path), "-f", "json")
    document = json.loads(out)
    assert (len(document["events"]), document["context_not_shown"]) == (21, 9)
    _, out, _ = run(capsys, "incidents", "show", incident.id, "--store", str(path), "--all")
    assert "\n1 signals, 29 context events\n\nIntegrity: verified: " in out


def test_show_unknown_id_or_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ks.db"
    SQLiteStore(path).close()
    code, out, err = run(capsys, "incidents", "show", "feed\x1b]0;x", "--store", str(path))
    assert (code, out) == (2, "")
    assert "no incident 'feed\\x1b]0;x'" in err
    assert "\x1b" not in err
    code, _, err = run(capsys, "incidents", "show", "x", "--store", str(tmp_path / "none.db"))
    assert code == 2
    assert "no incident store" in err


def test_show_reports_tampered_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ks.db"
    events = [event("a", 10)]
    (incident,) = Correlator().add(events, NOW)
    with SQLiteStore(path) as store:
        store.write(events, [incident])
    raw = sqlite3.connect(path)
    raw.execute("UPDATE segments SET sha256 = 'ab' || substr(sha256, 3)")
    raw.commit()
    raw.close()
    code, out, err = run(capsys, "incidents", "show", incident.id, "--store", str(path))
    assert (code, out) == (2, "")
    assert "evidence segment 1 does not match its sha256" in err
    assert "Traceback" not in err


def alerts_file(tmp_path: Path) -> Path:
    """Three distinct shell alerts 200 s apart on one pod."""
    lines = [
        json.dumps({
            "output": "x", "priority": "Warning", "rule": "Terminal shell in container",
            "time": f"2026-01-01T00:{n * 200 // 60:02d}:{n * 200 % 60:02d}.000000000Z",
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-6d4cf56db6-x7k2p",
                              "proc.name": "sh", "proc.cmdline": f"sh -c step{n}"},
        })
        for n in range(3)
    ]  # fmt: skip
    path = tmp_path / "falco.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def monitor(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> list[Incident]:
    store = tmp_path / f"ks{len(list(tmp_path.glob('ks*.db')))}.db"
    code, _, err = run(capsys, "monitor", "--source", str(alerts_file(tmp_path)), "--until-eof",
                       "--store", str(store), "--no-k8s-lookup",
                       "--dead-letter", str(tmp_path / "dl.jsonl"), *options)  # fmt: skip
    assert code == 0, err
    with SQLiteStore(store) as reader:
        incidents = sorted(reader.list_incidents(), key=lambda i: i.first_ns)
    return incidents


def test_monitor_incident_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [i.event_count for i in monitor(tmp_path, capsys)] == [3]  # config: 300 s gap
    assert [i.event_count for i in monitor(tmp_path, capsys, "--incident-gap", "100")] == [1, 1, 1]
    linked = monitor(tmp_path, capsys, "--incident-max-duration", "300")
    assert [i.event_count for i in linked] == [2, 1]
    assert linked[1].previous_id == linked[0].id
    code, _, err = run(capsys, "monitor", "--source", str(alerts_file(tmp_path)), "--until-eof",
                       "--store", str(tmp_path / "w.db"), "--no-k8s-lookup", "--window", "100",
                       "--dead-letter", str(tmp_path / "dl.jsonl"))  # fmt: skip
    assert code == 0
    assert "--window is deprecated; use --incident-gap" in err
    with SQLiteStore(tmp_path / "w.db") as reader:
        assert reader.count_incidents() == 3  # the window was taken as the gap


@pytest.mark.parametrize("option", ["--incident-gap", "--incident-max-duration", "--window"])
@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_monitor_incident_options_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code, _, err = run(capsys, "monitor", "--source", str(alerts_file(tmp_path)), "--until-eof",
                       "--store", str(tmp_path / "ks.db"), option, value)  # fmt: skip
    assert code == 2
    assert f"{option} must be a number of seconds greater than 0" in err
    assert not (tmp_path / "ks.db").exists()


def test_incident_limits_come_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("runtime:\n  incident_gap: 100\n")
    incidents = monitor(tmp_path, capsys, "--config", str(config))
    assert [i.event_count for i in incidents] == [1, 1, 1]


def _tamper(path: Path, sql: str, *params: object) -> None:
    raw = sqlite3.connect(path)
    raw.execute(sql, params)
    raw.commit()
    raw.close()


def test_show_checks_what_it_reads_against_the_seals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks.db"
    correlator = Correlator()
    (web,) = write(path, [event("w1", 30), event("w2", 29)], correlator)  # segment 1
    api = Workload("default", "prod", "Deployment", "api")
    (other,) = write(path, [event("a1", 20, workload=api)], correlator)  # segment 2

    def show(incident_id: str, *fmt: str) -> tuple[int, str]:
        code, out, err = run(capsys, "incidents", "show", incident_id, "--store", str(path), *fmt)
        assert err == ""
        return code, out

    code, out = show(web.id)
    assert code == 0
    assert out.splitlines()[-1].startswith(
        "Integrity: verified: 5 records in 1 segment(s) match their sealed roots, chained to "
        "the checkpoint of segment 2;"
    )  # segment 1's own record, its facet, 2 events and the incident's state
    code, out = show(web.id, "-f", "json")
    integrity = json.loads(out)["integrity"]
    assert (code, integrity["ok"], integrity["segments_checked"]) == (0, True, 1)
    assert integrity["problems"] == []

    # An event of the other incident's segment edited: this one still checks out (what it
    # shows is intact); the other reports it and exits 1.
    _tamper(path, "UPDATE events SET role = 2 WHERE segment = 2")
    assert show(web.id)[0] == 0
    code, out = show(other.id)
    assert code == 1
    assert "Integrity: TAMPERING found (1 problem(s)); first: segment 2: its records do not " in out
    assert "`kubesentinel vault verify` checks the whole store" in out


def test_show_reports_an_edited_incident_or_facet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks.db"
    (incident,) = write(path, [event("w1", 30)], Correlator())
    _tamper(path, "UPDATE incidents SET risk_score = 1.0")
    code, out, _ = run(capsys, "incidents", "show", incident.id, "--store", str(path), "-f", "json")
    problems = json.loads(out)["integrity"]["problems"]
    assert code == 1
    assert problems == [
        {"where": f"incident {incident.id}", "what": "was changed after segment 1 wrote it"}
    ]
    _tamper(path, "UPDATE incidents SET risk_score = ?", incident.risk_score)
    assert run(capsys, "incidents", "show", incident.id, "--store", str(path))[0] == 0
    _tamper(path, "UPDATE facets SET rule = 'Harmless'")
    code, out, _ = run(capsys, "incidents", "show", incident.id, "--store", str(path))
    assert code == 1
    assert "segment 1: its records do not match its Merkle root" in out


def test_list_checks_each_incident_against_its_seal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An incident edited in the store (its score raised, say) is reported by `incidents
    list`, which exits 1; the JSON on stdout stays a plain list."""
    path = tmp_path / "ks.db"
    correlator = Correlator()
    (web,) = write(path, [event("w1", 30)], correlator)
    api = Workload("default", "prod", "Deployment", "api")
    write(path, [event("a1", 20, workload=api)], correlator)
    code, out, err = run(capsys, "incidents", "list", "--store", str(path), "-f", "json")
    assert (code, err, len(json.loads(out))) == (0, "", 2)
    _tamper(path, "UPDATE incidents SET risk_score = 99.0 WHERE id = ?", web.id)
    code, out, err = run(capsys, "incidents", "list", "--store", str(path), "-f", "json")
    assert code == 1
    assert len(json.loads(out)) == 2
    assert err.startswith(
        f"kubesentinel: TAMPERING found (1 problem(s)); first: incident {web.id}: was changed "
        "after segment 1 wrote it\n"
    )
    # A filter that leaves the edited incident out lists the rest as intact.
    code, _, err = run(capsys, "incidents", "list", "--store", str(path), "--namespace", "x")
    assert (code, err) == (0, "")
