"""Markdown, HTML and JSON renderings: structure, the JSON schema, and hostile alerts.

The hostile store's alerts put markup, Markdown syntax, a CDATA end, a terminal escape and a
bidi override in every string an attacker controls (rule, command lines, process names, file
and connection names, image, node): each format must show them as text, never as markup.
"""

from __future__ import annotations

import json
import re
from functools import cache
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest

from kubesentinel.reporting.formats import render
from kubesentinel.reporting.formats.text import fence, md_text, printable
from tests.reporting.conftest import (
    HOSTILE,
    SCHEMA,
    SECTIONS,
    Store,
    incident_of,
    incident_report,
    period_report,
)

HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p",
             "span", "div", "section", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th",
             "td", "code", "pre", "ul", "li", "strong", "br", "a", "svg", "line", "text",
             "circle", "rect"}  # fmt: skip
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def hostile_id(store: Store) -> str:
    return incident_of(store.path, "web")


# -- Markdown ------------------------------------------------------------------------------


def _cells(line: str) -> int:
    """Unescaped pipes in a table line, less one: its cells."""
    pipes, escaped = 0, False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            pipes += 1
    return pipes - 1


def markdown_blocks(text: str) -> tuple[list[str], list[list[str]]]:
    """(lines outside fenced blocks, the fenced blocks' bodies); fails on an unclosed fence."""
    outside: list[str] = []
    blocks: list[list[str]] = []
    opener: str | None = None
    for line in text.splitlines():
        if opener is None:
            match = re.match(r"(`{3,})", line)
            if match:
                opener = match.group(1)
                blocks.append([])
            else:
                outside.append(line)
        elif re.fullmatch(f"{opener}`*\\s*", line):
            opener = None
        else:
            blocks[-1].append(line)
    assert opener is None, "a fenced block is not closed"
    return outside, blocks


def check_markdown(text: str) -> list[str]:
    """Structural checks GitHub's renderer relies on; returns the lines outside fences."""
    assert "\x1b" not in text
    assert "\u202e" not in text
    outside, _ = markdown_blocks(text)
    header: int | None = None
    for line in outside:
        if line.startswith("|"):
            if header is None:
                header = _cells(line)
            assert _cells(line) == header, line  # no cell split or merged by an alert's pipe
        else:
            header = None
        unescaped = re.sub(r"\\.", "", line)
        assert "<" not in unescaped, line  # no HTML
        for target in re.findall(r"\]\(([^)]*)\)", unescaped):
            assert target.startswith("https://attack.mitre.org/"), line  # our links only
        assert unescaped.count("`") % 2 == 0, line  # code spans are ours, and closed
    return outside


def test_markdown_of_an_incident_has_every_section_and_clean_tables(sim: Store) -> None:
    text = render(incident_report(sim, incident_of(sim.path, "node-agent", "critical")), "markdown")
    check_markdown(text)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert [h.split(". ", 1)[0] for h in headings] == [f"## {n}" for n in range(1, 10)]
    _, blocks = markdown_blocks(text)
    assert any("kubesentinel vault verify --store" in line for b in blocks for line in b)
    assert any(line == "kind: NetworkPolicy" for b in blocks for line in b)
    assert "[T1611](https://attack.mitre.org/techniques/T1611/)" in text


def test_markdown_keeps_hostile_text_as_text(hostile: Store) -> None:
    report = incident_report(hostile, hostile_id(hostile))
    text = render(report, "markdown")
    outside = check_markdown(text)
    joined = "\n".join(outside)
    assert r"\<script\>alert\(1\)\</script\>" in joined
    assert r"\| --- \|" in joined
    assert r"\[x\]\(javascript\:alert\(3\)\)" in joined
    assert "\\x1b" in joined
    assert "\\u202e" in joined
    assert r"https\://evil.example" in joined  # no autolink
    # The process tree's fence outlasts the alert's own backticks.
    _, blocks = markdown_blocks(text)
    assert any("```" in line for block in blocks for line in block)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a|b", r"a\|b"),
        ("`x`", r"\`x\`"),
        ("<b>", r"\<b\>"),
        ("*_[]", r"\*\_\[\]"),
        ("www.example.com", r"www\.example.com"),
        ("a\nb\x1b\u202e\u200b", r"a\nb\x1b\u202e\u200b"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_md_text_escapes(raw: str, escaped: str) -> None:
    assert md_text(raw) == escaped


def test_fence_is_longer_than_any_backtick_run() -> None:
    assert fence("a ```` b\nc", "sh") == "`````sh\na ```` b\nc\n`````"
    assert fence("plain\n") == "```\nplain\n```"
    assert fence("\x1b[1m") == "```\n\\x1b[1m\n```"
    assert printable("ok text") == "ok text"


# -- HTML ----------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ends: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            self.attrs.append((tag, name, value))
            if name == "id" and value:
                self.ids.add(value)

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(text: str) -> _Collector:
    assert "\x1b" not in text
    assert "\u202e" not in text
    parsed = _Collector()
    parsed.feed(text)
    parsed.close()
    assert set(parsed.tags) <= HTML_TAGS, set(parsed.tags) - HTML_TAGS
    assert parsed.tags.count("svg") == parsed.ends.count("svg")
    for tag, name, value in parsed.attrs:
        assert not name.startswith("on"), (tag, name)
        assert name not in ("src", "srcset", "xlink:href", "formaction"), (tag, name)
        if name == "href":
            assert value is not None
            assert value.startswith("https://attack.mitre.org/")
        if name == "style":
            pytest.fail(f"inline style attribute on {tag}")
    assert ("meta", "content", CSP) in parsed.attrs
    css = text[text.index("<style>") : text.index("</style>")]
    assert "url(" not in css
    assert "@import" not in css
    return parsed


def test_html_of_an_incident_is_self_contained(sim: Store) -> None:
    report = incident_report(sim, incident_of(sim.path, "node-agent", "critical"))
    parsed = check_html(render(report, "html"))
    assert set(SECTIONS) <= parsed.ids
    assert parsed.tags.count("svg") == 1
    assert parsed.tags.count("circle") == len(report.timeline.rows)


def test_html_keeps_hostile_text_as_text(hostile: Store) -> None:
    report = incident_report(hostile, hostile_id(hostile))
    text = render(report, "html")
    parsed = check_html(text)
    assert parsed.tags.count("svg") == 1  # the alert's </svg> closed nothing
    shown = "".join(parsed.text)
    # What the browser shows is the alert's text (control characters as escapes).
    assert printable(f"sh -c '{HOSTILE}' #0") in shown
    assert "<script>alert(1)</script>" in shown
    assert "<img src=x" in shown
    assert "[x](javascript:alert(3))" in shown
    assert "&lt;script&gt;" in text
    assert "<script>" not in text


def test_period_html_and_markdown(sim: Store) -> None:
    report = period_report(sim)
    parsed = check_html(render(report, "html"))
    assert {"summary", "top", "timeline"} <= parsed.ids
    assert parsed.tags.count("rect") == len(report.rows)
    text = render(report, "markdown")
    check_markdown(text)
    assert text.count("\n| ") >= len(report.rows) + len(report.top)


# -- JSON ----------------------------------------------------------------------------------


def test_json_reports_match_the_schema(sim: Store, hostile: Store) -> None:
    reports: list[Any] = [
        incident_report(sim, incident_of(sim.path, "node-agent", "critical")),
        incident_report(sim, incident_of(sim.path, "storefront")),
        incident_report(hostile, hostile_id(hostile)),
        period_report(sim),
    ]
    for report in reports:
        document = json.loads(render(report, "json"))
        errors = [e.message for e in _validator().iter_errors(document)]
        assert errors == []
    assert document["type"] == "period"


def test_json_keeps_hostile_strings_exactly_and_escapes_them(hostile: Store) -> None:
    report = incident_report(hostile, hostile_id(hostile))
    text = render(report, "json")
    assert text.isascii()  # the bidi override and ESC are \u escapes
    document = json.loads(text)
    commands = {row["cmdline"] for row in document["timeline"]["rows"]}
    assert f"sh -c '{HOSTILE}' #0" in commands
    assert document["summary"]["images"] == [f"evil/{HOSTILE}:1"]
    schema_errors = list(_validator().iter_errors(document))
    assert schema_errors == []


def test_the_schema_rejects_a_document_that_drifted(sim: Store) -> None:
    document = json.loads(render(period_report(sim), "json"))
    document["unexpected"] = 1
    assert list(_validator().iter_errors(document))
