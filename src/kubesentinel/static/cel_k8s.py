"""Part of the Kubernetes CEL libraries, so more admission rules paste unchanged.

Kubernetes adds functions to CEL for ValidatingAdmissionPolicy (k8s.io/apiserver/pkg/cel/library).
This module gives the lists, sets, regex and quantity ones, written in Python against the
runtime's function interface; docs/custom-rules.md says what is still missing. Regular
expressions are Python's ``re`` (the API server uses RE2: the same for common patterns).

A quantity is a map holding its exact value as "numerator/denominator": the runtime has no
opaque types from Python, and equal quantities ("1Gi", "1024Mi") compare equal this way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from typing import Any

_QUANTITY_KEY = "kubernetes.Quantity"
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([a-zA-Z]*)([+-]?[0-9]+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_INT64 = 2**63


def parse_quantity(text: str) -> Fraction:
    """'500m' -> 1/2, '1Gi' -> 1073741824, '1e3' -> 1000; ValueError when not a quantity."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid quantity {text!r}")
    number, suffix, exponent = match.groups()
    value = Fraction(number)
    if exponent is not None and suffix in ("e", "E"):
        return value * Fraction(10) ** int(exponent)
    if exponent is None and suffix in _BINARY:
        return value * _BINARY[suffix]
    if exponent is None and suffix in _DECIMAL:
        return value * Fraction(10) ** _DECIMAL[suffix]
    raise ValueError(f"invalid quantity {text!r}")


def _quantity(value: Fraction) -> dict[str, str]:
    return {_QUANTITY_KEY: f"{value.numerator}/{value.denominator}"}


def _value(quantity: dict[str, Any]) -> Fraction:
    try:
        return Fraction(quantity[_QUANTITY_KEY])
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a quantity (use quantity('...'))") from None


def _as_integer(quantity: dict[str, Any]) -> int:
    value = _value(quantity)
    if value.denominator != 1 or not -_INT64 <= value.numerator < _INT64:
        raise ValueError("quantity is not an integer in int64 range")
    return value.numerator


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def _extreme(pick: Callable[[list[Any]], Any], name: str) -> Callable[[list[Any]], Any]:
    def run(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{name} called on an empty list")
        return pick(items)

    return run


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


def _find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
    x, y = _value(a), _value(b)
    return (x > y) - (x < y)


@cache
def function_declarations() -> list[Any]:
    """The declarations to hand to the CEL environment (imports the runtime: call lazily)."""
    from cel_expr_python import cel

    t = cel.Type
    dyn_list, quantity = t.List(t.DYN), t.Map(t.STRING, t.DYN)
    # name -> [(overload id, result, parameters, member?, implementation)]
    table: dict[str, list[tuple[str, Any, list[Any], bool, Callable[..., Any]]]] = {
        "isSorted": [("list_is_sorted", t.BOOL, [dyn_list], True,
                      lambda xs: all(a <= b for a, b in itertools.pairwise(xs)))],
        "sum": [("list_sum", t.DYN, [dyn_list], True,
                 lambda xs: sum(xs[1:], xs[0]) if xs else 0)],
        "min": [("list_min", t.DYN, [dyn_list], True, _extreme(min, "min"))],
        "max": [("list_max", t.DYN, [dyn_list], True, _extreme(max, "max"))],
        "sets.contains": [("sets_contains", t.BOOL, [dyn_list, dyn_list], False,
                           lambda a, b: all(x in a for x in b))],
        "sets.equivalent": [("sets_equivalent", t.BOOL, [dyn_list, dyn_list], False,
                             lambda a, b: all(x in a for x in b) and all(x in b for x in a))],
        "sets.intersects": [("sets_intersects", t.BOOL, [dyn_list, dyn_list], False,
                             lambda a, b: any(x in a for x in b))],
        "find": [("string_find", t.STRING, [t.STRING, t.STRING], True, _find)],
        "findAll": [
            ("string_find_all", t.List(t.STRING), [t.STRING, t.STRING], True, _find_all),
            ("string_find_all_n", t.List(t.STRING), [t.STRING, t.STRING, t.INT], True,
             _find_all),
        ],
        "quantity": [("quantity_parse", quantity, [t.STRING], False,
                      lambda s: _quantity(parse_quantity(s)))],
        "isQuantity": [("is_quantity", t.BOOL, [t.STRING], False, _is_quantity)],
        "isInteger": [("quantity_is_integer", t.BOOL, [quantity], True,
                       lambda q: _value(q).denominator == 1)],
        "asInteger": [("quantity_as_integer", t.INT, [quantity], True, _as_integer)],
        "asApproximateFloat": [("quantity_as_float", t.DOUBLE, [quantity], True,
                                lambda q: float(_value(q)))],
        "sign": [("quantity_sign", t.INT, [quantity], True,
                  lambda q: (_value(q) > 0) - (_value(q) < 0))],
        "add": [
            ("quantity_add", quantity, [quantity, quantity], True,
             lambda a, b: _quantity(_value(a) + _value(b))),
            ("quantity_add_int", quantity, [quantity, t.INT], True,
             lambda a, n: _quantity(_value(a) + n)),
        ],
        "sub": [
            ("quantity_sub", quantity, [quantity, quantity], True,
             lambda a, b: _quantity(_value(a) - _value(b))),
            ("quantity_sub_int", quantity, [quantity, t.INT], True,
             lambda a, n: _quantity(_value(a) - n)),
        ],
        "compareTo": [("quantity_compare", t.INT, [quantity, quantity], True, _cmp)],
        "isGreaterThan": [("quantity_gt", t.BOOL, [quantity, quantity], True,
                           lambda a, b: _cmp(a, b) > 0)],
        "isLessThan": [("quantity_lt", t.BOOL, [quantity, quantity], True,
                        lambda a, b: _cmp(a, b) < 0)],
    }  # fmt: skip
    return [
        cel.FunctionDecl(name, [cel.Overload(oid, result, params, is_member=member, impl=impl)
                                for oid, result, params, member, impl in overloads])
        for name, overloads in table.items()
    ]  # fmt: skip
