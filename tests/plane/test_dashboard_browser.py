"""The dashboard in a real browser (headless Chromium, driven by Playwright) on an embedded plane
with the real trainer: log in, press Run, watch the run's progress reach 100 %, open its run
page and its heatmap, then the bot page's "try it". Screenshots land in tests/artifacts/dashboard/.

Skipped, with the reason, where Playwright or a Chromium is missing (``.ci/run`` installs
Debian's ``chromium``; ``JOBPLANE_BROWSER`` names another binary).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import plane as support_plane
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane.local.plane import Plane

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright's Python package (the dev extra)")

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PHONE = {"width": 390, "height": 844}
BOT = "dash-bot"
SPEC = f"train-{BOT}"
RUN_WAIT = 600.0


def _examples() -> list[dict[str, Any]]:
    """A tiny bot: three intents, a party_size entity on the bookings."""
    out: list[dict[str, Any]] = []
    for intent, texts in {"greet": ["hi", "hello", "hey there", "good morning", "hiya", "hello bot", "hi there"],
                          "bye": ["bye", "goodbye", "see you", "later", "good night", "farewell", "bye bye"]}.items():
        out += [{"text": t, "intent": intent} for t in texts]
    for size in ("two", "four", "six", "three", "five", "eight", "ten"):
        text = f"book a table for {size}"
        out.append({"text": text, "intent": "book", "entities": [
            {"start": len(text) - len(size), "end": len(text), "entity": "party_size", "value": size}]})
    return out


def find_browser() -> str | None:
    named = os.environ.get("JOBPLANE_BROWSER")
    if named:
        return named if Path(named).exists() else shutil.which(named)
    return next((found for found in map(shutil.which, BROWSERS) if found), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = find_browser()
    if executable is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(BROWSERS)} on PATH and JOBPLANE_BROWSER): "
                    "apt-get install chromium")
    args = ["--disable-dev-shm-usage"]  # containers' /dev/shm is often too small for Chromium
    args += ["--no-sandbox"] if os.geteuid() == 0 else []  # root (CI containers) cannot use the sandbox
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """A plane with the real trainer (its default command) and the tiny bot's training spec."""
    env = {"JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    with Plane(tmp_path_factory.mktemp("dashboard") / "data", port=0, env=env).start() as started:
        spec = make_spec(id=SPEC, params={"botId": BOT, "trainingData": {"examples": _examples()}, "epochs": 8})
        response = support_plane.api(started).post(f"{started.url}/v1/specs", json=spec, timeout=30)
        assert response.status_code == 201, response.text
        yield started


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, plane: Plane) -> None:
    page.goto(f"{plane.url}/login#token={plane.settings.api_token}")
    page.wait_for_url(f"{plane.url}/")


def watch_progress(page: Any, row: str, *, timeout: float) -> list[int]:
    """The progress values the overview's bar for the run in ``row`` showed, until it read 100."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bar = page.locator(f"{row} .bar")
        value = int(bar.get_attribute("aria-valuenow") or 0) if bar.count() else -1
        if value >= 0 and (not seen or seen[-1] != value):
            seen.append(value)
        if value == 100:
            return seen
        time.sleep(0.25)
    raise AssertionError(f"progress did not reach 100 % in {timeout:.0f} s; saw {seen}")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_started_from_the_dashboard_is_followed_to_its_run_page_and_its_bot_answers(browser: Any, plane: Plane) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    log_in(page, plane)
    article = f"article#spec-{SPEC}"
    assert page.locator(f"{article} h2").inner_text() == SPEC

    page.click(f"{article} button[data-post]")
    row = f"{article} tr.run"
    page.wait_for_selector(row, timeout=30_000)
    seen = watch_progress(page, row, timeout=RUN_WAIT)
    shot(page, "overview")

    assert seen[-1] == 100 and seen == sorted(seen), f"progress only goes forward: {seen}"
    assert len(seen) >= 3, f"the page showed the run's progress live, not just the end: {seen}"
    page.wait_for_selector(f"{row}[data-state=succeeded]", timeout=30_000)

    page.click(f"{row} a")
    page.wait_for_selector("table.heatmap")
    assert page.locator("#state").inner_text() == "succeeded"
    labels = page.locator("table.heatmap th.col").all_inner_texts()
    assert sorted(labels) == ["book", "bye", "greet"]
    assert page.locator("table.heatmap th[scope=row]").all_inner_texts() == labels
    assert page.locator("table.heatmap td.cell").count() == 9 and page.locator("table.heatmap td.diag").count() == 3
    assert page.locator("#intents tbody tr").count() == 3
    audit = support_plane.api(plane).get(f"{plane.url}/v1/audit", params={"runId": run_id(page)}, timeout=10)
    if audit.status_code == 200:  # the audit trail, where this plane has one
        page.wait_for_selector("#audit:not([hidden]) #audit-entries tr", timeout=10_000)
    else:
        assert page.locator("#audit").is_hidden(), "no audit section without GET /v1/audit"
    shot(page, "run")

    page.click("a[href*='bots/']")
    page.wait_for_selector("#try-form")
    prediction = try_it(page, "book a table for four")
    shot(page, "bot")

    assert prediction["intent"] in labels and prediction["confidence"].startswith("confidence ")
    assert prediction["text"] == "book a table for four", "the utterance is shown as typed, entities marked in it"
    assert all(m in "book a table for four" for m in prediction["marked"]), prediction
    assert set(prediction["entities"]) <= {"party_size"}, prediction


def run_id(page: Any) -> str:
    return str(page.evaluate("() => document.body.dataset.run"))


def try_it(page: Any, text: str, *, wait: float = 30.0) -> dict[str, Any]:
    """Type ``text`` into "try it" and press Predict (again while the model is being promoted)."""
    page.fill("#try-text", text)
    deadline = time.monotonic() + wait
    while True:
        page.click("#try-form button")
        try:
            page.wait_for_selector("#prediction:not([hidden])", timeout=3_000)
            break
        except sync_api.TimeoutError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no prediction; the page says {page.inner_text('#error')!r}") from None
    return page.evaluate("""() => {
        const shown = document.getElementById("pred-text").cloneNode(true);
        shown.querySelectorAll("small").forEach(s => s.remove());
        return {intent: document.getElementById("pred-intent").textContent,
                confidence: document.getElementById("pred-confidence").textContent,
                text: shown.textContent,
                marked: [...shown.querySelectorAll("mark")].map(m => m.textContent),
                entities: [...shown.querySelectorAll("mark")].map(m => m.dataset.entity)};
    }""")


@pytest.mark.slow
def test_the_pages_fit_a_phone_screen_without_sideways_scrolling(browser: Any, plane: Plane) -> None:
    page = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    log_in(page, plane)
    pages = {"overview": f"{plane.url}/", "bot": f"{plane.url}/bots/{BOT}"}
    run_link = page.locator(f"article#spec-{SPEC} tr.run a")
    if run_link.count():  # the run the test above started
        pages["run"] = f"{plane.url}/{run_link.first.get_attribute('href').removeprefix('./')}"
    for name, url in pages.items():
        page.goto(url)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} is {width}px wide on a {PHONE['width']}px screen"
        shot(page, f"{name}-phone")
