"""The demo page in headless Chromium: streamed answers, feedback, the split view, Stop, Retry, edits."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)
from playwright.async_api import TimeoutError as PlaywrightTimeout

from trellis_slack.demo.runner import DM, Demo
from trellis_slack.trellis.client import Backoff

# Debian's chromium, driven through Playwright (never a downloaded browser). Without it the tests
# are skipped; .ci/run installs it. `python -m tests.demo.test_demo_browser docs/demo.png` retakes the
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

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="the demo's browser tests need Debian's Chromium: "
        "sudo apt install chromium chromium-driver (.ci/run installs it)",
    ),
    # One browser for the module (starting Chromium is most of a test's time), so one loop.
    pytest.mark.asyncio(loop_scope="module"),
]
expect.set_options(timeout=15_000)
VIEWPORT: Final[ViewportSize] = {"width": 1400, "height": 860}
#: Between the first and last row of a table's page, as in "1 DASH 10 of 20".
DASH: Final = "\N{EN DASH}"


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """A page in Debian's Chromium, with a fresh profile in ``profile``."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=VIEWPORT
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, started once for the module; each test gets a fresh context in it."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def hold() -> AsyncIterator[asyncio.Event]:
    """Set at the end of a test: releases the demo's slow answers so it can stop."""
    event = asyncio.Event()
    yield event
    event.set()


@pytest_asyncio.fixture(loop_scope="module")
async def demo(hold: asyncio.Event) -> AsyncIterator[Demo]:
    """The demo as tests/conftest.py has it, in the module's loop (where the browser runs)."""
    async with Demo(
        port=0,
        pace=0,
        hold=hold,
        update_interval=0.05,
        warm_up_charts=False,
        slash_timeout=2.0,
        backoff=Backoff(base=0.0, cap=0.0, jitter=0.0),
    ) as running:
        yield running
        hold.set()


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


@pytest_asyncio.fixture(loop_scope="module")
async def page(demo: Demo, browser: Browser) -> AsyncIterator[Page]:
    """The demo page in a fresh browser context (no cookies, storage or cache of other tests)."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(demo.url)
        await page.wait_for_selector("body[data-ready]")
        yield page
        assert not errors, errors
    finally:
        await context.close()


async def say(page: Page, text: str) -> None:
    """Type in the conversation's composer and press Enter."""
    composer = page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill(text)
    await composer.press("Enter")


async def chart_loaded(page: Page) -> None:
    """Wait until a chart in the thread shows: a PNG loaded, or Slack's own chart drawn as SVG."""
    await page.wait_for_function(
        """() => [...document.querySelectorAll('#thread-messages figure img')]
              .some((img) => img.complete && img.naturalWidth > 0)
            || document.querySelector('#thread-messages figure.chart svg') !== null"""
    )


async def test_a_suggested_question_shows_slacks_own_bar_chart_in_the_answer(page: Page) -> None:
    """Orders by region: one answer holding Slack's native bar chart, drawn as SVG, and no image."""
    await page.get_by_role("button", name="Orders by region").click()
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("@trellis How many orders did each region have in 2025?")
    answer = thread.locator("article.from-app")
    await expect(answer).to_contain_text("West led with 8,164")
    await expect(answer).to_have_count(1)
    chart = answer.locator("figure.chart[data-chart=bar]")
    await expect(chart.locator("figcaption")).to_have_text("Orders by region, 2025")
    svg = chart.locator("svg")
    await expect(svg.locator("rect.bar")).to_have_count(4)
    assert await svg.locator("text.category").all_text_contents() == [
        "North",
        "South",
        "East",
        "West",
    ]
    assert await svg.locator("text.value").all_text_contents() == [
        "5,337",
        "4,993",
        "6,550",
        "8,164",
    ]
    assert await svg.locator("text.axis").all_text_contents() == ["Region", "Orders"]
    # The tallest bar is West's: the bars are drawn to scale.
    heights = await svg.locator("rect.bar").evaluate_all(
        "bars => bars.map((bar) => bar.getBBox().height)"
    )
    assert max(heights) == heights[3]
    assert min(heights) == heights[1]
    await expect(answer.locator("img")).to_have_count(0)
    await expect(thread.get_by_role("button", name="Stop")).to_have_count(0)
    await expect(page.locator("#messages")).to_contain_text("1 reply")


