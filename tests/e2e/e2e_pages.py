"""The review sheet and the try page in a real browser: the OS Chromium driven by Playwright.

Run by `make e2e` (not by `make test`: the file name is outside pytest's test_*.py pattern).
Screenshots go to var/e2e/."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from cds_hooks import create_app
from engine import load_knowledge

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "e2e"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KETOCONAZOLE = "order-sign-voclosporin-with-ketoconazole.json"
STRONG_INHIBITOR = "contraindication.strong-cyp3a4-inhibitor"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """The real service on a free local port, in a thread of this process."""
    database = tmp_path_factory.mktemp("e2e") / "labelwise.db"
    config = {"NOW": "2026-11-01", "RELOAD_SECONDS": 0, "DATABASE_URL": f"sqlite:///{database}"}
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("make e2e needs the OS Chromium: `make e2e-deps` installs it with apt-get")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A page that may only talk to the service: anything else would fail in a hospital."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1100, "height": 900})
    elsewhere: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: None if r.url.startswith(base_url) else elsewhere.append(r.url))
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert elsewhere == []


def test_the_review_sheet_shows_every_statement_with_its_rules_and_a_rendered_card(page: Page):
    kb = load_knowledge(ROOT / "knowledge")
    page.goto("/review/")
    page.get_by_role("link", name=kb.label.name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(kb.label.name)
    for statement_id in kb.statements:
        section = page.locator(f'section[data-statement="{statement_id}"]')
        expect(section).to_have_count(1)
        rules = [r.id for r in kb.rules.values() if r.cites == statement_id]
        assert rules, f"{statement_id}: no rule encodes it"
        for rule_id in rules:
            card = section.locator(f'.rule[data-rule="{rule_id}"] article.card')
            expect(card.first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "review-top.png")
    section = page.locator('section[data-statement="ci-strong-cyp3a4-inhibitor"]')
    section.screenshot(path=SHOTS / "review-statement.png")
    page.emulate_media(media="print")
    page.locator("section.signoff").screenshot(path=SHOTS / "review-signoff-print.png")


def test_the_try_page_shows_the_ketoconazole_card_and_stores_the_feedback(page: Page):
    page.goto("/try/")
    page.get_by_label("Example request").select_option(KETOCONAZOLE)
    page.get_by_role("button", name="Load example").click()
    expect(page.locator("#status")).to_have_text("Request loaded: press Send.")
    expect(page.get_by_label("CDS service")).to_have_value("voclosporin-order-sign")
    page.get_by_role("button", name="Send").click()
    card = page.locator('article.card[data-indicator="critical"]')
    expect(card).to_have_count(1)
    expect(card.locator(".card-summary")).to_contain_text("Contraindicated")
    card.get_by_text("Why this card").click()
    expect(card.locator("details.trace table")).to_be_visible()
    card.locator("button[data-suggestion]").first.click()
    expect(card.locator(".feedback-status")).to_have_text("Feedback stored.")
    card.get_by_label("Override reason").select_option(label="Already addressed or being monitored")
    card.get_by_label("Comment (optional)").fill("checked with pharmacy")
    card.get_by_role("button", name="Dismiss with this reason").click()
    expect(card.locator(".feedback-status")).to_have_text("Feedback stored.")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "try.png", full_page=True)
    rates = page.request.get("/analytics/override-rates").json()["rules"]
    stored = next(r for r in rates if r["ruleId"] == STRONG_INHIBITOR)
    # accepted, then overridden: a card counts once, with its latest outcome
    assert (stored["feedback"], stored["overridden"]) == (1, 1)


def test_the_try_page_works_from_the_keyboard(page: Page):
    page.goto("/try/")
    page.get_by_label("Example request").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Load example")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Request loaded: press Send.")
    page.get_by_role("button", name="Send").focus()
    page.keyboard.press("Enter")
    expect(page.locator("article.card").first).to_be_visible()


def test_a_pasted_request_that_is_not_json_is_explained_not_sent(page: Page):
    page.goto("/try/")
    page.get_by_label("Hook request (JSON; paste your own)").fill("{not json")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#status")).to_contain_text("not valid JSON")
    expect(page.locator("article.card")).to_have_count(0)
