"""Findings per object before and after folding, and before and after the severity calibration.

Scans the given paths once (default: the shared real-world corpus) with one finding per rule,
then counts the findings four ways, at every severity and at the default threshold (medium):
one per rule with the severities before the calibration of issue 15, one per rule as now,
folded with the old severities, and folded as `kubesentinel scan` reports now.

Usage: python bench/folding_report.py [PATH ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from kubesentinel.models import Finding, Severity
from kubesentinel.models.kinds import WORKLOAD_KINDS
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.folding import fold

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "real"
DEFAULT_THRESHOLD = Severity.MEDIUM
# The severities these rules had before the calibration (CHANGELOG, issue 15); every other
# rule kept its severity.
PREVIOUS_SEVERITIES = {
    "KS-0006": Severity.MEDIUM,
    "KS-0014": Severity.MEDIUM,
    "KS-0040": Severity.MEDIUM,
    "KS-0041": Severity.MEDIUM,
    "KS-0042": Severity.MEDIUM,
    "KS-0043": Severity.MEDIUM,
    "KS-0044": Severity.MEDIUM,
    "KS-0045": Severity.MEDIUM,
    "KS-0046": Severity.MEDIUM,
}
ObjectKey = tuple[str, int, int | None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(CORPUS)], help="files or directories")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"folding_report: no such path: {', '.join(missing)}", file=sys.stderr)
        return 2
    catalogue = builtin_catalogue()
    result = scan_paths(args.paths, catalogue, ScanOptions(fold=False))
    keys = [(o.source.file, o.source.doc_index, o.source.item_index) for o in result.scanned]
    workloads = {k for k, o in zip(keys, result.scanned, strict=True) if o.kind in WORKLOAD_KINDS}
    now = result.findings
    before = [_previous(f) for f in now]
    variants = {
        "one per rule, old severities": before,
        "one per rule, calibrated": now,
        "folded, old severities": fold(before, [], result.scanned, catalogue.rules)[0],
        "folded, calibrated (scan)": fold(now, [], result.scanned, catalogue.rules)[0],
    }
    print(f"{len(result.files)} files, {len(keys)} objects, {len(workloads)} workloads")
    print(f"{'':32} {'all severities':>28}   {'at medium (default)':>28}")
    print(f"{'':32} {'findings':>10} {'/object':>8} {'/workload':>9}   "
          f"{'findings':>10} {'/object':>8} {'/workload':>9}")  # fmt: skip
    for name, findings in variants.items():
        gated = [f for f in findings if f.severity >= DEFAULT_THRESHOLD]
        print(f"{name:32} {_row(findings, keys, workloads)}   {_row(gated, keys, workloads)}")
    folded = variants["folded, calibrated (scan)"]
    held = Counter(rule_id for f in folded for rule_id in f.folded_ids)
    print(
        f"\nfindings folded into another: {sum(held.values())} "
        f"({100 * sum(held.values()) / max(len(now), 1):.1f}% of {len(now)})"
    )
    print("most folded rules: " + ", ".join(f"{r} {n}" for r, n in held.most_common(6)))
    per_workload = Counter((f.file, f.doc_index, f.item_index) for f in folded
                           if f.severity >= DEFAULT_THRESHOLD)  # fmt: skip
    counts = [per_workload.get(k, 0) for k in workloads]
    if counts:
        print(
            f"workloads at medium, folded and calibrated: median {statistics.median(counts):g}, "
            f"max {max(counts)}, with none {sum(1 for c in counts if not c)} of {len(counts)}"
        )
    return 0


def _previous(finding: Finding) -> Finding:
    old = PREVIOUS_SEVERITIES.get(finding.rule_id)
    return finding if old is None else finding._replace(severity=old)


def _row(findings: list[Finding], keys: list[ObjectKey], workloads: set[ObjectKey]) -> str:
    on_workloads = sum(1 for f in findings if (f.file, f.doc_index, f.item_index) in workloads)
    per_object = len(findings) / max(len(keys), 1)
    per_workload = on_workloads / max(len(workloads), 1)
    return f"{len(findings):>10} {per_object:>8.2f} {per_workload:>9.2f}"


if __name__ == "__main__":
    sys.exit(main())
