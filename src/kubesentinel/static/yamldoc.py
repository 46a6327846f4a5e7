"""Split a manifest file into YAML documents and build plain data with line numbers.

Semantics follow what kubectl reads (go-yaml v2, YAML 1.1): ``yes``/``on``/``y`` are booleans,
``0644`` is octal, merge keys work, duplicate keys keep the last value (with a warning), and
timestamps stay strings. Nothing is ever constructed from a tag: ``!!python/object`` is data.

Documents are cut at ``---`` lines first, so one broken document does not hide the others, and
documents of kinds no rule reads are only validated by a fast parser when one is installed
(fastdoc), which keeps just their apiVersion, kind and metadata.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.cyaml import CParser  # type: ignore[attr-defined]

from kubesentinel.errors import InputError
from kubesentinel.static import fastdoc

MAX_DEPTH = 200
MAX_EXPANDED_NODES = 2_000_000

_KIND_VALUE = re.compile(rb"[ \t]*[\"']?([A-Za-z0-9]*)")
_MARKER_END = frozenset(b" \t\r\n")
_NEWLINE = ord("\n")
_BRACKETS = re.compile(rb"[\[\]{}]")

_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_SPECIAL_FLOATS = {
    ".inf": float("inf"),
    ".Inf": float("inf"),
    ".INF": float("inf"),
    "+.inf": float("inf"),
    "+.Inf": float("inf"),
    "+.INF": float("inf"),
    "-.inf": float("-inf"),
    "-.Inf": float("-inf"),
    "-.INF": float("-inf"),
    ".nan": float("nan"),
    ".NaN": float("nan"),
    ".NAN": float("nan"),
}
_NUMBER_START = frozenset("+-.0123456789")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INT_BASES = {"0x": 16, "0o": 8, "0b": 2}
_TAG = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP = _TAG + "str", _TAG + "seq", _TAG + "map"
_WORDS = _TRUE | _FALSE | _NULL  # plain scalars that resolve_plain does not keep as text
_ScalarNode, _SequenceNode = yaml.ScalarNode, yaml.SequenceNode


class _Loader(CParser):
    """libyaml's parser and composer; tags are resolved later by _Builder, with go-yaml rules."""

    def __init__(self, stream: bytes) -> None:
        CParser.__init__(self, stream)

    def descend_resolver(self, parent: Any, index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


def resolve_plain(text: str) -> Any:
    """A plain (unquoted) scalar as go-yaml v2 reads it: null, bool, int, float or string."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text[0] not in _NUMBER_START:
        return text
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    plain = text.replace("_", "")
    body = plain.lstrip("+-")
    sign = -1 if plain.startswith("-") else 1
    try:
        base = _INT_BASES.get(body[:2].lower())
        if base is not None:
            return sign * int(body[2:], base)
        if len(body) > 1 and body[0] == "0" and body.isdigit():
            return sign * int(body, 8)  # YAML 1.1 octal, as in "defaultMode: 0644"
        if body.isdigit():
            return sign * int(body)
    except ValueError:
        pass
    if _FLOAT.match(plain):
        return float(plain)
    return text


class LineDict(dict[str, Any]):
    """A mapping that remembers its own line and the line of each key (1-based)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Parse workers send these back by pickle; the default reduce of a slotted dict
        # subclass runs in Python per object and made unpickling cost more than parsing.
        return _line_dict, (self.line, self.key_lines), None, None, iter(self.items())


class LineList(list[Any]):
    """A sequence that remembers its own line and the line of each item (1-based)."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def __reduce__(self) -> tuple[Any, ...]:
        return _line_list, (self.line, self.item_lines), None, iter(self)


def _line_dict(line: int, key_lines: dict[str, int]) -> LineDict:
    mapping = _new_dict(LineDict)  # no __init__: the lines come with the pickle
    mapping.line, mapping.key_lines = line, key_lines
    return mapping


def _line_list(line: int, item_lines: list[int]) -> LineList:
    seq = _new_list(LineList)
    seq.line, seq.item_lines = line, item_lines
    return seq


_new_dict, _new_list = dict.__new__, list.__new__


@dataclass(frozen=True, slots=True)
class Document:
    index: int  # counts non-empty documents only, as peers number them
    line: int
    value: Any


@dataclass(slots=True)
class ParsedFile:
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)


def decode(data: bytes, filename: str) -> str:
    """Bytes to text, refusing binary files and invalid UTF-8 with the line of the fault."""
    nul = data.find(b"\x00")
    if nul != -1:
        raise InputError(
            "binary data (NUL byte); not a YAML or JSON manifest",
            file=filename,
            line=data.count(b"\n", 0, nul) + 1,
            code="KS-E011",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            file=filename,
            line=data.count(b"\n", 0, exc.start) + 1,
            hint="save the file as UTF-8",
            code="KS-E012",
        ) from None


def parse_file(
    data: bytes, filename: str, is_rule_target: Callable[[str], bool] = lambda _kind: True
) -> ParsedFile:
    """Parse every document of one file; errors are collected per document, never raised."""
    result = ParsedFile()
    try:
        if not data.isascii() or b"\x00" in data:  # ASCII without NUL is valid UTF-8 as is
            decode(data, filename)
    except InputError as exc:
        result.errors.append(exc)
        return result
    index = 0
    for start_line, chunk in _chunks(data):
        for value, line in _parse_chunk(chunk, start_line, filename, is_rule_target, result):
            if value is None:
                continue
            result.documents.append(Document(index, line, value))
            index += 1
    if result.errors and not result.documents and filename.endswith(".json"):
        _parse_json_fallback(data, filename, result)
    return result


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Cut at ``---`` lines. The spec forbids ``---`` at column 0 inside any scalar."""
    starts = [
        at for at in _line_starts_with(data, b"---")
        if at + 3 == len(data) or data[at + 3] in _MARKER_END
    ]  # fmt: skip
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, len(data)]
    line = 1
    for begin, end in itertools.pairwise(bounds):
        yield line, _move_directives(data[begin:end])
        if end < len(data):  # the last chunk's lines are not counted: nothing follows it
            line += data.count(b"\n", begin, end)


