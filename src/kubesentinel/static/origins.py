"""Point objects rendered by Helm or Kustomize back at the files they came from.

Helm prints ``# Source: CHART/templates/FILE`` before every document. The object's file is
that template (inside the chart directory), and each line of the rendered document is matched
to the template's own lines (see ``_align``): a line written verbatim in the template
(``hostNetwork: true``, ``kind: Deployment``) or as the templated line of the same key
(``replicas: {{ .Values.replicaCount }}``) is found; a field produced by a block action
(``{{ toYaml .Values.securityContext | nindent 12 }}``) takes the line of the key holding it.

Kustomize adds a ``config.kubernetes.io/origin`` annotation (``path:`` of the resource file)
when the build asks for ``buildMetadata: [originAnnotations]``. The object's file is that
resource file, and lines are matched by structure: the same field path in the source document
(list items by ``name``, else by position). Fields added by a patch or a transformer take the
line of the key that holds them in the source. The annotation is removed before rules run.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kubesentinel.models import K8sObject, SourceRef
from kubesentinel.static.yamldoc import LineDict, LineList, parse_file

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_SOURCE = re.compile(rb"^# Source: (.+?)[ \t\r]*$", re.MULTILINE)
_DOC_START = re.compile(rb"^---(?:[ \t].*)?\r?$", re.MULTILINE)
# difflib is quadratic on dissimilar texts: beyond this many line pairs, unique lines only.
_MAX_ALIGN_PAIRS = 4_000_000


@dataclass(slots=True)
class _Segment:
    """The rendered lines one template produced (several documents for a range loop)."""

    lines: list[int] = field(default_factory=list)  # line numbers in the rendered output
    texts: list[str] = field(default_factory=list)  # those lines, stripped


@dataclass(slots=True)
class HelmOrigins:
    """Where each part of a ``helm template`` output came from."""

    chart_dir: Path
    starts: list[int]  # line of each "# Source:" comment, ascending
    sources: list[str]  # the path printed in that comment
    segments: dict[str, _Segment]
    max_bytes: int
    _maps: dict[str, dict[int, int]] = field(default_factory=dict)

    def relocate(self, obj: K8sObject) -> K8sObject:
        at = bisect.bisect_right(self.starts, obj.source.line) - 1
        if at < 0:
            return obj  # before any "# Source:" comment: keep the rendered output's name
        source = self.sources[at]
        path = _inside(self.chart_dir, Path(*Path(source).parts[1:]))
        name = str(self.chart_dir / Path(*Path(source).parts[1:]))
        if source not in self._maps:
            template = _read_text(path, self.max_bytes) if path is not None else None
            self._maps[source] = _align(self.segments[source], template or "")
        return _remap(obj, name, self._maps[source])


def helm_origins(rendered: bytes, chart_dir: Path, max_bytes: int) -> HelmOrigins:
    starts: list[int] = []
    sources: list[str] = []
    for match in _SOURCE.finditer(rendered):
        starts.append(rendered.count(b"\n", 0, match.start()) + 1)
        sources.append(match.group(1).decode("utf-8", "replace"))
    ends = sorted(rendered.count(b"\n", 0, m.start()) + 1 for m in _DOC_START.finditer(rendered))
    lines = rendered.decode("utf-8", "replace").split("\n")
    segments: dict[str, _Segment] = {}
    for index, (start, source) in enumerate(zip(starts, sources, strict=True)):
        stop = starts[index + 1] if index + 1 < len(starts) else len(lines) + 1
        after = bisect.bisect_right(ends, start)
        if after < len(ends) and ends[after] < stop:
            stop = ends[after]  # the next "---" closes this document
        segment = segments.setdefault(source, _Segment())
        for number in range(start + 1, stop):
            segment.lines.append(number)
            segment.texts.append(lines[number - 1].strip())
    return HelmOrigins(chart_dir, starts, sources, segments, max_bytes)


def _align(segment: _Segment, template: str) -> dict[int, int]:
    """Rendered line -> template line, for the rendered lines the template shows.

    In order: lines aligned verbatim (difflib); between two aligned runs, a ``key: value``
    line and the one templated line of that key there (``replicas: {{ .Values.n }}``);
    then, for documents a loop repeated, a line written once in the template, verbatim or
    as the only templated line of its key.
    """
    texts = [line.strip() for line in template.split("\n")]
    mapping: dict[int, int] = {}
    rendered = segment.texts
    if len(texts) * len(rendered) <= _MAX_ALIGN_PAIRS:
        matcher = difflib.SequenceMatcher(None, rendered, texts, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                pairs = zip(range(i1, i2), range(j1, j2), strict=True)
                mapping.update((segment.lines[i], j + 1) for i, j in pairs if rendered[i])
            elif tag == "replace":
                keyed = _templated_keys(texts, j1, j2)
                for i in range(i1, i2):
                    line = keyed.get(_key(rendered[i]))
                    if line:
                        mapping[segment.lines[i]] = line
    verbatim = _unique(enumerate(texts, start=1))
    keyed = _templated_keys(texts, 0, len(texts))
    for number, text in zip(segment.lines, rendered, strict=True):
        if number not in mapping and text:
            line = verbatim.get(text) or keyed.get(_key(text))
            if line:
                mapping[number] = line
    return mapping


def _unique(numbered: Iterable[tuple[int, str]]) -> dict[str, int]:
    """Text -> its line number; 0 when the text is on more than one line."""
    seen: dict[str, int] = {}
    for number, text in numbered:
        seen[text] = 0 if text in seen else number
    return seen


def _templated_keys(texts: list[str], start: int, stop: int) -> dict[str, int]:
    """``key:`` -> line of the one templated line of that key in texts[start:stop]."""
    keyed = _unique((j + 1, _key(texts[j])) for j in range(start, stop) if "{{" in texts[j])
    keyed.pop("", None)  # lines that are no `key: value` pair match nothing by key
    return keyed


def _key(text: str) -> str:
    """``- name: web`` -> ``- name:``; a line that is not ``key: value`` -> ""."""
    key, colon, _value = text.partition(": ")
    return key + ":" if colon and key and "{{" not in key and not key.startswith("#") else ""


@dataclass(slots=True)
class KustomizeOrigins:
    """Source files named by kustomize's origin annotations, resolved from the build root."""

    build_root: Path  # the directory the origin paths are relative to
    fallback_file: str  # the kustomization file, for objects without an origin
    max_bytes: int
    _sources: dict[Path, list[Any]] = field(default_factory=dict)

    def relocate(self, obj: K8sObject) -> K8sObject:
        origin = _pop_origin(obj)
        if origin is None:
            return replace(obj, source=replace(obj.source, file=self.fallback_file, line=1))
        path = (self.build_root / origin).resolve()
        source = _matching_document(self._documents(path), obj)
        mapping: dict[int, int] = {}
        if source is not None:
            _pair(obj.body, source, mapping)
        return _remap(obj, display_path(path), mapping)

    def _documents(self, path: Path) -> list[Any]:
        if path not in self._sources:
            text = _read_text(path, self.max_bytes)
            parsed = parse_file(text.encode(), str(path)) if text is not None else None
            self._sources[path] = [d.value for d in parsed.documents] if parsed else []
        return self._sources[path]


