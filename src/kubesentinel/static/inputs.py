"""Find manifest files under the given paths and read them with a size limit."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kubesentinel.errors import InputError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str  # as shown in findings: the path as given or found, "<stdin>" for "-"
    path: Path | None  # None for stdin


def discover(paths: Sequence[str]) -> Iterator[InputFile | InputError]:
    """Files named directly, and manifest files under directories (sorted, recursive)."""
    for raw in paths:
        if raw == STDIN:
            yield InputFile(STDIN_NAME, None)
            continue
        path = Path(raw)
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file():
            yield InputFile(raw, path)
        elif path.exists():
            yield InputError("not a regular file or directory", file=raw, code="KS-E016")
        else:
            yield InputError("no such file or directory", file=raw, code="KS-E016")


def _walk(root: Path) -> Iterator[InputFile | InputError]:
    for directory, subdirs, files in os.walk(root, onerror=None):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        here = Path(directory)
        if "Chart.yaml" in files:
            subdirs[:] = []
            yield InputError(
                "Helm chart: templates must be rendered before scanning",
                file=str(here),
                hint=f"run: helm template {here} | kubesentinel scan --path -",
                code="KS-E017",
            )
            continue
        for name in sorted(files):
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                path = here / name
                if path.is_file():
                    yield InputFile(str(path), path)
                else:  # a FIFO, socket or dangling link: reading it could block or fail
                    yield InputError("not a regular file", file=str(path), code="KS-E016")


def read_limited(source: InputFile, max_bytes: int) -> bytes:
    """Read a whole input, refusing anything larger than ``max_bytes`` without loading it."""
    try:
        if source.path is None:
            return _read_stream(sys.stdin.buffer, source.name, max_bytes)
        with source.path.open("rb") as stream:
            return _read_stream(stream, source.name, max_bytes)
    except OSError as exc:
        raise InputError(
            f"cannot read: {exc.strerror or exc}", file=source.name, code="KS-E016"
        ) from None


def _read_stream(stream: BinaryIO, name: str, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(
            f"larger than the {max_bytes // (1024 * 1024)} MB limit; not parsed",
            file=name,
            hint="raise static.max_file_size_mb in config.yaml if this file is expected",
            code="KS-E018",
        )
    return data