def _line_starts_with(data: bytes, prefix: bytes) -> Iterator[int]:
    """Offsets of lines starting with ``prefix`` (bytes.find is far faster than a regex here)."""
    if data.startswith(prefix):
        yield 0
    needle = b"\n" + prefix
    at = data.find(needle)
    while at != -1:
        yield at + 1
        at = data.find(needle, at + 1)


def _first_top_level_kind(chunk: bytes) -> bytes | None:
    """Value of the first column-0 ``kind:`` line, read without parsing.

    The first is enough: a second top-level ``kind`` is a duplicate key, which the fast parser
    refuses, and the kind it parses is checked again. Not looking further saves a pass over
    each large document.
    """
    for at in _line_starts_with(chunk, b"kind:"):
        match = _KIND_VALUE.match(chunk, at + 5)
        return match.group(1) if match else b""
    return None


def _move_directives(chunk: bytes) -> bytes:
    # A "%YAML" line belongs to the next document; blank it here (keeping line numbers).
    if not _has_directive_line(chunk):
        return chunk
    lines = chunk.split(b"\n")
    return b"\n".join(b"" if ln.startswith(b"%") and i else ln for i, ln in enumerate(lines))


def _has_directive_line(chunk: bytes) -> bool:
    """Whether a line after the first starts with "%". Each "%" is found with memchr and its
    previous byte checked: searching for "\n%" itself is 25 times slower, as newlines abound
    (CRD descriptions hold many "%", as in "100%")."""
    at = chunk.find(b"%", 1)
    while at != -1:
        if chunk[at - 1] == _NEWLINE:
            return True
        at = chunk.find(b"%", at + 1)
    return False


