"""A small real knowledge base for the kb-index tests: a bank's help articles in Markdown,
HTML and plain text, and queries whose right article is known."""

from __future__ import annotations

from typing import Any

ARTICLES: list[dict[str, Any]] = [
    {"id": "lost-card", "title": "Lost or stolen card", "format": "markdown", "text": (
        "# Lost or stolen card\n\nIf your card is lost or stolen, **freeze it** in the app at once.\n\n"
        "## Ordering a replacement\n\nOrder a new card under Cards → Replace. It arrives in 3 to 5 working days.\n")},
    {"id": "transfer-limits", "title": "Transfer limits", "format": "html", "text": (
        "<html><head><script>track()</script></head><body><nav>Home | Help</nav>"
        "<h1>Transfer limits</h1><p>You can send up to <b>10,000 EUR</b> per day by bank transfer.</p>"
        "<h2>Raising the limit</h2><p>Verify your identity with a passport to raise the daily limit.</p>"
        "</body></html>")},
    {"id": "opening-hours", "title": "Branch opening hours", "format": "text", "text": (
        "Our branches open Monday to Friday from 9 am to 5 pm.\n\n"
        "On Saturdays the city centre branch opens from 10 am to 1 pm. Branches are closed on Sundays.")},
    {"id": "interest", "title": "Savings interest", "text": (
        "# Savings interest\n\nThe savings account pays 2.5% interest a year, credited every month.")},
]
QUERIES: list[tuple[str, str]] = [
    ("I lost my card, what should I do?", "lost-card"),
    ("how much money can I send in one day", "transfer-limits"),
    ("when is the bank open on saturday", "opening-hours"),
    ("what interest rate does my savings get", "interest"),
]


def changed(articles: list[dict[str, Any]], article_id: str, text: str) -> list[dict[str, Any]]:
    """``articles`` with one article's text replaced."""
    return [a | {"text": text} if a["id"] == article_id else dict(a) for a in articles]
