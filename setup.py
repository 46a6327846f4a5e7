"""Generates the gRPC messages' Python code from the .proto when the package is built.

Everything else is declared in pyproject.toml; this hook exists because generated code is built
by the package, never committed (docs/ai.md, "Generated code"). ``build_py`` runs for a wheel,
an sdist's build and an editable install alike: a wheel gets the modules in its build
directory, an editable install (``pip install -e .``) beside the .proto in the source tree,
where the linked package finds them. grpcio-tools comes from [build-system] requires.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTOS = ("kubesentinel/ai/proto/analyzer.proto",)


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        super().run()
        target = Path("src") if self.editable_mode else Path(self.build_lib)
        generate(Path("src"), target)


def generate(source: Path, target: Path) -> None:
    """``*_pb2.py`` and ``*_pb2.pyi`` of each proto under ``target``, with protoc as
    grpcio-tools bundles it (in process: it is a compiled extension, no binary on PATH)."""
    from grpc_tools import protoc

    for proto in PROTOS:
        args = [
            "protoc",
            f"--proto_path={source}",
            f"--python_out={target}",
            f"--pyi_out={target}",
            str(source / proto),
        ]
        (target / proto).parent.mkdir(parents=True, exist_ok=True)
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")


setup(cmdclass={"build_py": BuildPyWithProtos})
