"""Property tests of the escaping every untrusted string goes through (Hypothesis)."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from kubesentinel.reporting.formats.text import fence, md_text, printable
from tests.reporting.test_formats import _cells

# Text rich in what matters: Markdown and HTML syntax, controls, bidi and zero-width marks.
CHARACTERS = "\\`*_{}[]()<>#!|~&@:$^-+.=\"' \n\r\t\x00\x1b\x7f\x85"
WORDS = ["\u202e", "\u2066", "\u200b", "\ufeff", "\u2028", "www.", "http://"]
SPECIAL = st.sampled_from([*CHARACTERS, *WORDS])
TEXT = st.lists(st.one_of(SPECIAL, st.text(max_size=5)), max_size=40).map("".join)
INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}


def _visible(text: str) -> bool:
    return all(unicodedata.category(c) not in INVISIBLE for c in text)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_md_text_is_one_literal_table_cell(text: str) -> None:
    escaped = md_text(text)
    assert _visible(escaped)
    assert "\n" not in escaped
    assert _cells(f"| {escaped} |") == 1
    bare = re.sub(r"\\.", "", escaped)  # what is left once escapes are taken out
    assert not set(bare) & set("\\`*_[]<>|")
    assert re.search(r"(?i)www\.", escaped) is None  # its dot escaped: no autolink
    assert re.search(r"(?<!\\)://", escaped) is None  # nor for a scheme


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_a_fence_is_never_closed_by_its_content(text: str) -> None:
    block = fence(text, "sh").split("\n")
    opener = block[0].removesuffix("sh")
    assert set(opener) == {"`"}
    assert block[-1] == opener
    for line in block[1:-1]:
        assert not line.lstrip().startswith(opener)
        assert _visible(line)


@given(st.text())
def test_printable_changes_only_invisible_characters(text: str) -> None:
    shown = printable(text)
    assert _visible(shown)
    if _visible(text):
        assert shown == text
