"""metav1.LabelSelector matching as NetworkPolicy rules read it, edge case by edge case."""

from __future__ import annotations

from typing import Any

import pytest

from kubesentinel.static.predicates.network import selector_matches

LABELS = {"app": "web", "tier": "front", "canary": True, "replicas": 1}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),  # no podSelector: every pod
        ({}, True),
        ({"matchLabels": None}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchLabels": {"canary": "true"}}, True),  # YAML true is the label "true"
        ({"matchLabels": {"replicas": "1"}}, True),
        ({"matchLabels": {"missing": "x"}}, False),
        ({"matchLabels": ["app"]}, False),  # invalid: selects nothing
        ("app=web", False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, True),
        ({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": ["In"]}]}, False),
        ({"matchExpressions": [{"operator": "Exists"}]}, False),  # no key
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}],
            },
            False,  # every requirement must hold
        ),
    ],
)
def test_selector_matches(selector: Any, matches: bool) -> None:
    assert selector_matches(selector, LABELS) is matches
