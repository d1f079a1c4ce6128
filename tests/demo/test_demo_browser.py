"""The demo page in headless Chromium: a chart and an answer, Stop, Retry, edit, delete, escaping."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from trellis_slack.demo.runner import Demo

# Debian's chromium, driven through Playwright (never a downloaded browser). Without it the tests
# are skipped; .ci/run installs it. `python -m tests.test_demo_browser docs/demo.png` retakes the
# README's screenshot with the same browser.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Headless, offline and quiet: no sandbox (CI runs as root), no GPU, no calls home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)",
)
expect.set_options(timeout=15_000)


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """A page in Debian's Chromium, with a fresh profile in ``profile``."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 860},
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


async def hover_click(message: Locator, name: str) -> None:
    """Hover a message and click one of its hover actions (Edit, Delete).

    The page re-renders a message when the bot changes the thread, which can drop the hover that
    shows the actions; hover again until the click lands (bounded, no sleeps).
    """
    for _ in range(10):
        await message.hover()
        try:
            await message.get_by_role("button", name=name).click(timeout=2_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the {name} action never became clickable")


@pytest.fixture
async def page(demo: Demo, tmp_path: Path) -> AsyncIterator[Page]:
    async with chromium(tmp_path / "profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(demo.url)
        await page.wait_for_selector("body[data-ready]")
        yield page
        assert not errors, errors


async def say(page: Page, text: str) -> None:
    """Type in the conversation's composer and press Enter."""
    composer = page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill(text)
    await composer.press("Enter")


async def chart_loaded(page: Page) -> None:
    """Wait until a chart image in the thread has actually loaded."""
    await page.wait_for_function(
        """() => [...document.querySelectorAll('#thread-messages figure img')]
              .some((img) => img.complete && img.naturalWidth > 0)"""
    )


async def test_a_suggested_question_shows_the_chart_and_the_answer(page: Page) -> None:
    """One click on a suggestion: the question is posted, its thread opens with chart and answer."""
    await page.get_by_role("button", name="Orders by region").click()
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("@trellis How many orders did each region have in 2025?")
    await expect(thread.locator("figure img")).to_be_visible()
    await chart_loaded(page)
    await expect(thread).to_contain_text("West led with 8,164")
    await expect(thread.get_by_role("button", name="Stop")).to_have_count(0)
    await expect(page.locator("#messages")).to_contain_text("2 replies")


async def test_stop_on_a_slow_question_stops_it(page: Page) -> None:
    """Stop on the slow question's working message stops it: no answer, and the button goes."""
    await page.get_by_role("button", name="A slow one: try Stop").click()
    thread = page.locator("#thread-messages")
    stop = thread.get_by_role("button", name="Stop")
    await stop.click()
    await expect(thread).to_contain_text("Stopped by @alex")
    await expect(stop).to_have_count(0)
    await expect(thread).not_to_contain_text("Next quarter should bring")


async def test_retry_after_an_error_gets_the_answer(page: Page) -> None:
    """An error comes with Retry; clicking it brings the answer in place of the error."""
    await page.get_by_role("button", name="An error: try Retry").click()
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("timed out")
    await thread.get_by_role("button", name="Retry").click()
    await expect(thread).to_contain_text("The replica answered on the second try.")
    await expect(thread).not_to_contain_text("timed out")
    await expect(thread.get_by_role("button", name="Retry")).to_have_count(0)


async def test_editing_a_question_replaces_its_answer(page: Page) -> None:
    """Edit your question: the new answer replaces the old one in the thread."""
    await say(page, "@trellis orders in the north")
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("North had")
    question = thread.locator("article.own").first
    await hover_click(question, "Edit")
    editor = thread.get_by_role("textbox", name="Edit message")
    await expect(editor).to_have_value("@trellis orders in the north")
    await editor.fill("@trellis orders in the south")
    await editor.press("Enter")
    await expect(thread).to_contain_text("South had")
    await expect(thread).not_to_contain_text("North had")
    await expect(question).to_contain_text("(edited)")


async def test_a_follow_up_dropped_by_an_edit_shows_the_bots_reaction(page: Page) -> None:
    """Editing the first question drops the follow-up after it: the bot's 🗑️ reaction shows on it."""
    await page.get_by_role("button", name="trellis APP").click()
    await say(page, "orders in the north")
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("North had")
    reply = page.get_by_role("textbox", name="Reply")
    await reply.fill("and in the west?")
    await reply.press("Enter")
    await expect(thread).to_contain_text("West had")
    first = thread.locator("article.own").first
    await hover_click(first, "Edit")
    editor = thread.get_by_role("textbox", name="Edit message")
    await editor.fill("orders in the south")
    await editor.press("Enter")
    await expect(thread).to_contain_text("South had")
    follow_up = thread.locator("article.own", has_text="and in the west?")
    await expect(follow_up.locator(".reaction")).to_contain_text("🗑️")


async def test_deleting_a_question_removes_its_answer(page: Page) -> None:
    """Delete your question: it goes, and the bot's answer goes with it."""
    await say(page, "@trellis orders in the east")
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("East had")
    question = thread.locator("article.own").first
    await hover_click(question, "Delete")
    await question.locator(".confirm").get_by_role("button", name="Delete").click()
    await expect(page.locator("#app")).not_to_contain_text("East had")
    await expect(page.locator("#messages")).not_to_contain_text("orders in the east")
    await expect(thread.locator("figure img")).to_have_count(0)


async def test_text_is_shown_as_text_never_as_html(page: Page) -> None:
    """Markup typed by a person, or quoted back by Trellis, is displayed literally, never run."""
    typed = '<img src=x onerror="document.title=1"> & <b>bold</b>'
    await say(page, f"@trellis {typed}")
    thread = page.locator("#thread-messages")
    await expect(page.locator("#messages")).to_contain_text(typed)
    await expect(thread).to_contain_text("can't answer")
    await expect(thread.locator(".from-app")).to_contain_text("<img src=x")
    assert await page.locator(".content img, .content b:text('bold')").count() == 0
    assert await page.title() == "trellis-slack demo"


async def screenshot(path: Path) -> None:
    """The README's picture: #sales with a question answered, its thread open on the chart."""
    async with Demo(port=0, pace=0, warm_up_charts=False) as demo:
        with tempfile.TemporaryDirectory() as profile:
            async with chromium(Path(profile)) as page:
                await page.goto(demo.url)
                await page.wait_for_selector("body[data-ready]")
                await page.get_by_role("button", name="Orders by region").click()
                await expect(page.locator("#thread-messages")).to_contain_text("West led")
                await page.get_by_role("button", name="Monthly trend").click()
                await expect(page.locator("#thread-messages")).to_contain_text("Orders grew")
                await chart_loaded(page)
                await page.mouse.move(0, 0)
                await page.screenshot(path=str(path))


if __name__ == "__main__":
    asyncio.run(screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demo.png")))
