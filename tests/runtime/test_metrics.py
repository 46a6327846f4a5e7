"""Metrics: exact counts under threads, cumulative histogram, valid Prometheus text 0.0.4."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kubesentinel.runtime.metrics import LATENCY_BUCKETS, MAX_LABEL_VALUES, Metrics
from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\\\|\\"|\\n|[^"\\\n])*"'
_VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"^({_NAME})(\{{(?:{_LABEL}(?:,{_LABEL})*)?\}})? ({_VALUE})$")
HELP = re.compile(rf"^# HELP ({_NAME}) .+$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


def parse_exposition(text: str) -> dict[str, float]:
    """Check every line of the text format; return {'name{labels}': value}.

    Also checks that each sample belongs to a family announced by HELP and TYPE before it.
    """
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            match = HELP.match(line)
            assert match, line
            helped.add(match.group(1))
        elif line.startswith("# TYPE"):
            match = TYPE.match(line)
            assert match, line
            assert match.group(1) in helped, f"TYPE before HELP: {line}"
            types[match.group(1)] = match.group(2)
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name = match.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in types or types.get(family) == "histogram", f"no TYPE for {name}"
            samples[name + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_fresh_metrics_render_zeroes_and_every_family() -> None:
    text = Metrics().render_prometheus()
    samples = parse_exposition(text)
    assert samples["kubesentinel_received_total"] == 0
    assert samples["kubesentinel_refused_total"] == 0
    assert samples["kubesentinel_queue_depth"] == 0
    assert samples['kubesentinel_ingest_to_stored_seconds_bucket{le="+Inf"}'] == 0
    assert "# TYPE kubesentinel_ingest_to_stored_seconds histogram" in text
    for name in ("received", "processed", "stored", "malformed", "refused", "internal",
                 "incidents_opened"):  # fmt: skip
        assert f"# TYPE kubesentinel_{name}_total counter" in text


def test_batch_counts_gauges_and_histogram() -> None:
    metrics = Metrics()
    metrics.observe_batch(
        received=10,
        malformed=2,
        stored=7,
        incidents_opened=1,
        open_incidents=3,
        queue_depth=5,
        latencies_ns=[100_000, 500_000, 2_000_000, 7_000_000_000],  # 0.1 ms, 0.5 ms, 2 ms, 7 s
    )
    metrics.add(refused=4)
    samples = parse_exposition(metrics.render_prometheus())
    assert samples["kubesentinel_received_total"] == 10
    assert samples["kubesentinel_processed_total"] == 8  # received - malformed
    assert samples["kubesentinel_stored_total"] == 7
    assert samples["kubesentinel_malformed_total"] == 2
    assert samples["kubesentinel_refused_total"] == 4
    assert samples["kubesentinel_incidents_opened_total"] == 1
    assert samples["kubesentinel_open_incidents"] == 3
    assert samples["kubesentinel_queue_depth"] == 5
    bucket = "kubesentinel_ingest_to_stored_seconds_bucket"
    assert samples[f'{bucket}{{le="0.0005"}}'] == 2  # a bound belongs to its own bucket (le)
    assert samples[f'{bucket}{{le="0.001"}}'] == 2
    assert samples[f'{bucket}{{le="0.0025"}}'] == 3
    assert samples[f'{bucket}{{le="5.0"}}'] == 3
    assert samples[f'{bucket}{{le="+Inf"}}'] == 4
    assert samples["kubesentinel_ingest_to_stored_seconds_count"] == 4
    assert samples["kubesentinel_ingest_to_stored_seconds_sum"] == pytest.approx(7.0026)


def test_buckets_are_cumulative_and_span_half_a_millisecond_to_five_seconds() -> None:
    metrics = Metrics()
    metrics.observe([0.0001 * (1.7**i) for i in range(25)])
    samples = parse_exposition(metrics.render_prometheus())
    buckets = [v for k, v in samples.items() if "_bucket" in k]
    assert buckets == sorted(buckets)
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 5.0


def test_snapshot_gives_plain_figures_and_quantile_estimates() -> None:
    metrics = Metrics()
    metrics.observe_since([1_000_000_000 - 3_000_000] * 99 + [0], now_ns=1_000_000_000)
    metrics.add(received=100, refused=2)
    snap = metrics.snapshot()
    json.dumps(snap)  # JSON-ready
    assert snap["received"] == 100
    assert snap["refused"] == 2
    latency = snap["latency"]
    assert latency["count"] == 100
    assert 0.0025 <= latency["p50_s"] <= 0.005  # 3 ms lies in the (2.5 ms, 5 ms] bucket
    assert 0.0025 <= latency["p99_s"] <= 0.005
    assert Metrics().snapshot()["latency"]["p50_s"] is None


def test_updates_from_many_threads_are_exact() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(1000):
            metrics.observe_batch(received=3, malformed=1, latencies_ns=[1000, 2000])
            metrics.add(refused=1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = metrics.snapshot()
    assert snap["received"] == 24_000
    assert snap["processed"] == 16_000
    assert snap["refused"] == 8000
    assert snap["latency"]["count"] == 16_000


def test_falco_internal_events_by_rule_and_snapshot_figures() -> None:
    path = shared_path("falco", "samples", "alerts.jsonl")
    internal = [
        alert
        for alert in map(json.loads, path.read_text(encoding="utf-8").splitlines())
        if alert.get("source") == "internal"
    ]
    assert internal, "the samples hold a Falco metrics snapshot"
    metrics = Metrics()
    for alert in internal:
        metrics.record_internal(alert["rule"], alert["output_fields"])
    metrics.record_internal('odd "rule"\nname\\', {"scap.n_drops": True})  # bool is not a figure
    samples = parse_exposition(metrics.render_prometheus())
    rule = 'kubesentinel_falco_internal_events_total{rule="Falco internal: metrics snapshot"}'
    assert samples[rule] == len(internal)
    assert (
        samples['kubesentinel_falco_internal_events_total{rule="odd \\"rule\\"\\nname\\\\"}'] == 1
    )
    assert samples["kubesentinel_internal_total"] == len(internal) + 1
    assert samples['kubesentinel_falco_metric{host="test",name="falco.evts_rate_sec"}'] == 1846.4
    assert metrics.snapshot()["falco_internal"]["Falco internal: metrics snapshot"] == len(internal)


def test_non_finite_figures_render_as_the_format_spells_them() -> None:
    metrics = Metrics()
    metrics.record_internal("Falco internal: metrics snapshot",
                            {"evt.hostname": "n1", "scap.n_drops_perc": float("nan"),
                             "falco.evts_rate_sec": float("inf")})  # fmt: skip
    text = metrics.render_prometheus()
    parse_exposition(text)
    assert 'name="scap.n_drops_perc"} NaN' in text
    assert 'name="falco.evts_rate_sec"} +Inf' in text


def test_buckets_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        Metrics(buckets=(1.0, 0.5))


def test_prometheus_clients_own_parser_reads_the_figures() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    metrics.observe_batch(received=5, malformed=1, stored=4, open_incidents=2, queue_depth=7,
                          latencies_ns=[400_000, 3_000_000, 9_000_000_000])  # fmt: skip
    metrics.add(refused=3)
    metrics.record_internal('drops "x"\nby\\host', {"evt.hostname": "node-1", "scap.n_drops": 12})
    families = {f.name: f for f in text_string_to_metric_families(metrics.render_prometheus())}
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert families["kubesentinel_received"].type == "counter"
    assert values[("kubesentinel_received_total", ())] == 5
    assert values[("kubesentinel_processed_total", ())] == 4
    assert values[("kubesentinel_refused_total", ())] == 3
    assert values[("kubesentinel_internal_total", ())] == 1
    assert families["kubesentinel_queue_depth"].type == "gauge"
    assert values[("kubesentinel_queue_depth", ())] == 7
    assert values[("kubesentinel_open_incidents", ())] == 2
    rule = (("rule", 'drops "x"\nby\\host'),)  # escaped on the way out, read back whole
    assert values[("kubesentinel_falco_internal_events_total", rule)] == 1
    figure = (("host", "node-1"), ("name", "scap.n_drops"))
    assert values[("kubesentinel_falco_metric", figure)] == 12
    histogram = families["kubesentinel_ingest_to_stored_seconds"]
    assert histogram.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert list(buckets) == [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    assert (buckets["0.0005"], buckets["0.005"], buckets["5.0"], buckets["+Inf"]) == (1, 2, 2, 3)
    assert values[("kubesentinel_ingest_to_stored_seconds_count", ())] == 3
    assert values[("kubesentinel_ingest_to_stored_seconds_sum", ())] == pytest.approx(9.0034)
    # Only these families, and no _created series the library adds to its own counters.
    assert not [s for f in families.values() for s in f.samples if s.name.endswith("_created")]


def test_each_monitor_renders_its_own_figures_never_the_global_registry() -> None:
    from prometheus_client import REGISTRY

    first, second = Metrics(), Metrics()
    first.add(received=2)
    second.add(received=9)
    assert "kubesentinel_received_total 2.0" in first.render_prometheus()
    assert "kubesentinel_received_total 9.0" in second.render_prometheus()
    assert REGISTRY.get_sample_value("kubesentinel_received_total") is None


def test_a_label_value_per_rule_and_host_is_bounded() -> None:
    metrics = Metrics()
    for n in range(MAX_LABEL_VALUES + 50):
        metrics.record_internal(f"rule {n}", {"evt.hostname": f"node-{n}", "scap.n_drops": n})
    text = metrics.render_prometheus()
    assert text.count("kubesentinel_falco_internal_events_total{") == MAX_LABEL_VALUES
    assert text.count("kubesentinel_falco_metric{") == MAX_LABEL_VALUES
    assert metrics.snapshot()["internal"] == MAX_LABEL_VALUES + 50


@pytest.mark.integration  # a fresh process
def test_neither_scan_nor_the_monitors_start_imports_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from kubesentinel.cli import main\n"
        "main(['scan', '--path', 'examples/k8s-manifests/good', '--quiet'])\n"
        "import kubesentinel.runtime.metrics as m\n"
        "import kubesentinel.runtime.sources.http\n"
        "m.Metrics().observe_batch(received=1, latencies_ns=[5])\n"
        "before = 'prometheus_client' in sys.modules\n"
        "m.Metrics().render_prometheus()\n"
        "print(before, 'prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)  # fmt: skip
    assert result.stdout.split()[-2:] == ["False", "True"]
