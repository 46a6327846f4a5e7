"""Render Helm charts and Kustomize directories with their own tools, then read the output.

The tools run without a shell, with a time limit, and their output is size-limited like any
manifest file. Findings point back at the template or resource file (see ``origins``).

Kustomize runs on a temporary kustomization that lists the user's directory as its only
resource and adds ``buildMetadata: [originAnnotations]``, so the user's files are never
changed; if that wrapper cannot be built, the directory is built as it is (without origins).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kubesentinel.errors import InputError
from kubesentinel.static.fieldcheck import unknown_fields
from kubesentinel.static.inputs import RenderTarget
from kubesentinel.static.reader import ReadBatch, read_bytes

if TYPE_CHECKING:  # origins load only when a chart or kustomization is rendered
    from kubesentinel.static.origins import HelmOrigins, KustomizeOrigins

RENDER_TIMEOUT_S = 120.0
HELM_INSTALL = "install helm 3: https://helm.sh/docs/intro/install/"
KUSTOMIZE_INSTALL = (
    "install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize "
    "(https://kubectl.docs.kubernetes.io/installation/kustomize/)"
)
_STDERR_TAIL = 600  # characters of the tool's error output shown


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What ``helm template`` is given; Kustomize takes no options."""

    release: str = "release-name"  # helm's own default name
    namespace: str | None = None
    values: tuple[str, ...] = ()
    set_values: tuple[str, ...] = ()
    timeout_s: float = RENDER_TIMEOUT_S


def render_all(
    targets: Sequence[RenderTarget],
    rule_targets: frozenset[str],
    options: RenderOptions,
    max_bytes: int,
) -> ReadBatch:
    """Render each target and read its objects; a target that fails is an error, not fatal."""

    def is_rule_target(kind: str) -> bool:
        return kind in rule_targets or kind.endswith("List")

    batch = ReadBatch()
    for target in targets:
        try:
            if target.tool == "helm":
                _read_helm(target, options, max_bytes, is_rule_target, batch)
            else:
                _read_kustomize(target, options, max_bytes, is_rule_target, batch)
        except InputError as exc:
            batch.errors.append(exc)
    return batch


def _read_helm(
    target: RenderTarget,
    options: RenderOptions,
    max_bytes: int,
    is_rule_target: Callable[[str], bool],
    batch: ReadBatch,
) -> None:
    import shutil  # only when rendering: not at start-up

    helm = shutil.which("helm")
    if helm is None:
        raise InputError(
            "Helm chart: the helm binary is not on PATH, so the chart cannot be rendered",
            file=str(target.directory),
            hint=HELM_INSTALL,
            code="KS-E017",
        )
    argv = [helm, "template", options.release, str(target.directory)]
    if options.namespace:
        argv += ["--namespace", options.namespace]
    for values in options.values:
        argv += ["--values", values]
    for assignment in options.set_values:
        argv += ["--set", assignment]
    rendered = run_tool(argv, target, options.timeout_s, max_bytes)
    read_helm_output(rendered, target.directory, max_bytes, is_rule_target, batch)


def read_helm_output(
    rendered: bytes,
    chart_dir: Path,
    max_bytes: int,
    is_rule_target: Callable[[str], bool],
    batch: ReadBatch,
) -> None:
    """Objects of a ``helm template`` output, each moved to its template file and line."""
    from kubesentinel.static.origins import helm_origins

    origins = helm_origins(rendered, chart_dir, max_bytes)
    _read_rendered(rendered, f"{chart_dir} (helm template)", origins, is_rule_target, batch)


