"""The CEL environment: declared variables, error positions, data conversion."""

from __future__ import annotations

import pytest

from kubesentinel.static.cel_env import (
    VARIABLES,
    CelCompileError,
    CelEvalError,
    activation,
    compile_expression,
    evaluate,
    plain,
)
from kubesentinel.static.yamldoc import LineDict, LineList


def test_compile_reports_line_column_and_the_first_error() -> None:
    with pytest.raises(CelCompileError) as info:
        compile_expression("object.a &&\n  object.b ||| c")
    assert (info.value.line, info.value.column) == (2, 14)
    assert info.value.message.startswith("Syntax error: token recognition error")


def test_undeclared_variables_are_compile_errors_declared_ones_are_not() -> None:
    for name in VARIABLES:
        assert compile_expression(f"{name} == null").result_type == "bool"
    with pytest.raises(CelCompileError, match=r"^undeclared reference to 'obj.spec'$"):
        compile_expression("obj.spec == null")


def test_evaluation_errors_are_raised_not_returned() -> None:
    compiled = compile_expression("object.spec.replicas > 1")
    assert evaluate(compiled, activation({"object": {"spec": {"replicas": 2}}})) is True
    with pytest.raises(CelEvalError, match="replicas"):
        evaluate(compiled, activation({"object": {"spec": {}}}))
    with pytest.raises(CelEvalError, match="divide by zero"):
        evaluate(compile_expression("1 / object.n"), activation({"object": {"n": 0}}))


def test_plain_copies_line_keeping_containers_into_plain_ones() -> None:
    body = LineDict(1)
    items = LineList(2)
    items.append(LineDict(3))
    body.update({"items": items, 8: "octal keys become strings", "big": 2**70})
    converted = plain(body)  # 2**70 does not fit JSON's integers: the Python walk takes over
    assert converted == {"items": [{}], "8": "octal keys become strings", "big": 2**70}
    assert type(converted) is dict
    assert type(converted["items"]) is list
    assert type(plain({"a": LineList(1)})["a"]) is list
