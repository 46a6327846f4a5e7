"""Features per event: real Falco samples, path generalisation, peer classes, signatures."""

from __future__ import annotations

import pytest

from kubesentinel.ai.explain import shown
from kubesentinel.ai.features import (
    Featurizer,
    PeerClasses,
    features_of,
    generalise_path,
    signature,
    split_connection,
)
from kubesentinel.models.event import Event
from tests.ai.helpers import NS, alert, events_of
from tests.conftest import shared_path

T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def samples() -> list[Event]:
    path = shared_path("falco", "samples", "alerts.jsonl")
    return events_of(path.read_bytes().splitlines(), cluster="lab")


def _by_rule(events: list[Event], rule: str) -> list[Event]:
    found = [e for e in events if e.rule == rule]
    assert found, rule
    return found


def test_every_real_sample_has_features(samples: list[Event]) -> None:
    peers = PeerClasses()
    for event in samples:
        fv = features_of(event, peers)
        assert fv.workload == event.workload.key
        assert fv.rule == event.rule
        assert 0 <= fv.hour < 24
        assert fv.workload.startswith("lab/")


def test_terminal_shell_sample_names_process_parent_and_workload(samples: list[Event]) -> None:
    events = _by_rule(samples, "Terminal shell in container")
    shells = [features_of(e, PeerClasses()) for e in events]
    assert {(fv.process, fv.parent) for fv in shells} >= {("sh", "runc"), ("bash", "runc")}
    assert "" in {fv.parent for fv in shells}  # one sample has proc.pname null: kept empty
    # the pod alpine-deployment-77789455d6-m7flp is its Deployment's behaviour, not the pod's
    assert "lab/default/Deployment/alpine-deployment" in {fv.workload for fv in shells}
    assert not any("m7flp" in fv.workload for fv in shells)


def test_sensitive_file_sample_generalises_the_file(samples: list[Event]) -> None:
    events = _by_rule(samples, "Read sensitive file untrusted")
    files = {features_of(e, PeerClasses()).file for e in events}
    assert files & {"/etc/shadow", "/etc/sudoers", "/etc/pam.conf"}, files


def test_k8s_api_sample_classes_the_api_server_as_a_peer(samples: list[Event]) -> None:
    event = _by_rule(samples, "Contact K8S API Server From Container")[0]
    fv = features_of(event, PeerClasses())
    name = event.fields.get("fd.name")
    if not isinstance(name, str) or "->" not in name:
        pytest.skip("this sample carries no fd.name connection")
    assert fv.port in {443, 6443}
    assert fv.peer_class in ("service", "node", "external")


def test_audit_sample_reads_user_and_action(samples: list[Event]) -> None:
    event = _by_rule(samples, "Attach/Exec Pod")[0]
    fv = features_of(event, PeerClasses())
    assert fv.source == "k8s_audit"
    assert fv.user == event.fields["ka.user.name"]
    assert fv.action == "create pods/exec"
    assert fv.process == event.fields["ka.uri.param[command]"]
    assert fv.exe == fv.peer == ""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/log/app.log.3", "/var/log/app.log.<n>"),
        ("/var/log/nginx/access.log.12.gz", "/var/log/nginx/access.log.<n>.gz"),
        ("/proc/4711/status", "/proc/<n>/status"),
        ("/tmp/tmpa8f3k2x9/input", "/tmp/tmp<rand>/input"),
        ("/tmp/tmp.Xy12abCDef", "/tmp/tmp.<rand>"),
        ("/var/lib/pg/wal/0000000100000042000000A3", "/var/lib/pg/wal/<hex>"),
        ("/data/123e4567-e89b-12d3-a456-426614174000.json", "/data/<uuid>.json"),
        ("/etc/shadow", "/etc/shadow"),
        ("/tmp/.cache/kworker", "/tmp/.cache/kworker"),
        ("/usr/lib/deadbeef/x", "/usr/lib/deadbeef/x"),  # hex-looking word without a digit
    ],
)
def test_generalise_path(path: str, expected: str) -> None:
    assert generalise_path(path) == expected


