"""Articles to passages: HTML cleaning, Markdown sections, plain text, the length cut with overlap."""

from __future__ import annotations

import pytest

from jobplane_trainer.kbtext import Section, content_hash, infer_format, passages, sections


def test_html_cleaning_drops_scripts_styles_and_page_chrome() -> None:
    html = """<!doctype html><html><head><title>T</title><style>p {color: red}</style></head><body>
      <nav><a href="/">Home</a> <a href="/faq">FAQ</a></nav>
      <script>var secret = "do not index";</script>
      <h1>Refunds</h1><p>Refunds take <b>5&nbsp;days</b>.</p>
      <footer>© Acme</footer></body></html>"""
    assert [(s.heading, s.blocks) for s in sections(html, "html")] == [("Refunds", ["Refunds take 5 days."])]


def test_html_headings_start_sections_and_nested_blocks_are_read_once() -> None:
    html = "<h2>Cards</h2><ul><li><p>Freeze a card</p></li><li>Order a card</li></ul><h2>Fees</h2><table><tr><td>ATM</td><td>2 EUR</td></tr></table>"
    assert [(s.heading, s.blocks) for s in sections(html, "html")] == [
        ("Cards", ["Freeze a card", "Order a card"]), ("Fees", ["ATM", "2 EUR"])]


def test_html_without_block_markup_is_one_block() -> None:
    assert [s.blocks for s in sections("<div>just <span>words</span></div>", "html")] == [["just words"]]


def test_markdown_sections_follow_headings_and_lose_their_markup() -> None:
    md = "# Shipping\n\nWe ship **worldwide** in [3 days](https://x).\n\n## Returns\n\n- free returns\n- 30 days\n"
    assert [(s.heading, s.blocks) for s in sections(md, "markdown")] == [
        ("Shipping", ["We ship worldwide in 3 days."]), ("Returns", ["free returns", "30 days"])]


def test_raw_html_inside_markdown_is_cleaned_like_html() -> None:
    found = sections("# A\n\n<script>alert(1)</script>\n\ntext", "markdown")
    assert "alert" not in " ".join(b for s in found for b in s.blocks)


def test_plain_text_splits_at_blank_lines() -> None:
    assert [s.blocks for s in sections("one\ntwo\n\n\nthree  four\n", "text")] == [["one two", "three four"]]


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("faq.md", "anything", "markdown"), ("page.HTML", "x", "html"), ("notes.txt", "# not md", "text"),
    ("", "<!DOCTYPE html><p>x</p>", "html"), ("", "intro\n## Heading\nbody", "markdown"), ("", "plain words", "text"),
])
def test_format_is_inferred_from_the_name_then_the_content(name: str, text: str, expected: str) -> None:
    assert infer_format(name, text) == expected


def test_passages_pack_whole_blocks_up_to_the_length() -> None:
    found = [Section("H", ["a b c", "d e", "f g h i"])]
    assert passages(found, max_words=5, overlap=0) == [("H", "a b c d e"), ("H", "f g h i")]


def test_neighbouring_passages_share_the_overlap() -> None:
    found = [Section("H", ["a b c", "d e", "f g h i"])]
    assert passages(found, max_words=5, overlap=2) == [("H", "a b c d e"), ("H", "d e f g h"), ("H", "g h i")]


def test_a_block_longer_than_a_passage_is_cut_by_words_with_overlap() -> None:
    words = " ".join(f"w{i}" for i in range(10))
    out = [t for _, t in passages([Section("", [words])], max_words=4, overlap=1)]
    assert out == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]


def test_sections_never_share_a_passage() -> None:
    out = passages([Section("A", ["x y"]), Section("B", ["z"])], max_words=10, overlap=3)
    assert out == [("A", "x y"), ("B", "z")]


def test_overlap_must_be_shorter_than_a_passage() -> None:
    with pytest.raises(ValueError, match="overlap"):
        passages([Section("", ["a"])], max_words=4, overlap=4)


def test_content_hash_changes_with_text_title_or_format_only() -> None:
    a = {"id": "x", "title": "T", "text": "body", "format": "text"}
    assert content_hash(a) == content_hash(a | {"id": "renamed"})
    assert len({content_hash(a), content_hash(a | {"text": "body!"}), content_hash(a | {"title": "U"}),
                content_hash(a | {"format": "markdown"})}) == 4
