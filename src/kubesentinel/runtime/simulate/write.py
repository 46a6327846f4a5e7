"""Writing a simulation to a directory: the stream, its labels, the manifests and a README."""

from __future__ import annotations

import json
from pathlib import Path

from kubesentinel.runtime.simulate.records import Simulation
from kubesentinel.runtime.simulate.render import rfc3339


def write_simulation(sim: Simulation, out_dir: Path) -> dict[str, int]:
    """Write falco.jsonl, labels.json, manifests/*.yaml and README.md; return the counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    alerts = 0
    with (out_dir / "falco.jsonl").open("wb") as out:  # bytes: much faster than a text stream
        for chunk in sim.chunks():
            alerts += len(chunk)
            chunk.append("")  # the last line's newline
            out.write("\n".join(chunk).encode())
    labels = json.dumps(sim.labels_json(), indent=2)
    (out_dir / "labels.json").write_text(labels + "\n", encoding="utf-8")
    manifests = out_dir / "manifests"
    manifests.mkdir(exist_ok=True)
    for name, text in sim.manifests.items():
        (manifests / name).write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(sim, alerts), encoding="utf-8")
    return {
        "alerts": alerts,
        "scenarios": len(sim.labels),
        "scenario_alerts": sum(len(label.steps) for label in sim.labels),
        "fixed_alerts": len(sim._plan.fixed),
        "manifests": len(sim.manifests),
    }


def _readme(sim: Simulation, alerts: int) -> str:
    rows = "\n".join(
        f"| {label.id} | {label.workload.key} | `{label.pod}` | {rfc3339(label.start_ns)} | "
        f"{', '.join(label.tactics)} |"
        for label in sim.labels
    )
    return f"""# Simulated Falco stream (seed {sim.seed})

Written by `kubesentinel simulate`: {alerts} Falco alerts from the simulated cluster
`{sim.cluster}` between {rfc3339(sim.start_ns)} and {rfc3339(sim.end_ns)}, in Falco's JSON
output layout (`json_output: true`, one alert per line). The same seed gives the same bytes.

- `falco.jsonl`: the alerts in time order: background noise, k8s_audit alerts, Falco metrics
  snapshots and the attacks below.
- `labels.json`: the ground truth: each attack's workload, pod, time window, rules and MITRE
  tactics; and which workloads are hardened.
- `manifests/`: the cluster's workloads, some hardened, some misconfigured.

## Replay

```sh
kubesentinel scan --path manifests/ --format json > posture.json  # exit 1: it has findings
kubesentinel monitor --source falco.jsonl --until-eof --posture posture.json
kubesentinel incidents list
```

The same stream through a pipe (`--source -`), or to the HTTP receiver one alert per POST, as
Falco's `http_output` sends them:

```sh
kubesentinel monitor --source - --until-eof < falco.jsonl
while IFS= read -r alert; do
  curl -s -H 'Content-Type: application/json' -d "$alert" http://127.0.0.1:2801/
done < falco.jsonl
```

## Attacks in the stream

| scenario | workload | pod | starts | tactics |
|---|---|---|---|---|
{rows}

Each should become one incident on its workload, its severity raised by the walk through
several tactics and by the workload's misconfigurations; the noise should be counted as
repeats rather than raised as incidents.
"""
