"""Compile the CEL part of a rule file (``variables``, ``validations``) into a CelProgram.

Expressions are parsed and type-checked here, at load time, so a broken rule fails the run
(exit 2) with the rule file, the YAML line of the expression and the CEL error. Nothing is
ever imported or executed: the CEL runtime only parses and checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from kubesentinel.errors import RuleError
from kubesentinel.static.cel_env import (
    CelCompileError,
    CelUnavailable,
    Compiled,
    compile_expression,
)
from kubesentinel.static.cel_lines import expression_line
from kubesentinel.static.cel_rules import CelProgram, Validation, Variable
from kubesentinel.static.podspec import Path
from kubesentinel.static.yamldoc import LineDict

VALIDATION_KEYS = ("expression", "message", "messageExpression", "reason", "fieldPath")
VARIABLE_KEYS = ("name", "expression")
REASONS = ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VARIABLE_REF = re.compile(r"\bvariables\.([A-Za-z_][A-Za-z0-9_]*)")
_FIELD_STEP = re.compile(r"\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']*)'\]")


def compile_rule(doc: LineDict, file: str, source: Sequence[str]) -> CelProgram:
    """Compile a rule's ``variables`` and ``validations``; RuleError names file and line."""
    return _Loader(file, source).program(doc)


@dataclass(frozen=True, slots=True)
class _Loader:
    file: str
    source: Sequence[str]  # the rule file's lines, to place errors inside block scalars

    def program(self, doc: LineDict) -> CelProgram:
        variables = self.variables(doc) if "variables" in doc else []
        known = [v.name for v in variables]
        items = self.mappings(doc, "validations", required=True)
        return CelProgram(
            tuple(
                self.validation(item, f"validations[{i}]", known) for i, item in enumerate(items)
            ),
            tuple(variables),
        )

    def validation(self, item: LineDict, where: str, known: Sequence[str]) -> Validation:
        self.keys(item, ("expression",), VALIDATION_KEYS, where)
        expression = self.text(item, "expression", where)
        compiled = self.compile(item, "expression", where, ("bool", "dyn"))
        uses = self.uses(item, "expression", where, known)
        message_expression = None
        if "messageExpression" in item:
            self.text(item, "messageExpression", where)
            message_expression = self.compile(item, "messageExpression", where, ("string", "dyn"))
            self.uses(item, "messageExpression", where, known)
        if "reason" in item and item["reason"] not in REASONS:
            self.fail(f"{where}.reason must be one of {', '.join(REASONS)}", item, "reason")
        message = (
            self.text(item, "message", where)
            if "message" in item
            else f"failed expression: {expression.strip()}"
        )
        field_path = self.field_path(item, where) if "fieldPath" in item else ()
        where_in_file = f"{self.file}:{item.key_lines['expression']}"
        return Validation(
            expression, compiled, message, message_expression, field_path, where_in_file, uses
        )

    def variables(self, doc: LineDict) -> list[Variable]:
        variables: list[Variable] = []
        for index, item in enumerate(self.mappings(doc, "variables", required=False)):
            where = f"variables[{index}]"
            self.keys(item, VARIABLE_KEYS, VARIABLE_KEYS, where)
            name = self.text(item, "name", where)
            if not _IDENT.match(name):
                self.fail(f"{where}.name {name!r} must be a CEL identifier", item, "name")
            if name in (v.name for v in variables):
                self.fail(f"{where}.name {name!r} is defined twice", item, "name")
            expression = self.text(item, "expression", where)
            uses = self.uses(item, "expression", where, [v.name for v in variables])
            compiled = self.compile(item, "expression", where, ())
            variables.append(Variable(name, expression, compiled, bool(uses)))
        return variables

    def compile(self, item: LineDict, key: str, where: str, types: Sequence[str]) -> Compiled:
        try:
            compiled = compile_expression(str(item[key]))
        except CelUnavailable as exc:  # pragma: no cover - only where no wheel exists
            raise RuleError(f"CEL rules need the CEL runtime, which failed to import: {exc}",
                            file=self.file, line=item.key_lines[key],
                            hint="pip install cel-expr-python") from None  # fmt: skip
        except CelCompileError as exc:
            line = expression_line(self.source, item.key_lines[key], exc.line, exc.column)
            at = f" (expression line {exc.line}, column {exc.column})" if exc.line else ""
            raise RuleError(f"CEL error in {where}.{key}{at}: {exc.message}",
                            file=self.file, line=line) from None  # fmt: skip
        if types and compiled.result_type not in types:
            self.fail(f"{where}.{key} must evaluate to {types[0]}, but its type is "
                      f"{compiled.result_type}", item, key)  # fmt: skip
        return compiled

    def uses(self, item: LineDict, key: str, where: str, known: Sequence[str]) -> tuple[str, ...]:
        """Variables an expression reads; an undefined one is a load error, not a runtime one."""
        names = tuple(dict.fromkeys(_VARIABLE_REF.findall(str(item[key]))))
        for name in names:
            if name not in known:
                defined = ", ".join(known) or "none"
                self.fail(f"{where}.{key} reads variables.{name}, which is not defined before "
                          f"it (defined: {defined})", item, key)  # fmt: skip
        return names

    def field_path(self, item: LineDict, where: str) -> Path:
        """VAP's fieldPath ("spec.containers[0].image", "metadata.labels['team']") as a path."""
        text = self.text(item, "fieldPath", where)
        steps: list[str | int] = []
        at = 0
        while at < len(text):
            match = _FIELD_STEP.match(text, at)
            if match is None or match.end() == at:
                self.fail(f"{where}.fieldPath {text!r}: cannot read it from column {at + 1}",
                          item, "fieldPath")  # fmt: skip
            key, index, quoted = match.groups()
            steps.append(int(index) if index is not None else (key if key is not None else quoted))
            at = match.end()
        return tuple(steps)

    def mappings(self, doc: LineDict, key: str, *, required: bool) -> list[LineDict]:
        value = doc.get(key)
        if not isinstance(value, list) or (required and not value):
            least = " (at least one)" if required else ""
            self.fail(f"{key} must be a list of mappings{least}", doc, key)
        for item in value:
            if not isinstance(item, LineDict):
                self.fail(f"each item of {key} must be a mapping", doc, key)
        return list(value)

    def keys(
        self, item: LineDict, required: Sequence[str], allowed: Sequence[str], where: str
    ) -> None:
        for key in item:
            if key not in allowed:
                self.fail(f"unknown key {key!r} in {where} (allowed: {', '.join(allowed)})",
                          item, key)  # fmt: skip
        for key in required:
            if key not in item:
                raise RuleError(f"{where} has no {key!r}", file=self.file, line=item.line)

    def text(self, item: LineDict, key: str, where: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key} must be a non-empty string", item, key)
        return value

    def fail(self, message: str, node: LineDict, key: str) -> NoReturn:
        raise RuleError(message, file=self.file, line=node.key_lines.get(key, node.line))
