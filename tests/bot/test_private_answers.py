"""End to end: PRIVATE_ANSWERS keeps channel answers to the asker (ephemeral, or their DM)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    DM,
    BotFactory,
    answered,
    body,
    buttons,
    replies,
)
from trellis_slack.bot.feedback import THANKS
from trellis_slack.bot.private import ALREADY_SHARED, SHARE_ACTION
from trellis_slack.errors import ConfigError
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import SHOW_STEPS_ACTION

MENTION = f"<@{BOT_USER}>"
SQL = "SELECT region, SUM(amount) FROM orders GROUP BY region"


def secret_answer(text: str) -> list[Step]:
    """An answer that ran one query (so it has steps) and says ``text``."""
    return [
        Step.tool_call(SQL, call_id="c1", tables=["orders"], title="Revenue by region"),
        Step.tool_result([["north", 10]], call_id="c1"),
        *answer(text),
    ]


def whispers(slack: FakeSlack, user: str, text: str) -> list[dict[str, Any]]:
    """The ephemeral messages ``user`` was shown that contain ``text``."""
    return [e for e in slack.ephemerals if e["user"] == user and text in body(e)]


def public_text(slack: FakeSlack, thread_ts: str) -> str:
    """Everything the bot posted in the thread for everyone to read."""
    return "\n".join(body(m) for m in replies(slack, CHANNEL, thread_ts))


async def test_ephemeral_answer_is_seen_only_by_the_asker_and_can_be_shared(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Only the asker sees the answer; the thread says it was answered privately; Share posts it."""
    await start_bot(PRIVATE_ANSWERS="ephemeral")
    trellis.responder = lambda q: secret_answer("Secret revenue is 42.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    [shown] = await slack.wait_for(lambda: whispers(slack, ALICE, "Secret revenue is 42."))
    assert SHARE_ACTION in buttons(shown)
    assert SHOW_STEPS_ACTION in buttons(shown)
    await slack.wait_for(lambda: "privately" in public_text(slack, ts))
    assert f"I'm answering <@{ALICE}> privately: only they see the answer." in public_text(
        slack, ts
    )
    assert "42" not in public_text(slack, ts)
    assert not [e for e in slack.ephemerals if e["user"] == BOB]

    await slack.click(CHANNEL, shown["message_ts"], SHARE_ACTION, user=ALICE)
    shared = await answered(slack, CHANNEL, ts, "Secret revenue is 42.")
    [post] = [m for m in shared if "Secret revenue is 42." in body(m)]
    assert f"Shared by <@{ALICE}>" in body(post)
    assert SHARE_ACTION not in buttons(post)
    assert SHOW_STEPS_ACTION not in buttons(post)  # the steps stay the asker's

    await slack.click(CHANNEL, shown["message_ts"], SHARE_ACTION, user=ALICE)
    await slack.wait_for(lambda: whispers(slack, ALICE, ALREADY_SHARED))
    assert public_text(slack, ts).count("Secret revenue is 42.") == 1


async def test_steps_of_a_private_answer_show_only_to_the_asker(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Show steps on an ephemeral answer shows its SQL to the asker, still privately."""
    await start_bot(PRIVATE_ANSWERS="ephemeral")
    trellis.responder = lambda q: secret_answer("Secret revenue is 42.")
    await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    [shown] = await slack.wait_for(lambda: whispers(slack, ALICE, "Secret revenue is 42."))
    await slack.click(CHANNEL, shown["message_ts"], SHOW_STEPS_ACTION, user=ALICE)
    await slack.wait_for(lambda: whispers(slack, ALICE, SQL))


async def test_dm_answer_goes_to_the_askers_dm_with_a_link_in_the_thread(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """The answer is in Alice's DM under a line naming the channel; the thread links to it."""
    await start_bot(PRIVATE_ANSWERS="dm")
    trellis.responder = lambda q: secret_answer("Secret revenue is 42.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    await slack.wait_for(lambda: "direct message" in public_text(slack, ts))
    note = public_text(slack, ts)
    assert f"<@{ALICE}>, I'm answering you in a direct message." in note
    assert "/archives/D" in note  # the link opens the DM answer
    assert "42" not in note
    [opened] = [c for c in slack.calls_to("conversations.open") if c.ok]
    assert opened.args["users"] == ALICE
    dm = _dm_of(slack)
    [header] = [m for m in slack.messages(dm) if "You asked in" in body(m)]
    assert f"<#{CHANNEL}>" in body(header)
    assert "revenue?" in body(header)
    messages = await answered(slack, dm, header["ts"], "Secret revenue is 42.")
    [final] = [m for m in messages if "Secret revenue is 42." in body(m)]

    # Its buttons name the question's channel, so they work from the DM.
    await slack.click(dm, final["ts"], SHOW_STEPS_ACTION, user=ALICE)
    [steps] = await slack.wait_for(lambda: whispers(slack, ALICE, SQL))
    assert steps["channel"] == dm
    await slack.feedback(dm, final["ts"], "positive", user=ALICE)
    await slack.wait_for(lambda: whispers(slack, ALICE, THANKS["positive"]))
    assert [b for _, _, b in trellis.feedback_requests] == [{"feedback": "positive"}]


def _dm_of(slack: FakeSlack) -> str:
    """The DM channel the bot posted its private answer in."""
    [channel] = {
        c.args["channel"]
        for c in slack.calls_to("chat.postMessage")
        if c.ok and str(c.args.get("channel", "")).startswith("D")
    }
    return str(channel)


async def test_dm_refused_falls_back_to_an_ephemeral_answer(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """When Slack will not open the DM, the answer is ephemeral: never shown to the channel."""
    await start_bot(PRIVATE_ANSWERS="dm")
    slack.fail("conversations.open", "missing_scope")
    trellis.responder = lambda q: answer("Secret revenue is 42.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    await slack.wait_for(lambda: whispers(slack, ALICE, "Secret revenue is 42."))
    await slack.wait_for(lambda: "privately" in public_text(slack, ts))
    assert "42" not in public_text(slack, ts)


async def test_questions_in_a_dm_are_answered_there_as_usual(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A DM is private already: the setting changes nothing there."""
    await start_bot(PRIVATE_ANSWERS="ephemeral")
    trellis.responder = lambda q: answer("Your revenue is 42.")
    ts = await slack.post(DM, ALICE, "revenue?")
    await answered(slack, DM, ts, "Your revenue is 42.")
    assert not whispers(slack, ALICE, "Your revenue is 42.")


@pytest.mark.parametrize("value", ["off", "ephemeral", "dm"])
def test_private_answers_setting_takes_its_three_values(value: str) -> None:
    """PRIVATE_ANSWERS accepts off, ephemeral and dm (any case)."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "TRELLIS_API_KEY": "k"}
    settings = Settings.from_mapping({**env, "PRIVATE_ANSWERS": value.upper()})
    assert settings.private_answers == value


def test_an_unknown_private_answers_value_is_a_clear_error() -> None:
    """A misspelt PRIVATE_ANSWERS stops start-up naming the variable and its choices."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "TRELLIS_API_KEY": "k"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_mapping({**env, "PRIVATE_ANSWERS": "secret"})
    assert "PRIVATE_ANSWERS must be one of off, ephemeral, dm" in str(raised.value)
