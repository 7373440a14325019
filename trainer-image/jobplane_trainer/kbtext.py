"""Knowledge-base articles to clean passages: Markdown, HTML or plain text in; sections by
heading, cut by length with overlap, out.

HTML is parsed by BeautifulSoup (script, style, navigation and other chrome dropped), Markdown
is rendered to HTML by markdown-it-py first, so both reach the same section walk. Plain text
is split at blank lines. A passage holds whole blocks (paragraphs, list items, cells) up to
``max_words``; a block longer than that is cut by words; each passage after the first of a
section starts with the last ``overlap`` words of the one before, so an answer that straddles
a cut is still found in one piece.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

FORMATS: Final = ("markdown", "html", "text")
MAX_WORDS: Final = 80
"""Words per passage: MiniLM reads 128 word pieces (about 90 words); longer would be cut unseen."""
OVERLAP: Final = 20
HEADINGS: Final = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCKS: Final = (*HEADINGS, "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption")
DROPPED: Final = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg",
                  "iframe", "head")
_SPACE = re.compile(r"\s+")


@dataclass
class Section:
    heading: str
    blocks: list[str] = field(default_factory=list)


def infer_format(name: str, text: str) -> str:
    """The format an article's file name says, else a guess from its first characters."""
    lower = name.lower()
    if lower.endswith((".md", ".markdown")):
        return "markdown"
    if lower.endswith((".html", ".htm")):
        return "html"
    if lower.endswith(".txt"):
        return "text"
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html", "<body", "<div", "<p>", "<h1", "<article")):
        return "html"
    if head.startswith("#") or re.search(r"^#{1,6} \S", text, re.M):
        return "markdown"
    return "text"


def content_hash(article: Mapping[str, Any]) -> str:
    """What an article's index entry depends on: its title, format and text."""
    body = "\x00".join(str(article.get(k) or "") for k in ("title", "format", "text"))
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def sections(text: str, fmt: str) -> list[Section]:
    """The article's non-empty sections, in order."""
    if fmt == "text":
        return _nonempty([Section("", [_clean(p) for p in re.split(r"\n\s*\n", text)])])
    html = text if fmt == "html" else _markdown_html(text)
    return _nonempty(list(_html_sections(html)))


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": True}).enable("table").render(text))


def _html_sections(html: str) -> Iterator[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(DROPPED):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")  # inline markup joins without a space; a line break is one
    current = Section("")
    found = False
    for tag in soup.find_all(BLOCKS):
        if tag.find_parent(BLOCKS) is not None:
            continue  # its text is in the enclosing block's
        found = True
        text = _clean(tag.get_text())
        if tag.name in HEADINGS:
            yield current
            current = Section(text)
        else:
            current.blocks.append(text)
    if not found:  # no block markup at all: the document's text is one block
        current.blocks.append(_clean(soup.get_text(" ")))
    yield current


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _nonempty(found: list[Section]) -> list[Section]:
    out = []
    for s in found:
        s.blocks = [b for b in s.blocks if b]
        if s.blocks:
            out.append(s)
    return out


def passages(found: list[Section], *, max_words: int = MAX_WORDS, overlap: int = OVERLAP) -> list[tuple[str, str]]:
    """(heading, text) passages of at most ``max_words`` words, ``overlap`` words shared by
    neighbours within a section."""
    if not 0 <= overlap < max_words:
        raise ValueError(f"overlap must be in [0, {max_words}), got {overlap}")
    out: list[tuple[str, str]] = []
    for section in found:
        out.extend((section.heading, " ".join(words)) for words in _pack(section.blocks, max_words, overlap))
    return out


def _pack(blocks: list[str], max_words: int, overlap: int) -> Iterator[list[str]]:
    current: list[str] = []
    fresh = 0  # words in ``current`` not carried over from the passage before
    for block in blocks:
        words = block.split()
        if current and fresh and len(current) + len(words) > max_words:
            yield current
            current, fresh = current[len(current) - overlap:] if overlap else [], 0
        while len(current) + len(words) > max_words:  # a block longer than a passage: cut by words
            room = max_words - len(current)
            current, words, fresh = current + words[:room], words[room:], fresh + room
            yield current
            current, fresh = current[len(current) - overlap:] if overlap else [], 0
        current, fresh = current + words, fresh + len(words)
    if fresh:
        yield current