async def test_a_data_table_sorts_numbers_as_numbers_and_pages(page: Page) -> None:
    """Top customers: a data_table whose Revenue header sorts by value (9,870 before 10,716)."""
    await page.get_by_role("button", name="Top customers").click()
    table = page.locator("#thread-messages article.from-app table.data-table")
    await expect(table.locator("caption")).to_contain_text("Top 20 customers by orders, 2025")
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(10)
    pager = page.locator("#thread-messages .pager")
    await expect(pager.locator(".range")).to_have_text(f"1{DASH}10 of 20")
    revenue = table.get_by_role("button", name="Revenue (USD)")
    await revenue.click()
    header = table.locator("thead th").nth(3)
    await expect(header).to_have_attribute("aria-sort", "ascending")
    shown = [float(t.replace(",", "")) for t in await column(table, 3)]
    # As text, "9,870.00" would come after "41,890.00"; as numbers it is the smallest.
    assert shown[0] == 9_870.0
    assert shown == sorted(shown), shown
    await pager.get_by_role("button", name="Next page").click()
    await expect(pager.locator(".range")).to_have_text(f"11{DASH}20 of 20")
    rest = [float(t.replace(",", "")) for t in await column(table, 3)]
    assert min(rest) >= max(shown)
    assert rest == sorted(rest), rest
    await revenue.click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    await expect(pager.locator(".range")).to_have_text(f"1{DASH}10 of 20")
    await expect(rows.first).to_contain_text("41,890.00")
    await table.get_by_role("button", name="Customer").click()
    names = await column(table, 0)
    assert names[0] == "Bayside Apparel"
    assert names == sorted(names, key=str.lower), names


async def column(table: Locator, index: int) -> list[str]:
    """The texts of one column on the table's current page, top to bottom."""
    texts: list[str] = await table.locator("tbody tr").evaluate_all(
        f"rows => rows.map((row) => row.children[{index}].textContent)"
    )
    return texts


async def test_a_chart_slack_cannot_draw_shows_as_a_png(page: Page) -> None:
    """Revenue by quarter is a stacked bar chart, which Slack has no form for: it is a PNG image."""
    await page.get_by_role("button", name="Revenue by quarter").click()
    answer = page.locator("#thread-messages article.from-app")
    await expect(answer).to_contain_text("Revenue rose every quarter")
    image = answer.locator("figure.image img")
    await expect(image).to_have_count(1)
    await expect(image).to_have_attribute("alt", re.compile("Revenue by region per quarter"))
    await image.evaluate(
        "img => img.complete ? img.naturalWidth : new Promise((done) => img.onload = () => done())"
    )
    assert await image.evaluate("img => img.naturalWidth") > 0
    await expect(answer.locator("figure.chart")).to_have_count(0)


async def test_a_streamed_answer_shows_its_steps_then_the_answer_in_one_message(
    page: Page, hold: asyncio.Event
) -> None:
    """The slow answer streams as task cards, Stop inside; the final answer replaces it, in place."""
    await page.get_by_role("button", name="A slow one: try Stop").click()
    thread = page.locator("#thread-messages")
    stream = thread.locator("article.from-app .stream")
    await expect(stream.locator(".task[data-status=complete]").first).to_be_visible()
    await expect(stream.locator(".task[data-status=in_progress]")).to_contain_text(
        "Checking the fit"
    )
    await expect(stream.locator(".task-in_progress .spinner")).to_have_count(1)
    await expect(stream.get_by_role("button", name="Stop")).to_be_visible()
    hold.set()
    answer = thread.locator("article.from-app")
    await expect(answer).to_contain_text("Next quarter should bring")
    await expect(answer).to_have_count(1)
    await expect(thread.locator(".stream")).to_have_count(0)
    await expect(answer.locator(".steps summary")).to_contain_text("steps")
    await expect(answer.get_by_role("button", name="Stop")).to_have_count(0)
    await expect(answer.get_by_role("button", name="This answer helped")).to_be_visible()


async def test_slacks_status_line_shows_under_the_thread_while_it_is_set(
    page: Page, demo: Demo
) -> None:
    """The bot's assistant status shows under its thread with its loading messages, until cleared."""
    await page.get_by_role("button", name="trellis APP").click()
    await say(page, "hello")
    thread = page.locator("#thread-messages")
    await expect(thread.locator("article.from-app")).to_contain_text("sample dataset")
    question = next(m["ts"] for m in demo.slack.messages(DM) if m.get("text") == "hello")
    await set_status(demo, question, "is looking into it…", ["Reading your question…", "Asking…"])
    line = thread.locator(".status-line")
    await expect(line).to_contain_text("trellis is looking into it…")
    # The first loading message shows; the page rotates through all of them every 2 s.
    await expect(line.locator(".loading")).to_have_text("Reading your question…")
    rotation = await line.locator(".loading").get_attribute("data-messages")
    assert json.loads(rotation or "[]") == ["Reading your question…", "Asking…"]
    await set_status(demo, question, "", [])
    await expect(line).to_have_count(0)