def _pop_origin(obj: K8sObject) -> str | None:
    """The origin's ``path``, taking the annotation off the object (it is ours, not theirs)."""
    metadata = obj.body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    raw = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        del metadata["annotations"]  # kustomize added it for the origin alone
    try:
        origin = yaml.safe_load(str(raw))
    except yaml.YAMLError:
        return None
    if not isinstance(origin, dict):
        return None
    path = origin.get("path") or origin.get("configuredIn")
    return str(path) if path and not origin.get("repo") else None


def _matching_document(documents: Iterable[Any], obj: K8sObject) -> Any | None:
    """The source document of the same kind whose name the rendered name contains."""
    same_kind = [d for d in documents if isinstance(d, dict) and d.get("kind") == obj.kind]
    if len(same_kind) == 1:
        return same_kind[0]
    for document in same_kind:
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str) and name and name in obj.name:
            return document
    return None


def _pair(rendered: Any, source: Any, mapping: dict[int, int]) -> None:
    if isinstance(rendered, LineDict) and isinstance(source, LineDict):
        mapping[rendered.line] = source.line
        for key, value in rendered.items():
            if key in source and key in rendered.key_lines:
                mapping[rendered.key_lines[key]] = source.key_lines.get(key, source.line)
                _pair(value, source[key], mapping)
    elif isinstance(rendered, LineList) and isinstance(source, LineList):
        mapping[rendered.line] = source.line
        by_name = {_item_name(item): i for i, item in enumerate(source) if _item_name(item)}
        for index, item in enumerate(rendered):
            name = _item_name(item)
            other = by_name.get(name) if name else (index if index < len(source) else None)
            if other is not None:
                mapping[rendered.item_lines[index]] = source.item_lines[other]
                _pair(item, source[other], mapping)


def _item_name(item: Any) -> str | None:
    name = item.get("name") if isinstance(item, Mapping) else None
    return name if isinstance(name, str) else None


def _remap(obj: K8sObject, file: str, mapping: Mapping[int, int]) -> K8sObject:
    """Rewrite every line of the object; a line not mapped takes its enclosing field's."""
    line = mapping.get(obj.source.line, 1)
    _remap_node(obj.body, mapping, line, set())
    return replace(obj, source=SourceRef(file, obj.source.doc_index, obj.source.item_index, line))


def _remap_node(node: Any, mapping: Mapping[int, int], parent: int, seen: set[int]) -> None:
    if not isinstance(node, LineDict | LineList) or id(node) in seen:
        return  # plain data has no lines; a merge-key source shared by two parents: once
    seen.add(id(node))
    node.line = mapping.get(node.line, parent)
    # A field with no line of its own takes the line of the key (or item) that holds it.
    if isinstance(node, LineDict):
        for key, value in node.items():
            line = mapping.get(node.key_lines.get(key, -1), parent)
            node.key_lines[key] = line
            _remap_node(value, mapping, line, seen)
    else:
        for index, value in enumerate(node):
            line = mapping.get(node.item_lines[index], parent)
            node.item_lines[index] = line
            _remap_node(value, mapping, line, seen)


def _inside(root: Path, relative: Path) -> Path | None:
    """``root/relative`` when it stays inside ``root`` (a chart names its own files only)."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None


def _read_text(path: Path, max_bytes: int) -> str | None:
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes:
        return None
    return data.decode("utf-8-sig", "replace")


def display_path(path: Path) -> str:
    """Relative to the working directory when below it, as paths found by walking are."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative
