"""Read a manifest file into editable documents and write it back with its layout kept.

YAML goes through ruamel.yaml's round-trip loader (comments, key order, quoting, flow style).
Its dumper writes one sequence indentation per document while real files mix two, so the
edited document is not written as dumped: the dump of the unedited document is matched line by
line to the file (they differ only in spacing), and only the lines the edit changed or added
are taken from the new dump, shifted to the file's indentation around them. A document whose
dump does not match the file line for line, or whose spliced text does not read back as the
edited data, is left as it is, with a message. JSON is rewritten only when json.dumps at some
indentation reproduces the file exactly (kubectl's output does); other JSON is left.

Importing this module imports ruamel.yaml: only `kubesentinel fix` does.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from kubesentinel.static.fix.edits import Factories

_MARKER = re.compile(r"^---(?:[ \t]+(?:#.*)?)?\n?$")
_DIRECTIVE = re.compile(r"^%")
_NULL = re.compile(r":(?:null|Null|NULL|~)(?=#|$)")
_END = re.compile(r"^\.\.\.[ \t]*$")
_WIDTH = 1 << 30  # never fold long lines
YAML_FACTORIES: Factories = (CommentedMap, CommentedSeq)
JSON_FACTORIES: Factories = (dict, list)


@dataclass(slots=True)
class Document:
    """One YAML document: the data to edit, or why it is left as it is."""

    index: int | None  # counted as the scanner counts: non-empty documents only
    line: int  # its first line in the file (1-based)
    marker: str  # the "---" line before it, or ""
    body: str
    data: Any = None
    problem: str | None = None
    style: tuple[int, int, int] | None = None
    dumped: str = ""  # the unedited data as dumped in ``style``
    tail: str = ""  # blank lines after the body (the writer drops or moves them)


@dataclass(slots=True)
class ManifestFile:
    """A file's documents; ``render`` writes the edited ones back into the text."""

    documents: list[Document]
    crlf: bool = False
    json_indent: int | None = None
    factories: Factories = YAML_FACTORIES
    problems: list[str] = field(default_factory=list)

    def editable(self) -> list[Document]:
        return [d for d in self.documents if d.problem is None and d.index is not None]

    def render(self) -> tuple[str, list[str]]:
        """The file's new text, and a message for each edited document it could not write."""
        if self.json_indent is not None:
            (doc,) = self.documents
            return _json_dump(doc.data, self.json_indent) + doc.marker, []
        parts: list[str] = []
        messages: list[str] = []
        for doc in self.documents:
            parts.append(doc.marker)
            if doc.problem is not None or doc.data is None:
                parts += [doc.body, doc.tail]
                continue
            new = _dump(doc.data, doc.style)
            spliced = doc.body if new == doc.dumped else splice(doc.body, doc.dumped, new)
            if spliced is not None and spliced != doc.body and not _same_data(spliced, new):
                spliced = None
            if spliced is None:
                messages.append(
                    f"line {doc.line}: document {doc.index} left as it is: its edited layout "
                    "could not be matched to the file's"
                )
                spliced = doc.body
            parts += [spliced, doc.tail]
        text = "".join(parts)
        return (text.replace("\n", "\r\n") if self.crlf else text), messages


def read_manifest(text: str, name: str, wanted: set[int] | None = None) -> ManifestFile:
    """The file's documents; only those in ``wanted`` (all: None) are parsed for editing."""
    if name.endswith(".json"):
        return _read_json(text)
    crlf = "\r\n" in text
    if crlf:
        text = text.replace("\r\n", "\n")
    manifest = ManifestFile(documents=[], crlf=crlf)
    if any(_DIRECTIVE.match(line) for line in text.splitlines()):
        manifest.documents.append(Document(None, 1, "", text))
        manifest.problems.append("uses YAML directives; left as it is")
        return manifest
    count = 0
    for marker, chunk, line in _split(text):
        lines = chunk.splitlines(keepends=True)
        lead = next((i for i, text in enumerate(lines) if text.strip()), len(lines))
        end = len(lines)
        # Blank lines and a '...' end marker stay after the document, as they are.
        while end > lead and (not lines[end - 1].strip() or _END.match(lines[end - 1])):
            end -= 1
        body = "".join(lines[lead:end])
        doc = Document(None, line + lead, marker + "".join(lines[:lead]), body)
        doc.tail = "".join(lines[end:])
        manifest.documents.append(doc)
        if marker and marker.strip() != "---" and not marker.lstrip("-").strip().startswith("#"):
            doc.problem, doc.index = "content on the '---' line", count
            count += 1
            continue
        if all(_is_aside(line) for line in body.splitlines()):
            continue  # comments only: the scanner does not count it either
        doc.index, count = count, count + 1
        if wanted is None or doc.index in wanted:
            _load(doc)
    return manifest


def _split(text: str) -> list[tuple[str, str, int]]:
    """(marker line, body, body's first line): a '---' at column 0 always starts a document
    (YAML forbids it as content there)."""
    chunks: list[tuple[str, str, int]] = []
    marker, start = "", 1
    body: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _MARKER.match(line):
            chunks.append((marker, "".join(body), start))
            marker, body, start = line, [], number + 1
        else:
            body.append(line)
    chunks.append((marker, "".join(body), start))
    if not chunks[0][0] and not chunks[0][1] and len(chunks) > 1:
        chunks.pop(0)  # the file starts with "---"
    return chunks


def _yaml(style: tuple[int, int, int] | None = None) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = _WIDTH
    if style is not None:
        mapping, sequence, offset = style
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _load(doc: Document) -> None:
    body = doc.body if doc.body.endswith("\n") or not doc.body else doc.body + "\n"
    try:
        doc.data = _yaml().load(body)
    except (YAMLError, ValueError) as exc:
        doc.problem = f"cannot be read: {str(exc).splitlines()[0]}"
        return
    if doc.data is None:
        return
    doc.style = _style(body)
    doc.dumped = _dump(doc.data, doc.style)
    if not _matches(body, doc.dumped):
        doc.problem = "its layout cannot be kept (the YAML writer changes more than spacing)"
    elif not doc.body.endswith("\n"):
        doc.dumped = doc.dumped.removesuffix("\n")


def _style(body: str) -> tuple[int, int, int]:
    """The indentation most of the document uses, for the lines an edit adds: mapping indent,
    and whether a list's "- " sits under its key or two further in (offset 0 or 2)."""
    mapping, under, inside = 2, 0, 0
    previous = ""
    for line in body.splitlines():
        if _is_aside(line):
            continue
        if previous.rstrip().endswith(":") and not previous.lstrip().startswith("- "):
            step = _indent(line) - _indent(previous)
            if line.lstrip().startswith("- "):
                under, inside = under + (step == 0), inside + (step > 0)
            elif step in (2, 4):
                mapping = step
        previous = line
    return (mapping, mapping, 0) if under > inside else (mapping, mapping + 2, 2)


def _dump(data: Any, style: tuple[int, int, int] | None) -> str:
    stream = io.StringIO()
    _yaml(style).dump(data, stream)
    return stream.getvalue()


def _norm(line: str) -> str:
    """A line without its spacing, which the writer changes (``[ a,b ]`` -> ``[a, b]``), and
    with ``key: null`` as the writer puts it (``key:``). Lines matched this way are written as
    the file has them; the edited document is read back and compared before it is used."""
    return _NULL.sub(":", "".join(line.split()))


def _matches(original: str, dumped: str) -> bool:
    return _groups(original.splitlines(), dumped.splitlines()) is not None


def _groups(kept: list[str], dumped: list[str]) -> list[tuple[int, int]] | None:
    """For each dumped line, the file's lines it stands for: one, or several that the writer
    joined (a plain scalar or flow list over several lines); None when they differ otherwise."""
    groups: list[tuple[int, int]] = []
    start = 0
    for line in dumped:
        want = _norm(line)
        if start >= len(kept):
            return None
        end, have = start + 1, _norm(kept[start])
        while have != want and end < len(kept) and want.startswith(have):
            have, end = have + _norm(kept[end]), end + 1
        if have != want:
            return None
        groups.append((start, end))
        start = end
    return groups if start == len(kept) else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_aside(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def splice(original: str, before: str, after: str) -> str | None:
    """``original`` with the lines ``after`` changes from ``before`` (a dump of the same data
    that matches ``original`` line for line, spacing aside), indented as the file is."""
    kept, old, new = original.splitlines(), before.splitlines(), after.splitlines()
    groups = _groups(kept, old)
    if groups is None:
        return None
    # ("keep", index in old/kept) or ("new", index in new), in output order.
    plan: list[tuple[str, int]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            plan += [("keep", i) for i in range(i1, i2)]
        else:
            added = [("new", j) for j in range(j1, j2)]
            if added and tag == "insert":
                _insert_before_asides(plan, added, old, new)
            else:
                plan += added
    lines: list[str] = []
    shifts: list[tuple[int, bool, int]] = []  # (dump indent, a "- " line, file - dump indent)
    for what, index in plan:
        if what == "keep":
            first, end = groups[index]
            line = kept[first]
            if not _is_aside(line):
                depth = _indent(old[index])
                shifts.append((depth, _is_item(line), _indent(line) - depth))
            lines += kept[first:end]
            continue
        line = new[index]
        depth, item = _indent(line), _is_item(line)
        shift = next((s for d, dash, s in reversed(shifts) if _governs(d, dash, depth, item)), 0)
        if not _is_aside(line):
            shifts.append((depth, item, shift))
        lines.append(" " * max(depth + shift, 0) + line.lstrip(" ") if line.strip() else line)
    ending = "\n" if original.endswith("\n") else ""
    return "\n".join(lines) + ending


def _is_item(line: str) -> bool:
    return line.lstrip(" ").startswith("- ") or line.strip() == "-"


def _governs(depth: int, dash: bool, new_depth: int, new_dash: bool) -> bool:
    """Whether a line's indentation shift carries over to a new line after it: a key's to
    the lines at or under its level; a list item's to its own content (two columns in) and to
    the items after it, not to the keys of the mapping holding the list."""
    if not dash:
        return depth <= new_depth
    return depth + 2 <= new_depth or (new_dash and depth == new_depth)


def _insert_before_asides(
    plan: list[tuple[str, int]], added: list[tuple[str, int]], old: list[str], new: list[str]
) -> None:
    """New keys go above the blank and comment lines that end the block before them: the
    round-trip loader hangs those on the last key, but they introduce what follows."""
    depth = _indent(new[added[0][1]])
    at = len(plan)
    while at > 0 and plan[at - 1][0] == "keep":
        line = old[plan[at - 1][1]]
        if not _is_aside(line) or (line.strip() and _indent(line) >= depth):
            break
        at -= 1
    plan[at:at] = added


def _same_data(text: str, expected: str) -> bool:
    import yaml  # libyaml's parser: the check reads each edited document twice

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return bool(yaml.load(text, Loader=loader) == yaml.load(expected, Loader=loader))  # noqa: S506
    except yaml.YAMLError:
        return False


def _read_json(text: str) -> ManifestFile:
    doc = Document(0, 1, "", text)
    manifest = ManifestFile(documents=[doc], factories=JSON_FACTORIES)
    try:
        doc.data = json.loads(text)
    except ValueError as exc:
        doc.problem = f"cannot be read: {exc}"
        return manifest
    ending = text[len(text.rstrip()) :]
    for indent in (2, 4, 1, 3, 8):
        if _json_dump(doc.data, indent) == text[: len(text) - len(ending)]:
            manifest.json_indent = indent
            doc.marker = ending  # kept after the JSON text
            return manifest
    doc.problem = (
        "its JSON layout cannot be kept (only files laid out as json.dumps or kubectl "
        "write them are rewritten)"
    )
    return manifest


def _json_dump(data: Any, indent: int) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=False)
