"""The Kubernetes CEL library functions we provide, through the real CEL runtime."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from kubesentinel.static.cel_env import CelEvalError, activation, compile_expression, evaluate
from kubesentinel.static.cel_k8s import parse_quantity

OBJECT = {"limits": {"memory": "512Mi", "cpu": "500m"}, "xs": [3, 1, 2], "tag": "app-v12-rc3"}


def run(expression: str) -> Any:
    return evaluate(compile_expression(expression), activation({"object": OBJECT}))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[1, 2, 2].isSorted()", True),
        ("object.xs.isSorted()", False),
        ("object.xs.sum()", 6),
        ("[].sum()", 0),
        ("[1.5, 2.0].sum()", 3.5),
        ("object.xs.min()", 1),
        ("['b', 'a'].max()", "b"),
        ("sets.contains(object.xs, [1, 2])", True),
        ("sets.contains([1], [1, 2])", False),
        ("sets.equivalent([1, 2], [2, 1, 1])", True),
        ("sets.intersects(['a'], ['b'])", False),
        ("object.tag.find('[0-9]+')", "12"),
        ("object.tag.find('x')", ""),
        ("object.tag.findAll('[0-9]+')", ["12", "3"]),
        ("object.tag.findAll('[0-9]+', 1)", ["12"]),
        ("quantity(object.limits.memory).isLessThan(quantity('1Gi'))", True),
        ("quantity(object.limits.memory).isGreaterThan(quantity('1Gi'))", False),
        ("quantity('1Gi') == quantity('1024Mi')", True),
        ("quantity(object.limits.cpu).asApproximateFloat()", 0.5),
        ("quantity('2k').asInteger()", 2000),
        ("quantity('500m').isInteger()", False),
        ("quantity('1.5Gi').add(quantity('512Mi')).compareTo(quantity('2Gi'))", 0),
        ("quantity('1').sub(3).sign()", -1),
        ("quantity('1').add(1).asInteger()", 2),
        ("isQuantity('1x')", False),
        ("isQuantity('1e3')", True),
        ("'abc'.indexOf('c')", 2),  # the strings extension is still there
    ],
)
def test_kubernetes_library_functions(expression: str, expected: object) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("[].max()", "max called on an empty list"),
        ("object.tag.find('[') == ''", "unterminated character set"),
        ("[1, 'a'].isSorted()", "'<=' not supported between instances of 'int' and 'str'"),
        ("quantity('abc') == quantity('1')", "invalid quantity 'abc'"),
        ("quantity('500m').asInteger() == 0", "quantity is not an integer in int64 range"),
        ("quantity('10E').asInteger() == 0", "quantity is not an integer in int64 range"),
    ],
)
def test_kubernetes_library_errors_are_cel_errors(expression: str, error: str) -> None:
    with pytest.raises(CelEvalError, match=error):
        run(expression)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("1Gi", Fraction(2**30)),
        ("1.5Ki", Fraction(1536)),
        ("1e3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("2E-2", Fraction(1, 50)),
        ("+.5", Fraction(1, 2)),
        ("-1n", Fraction(-1, 10**9)),
        ("100u", Fraction(1, 10**4)),
    ],
)
def test_parse_quantity(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1Gb", "1e", "1Ki3", "1..2", "one"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)