async def set_status(demo: Demo, thread_ts: str, status: str, loading: list[str]) -> None:
    """``assistant.threads.setStatus`` in the DM as the bot calls it (the bot's token)."""
    body = {"channel_id": DM, "thread_ts": thread_ts, "status": status, "loading_messages": loading}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            demo.slack.api_url + "assistant.threads.setStatus",
            json=body,
            headers={"Authorization": f"Bearer {demo.slack.bot_token}"},
        ) as response,
    ):
        assert (await response.json())["ok"]


async def test_a_thumbs_up_reaches_trellis_and_thanks_you_privately(page: Page, demo: Demo) -> None:
    """👍 under an answer is Slack's feedback click: Trellis gets the rating, you get the thanks."""
    await page.get_by_role("button", name="Top customers").click()
    thread = page.locator("#thread-messages")
    helped = thread.get_by_role("button", name="This answer helped")
    await helped.click()
    thanks = thread.locator("article.ephemeral", has_text="Thanks")
    await expect(thanks).to_contain_text("Only visible to you")
    await expect(helped).to_have_attribute("aria-pressed", "true")
    assert [body for _, _, body in demo.trellis.feedback_requests] == [{"feedback": "positive"}]


async def test_an_answer_keeps_its_place_while_a_follow_up_queues(
    page: Page, hold: asyncio.Event
) -> None:
    """A follow-up sent while the first answer streams is answered below it, not before it."""
    await page.get_by_role("button", name="trellis APP").click()
    await say(page, "forecast orders for next quarter")
    thread = page.locator("#thread-messages")
    await expect(thread.locator(".stream .task").first).to_be_visible()
    reply = page.get_by_role("textbox", name="Reply")
    await reply.fill("and in the west?")
    await reply.press("Enter")
    await expect(thread.locator("article.own")).to_have_count(2)
    await expect(thread.locator(".stream")).to_have_count(1)
    hold.set()
    await expect(thread).to_contain_text("West had")
    await expect(thread).to_contain_text("Next quarter should bring")
    order = await thread.locator("article").all_inner_texts()
    first = next(i for i, text in enumerate(order) if "Next quarter should bring" in text)
    follow_up = next(i for i, text in enumerate(order) if "and in the west?" in text)
    second = next(i for i, text in enumerate(order) if "West had" in text)
    assert first < follow_up < second, order


async def test_the_split_view_offers_the_apps_prompts_and_slacks_stop(
    page: Page, demo: Demo
) -> None:
    """Beside #sales, the app's conversation: its suggested prompts ask; Slack's Stop stops a stream."""
    await page.get_by_role("button", name="trellis split view").click()
    agent = page.locator("#agent")
    prompts = agent.locator("#agent-prompts button")
    await expect(prompts.first).to_be_visible()
    set_by_the_app = demo.slack.suggested_prompts[-1]["prompts"]
    assert await prompts.all_inner_texts() == [p["title"] for p in set_by_the_app]
    first = set_by_the_app[0]
    await prompts.filter(has_text=first["title"]).click()
    await expect(agent.locator("article.own")).to_contain_text(first["message"])
    await expect(agent.get_by_role("button", name="This answer helped")).to_be_visible()
    await expect(prompts).to_have_count(0)
    await agent.get_by_role("button", name="New chat").click()
    composer = agent.get_by_role("textbox", name="Message trellis")
    await composer.fill("forecast next quarter")
    await composer.press("Enter")
    await expect(agent.locator(".stream .task").first).to_be_visible()
    await agent.get_by_role("button", name="Stop trellis").click()
    await expect(agent).to_contain_text("Stopped by @alex")
    await expect(agent.get_by_role("button", name="Stop trellis")).to_be_hidden()
    assert demo.slack.events("agent_session_stopped")
    # #sales stayed as it was beside the split view: only the welcome.
    await expect(page.locator("#messages article")).to_have_count(1)


async def in_view(page: Page, pane: str) -> dict[str, float]:
    """Once the page has laid out and painted: how far ``pane`` is from its bottom (``gap``), how
    far its newest message reaches below the pane's visible part (``below``), and its scroll."""
    measured: dict[str, float] = await page.evaluate(
        """async (selector) => {
            await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
            const pane = document.querySelector(selector);
            const newest = [...pane.querySelectorAll(':scope > article')].pop();
            return {
                gap: pane.scrollHeight - pane.scrollTop - pane.clientHeight,
                below: newest.getBoundingClientRect().bottom - pane.getBoundingClientRect().bottom,
                top: pane.scrollTop,
                overflow: pane.scrollHeight - pane.clientHeight,
            };
        }""",
        pane,
    )
    return measured


