"""User rules whose condition is CEL, in ValidatingAdmissionPolicy's shape (docs/custom-rules.md).

A rule file gives ``validations`` (and optionally ``variables``) instead of a predicate; they
are compiled by cel_load.py into a CelProgram, which this module runs on objects. Each
validation whose expression is false on an object is a violation, as in VAP; one that cannot
be evaluated is a violation too, saying why (VAP's failurePolicy: Fail).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.cel_env import CelEvalError, Compiled, activation, evaluate, plain
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import POD_TEMPLATE_PATHS, Path
from kubesentinel.static.predicates import Violation


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    expression: str
    compiled: Compiled
    reads_variables: bool  # False: it can share the object's binding (saves a conversion)


@dataclass(frozen=True, slots=True)
class Validation:
    expression: str
    compiled: Compiled
    message: str
    message_expression: Compiled | None
    field_path: Path
    where: str  # "file:line" of the expression, for runtime error messages
    uses: tuple[str, ...]  # names of the variables the expression reads


@dataclass(frozen=True, slots=True)
class CelProgram:
    validations: tuple[Validation, ...]
    variables: tuple[Variable, ...] = ()

    def describe(self) -> list[str]:
        """The rule's CEL, for ``rules explain`` and ``rules list --format json``."""
        lines = [f"variables.{v.name} = {' '.join(v.expression.split())}" for v in self.variables]
        for validation in self.validations:
            lines.append(f"must hold: {' '.join(validation.expression.split())}")
        return lines

    def check(self, obj: K8sObject) -> Iterator[Violation]:
        data, bound = _object_data(obj)
        failed: dict[str, str] = {}
        if self.variables:
            values = _variables(self.variables, data, bound, failed)
            bound = activation({**data, "variables": values})
        for validation in self.validations:
            try:
                result = evaluate(validation.compiled, bound)
            except CelEvalError as exc:
                yield _error(validation, _cause(validation, exc.message, failed))
                continue
            if result is False:
                yield Violation(_message(validation, bound), validation.field_path)
            elif result is not True:
                yield _error(validation, f"returned {type(result).__name__}, not a bool")


def cel_check(obj: K8sObject, ctx: ScanContext, params: Mapping[str, Any]) -> Iterator[Violation]:
    """The predicate every CEL rule runs: its compiled program, kept in the rule's params."""
    program: CelProgram = params["program"]
    return program.check(obj)


_last_data: tuple[K8sObject | None, dict[str, Any], Any] = (None, {}, None)


def _object_data(obj: K8sObject) -> tuple[dict[str, Any], Any]:
    """The variables of one object and their binding, made once however many rules read it."""
    global _last_data  # noqa: PLW0603 - a one-entry cache, replaced on every new object
    if _last_data[0] is not obj:
        body = plain(obj.body)
        group, _, version = obj.api_version.rpartition("/")
        request = {
            "operation": "CREATE",
            "kind": {"group": group, "version": version, "kind": obj.kind},
            "name": obj.name,
            "namespace": obj.namespace or "",
            "dryRun": False,
        }
        data = {
            "object": body,
            "oldObject": None,
            "request": request,
            "params": None,
            "namespaceObject": None,
            "variables": {},
            "podSpec": _pod_spec(body, obj.kind),
        }
        _last_data = (obj, data, activation(data))
    return _last_data[1], _last_data[2]


def _pod_spec(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The pod template's spec (podspec.py knows where each kind keeps it); plain dicts only."""
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return None
    node: Any = body
    for step in (*path, "spec"):
        node = node.get(step) if type(node) is dict else None
    return node if type(node) is dict else None


def _variables(
    variables: Sequence[Variable], data: dict[str, Any], bound: Any, failed: dict[str, str]
) -> dict[str, Any]:
    """VAP variables in order; each sees the earlier ones. Errors surface where one is used."""
    values: dict[str, Any] = {}
    for variable in variables:
        if variable.reads_variables:
            bound = activation({**data, "variables": dict(values)})
        try:
            values[variable.name] = evaluate(variable.compiled, bound)
        except CelEvalError as exc:
            failed[variable.name] = exc.message
    return values


def _cause(validation: Validation, message: str, failed: Mapping[str, str]) -> str:
    for name in validation.uses:
        if name in failed:
            return f"variables.{name} failed: {failed[name]}"
    return message


def _error(validation: Validation, cause: str) -> Violation:
    return Violation(
        f"CEL expression at {validation.where} could not be evaluated ({cause}); counted as a "
        "violation, as ValidatingAdmissionPolicy's failurePolicy: Fail does",
        validation.field_path,
    )


def _message(validation: Validation, bound: Any) -> str:
    """messageExpression when it gives a one-line, non-blank string; else message (VAP rules)."""
    if validation.message_expression is not None:
        try:
            text = evaluate(validation.message_expression, bound)
        except CelEvalError:
            return validation.message
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return text
    return validation.message
