"""The built-in rules in one JSON file, written from their YAML files by ``make docs``.

Every scan loads the catalogue: reading and checking 67 YAML files took 12 ms of start-up, one
JSON read takes under 1 ms. The YAML files stay the source; tests/static/test_catalogue.py
fails when the bundle does not hold exactly the rules they hold (run ``make docs``). Only
built-in rules are bundled: user rules (CEL) are always read from their files.

Usage: python -m kubesentinel.static.rulebundle > src/kubesentinel/static/rules.bundle.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from kubesentinel.models import References, Rule, Severity

BUNDLE = Path(__file__).parent / "rules.bundle.json"
FORMAT = 3  # bumped when the layout below changes


def dump(rules: Sequence[Rule]) -> str:
    """The rules as JSON; their files named relative to the rules directory."""
    items = []
    for rule in rules:
        item: dict[str, Any] = {field.name: getattr(rule, field.name) for field in fields(rule)}
        item["severity"] = rule.severity.label
        item["references"] = {f.name: getattr(rule.references, f.name) for f in fields(References)}
        item["source_file"] = Path(rule.source_file).name
        items.append(item)
    return json.dumps({"format": FORMAT, "rules": items}, indent=1, sort_keys=True) + "\n"


def load(data: bytes, rules_dir: Path) -> tuple[Rule, ...] | None:
    """The bundled rules; None when the bundle has another layout (then read the YAML)."""
    bundle = json.loads(data)
    if bundle.get("format") != FORMAT:
        return None
    return tuple(_rule(item, rules_dir) for item in bundle["rules"])


def _rule(item: dict[str, Any], rules_dir: Path) -> Rule:
    references = {key: tuple(values) for key, values in item["references"].items()}
    return Rule(
        id=item["id"],
        title=item["title"],
        severity=Severity.parse(item["severity"]),
        category=item["category"],
        description=item["description"],
        remediation=item["remediation"],
        kinds=tuple(item["kinds"]),
        predicate=item["predicate"],
        params=item["params"],
        references=References(**references),
        aliases=tuple(item["aliases"]),
        reads=tuple(item["reads"]),
        runtime_impact=item["runtime_impact"],
        source_file=str(rules_dir / item["source_file"]),
        implies=tuple(item["implies"]),
    )


if __name__ == "__main__":
    from kubesentinel.static.catalogue import BUILTIN_DIR, load_catalogue

    sys.stdout.write(dump(load_catalogue([BUILTIN_DIR]).rules))
