"""Compare two JSON scan reports: a speed change must leave every result exactly as it was.

Findings (rule ids, files, lines, field paths, messages), errors, warnings, notices and the
summary must be identical and in the same order; the tool's own timing fields are ignored.

Usage:
    kubesentinel scan --path DIR --format json --output before.json --severity-threshold low
    (change the code)
    kubesentinel scan --path DIR --format json --output after.json --severity-threshold low
    python bench/compare_scans.py before.json after.json   # exit 0 identical, 1 different
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SECTIONS = ("findings", "errors", "warnings", "notices")
SHOWN = 3


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for section in SECTIONS:
        old, new = before.get(section, []), after.get(section, [])
        if old == new:
            continue
        old_set = {json.dumps(item, sort_keys=True) for item in old}
        new_set = {json.dumps(item, sort_keys=True) for item in new}
        if old_set == new_set:
            out.append(f"{section}: same items, different order")
            continue
        out.append(
            f"{section}: {len(old_set - new_set)} only before, {len(new_set - old_set)} only after"
        )
        out.extend(f"  - {item[:300]}" for item in sorted(old_set - new_set)[:SHOWN])
        out.extend(f"  + {item[:300]}" for item in sorted(new_set - old_set)[:SHOWN])
    if before.get("summary") != after.get("summary"):
        out.append(f"summary: {before.get('summary')} != {after.get('summary')}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args)
    found = differences(before, after)
    for line in found:
        print(line)
    print(f"{'DIFFERENT' if found else 'IDENTICAL'}: {len(before.get('findings', []))} findings "
          f"before, {len(after.get('findings', []))} after")  # fmt: skip
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
