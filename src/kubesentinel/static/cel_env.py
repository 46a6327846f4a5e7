"""The CEL environment user rules compile in, as close to ValidatingAdmissionPolicy's as we can.

Library: Google's CEL runtime bindings (PyPI ``cel-expr-python``), chosen by measurement
(bench/cel_bench.py, docs/custom-rules.md): 13 us per expression on a Deployment against 71 us
for the Rust bindings and 541 us for pure-Python ``cel-python``, the only one right on all our
Kubernetes-style checks, a type checker that reports line:column, and the strings/optional
extensions VAP rules use. It is imported here,
lazily, the first time a CEL rule is loaded: scans without CEL rules never pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

# VAP's variables (object, oldObject, request, params, namespaceObject, variables) plus
# KubeSentinel's podSpec. Declared dynamic: manifests have no schema here.
VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "podSpec")

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_STATUS = re.compile(r"^[A-Z_]+: ")


class CelUnavailable(Exception):
    """The CEL library is not installed (no wheel for this platform)."""


@dataclass(frozen=True, slots=True)
class CelCompileError(Exception):
    message: str
    line: int  # 1-based line and column inside the expression, 0 when unknown
    column: int

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class CelEvalError(Exception):
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked expression and the type the checker inferred for its result."""

    program: Any
    result_type: str  # "bool", "string", "dyn", "int", ...


@cache
def _env() -> Any:
    try:
        from cel_expr_python import cel
        from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

        from kubesentinel.static.cel_k8s import function_declarations
    except ImportError as exc:  # pragma: no cover - only where no wheel exists
        raise CelUnavailable(str(exc)) from None
    return cel.NewEnv(
        variables=dict.fromkeys(VARIABLES, cel.Type.DYN),
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            ext_bindings.ExtBindings(),
        ],
        functions=function_declarations(),
    )


@cache
def _error_type() -> Any:
    from cel_expr_python import cel

    return cel.Type.ERROR


def compile_expression(text: str) -> Compiled:
    """Parse and type-check; CelCompileError carries the first error and its position."""
    env = _env()
    try:
        program = env.compile(text)
    except RuntimeError as exc:
        raise _compile_error(str(exc)) from None
    return Compiled(program, program.return_type().name().lower())


def _compile_error(text: str) -> CelCompileError:
    """'INVALID_ARGUMENT: ERROR: <input>:1:23: Syntax error: ...\\n | expr\\n | ..^' -> parts."""
    match = _POSITION.search(text)
    if match is None:
        return CelCompileError(text.strip(), 0, 0)
    # "(in container '')": CEL's namespace for names, always empty here.
    message = match.group(3).removesuffix(" [INVALID_ARGUMENT]").replace(" (in container '')", "")
    message = message.strip()
    return CelCompileError(message, int(match.group(1)), int(match.group(2)))


def activation(data: dict[str, Any]) -> Any:
    """Bind the variables once; every expression of a rule then evaluates against them."""
    return _env().Activation(data=data)


def evaluate(compiled: Compiled, bound: Any) -> Any:
    """The plain Python result; CelEvalError for a runtime error (missing key, bad regex...)."""
    value = compiled.program.eval(bound)
    if value.type() == _error_type():
        # "NOT_FOUND: Key not found in map : ..." - the status code says nothing more.
        raise CelEvalError(_STATUS.sub("", str(value.value()), count=1))
    return value.plain_value()


def plain(value: Any) -> Any:
    """Manifest data as plain dicts and lists (the runtime refuses our line-keeping subclasses).

    Keys become strings, as the API server's JSON would have them, and NaN becomes null, which
    JSON cannot carry either. An orjson round trip copies
    a Deployment in 5 us against 12 us for the Python walk, which stays for what JSON cannot
    hold (integers beyond 64 bits).
    """
    import orjson  # only scans with CEL rules need it: kept out of start-up

    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError:
        return _walk(value)


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _walk(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item) for item in value]
    return value
