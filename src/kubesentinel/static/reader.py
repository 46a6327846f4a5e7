"""Read manifest files into Kubernetes objects (one step of the scan; runs in workers too)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from kubesentinel.errors import InputError
from kubesentinel.models import K8sObject
from kubesentinel.static.fieldcheck import unknown_fields
from kubesentinel.static.inputs import InputFile, read_limited
from kubesentinel.static.kinds import BUILTIN_KINDS
from kubesentinel.static.objects import Notice, objects_from
from kubesentinel.static.yamldoc import parse_file

DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024


# (rule index in the catalogue, object index, message, line, dotted field path)
Hit = tuple[int, int, str, int, str]
# (rule index, object index): a rule to run again on an object with the whole scan's context
Deferred = tuple[int, int]


@dataclass(slots=True)
class ReadBatch:
    files: list[str] = field(default_factory=list)
    objects: list[K8sObject] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    # Filled by the process that read the batch (engine._batch_checker): hits of the rules that
    # read one object, indexes local to ``objects``; None until then.
    hits: list[Hit] | None = None
    deferred: list[Deferred] = field(default_factory=list)


def read_batch(
    sources: Sequence[InputFile],
    targets: frozenset[str],
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ReadBatch:
    """Parse files into objects; ``targets`` are the kinds rules read field by field."""

    every_kind = "*" in targets  # a CEL rule on every kind reads whole objects

    def is_rule_target(kind: str) -> bool:
        return every_kind or kind in targets or kind.endswith("List")

    batch = ReadBatch(files=[s.name for s in sources])
    for source in sources:
        _read_one(source, is_rule_target, max_file_bytes, batch)
    return batch


def _read_one(
    source: InputFile, is_rule_target: Callable[[str], bool], max_file_bytes: int, batch: ReadBatch
) -> None:
    try:
        data = read_limited(source, max_file_bytes)
    except InputError as exc:
        batch.errors.append(exc)
        return
    read_bytes(data, source.name, is_rule_target, batch)


def read_bytes(
    data: bytes, name: str, is_rule_target: Callable[[str], bool], batch: ReadBatch
) -> None:
    """Parse one file's bytes into ``batch`` (also used for rendered Helm/Kustomize output)."""
    parsed = parse_file(data, name, is_rule_target)
    batch.errors.extend(parsed.errors)
    batch.warnings.extend(parsed.warnings)
    for document in parsed.documents:
        for item in objects_from(document, name):
            if isinstance(item, Notice):
                batch.notices.append(item)
            elif is_rule_target(item.kind):
                batch.objects.append(item)
                batch.warnings.extend(unknown_fields(item))
            else:
                batch.objects.append(_slim(item))
                if item.kind not in BUILTIN_KINDS:
                    batch.notices.append(_unknown_kind(item))
    if not parsed.documents and not parsed.errors:
        batch.notices.append(Notice(name, 1, "no YAML documents (empty file)"))


def _unknown_kind(obj: K8sObject) -> Notice:
    return Notice(
        obj.source.file,
        obj.source.line,
        f"kind {obj.kind} ({obj.api_version}) is not a built-in Kubernetes kind; "
        "only kind-independent rules apply",
    )


def _slim(obj: K8sObject) -> K8sObject:
    """Objects no kind-specific rule reads keep only their identity (saves memory and IPC)."""
    body = {key: obj.body[key] for key in ("apiVersion", "kind", "metadata") if key in obj.body}
    return replace(obj, body=body)
