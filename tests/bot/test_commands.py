"""``/trellis``: help, status, and choosing a channel's integration and model, as a Slack user sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, DM, MALLORY, BotFactory, answered, body
from trellis_slack.bot.app import Bot
from trellis_slack.bot.commands_text import (
    ChooseIntegration,
    ChooseModel,
    Help,
    Status,
    help_reply,
    integration_lines,
    parse,
)
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.trellis.rest import Integration

MENTION = f"<@{BOT_USER}>"
ADMIN, OUTSIDE_ADMIN, NO_EMAIL = "U0ADMIN", "U0EXTADMIN", "U0NOMAIL"
SALES = {"id": "int-sales", "display_name": "Sales warehouse", "type": "postgres"}
OPS = {"id": "int-ops", "display_name": "Ops <replica>", "type": "mysql"}
MODELS = [
    {"model_id": "fast-1", "display_name": "Fast", "description": "Quick answers."},
    {"model_id": "deep-2", "display_name": "Deep", "description": "Careful analysis."},
]


@pytest.fixture
async def trellis() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="current", integrations=[SALES, OPS], models=MODELS) as server:
        yield server


@pytest.fixture(autouse=True)
def people(slack: FakeSlack) -> None:
    slack.add_user(ADMIN, "ada", email="ada@example.com", is_admin=True)
    slack.add_user(
        OUTSIDE_ADMIN, "otto", email="otto@elsewhere.example", team_id="T0OTHER", is_admin=True
    )
    slack.add_user(NO_EMAIL, "nomail")


async def run(slack: FakeSlack, text: str, *, user: str, channel: str = CHANNEL) -> str:
    """Run ``/trellis text`` and wait for its answer through the response URL."""
    before = len(slack.responses)
    ack = await slack.slash("/trellis", text, channel=channel, user=user)
    assert ack.payload is None  # acked at once; the answer follows through response_url
    response = await slack.wait_for(
        lambda: slack.responses[before] if len(slack.responses) > before else None
    )
    assert response["response_type"] == "ephemeral"
    return body(response)


def sent(trellis: FakeTrellis) -> list[dict[str, Any]]:
    return [
        r.frame
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") == "send_message"
    ]


async def ask(slack: FakeSlack, channel: str, text: str, user: str = ALICE) -> str:
    ts = await slack.post(channel, user, f"{MENTION} {text}" if channel == CHANNEL else text)
    await answered(slack, channel, ts, f"You asked: {text}")
    return ts


# --- parsing (pure) -------------------------------------------------------------------------------


def test_subcommands_are_parsed_with_their_argument() -> None:
    """Each subcommand is recognised whatever its case, with an id pasted in code formatting."""
    assert parse("") == Help()
    assert parse("  HELP ") == Help()
    assert parse("Status") == Status()
    assert parse("integration") == ChooseIntegration(None)
    assert parse("integration `int-sales`") == ChooseIntegration("int-sales")
    assert parse("model \u201cdeep-2\u201d") == ChooseModel("deep-2")
    assert parse("models") == ChooseModel(None)
    assert parse("frobnicate now") == Help(unknown="frobnicate")


def test_help_covers_every_way_to_use_the_bot() -> None:
    """Help explains mentions, DMs, follow-ups, Stop, Retry, edits and every subcommand."""
    text = "\n".join(b["text"]["text"] for b in help_reply("U0BOT", "all").blocks)
    for words in ("<@U0BOT>", "direct message", "Follow-ups", "Stop", "Retry", "Edit", "delete"):
        assert words in text
    for sub in ("status", "integration", "model", "help"):
        assert f"/trellis {sub}" in text
    mentions_only = "\n".join(b["text"]["text"] for b in help_reply("U0BOT", "mentions").blocks)
    assert "mention <@U0BOT>" in mentions_only.split("Follow-ups")[1]


def test_listed_names_are_escaped_and_long_lists_shortened() -> None:
    """Names from Trellis cannot inject Slack markup, and a long list ends with how many more."""
    many = [Integration(f"id-{n}", f"DB <{n}> & co", None) for n in range(45)]
    lines = integration_lines(many)
    assert lines[0] == "• *DB &lt;0&gt; &amp; co*: `id-0`"
    assert lines[-1] == "…and 5 more."
    assert len(lines) == 41


# --- help -----------------------------------------------------------------------------------------


async def test_help_is_answered_in_the_ack(slack: FakeSlack, bot: Bot) -> None:
    """``/trellis`` alone, ``help`` and an unknown word answer at once, only to the person."""
    for text in ("", "help"):
        ack = await slack.slash("/trellis", text, channel=CHANNEL, user=ALICE)
        assert ack.payload is not None
        assert ack.payload["response_type"] == "ephemeral"
        assert "/trellis status" in body(ack.payload)
    ack = await slack.slash("/trellis", "frobnicate", channel=CHANNEL, user=ALICE)
    assert ack.payload is not None
    assert "I don't know `/trellis frobnicate`" in body(ack.payload)
    assert slack.messages(CHANNEL) == []


# --- status ---------------------------------------------------------------------------------------


async def test_status_shows_the_defaults_and_that_trellis_is_reachable(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """Status names the bot's default database (by name) and model, and says Trellis answers."""
    await start_bot(TRELLIS_INTEGRATION_ID="int-sales")
    text = await run(slack, "status", user=BOB)
    assert "*Sales warehouse* (`int-sales`), the bot's default (`TRELLIS_INTEGRATION_ID`)" in text
    assert "Model: Trellis default" in text
    assert "Trellis is reachable" in text


