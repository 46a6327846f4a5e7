"""Broken CEL rules: each load error names the rule file, the line and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.static.cel_helpers import HEAD, load_error


def test_a_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - message: ok
            expression: "object.spec.replicas >"
        """)  # fmt: skip
    assert error.line == 10
    assert "CEL error in validations[0].expression (expression line 1, column 23)" in error.message
    assert "Syntax error" in error.message


def test_an_error_inside_a_literal_block_points_at_its_own_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - expression: |
              has(object.spec) &&
              object.spec.containers.all(c, c.image.startsWith(1))
        """)  # fmt: skip
    assert error.line == 11
    assert "no matching overload for 'startsWith'" in error.message
    assert "(expression line 2, column" in error.message


def test_an_error_inside_a_folded_block_points_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - expression: >-
              has(object.spec)
              && object.spec.containers.exists(c, foo(c))
        """)  # fmt: skip
    assert error.line == 11
    assert "undeclared reference to 'foo'" in error.message


def test_type_errors_are_caught_at_load_time(tmp_path: Path) -> None:
    error = load_error(tmp_path, "kinds: [Pod]\nvalidations:\n  - expression: \"1 + 'a' == 2\"\n")
    assert error.line == 9
    assert "no matching overload for '_+_' applied to '(int, string)'" in error.message
    error = load_error(tmp_path, "kinds: [Pod]\nvalidations:\n  - expression: \"'abc'\"\n")
    assert error.line == 9
    assert "validations[0].expression must evaluate to bool, but its type is string" in str(error)
    error = load_error(
        tmp_path,
        "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    messageExpression: '1 + 2'\n",
    )
    assert error.line == 10
    assert "messageExpression must evaluate to string, but its type is int" in error.message


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("kinds: [Pod]\nvalidations: []\n", 8, "validations must be a list of mappings"),
        ("kinds: [Pod]\nvalidations: [true]\n", 8, "each item of validations must be a mapping"),
        ("kinds: [Pod]\nvalidations:\n  - message: x\n", 9, "validations[0] has no 'expression'"),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    mesage: x\n",
            10,
            "unknown key 'mesage' in validations[0] (allowed: expression, message,",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    reason: Bad\n",
            10,
            "validations[0].reason must be one of Unauthorized, Forbidden, Invalid",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    fieldPath: 'spec..x'\n",
            10,
            "validations[0].fieldPath 'spec..x': cannot read it from column 5",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'variables.x'\n",
            9,
            "validations[0].expression reads variables.x, which is not defined before it",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: b\n    expression: variables.a\n"
            "  - name: a\n    expression: '1'\nvalidations:\n  - expression: 'true'\n",
            10,
            "variables[0].expression reads variables.a, which is not defined before it",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: a\n    expression: '1'\n"
            "  - name: a\n    expression: '2'\nvalidations:\n  - expression: 'true'\n",
            11,
            "variables[1].name 'a' is defined twice",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: my-var\n    expression: '1'\n"
            "validations:\n  - expression: 'true'\n",
            9,
            "variables[0].name 'my-var' must be a CEL identifier",
        ),
        (
            "kinds: [Pod]\nparams: {a: 1}\nvalidations:\n  - expression: 'true'\n",
            8,
            "unknown key 'params'",
        ),
        (
            "kinds: [Pod]\npredicate: pod_flag_true\nvalidations:\n  - expression: 'true'\n",
            8,
            "unknown key 'predicate'",
        ),
        ("kinds: [Pod]\n", 1, "a rule needs either 'predicate' (a built-in check) or 'validat"),
        ("kinds: [Pod]\npredicate: cel\n", 8, "unknown predicate 'cel'"),
    ],
)
def test_broken_rules_name_the_line_and_the_problem(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    error = load_error(tmp_path, body)
    assert (error.line, error.code) == (line, "KS-E020")
    assert message in error.message


def test_missing_id_and_duplicate_builtin_id_are_errors(tmp_path: Path) -> None:
    body = "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n"
    error = load_error(tmp_path, body, HEAD.replace("id: ACME-0001\n", ""))
    assert (error.line, error.message) == (1, "missing key 'id'")
    error = load_error(tmp_path, body, HEAD.replace("ACME-0001", "KS-0001"))
    assert error.message.startswith("duplicate rule id KS-0001 (also in ")
