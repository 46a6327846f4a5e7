"""Where a CEL error inside an expression sits in the rule file."""

from __future__ import annotations

import pytest

from kubesentinel.static.cel_lines import expression_line

SOURCE = """\
validations:
  - expression: "object.a == 1"
  - expression: |
      has(object.a)
      && object.b
  - expression: >-
      has(object.a)
      && object.b
  - expression: has(object.a)
      && object.b
    message: after the block
""".splitlines()


@pytest.mark.parametrize(
    ("key_line", "cel_line", "column", "expected"),
    [
        (2, 1, 5, 2),  # quoted on the key's line
        (3, 1, 3, 4),  # literal block: expression line 1 is the line below the key
        (3, 2, 4, 5),
        (3, 9, 1, 5),  # beyond the block: its last line
        (6, 1, 3, 7),  # folded block: column 3 is on the first folded line
        (6, 1, 20, 8),  # past "has(object.a) " the second line
        (9, 1, 20, 10),  # plain scalar continued on the next line
        (9, 0, 0, 9),  # no position from CEL: the key's line
        (99, 1, 1, 99),  # a line outside the file (never expected): unchanged
    ],
)
def test_expression_line(key_line: int, cel_line: int, column: int, expected: int) -> None:
    assert expression_line(SOURCE, key_line, cel_line, column) == expected


def test_a_block_without_content_stays_on_the_key_line() -> None:
    assert expression_line(["a:", "  - expression: |", "b: 1"], 2, 1, 1) == 2