async def test_status_says_when_trellis_is_unreachable(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """When Trellis cannot be reached, status says so in plain words instead of failing."""
    await start_bot(
        TRELLIS_WS_URL="ws://127.0.0.1:9/v1/chats/ws", TRELLIS_API_URL="http://127.0.0.1:9"
    )
    text = await run(slack, "status", user=ALICE)
    assert "Trellis is not usable right now" in text
    assert "could not reach Trellis" in text
    assert "Database: none chosen" in text


async def test_status_says_when_trellis_refuses_the_token(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """A token Trellis rejects shows up in status with the variable an admin must fix."""
    await start_bot(TRELLIS_TOKEN=FakeTrellis(version="current").make_token("someone-else"))
    text = await run(slack, "status", user=ALICE)
    assert "did not accept the bot's credentials" in text
    assert "TRELLIS_TOKEN" in text


# --- integration ----------------------------------------------------------------------------------


async def test_anyone_can_list_the_integrations(slack: FakeSlack, bot: Bot) -> None:
    """``integration`` without an id lists each database's name and id, for anyone."""
    text = await run(slack, "integration", user=BOB)
    assert "*Sales warehouse* (postgres): `int-sales`" in text
    assert "*Ops &lt;replica&gt;* (mysql): `int-ops`" in text


async def test_an_admin_sets_the_integration_used_by_new_questions(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """After an admin picks a database, new threads in that channel use it; others do not."""
    old_thread = await ask(slack, CHANNEL, "before")
    text = await run(slack, "integration int-ops", user=ADMIN)
    assert "New questions in this channel will use *Ops &lt;replica&gt;* (`int-ops`)" in text
    await ask(slack, CHANNEL, "after")
    await ask(slack, DM, "in a dm")
    await slack.post(CHANNEL, ALICE, "and then?", thread_ts=old_thread)
    await answered(slack, CHANNEL, old_thread, "You asked: and then?")
    used = {frame["message"]: frame.get("integration_id") for frame in sent(trellis)}
    assert used == {"before": None, "after": "int-ops", "in a dm": None, "and then?": None}
    assert "set for this channel" in await run(slack, "status", user=BOB)


async def test_a_non_admin_is_refused_politely(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Someone who is not an admin cannot change the database, is told who can, and nothing changes."""
    text = await run(slack, "integration int-ops", user=BOB)
    assert "only workspace admins and owners can change the database" in text
    await ask(slack, CHANNEL, "still default")
    assert sent(trellis)[0].get("integration_id") is None


async def test_someone_no_longer_an_admin_loses_the_right_at_once(
    slack: FakeSlack, bot: Bot
) -> None:
    """Admin rights are checked afresh each time: a demoted admin is refused without a restart."""
    assert "will use" in await run(slack, "model deep-2", user=ADMIN)
    slack.add_user(ADMIN, "ada", email="ada@example.com", is_admin=False)
    assert "only workspace admins and owners" in await run(slack, "model fast-1", user=ADMIN)


async def test_listed_admins_may_change_settings(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """People in TRELLIS_ADMIN_USERS may change settings, and refusals name them."""
    await start_bot(TRELLIS_ADMIN_USERS=BOB)
    assert "New questions in this channel will use" in await run(
        slack, "integration int-sales", user=BOB
    )
    refusal = await run(slack, "model deep-2", user=ALICE)
    assert f"workspace admins and owners, and <@{BOB}> can change the model" in refusal


async def test_an_admin_of_another_workspace_is_not_an_admin_here(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """A Slack Connect admin from elsewhere cannot change this workspace's channel settings."""
    await start_bot(ALLOW_EXTERNAL_USERS="true")
    text = await run(slack, "integration int-ops", user=OUTSIDE_ADMIN)
    assert "only workspace admins and owners" in text


async def test_an_unknown_integration_is_refused_with_the_list(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """An id Trellis does not list is refused, nothing is saved, and the valid ids are shown."""
    text = await run(slack, "integration int-nope", user=ADMIN)
    assert "no database `int-nope`" in text
    assert "nothing was changed" in text
    assert "`int-sales`" in text
    await ask(slack, CHANNEL, "still default")
    assert sent(trellis)[0].get("integration_id") is None


async def test_default_puts_the_channel_back_on_the_bots_database(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """``integration default`` undoes a channel's choice, keeping its model."""
    await start_bot(TRELLIS_INTEGRATION_ID="int-sales")
    await run(slack, "integration int-ops", user=ADMIN)
    await run(slack, "model deep-2", user=ADMIN)
    text = await run(slack, "integration default", user=ADMIN)
    assert "the bot's default database (`int-sales`)" in text
    await ask(slack, CHANNEL, "which one?")
    frame = sent(trellis)[0]
    assert (frame.get("integration_id"), frame.get("model")) == ("int-sales", "deep-2")


# --- model ----------------------------------------------------------------------------------------


async def test_an_admin_sets_the_model_used_by_new_questions(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A model Trellis offers becomes the channel's; the next question there asks with it."""
    listing = await run(slack, "model", user=BOB)
    assert "`fast-1`: Fast — Quick answers. _(Trellis's default)_" in listing
    assert "`deep-2`: Deep" in listing
    text = await run(slack, "model deep-2", user=ADMIN)
    assert "will use `deep-2`" in text
    await ask(slack, CHANNEL, "deep question")
    assert sent(trellis)[0].get("model") == "deep-2"


async def test_an_unknown_model_is_refused_with_the_list(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A model name Trellis does not offer is refused and the offered ones are listed."""
    text = await run(slack, "model gpt-9", user=ADMIN)
    assert "no model `gpt-9`" in text
    assert "`fast-1`" in text
    await ask(slack, CHANNEL, "which model?")
    assert sent(trellis)[0].get("model") is None


# --- who may use the command ----------------------------------------------------------------------


async def test_people_from_other_workspaces_are_refused(slack: FakeSlack, bot: Bot) -> None:
    """A Slack Connect user gets no status or lists unless external users are allowed."""
    text = await run(slack, "integration", user=MALLORY)
    assert "only answer people from this workspace" in text
    assert "int-sales" not in text


async def test_allowed_users_limit_the_command_too(slack: FakeSlack, start_bot: BotFactory) -> None:
    """Someone ALLOWED_USERS leaves out cannot see the databases either."""
    await start_bot(ALLOWED_USERS=ALICE)
    assert "not on the list" in await run(slack, "integration", user=BOB)
    assert "int-sales" in await run(slack, "integration", user=ALICE)


async def test_per_user_mode_asks_trellis_as_the_person(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With an API key, lists come from Trellis as the asker; without an e-mail they are refused."""
    await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key")
    assert "int-sales" in await run(slack, "integration", user=BOB)
    assert list(trellis.members) == ["bob@example.com"]
    assert "Trellis is reachable" in await run(slack, "status", user=BOB)
    text = await run(slack, "model", user=NO_EMAIL)
    assert "need your e-mail address" in text
    assert list(trellis.members) == ["bob@example.com"]
