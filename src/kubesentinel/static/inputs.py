"""Find manifest files under the given paths and read them with a size limit."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kubesentinel.errors import InputError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"
HELM_MARKER = "Chart.yaml"
# The file names kustomize itself accepts, in its own order of preference.
KUSTOMIZE_MARKERS = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str  # as shown in findings: the path as given or found, "<stdin>" for "-"
    path: Path | None  # None for stdin
    size: int | None = None  # bytes, when discovery saw it (spares the reader a stat call)


@dataclass(frozen=True, slots=True)
class RenderTarget:
    """A Helm chart or Kustomize directory: rendered by its tool, then scanned."""

    tool: str  # "helm" or "kustomize"
    directory: Path  # as given or found, for the names shown in findings
    marker: str  # Chart.yaml or the kustomization file's name


Discovered = InputFile | RenderTarget | InputError


def discover(paths: Sequence[str]) -> Iterator[Discovered]:
    """Files named directly, and manifest files under directories (sorted, recursive).

    A directory holding Chart.yaml or a kustomization file is one render target and is not
    walked further (its templates and patches are not manifests of their own); naming that
    marker file directly means its directory.
    """
    for raw in paths:
        if raw == STDIN:
            yield InputFile(STDIN_NAME, None)
            continue
        path = Path(raw)
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file() and (target := _render_target(path.parent, [path.name])):
            yield target
        elif path.is_file():
            yield InputFile(raw, path)
        elif path.exists():
            yield InputError("not a regular file or directory", file=raw, code="KS-E016")
        else:
            yield InputError("no such file or directory", file=raw, code="KS-E016")


def _render_target(directory: Path, files: Sequence[str]) -> RenderTarget | None:
    if HELM_MARKER in files:
        return RenderTarget("helm", directory, HELM_MARKER)
    for marker in KUSTOMIZE_MARKERS:
        if marker in files:
            return RenderTarget("kustomize", directory, marker)
    return None


def _walk(root: Path) -> Iterator[Discovered]:
    for directory, subdirs, files in os.walk(root, onerror=None):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        here = Path(directory)
        target = _render_target(here, files)
        if target is not None:
            subdirs[:] = []
            yield target
            continue
        for name in sorted(files):
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                path = here / name
                size = _regular_file_size(path)
                if size is not None:
                    yield InputFile(str(path), path, size)
                else:  # a FIFO, socket or dangling link: reading it could block or fail
                    yield InputError("not a regular file", file=str(path), code="KS-E016")


def _regular_file_size(path: Path) -> int | None:
    """Size of a regular file (links followed); None for anything else. One stat call."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


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