def _read_kustomize(
    target: RenderTarget,
    options: RenderOptions,
    max_bytes: int,
    is_rule_target: Callable[[str], bool],
    batch: ReadBatch,
) -> None:
    import tempfile  # only when rendering: not at start-up

    command = kustomize_command()
    if command is None:
        raise InputError(
            "Kustomize directory: neither kubectl nor kustomize is on PATH, so it cannot be built",
            file=str(target.directory),
            hint=KUSTOMIZE_INSTALL,
            code="KS-E017",
        )
    kustomization = str(target.directory / target.marker)
    with tempfile.TemporaryDirectory(prefix="kubesentinel-kustomize-") as wrapper:
        root = Path(wrapper)
        try:
            relative = os.path.relpath(target.directory.resolve(), root)
        except ValueError:  # another drive on Windows: no wrapper, no origins
            relative = None
        rendered: bytes | None = None
        if relative is not None:
            (root / "kustomization.yaml").write_text(
                f"resources:\n- {_quote(relative)}\nbuildMetadata: [originAnnotations]\n",
                encoding="utf-8",
            )
            try:
                rendered = run_tool([*command, wrapper], target, options.timeout_s, max_bytes)
            except InputError:
                rendered = None  # the plain build below reports the real error
        if rendered is None:
            argv = [*command, str(target.directory)]
            rendered = run_tool(argv, target, options.timeout_s, max_bytes)
        from kubesentinel.static.origins import KustomizeOrigins

        origins = KustomizeOrigins(root, kustomization, max_bytes)
        name = f"{target.directory} (kustomize build)"
        _read_rendered(rendered, name, origins, is_rule_target, batch)


def kustomize_command() -> list[str] | None:
    """The standalone kustomize when installed (usually newer), else ``kubectl kustomize``."""
    import shutil  # only when rendering: not at start-up

    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    kubectl = shutil.which("kubectl")
    return [kubectl, "kustomize"] if kubectl is not None else None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_rendered(
    rendered: bytes,
    name: str,
    origins: HelmOrigins | KustomizeOrigins,
    is_rule_target: Callable[[str], bool],
    batch: ReadBatch,
) -> None:
    """Parse the tool's output, then move every object to the file it came from."""
    part = ReadBatch()
    read_bytes(rendered, name, is_rule_target, part)
    batch.files.append(name)
    batch.errors.extend(part.errors)
    # Parse problems stay on the rendered output's lines; misspelt fields are found again
    # below, once the objects point at their sources.
    batch.warnings.extend(w for w in part.warnings if w.code != "KS-W002")
    batch.notices.extend(n for n in part.notices if not n.message.startswith("no YAML documents"))
    # Objects of several renders may share a source file: number them past the ones before.
    offset = max((o.source.doc_index for o in batch.objects), default=-1) + 1
    for obj in part.objects:
        moved = origins.relocate(obj)
        index = moved.source.doc_index + offset
        moved = replace(moved, source=replace(moved.source, doc_index=index))
        batch.objects.append(moved)
        if is_rule_target(moved.kind):
            batch.warnings.extend(unknown_fields(moved))


def run_tool(argv: list[str], target: RenderTarget, timeout_s: float, max_bytes: int) -> bytes:
    """Run a renderer; its stdout, or an error quoting the end of its stderr."""
    import subprocess  # only when rendering: not at start-up

    tool = Path(argv[0]).name
    shown = " ".join([tool, *argv[1:3]])
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(
            f"{shown} did not finish within {timeout_s:g} s",
            file=str(target.directory),
            code="KS-E019",
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot run {tool}: {exc.strerror or exc}", file=str(target.directory), code="KS-E019"
        ) from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        detail = stderr[-_STDERR_TAIL:] or f"exit status {done.returncode}"
        raise InputError(
            f"{shown} failed: {' '.join(detail.split())}",
            file=str(target.directory),
            code="KS-E019",
        )
    if len(done.stdout) > max_bytes:
        raise InputError(
            f"{shown} printed more than the {max_bytes // (1024 * 1024)} MB limit; not parsed",
            file=str(target.directory),
            hint="raise static.max_file_size_mb in config.yaml if this output is expected",
            code="KS-E018",
        )
    return done.stdout