def newest_shown(measured: dict[str, float]) -> bool:
    """The pane is at its bottom and its newest message ends inside it."""
    return measured["gap"] < 2 and measured["below"] <= 1


async def image_loaded(answer: Locator) -> None:
    """Wait until the answer's PNG chart has loaded (it grows the answer when it does)."""
    image = answer.locator("figure.image img")
    await expect(image).to_have_count(1)
    await image.evaluate(
        "img => img.complete ? img.naturalWidth : new Promise((done) => img.onload = () => done())"
    )


async def test_the_thread_and_the_channel_keep_the_newest_message_in_view(page: Page) -> None:
    """As in Slack: the question just asked and each answer, chart images included, stay in view."""
    thread = page.locator("#thread-messages")
    await page.get_by_role("button", name="Orders by region").click()
    await expect(thread.locator("article.from-app")).to_contain_text("West led with 8,164")
    # The thread opened beside the channel, narrowing it: its newest message is still in view.
    for pane in ("#messages", "#thread-messages"):
        shown = await in_view(page, pane)
        assert newest_shown(shown), (pane, shown)
    reply = page.get_by_role("textbox", name="Reply")
    await reply.fill("Show revenue by region per quarter")
    await reply.press("Enter")
    answer = thread.locator("article.from-app").nth(1)
    await expect(answer).to_contain_text("Revenue rose every quarter")
    await image_loaded(answer)
    shown = await in_view(page, "#thread-messages")
    assert shown["overflow"] > 0, shown  # the thread is taller than its pane: following matters
    assert newest_shown(shown), shown


async def test_a_reader_who_scrolled_up_is_left_where_they_are(
    page: Page, hold: asyncio.Event
) -> None:
    """Scrolled up in the thread, the reader stays put while an answer arrives; back down, it follows."""
    thread = page.locator("#thread-messages")
    await page.get_by_role("button", name="Revenue by quarter").click()
    await image_loaded(thread.locator("article.from-app").first)
    reply = page.get_by_role("textbox", name="Reply")
    await reply.fill("How many orders did each region have in 2025?")
    await reply.press("Enter")
    await expect(thread.locator("article.from-app").nth(1)).to_contain_text("West led")
    await reply.fill("forecast orders for next quarter")
    await reply.press("Enter")
    await expect(thread.locator(".stream .task").first).to_be_visible()
    assert (await in_view(page, "#thread-messages"))["overflow"] > 200
    await thread.hover()
    await page.mouse.wheel(0, -200)
    await page.wait_for_function("() => document.querySelector('#thread-messages').scrollTop > 0")
    scrolled = await in_view(page, "#thread-messages")
    assert scrolled["gap"] >= 150, scrolled
    hold.set()
    await expect(thread).to_contain_text("Next quarter should bring")
    shown = await in_view(page, "#thread-messages")
    assert shown["top"] == scrolled["top"], (scrolled, shown)
    # Back at the bottom (as dragging the scroll bar there does), the pane follows again.
    await thread.evaluate("pane => { pane.scrollTop = pane.scrollHeight; }")
    await page.wait_for_function(
        """() => { const p = document.querySelector('#thread-messages');
                   return p.scrollHeight - p.scrollTop - p.clientHeight < 2; }"""
    )
    await reply.fill("and in the west?")
    await reply.press("Enter")
    await expect(thread).to_contain_text("West had")
    shown = await in_view(page, "#thread-messages")
    assert newest_shown(shown), shown


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
    await expect(thread.locator("figure")).to_have_count(0)


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
    """The README's picture: #sales, a question's thread open on its streamed answer, rated 👍."""
    async with Demo(port=0, pace=0, warm_up_charts=False) as demo:
        with tempfile.TemporaryDirectory() as profile:
            async with chromium(Path(profile)) as page:
                await page.goto(demo.url)
                await page.wait_for_selector("body[data-ready]")
                await page.get_by_role("button", name="Orders by region").click()
                await expect(page.locator("#thread-messages")).to_contain_text("West led")
                await page.get_by_role("button", name="Monthly trend").click()
                thread = page.locator("#thread-messages")
                await expect(thread).to_contain_text("Orders grew")
                await chart_loaded(page)
                await thread.get_by_role("button", name="This answer helped").click()
                await expect(thread.locator("article.ephemeral")).to_contain_text("Thanks")
                await page.mouse.move(0, 0)
                await page.screenshot(path=str(path))


if __name__ == "__main__":
    asyncio.run(screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demo.png")))