def _parse_chunk(
    chunk: bytes,
    start_line: int,
    filename: str,
    is_rule_target: Callable[[str], bool],
    result: ParsedFile,
) -> Iterator[tuple[Any, int]]:
    fast = _fast_parse(chunk, is_rule_target)
    if fast is not None:
        yield fast, start_line + _first_content_line(chunk)
        return
    if _bracket_depth(chunk) > MAX_DEPTH:
        result.errors.append(
            InputError(
                f"nesting deeper than {MAX_DEPTH} levels; refusing to parse",
                file=filename,
                line=start_line,
                code="KS-E014",
            )
        )
        return
    builder = _Builder(filename, start_line, result)
    try:
        for node in _compose_all(chunk):
            try:
                yield builder.build(node, b"*" in chunk), start_line + node.start_mark.line
            except InputError as exc:
                result.errors.append(exc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = start_line + mark.line if mark is not None else start_line
        problem = exc.problem or exc.context or "malformed YAML"
        result.errors.append(
            InputError(f"malformed YAML: {problem}", file=filename, line=line, code="KS-E013")
        )
    except yaml.YAMLError as exc:
        result.errors.append(
            InputError(f"malformed YAML: {exc}", file=filename, line=start_line, code="KS-E013")
        )


def _compose_all(chunk: bytes) -> Iterator[yaml.Node]:
    loader = _Loader(chunk)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


def _fast_parse(chunk: bytes, is_rule_target: Callable[[str], bool]) -> Any | None:
    """Identity of a document no rule will read (fastdoc); None means take the full path."""
    kind = _first_top_level_kind(chunk)
    if kind is None or is_rule_target(kind.decode()):
        return None
    value = fastdoc.identity(chunk)
    if value is None or is_rule_target(value["kind"]):
        return None
    if fastdoc.repeats_anchor(chunk) and not _composes(chunk):
        return None  # the full path reports libyaml's error with its line
    return value


def _composes(chunk: bytes) -> bool:
    if _bracket_depth(chunk) > MAX_DEPTH:
        return False
    try:
        for _node in _compose_all(chunk):
            pass
    except yaml.YAMLError:
        return False
    return True


def _first_content_line(chunk: bytes) -> int:
    # Walks lines with find: splitting a 1 MB CRD into lines just to find its first key is slow.
    line = at = 0
    while at < len(chunk):
        end = chunk.find(b"\n", at)
        end = len(chunk) if end == -1 else end
        text = chunk[at:end].strip()
        if text and not text.startswith(b"#") and text != b"---":
            return line
        line += 1
        at = end + 1
    return 0


def _bracket_depth(chunk: bytes) -> int:
    """Upper bound of flow nesting; libyaml's composer crashes on very deep flow collections."""
    if chunk.count(b"[") + chunk.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(chunk):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def _parse_json_fallback(data: bytes, filename: str, result: ParsedFile) -> None:
    """JSON that YAML 1.1 refuses (tabs, rare escapes) still loads; else report JSON's error."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        result.errors[:] = [
            InputError(
                f"malformed JSON: {exc.msg} (column {exc.colno})",
                file=filename,
                line=exc.lineno,
                code="KS-E013",
            )
        ]
        return
    except RecursionError:
        return  # keep the YAML error, which already names the line
    result.errors.clear()
    if value is not None:
        result.documents.append(Document(0, 1, value))


class _Builder:
    """Turn composed nodes into LineDict/LineList/scalars with go-yaml v2 semantics."""

    def __init__(self, filename: str, start_line: int, result: ParsedFile) -> None:
        self.filename = filename
        self.offset = start_line
        self.result = result

    def build(self, node: yaml.Node, has_aliases: bool = True) -> Any:
        if has_aliases:
            self._check_expansion(node)
        return self._build(node, 0)

    def _error(self, message: str, node: yaml.Node, code: str) -> InputError:
        return InputError(
            message, file=self.filename, line=self.offset + node.start_mark.line, code=code
        )

    def _check_expansion(self, root: yaml.Node) -> None:
        """Refuse alias bombs: count nodes as if every alias were copied out."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: yaml.Node, depth: int) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active:
                raise self._error("recursive YAML alias", node, "KS-E015")
            if depth > MAX_DEPTH:
                raise self._error(f"nesting deeper than {MAX_DEPTH} levels", node, "KS-E014")
            total = 1
            if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
                active.add(key)
                children = (
                    node.value
                    if isinstance(node, yaml.SequenceNode)
                    else [c for pair in node.value for c in pair]
                )
                for child in children:
                    total += size(child, depth + 1)
                    if total > MAX_EXPANDED_NODES:
                        raise self._error(
                            f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                            "(alias bomb); refusing to expand",
                            node,
                            "KS-E015",
                        )
                active.discard(key)
            sizes[key] = total
            return total

        size(root, 0)

    def _build(self, node: yaml.Node, depth: int) -> Any:
        # The hot loop of target documents: scalars are built inline and plain keys that need
        # no resolving (most of them) skip _key; the results equal _key/_scalar's exactly.
        if type(node) is _ScalarNode:
            return self._scalar(node)
        if depth > MAX_DEPTH:
            raise self._error(f"nesting deeper than {MAX_DEPTH} levels", node, "KS-E014")
        if type(node) is _SequenceNode:
            return self._sequence(node, depth)
        return self._mapping(node, depth)

    def _sequence(self, node: yaml.SequenceNode, depth: int) -> LineList:
        offset = self.offset
        seq = LineList(offset + node.start_mark.line)
        item_lines = seq.item_lines
        for child in node.value:
            if type(child) is _ScalarNode:
                seq.append(self._scalar(child))
            else:
                seq.append(self._build(child, depth + 1))
            item_lines.append(offset + child.start_mark.line)
        return seq

    def _mapping(self, node: yaml.Node, depth: int) -> LineDict:
        offset = self.offset
        mapping = LineDict(offset + node.start_mark.line)
        key_lines = mapping.key_lines
        merged: list[LineDict] = []
        for key_node, value_node in node.value:
            text = key_node.value
            if text == "<<" and not getattr(key_node, "style", "x"):
                merged.extend(self._merge_sources(value_node, depth))
                continue
            if (
                type(key_node) is _ScalarNode
                and not key_node.style
                and key_node.tag == _STR
                and text
                and text[0] not in _NUMBER_START
                and text not in _WORDS
            ):
                key = text
            else:
                key = self._key(key_node)
            if key in key_lines:
                self._duplicate(key, key_lines[key], key_node)
            if type(value_node) is _ScalarNode:
                mapping[key] = self._scalar(value_node)
            else:
                mapping[key] = self._build(value_node, depth + 1)
            key_lines[key] = offset + key_node.start_mark.line
        for source in merged:
            for key, value in source.items():
                if key not in mapping:
                    mapping[key] = value
                    key_lines[key] = source.key_lines.get(key, mapping.line)
        return mapping

    def _duplicate(self, key: str, first_line: int, key_node: yaml.Node) -> None:
        self.result.warnings.append(
            self._error(
                f"duplicate key {key!r} (first at line {first_line}); "
                "the last value is used, as the API server does",
                key_node,
                "KS-W001",
            )
        )

    def _merge_sources(self, node: yaml.Node, depth: int) -> list[LineDict]:
        value = self._build(node, depth + 1)
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(s, LineDict) for s in sources):
            raise self._error(
                "merge key '<<' needs a mapping or a list of mappings", node, "KS-E013"
            )
        return sources  # inserted only where absent, so earlier sources win

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self._error(
                "mapping keys must be scalars in Kubernetes manifests", node, "KS-E013"
            )
        value = self._scalar(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        # Quoted and block scalars are strings; so is anything with an explicit tag we do not
        # know (a custom "!Ref", or "!!python/object", which is never constructed).
        if not node.style and node.tag == _STR:
            return resolve_plain(node.value)
        tag, text = node.tag, node.value
        if tag == _TAG + "int" or tag == _TAG + "float" or tag == _TAG + "bool":
            value = resolve_plain(text)
            return value if not isinstance(value, str) else text
        if tag == _TAG + "null":
            return None
        return text