def test_generalised_paths_are_bounded() -> None:
    assert len(generalise_path("/a" * 10_000)) <= 256


@pytest.mark.parametrize(
    ("address", "klass"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("10.96.0.1", "service"),
        ("10.244.3.17", "pod"),
        ("10.0.1.21", "node"),
        ("192.168.1.5", "node"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("45.9.20.1", "external"),
        ("2001:db8::1", "external"),
        ("not-an-ip", "unknown"),
    ],
)
def test_peer_classes(address: str, klass: str) -> None:
    assert PeerClasses().classify(address) == klass


def test_peer_classes_take_the_clusters_own_ranges() -> None:
    peers = PeerClasses(service_cidrs=["172.20.0.0/16"], pod_cidrs=["100.64.0.0/16"])
    assert peers.classify("172.20.0.10") == "service"
    assert peers.classify("100.64.3.3") == "pod"
    assert peers.classify("10.96.0.1") == "node"


def test_split_connection_ipv4_and_ipv6() -> None:
    assert split_connection("10.244.1.7:40312->10.96.0.1:443") == (
        "10.244.1.7",
        40312,
        "10.96.0.1",
        443,
    )
    assert split_connection("fd00::1:5555->fd00::2:80") == ("fd00::1", 5555, "fd00::2", 80)
    assert split_connection("/etc/passwd") is None
    assert split_connection("a:b->c:d") is None


def test_connection_peer_is_the_server_unless_accepted() -> None:
    out = events_of([
        alert(T0, "api-7d9f8b6c5d-x2x4z", {"evt.type": "connect", "proc.name": "curl",
              "fd.name": "10.244.1.7:40312->45.9.20.1:3333"}),
        alert(T0, "api-7d9f8b6c5d-x2x4z", {"evt.type": "accept", "proc.name": "nginx",
              "fd.name": "203.0.113.9:51000->10.244.1.7:8080"}),
    ])  # fmt: skip
    outbound, inbound = (features_of(e, PeerClasses()) for e in out)
    assert (outbound.peer, outbound.peer_class, outbound.port) == ("45.9.20.1", "external", 3333)
    assert (inbound.peer, inbound.peer_class, inbound.port) == ("203.0.113.9", "external", 8080)
    assert outbound.workload == "sim/shop/Deployment/api"


def test_signature_ignores_the_client_port_and_pod() -> None:
    def curl(pod: str, name: str) -> str:
        return alert(T0, pod, {"proc.name": "curl", "fd.name": name})

    a, b, c = events_of(
        [
            curl("api-7d9f8b6c5d-x2x4z", "10.244.1.7:40312->10.96.0.1:443"),
            curl("api-7d9f8b6c5d-q7w8r", "10.244.2.9:51515->10.96.0.1:443"),
            curl("api-7d9f8b6c5d-x2x4z", "10.244.1.7:40312->10.96.0.2:443"),
        ]
    )
    assert signature(a) == signature(b) != signature(c)
    featurizer = Featurizer()
    assert featurizer(a) is featurizer(b)  # cached
    assert featurizer(a) == features_of(a, PeerClasses())


def test_absent_and_na_fields_are_empty() -> None:
    (event,) = events_of(
        [alert(T0, "api-7d9f8b6c5d-x2x4z", {"proc.name": "<NA>", "proc.pname": None})]
    )
    fv = features_of(event, PeerClasses())
    assert fv.process == fv.parent == fv.exe == fv.file == fv.peer == ""


def test_shown_escapes_untrusted_text() -> None:
    assert shown("xmrig") == "xmrig"
    assert shown("evil\x1b[31mred\nline") == "evil\\x1b[31mred\\x0aline"
    assert shown("a\u202eb") == "a\\u202eb"
    long = shown("x" * 500)
    assert long.endswith("...")
    assert len(long) < 100
