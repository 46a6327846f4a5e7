"""The analyzer service's wire format: ``analyzer.proto`` and the ``analyzer_pb2`` module that
protoc generates from it when the package is built (setup.py; never committed).

Import ``messages()`` rather than the generated module, so that a source tree that was never
built says what to do instead of failing with a bare ImportError.
"""

from __future__ import annotations

from types import ModuleType

from kubesentinel.errors import AIError

__all__ = ["SERVICE", "messages", "require_grpc"]

SERVICE = "kubesentinel.ai.v1.Analyzer"


_EXTRA = "install the service's extra: pip install 'kubesentinel[ai-serve]'"


def require_grpc() -> None:
    """AIError saying what to install when grpcio or its health service is missing."""
    try:
        import grpc  # noqa: F401 (checking that it imports)
        from grpc_health.v1 import health  # noqa: F401
    except ImportError as exc:
        raise AIError(
            f"the analyzer service needs {exc.name or 'grpcio'}, which is not installed",
            hint=_EXTRA,
        ) from None


def messages() -> ModuleType:
    """The generated ``analyzer_pb2`` module (protobuf only; grpc is not imported)."""
    try:
        from kubesentinel.ai.proto import analyzer_pb2
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise AIError(
            f"the analyzer service's generated code cannot be imported ({missing})",
            hint=_EXTRA + " (a source tree needs `pip install -e .` to generate it from the "
            ".proto)",
        ) from None
    return analyzer_pb2
