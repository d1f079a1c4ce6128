"""End to end: the real bot between the local Slack and Trellis servers, as a Slack user sees it."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    DM,
    MALLORY,
    BotFactory,
    answered,
    body,
    buttons,
    questions,
    replies,
    working_message,
)
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION

MENTION = f"<@{BOT_USER}>"


async def test_channel_mention_is_answered_in_a_thread(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A channel @mention gets one answer in a thread under the question, without the mention text."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} how many orders last month?")
    msgs = await answered(slack, CHANNEL, ts, "You asked: how many orders last month?")
    assert all(m.get("thread_ts") == ts for m in msgs)
    assert len(msgs) == 1
    assert [q["message"] for q in questions(trellis)] == ["how many orders last month?"]


@pytest.mark.edited_messages
async def test_work_is_visible_before_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """While Trellis works, the thread shows a working message with a Stop button and the status."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("analyzing"), Step.pause(gate), *answer("Done.")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue by region")

    def analyzing() -> bool:
        return any(
            "Analyzing" in body(m) and STOP_ACTION in buttons(m)
            for m in replies(slack, CHANNEL, ts)
        )

    await slack.wait_for(analyzing)
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "Done.")
    assert not any("Analyzing" in body(m) for m in msgs)


async def test_dm_starts_a_chat_and_thread_replies_continue_it(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A DM is answered in its thread; a reply there continues the same Trellis chat."""
    ts = await slack.post(DM, ALICE, "top customers")
    await answered(slack, DM, ts, "You asked: top customers")
    await slack.post(DM, ALICE, "and last year?", thread_ts=ts)
    await answered(slack, DM, ts, "You asked: and last year?")
    first, second = questions(trellis)
    assert first["chat_id"] == second["chat_id"]
    another = await slack.post(DM, ALICE, "a new topic")
    await answered(slack, DM, another, "You asked: a new topic")
    assert questions(trellis)[2]["chat_id"] != first["chat_id"]


async def test_follow_up_by_another_user_needs_no_mention(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Anyone's reply in a thread the bot answers continues the chat, without a mention."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} sales by month")
    await answered(slack, CHANNEL, ts, "You asked: sales by month")
    await slack.post(CHANNEL, BOB, "only for 2025 please", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: only for 2025 please")
    first, second = questions(trellis)
    assert second["chat_id"] == first["chat_id"]


async def test_replies_in_unrelated_threads_are_left_alone(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Messages without a mention outside the bot's threads are not questions."""
    ts = await slack.post(CHANNEL, ALICE, "lunch?")
    await slack.post(CHANNEL, BOB, "sure", thread_ts=ts)
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker question")
    await answered(slack, CHANNEL, marker, "You asked: marker question")
    assert [q["message"] for q in questions(trellis)] == ["marker question"]
    assert replies(slack, CHANNEL, ts) == []


async def test_mentions_only_mode_ignores_plain_follow_ups(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With FOLLOW_UPS=mentions a reply needs the mention to be a question."""
    await start_bot(FOLLOW_UPS="mentions")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    await slack.post(CHANNEL, BOB, "not for the bot", thread_ts=ts)
    await slack.post(CHANNEL, BOB, f"{MENTION} q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q2")
    assert [q["message"] for q in questions(trellis)] == ["q1", "q2"]


async def test_mentions_and_links_become_readable(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Other users' mentions and channel links reach Trellis as names."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} what did <@{BOB}> sell in <#C0SALES|sales>?")
    await answered(slack, CHANNEL, ts, "You asked:")
    assert questions(trellis)[0]["message"] == "what did @bob sell in #sales?"


async def test_duplicate_deliveries_give_one_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """app_mention + message for one mention, in either order, and a redelivery: one question."""
    ts1 = await slack.post(CHANNEL, ALICE, f"{MENTION} first", mention_order="mention_first")
    ts2 = await slack.post(CHANNEL, ALICE, f"{MENTION} second", mention_order="message_first")
    await answered(slack, CHANNEL, ts1, "You asked: first")
    await answered(slack, CHANNEL, ts2, "You asked: second")
    envelope = slack.acks[0].envelope_id
    again = await slack.redeliver(envelope, retry_attempt=1)
    await slack.wait_for_ack(again)
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    assert [q["message"] for q in questions(trellis)] == ["first", "second", "marker"]
    assert len(replies(slack, CHANNEL, ts1)) == 1


async def test_edits_unfurls_and_echoes_are_not_new_questions(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """An unfurl, the re-sent app_mention of an edited mention and the bot's own echoes ask nothing."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} see https://example.com")
    await answered(slack, CHANNEL, ts, "You asked:")
    await slack.unfurl(CHANNEL, ts)
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    assert len(questions(trellis)) == 2
    assert len(replies(slack, CHANNEL, ts)) == 1


async def test_every_envelope_is_acknowledged(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Every event Slack sends, echoes and subtypes included, is acked (none left to redeliver)."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} hello")
    await answered(slack, CHANNEL, ts, "You asked: hello")
    await slack.unfurl(CHANNEL, ts)
    await slack.send_event(
        {
            "type": "message",
            "subtype": "channel_join",
            "channel": CHANNEL,
            "user": BOB,
            "ts": "1.000001",
            "text": "joined",
        }
    )
    await slack.delete(CHANNEL, ts)

    def all_acked() -> bool:
        return len(slack.acks) == len(slack.envelopes_sent)

    await slack.wait_for(all_acked)


async def test_restart_keeps_the_conversation_and_the_dedupe(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """After a restart a follow-up continues the same chat and an old redelivery is still ignored."""
    first = await start_bot()
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    envelope = slack.acks[0].envelope_id
    await first.stop()
    await start_bot()
    again = await slack.redeliver(envelope, retry_attempt=2)
    await slack.wait_for_ack(again)
    await slack.post(CHANNEL, BOB, "follow-up after restart", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: follow-up after restart")
    q1, q2 = questions(trellis)
    assert q2["chat_id"] == q1["chat_id"]


async def test_follow_up_waits_for_the_answer_in_progress(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A follow-up during an answer says it waits, then is answered after it, never interleaved."""
    gate = asyncio.Event()

    def responder(q: Question) -> list[Step]:
        if q.text == "slow":
            return [Step.processing("thinking"), Step.pause(gate), *answer("slow answer")]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow")
    await trellis.wait_for_action("send_message")
    await slack.post(CHANNEL, BOB, "quick one", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in body(m) for m in replies(slack, CHANNEL, ts)))
    assert len(questions(trellis)) == 1  # the follow-up has not been sent yet
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "You asked: quick one")
    texts = [body(m) for m in msgs]
    slow_at = next(i for i, t in enumerate(texts) if "slow answer" in t)
    quick_at = next(i for i, t in enumerate(texts) if "You asked: quick one" in t)
    assert slow_at < quick_at


async def test_long_answer_is_split_without_losing_text(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """An answer longer than one Slack message arrives whole, across several messages."""
    paragraphs = [f"Paragraph {i}: " + ("lorem ipsum " * 60).strip() for i in range(60)]
    long_text = "\n\n".join(paragraphs)
    trellis.responder = lambda q: answer(long_text)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} tell me everything")
    msgs = await answered(slack, CHANNEL, ts, "Paragraph 59:")
    assert len(msgs) > 1
    shown = "\n".join(body(m) for m in msgs)
    for paragraph in paragraphs:
        assert paragraph in shown


@pytest.mark.edited_messages
async def test_slack_rate_limits_are_retried(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A 429 from Slack is retried after Retry-After; the answer still arrives."""
    slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} limited")
    await answered(slack, CHANNEL, ts, "You asked: limited")
    assert [c.ok for c in slack.calls if c.method == "chat.postMessage"][:2] == [False, True]


async def test_trellis_error_is_shown_with_the_fix(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A Trellis error event appears in the thread in words, with the admin fix and the debug id."""
    trellis.responder = lambda q: [
        Step.error(
            "No datasource connected", code="NO_DATASOURCE", retryable=False, debug_id="dbg-42"
        )
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders?")
    msgs = await answered(slack, CHANNEL, ts, "No datasource connected")
    text = body(msgs[0])
    assert "TRELLIS_INTEGRATION_ID" in text
    assert "dbg-42" in text
    assert RETRY_ACTION not in buttons(msgs[0])


async def test_lost_connection_offers_retry_that_works(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A dropped Trellis connection mid-answer is reported with Retry; Retry then answers."""
    trellis.responder = lambda q: [Step.processing("thinking"), Step.drop()]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} fragile")
    msgs = await answered(slack, CHANNEL, ts, "connection to Trellis was lost")
    assert RETRY_ACTION in buttons(msgs[0])
    trellis.responder = lambda q: answer(f"You asked: {q.text}")
    await slack.click(CHANNEL, msgs[0]["ts"], RETRY_ACTION, user=ALICE, value=ts)
    msgs = await answered(slack, CHANNEL, ts, "You asked: fragile")
    assert not any("connection to Trellis was lost" in body(m) for m in msgs)


async def test_external_users_are_refused(slack: FakeSlack, trellis: FakeTrellis, bot: Bot) -> None:
    """A Slack Connect user gets a polite refusal and nothing is sent to Trellis."""
    await slack.post(CHANNEL, MALLORY, f"{MENTION} secrets please")
    note = await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == MALLORY])
    assert "only answer people from this workspace" in note[0]["text"]
    assert questions(trellis) == []


async def test_stop_interrupts_the_answer(slack: FakeSlack, trellis: FakeTrellis, bot: Bot) -> None:
    """Stop mid-answer interrupts Trellis, names who stopped it, and offers Retry instead."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.processing("thinking"),
        Step.pause(gate),
        *answer("too late"),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} long question")
    await trellis.wait_for_action("send_message")  # the answer is under way in Trellis
    working = await working_message(slack, CHANNEL, ts)
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=BOB, value=ts)
    await trellis.wait_for_action("interrupt")
    msgs = await answered(slack, CHANNEL, ts, f"Stopped by <@{BOB}>")
    assert not any("too late" in body(m) for m in msgs)
    # Not a dead end: Retry asks the same question again, in the stopped answer's place.
    [stopped] = [m for m in msgs if RETRY_ACTION in buttons(m)]
    trellis.responder = lambda q: answer("asked again")
    await slack.click(CHANNEL, stopped["ts"], RETRY_ACTION, user=ALICE)
    again = await answered(slack, CHANNEL, ts, "asked again")
    assert [m["ts"] for m in again if "asked again" in body(m)] == [stopped["ts"]]


async def test_rejected_trellis_token_is_explained(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A token Trellis rejects gives the user a message naming what the admin must fix."""
    foreign = FakeTrellis(version="current")
    await start_bot(TRELLIS_TOKEN=foreign.make_token("someone-else"))
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} anything")
    msgs = await answered(slack, CHANNEL, ts, "did not accept the bot's credentials")
    assert "TRELLIS_TOKEN" in body(msgs[0])
    assert RETRY_ACTION not in buttons(msgs[0])


async def test_unreachable_trellis_is_explained_with_retry(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """When Trellis cannot be reached the thread says so and offers Retry."""
    await start_bot(
        TRELLIS_WS_URL="ws://127.0.0.1:9/v1/chats/ws", TRELLIS_API_URL="http://127.0.0.1:9"
    )
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} anything")
    msgs = await answered(slack, CHANNEL, ts, "could not reach Trellis")
    assert RETRY_ACTION in buttons(msgs[0])


async def test_mention_inside_a_human_thread_starts_a_conversation_there(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A mention in a thread the bot was not part of is answered in that same thread."""
    parent = await slack.post(CHANNEL, BOB, "our Q3 numbers look odd")
    await slack.post(CHANNEL, ALICE, f"{MENTION} what were Q3 sales?", thread_ts=parent)
    msgs = await answered(slack, CHANNEL, parent, "You asked: what were Q3 sales?")
    assert all(m.get("thread_ts") == parent for m in msgs)
    await slack.post(CHANNEL, BOB, "and Q2?", thread_ts=parent)
    await answered(slack, CHANNEL, parent, "You asked: and Q2?")
    assert questions(trellis)[1]["chat_id"] == questions(trellis)[0]["chat_id"]


async def test_other_bots_are_never_answered(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A message from another bot that mentions this one is not a question."""
    slack.add_user("U0OTHERBOT", "reporter", is_bot=True)
    await slack.post(CHANNEL, "U0OTHERBOT", f"{MENTION} daily report")
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    assert [q["message"] for q in questions(trellis)] == ["marker"]


async def test_editing_a_mention_does_not_ask_again(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Slack re-sends app_mention for an edited mention: one edit of the question, no new question."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} sales in 2024")
    await answered(slack, CHANNEL, ts, "You asked: sales in 2024")
    await slack.edit(CHANNEL, ts, f"{MENTION} sales in 2024!")
    await answered(slack, CHANNEL, ts, "You asked: sales in 2024!")
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    sent = [(q["action"], q.get("message") or q.get("content")) for q in questions(trellis)]
    assert sent == [
        ("send_message", "sales in 2024"),
        ("edit_message", "sales in 2024!"),
        ("send_message", "marker"),
    ]


@pytest.mark.edited_messages
async def test_streamed_text_shows_before_the_final_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """text_delta pieces appear in the working message while the answer streams."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.delta("East leads "),
        Step.delta("with 531"),
        Step.pause(gate),
        Step.message("East leads with 531 orders."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} who leads?")
    await slack.wait_for(
        lambda: any(
            "East leads with 531" in body(m) and STOP_ACTION in buttons(m)
            for m in replies(slack, CHANNEL, ts)
        )
    )
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "East leads with 531 orders.")
    assert len(msgs) == 1


async def test_seed_protocol_version_end_to_end(slack: FakeSlack, start_bot: BotFactory) -> None:
    """Against the given (seed) API — no chat endpoint, no deltas — answers and follow-ups work."""
    async with FakeTrellis(version="seed") as seed:
        await start_bot(
            TRELLIS_WS_URL=seed.ws_url,
            TRELLIS_API_URL=seed.api_url,
            TRELLIS_TOKEN=seed.make_token("seed-member"),
        )
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} seed question")
        await answered(slack, CHANNEL, ts, "You asked: seed question")
        await slack.post(CHANNEL, BOB, "seed follow-up", thread_ts=ts)
        await answered(slack, CHANNEL, ts, "You asked: seed follow-up")
        first, second = questions(seed)
        assert "chat_id" not in first
        assert second["chat_id"] == next(iter(seed.chats))


@pytest.mark.edited_messages
async def test_question_waiting_for_a_connection_says_it_is_queued(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With every Trellis connection busy, a new question says it waits, then is answered."""
    gate = asyncio.Event()

    def responder(q: Question) -> list[Step]:
        if q.text == "slow":
            return [Step.pause(gate), *answer("slow done")]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    await start_bot(TRELLIS_MAX_CONNECTIONS="1")
    slow = await slack.post(CHANNEL, ALICE, f"{MENTION} slow")
    await trellis.wait_for_action("send_message")
    other = await slack.post(CHANNEL, BOB, f"{MENTION} other")
    await slack.wait_for(
        lambda: any("free Trellis connection" in body(m) for m in replies(slack, CHANNEL, other))
    )
    gate.set()
    await answered(slack, CHANNEL, slow, "slow done")
    await answered(slack, CHANNEL, other, "You asked: other")


async def test_channel_allowlist_refuses_other_channels(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With ALLOWED_CHANNELS set, a question elsewhere gets a note and reaches no one."""
    slack.add_channel("C0OTHER", "other", members=[ALICE])
    await start_bot(ALLOWED_CHANNELS="C0OTHER")
    await slack.post(CHANNEL, ALICE, f"{MENTION} not here")
    note = await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == ALICE])
    assert "not set up to answer questions in this channel" in note[0]["text"]
    ts = await slack.post("C0OTHER", ALICE, f"{MENTION} here")
    await answered(slack, "C0OTHER", ts, "You asked: here")
    assert [q["message"] for q in questions(trellis)] == ["here"]


async def test_per_user_identity_gives_each_asker_their_own_chat(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With an API key each person asks as themselves; a second person in a thread gets their own chat."""
    await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} my numbers")
    await answered(slack, CHANNEL, ts, "You asked: my numbers")
    await slack.post(CHANNEL, BOB, "and mine?", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: and mine?")
    await slack.post(CHANNEL, ALICE, "more of mine", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: more of mine")
    sends = [
        (r.token_sub, r.frame)
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") == "send_message"
    ]
    (alice_sub, alice1), (bob_sub, bob1), (alice_sub2, alice2) = sends
    assert alice_sub != bob_sub
    assert alice_sub2 == alice_sub
    assert alice2["chat_id"] == alice1["chat_id"] != bob1["chat_id"]
    notes = [
        body(m) for m in replies(slack, CHANNEL, ts) if "starts your own conversation" in body(m)
    ]
    assert len(notes) == 1
    assert f"<@{BOB}>" in notes[0]


async def test_per_user_identity_refuses_users_without_email(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A user whose profile shows no e-mail is told privately why and what to ask the admin."""
    slack.add_user("U0NOMAIL", "nomail")
    await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key")
    ts = await slack.post(CHANNEL, "U0NOMAIL", f"{MENTION} hello")
    note = await slack.wait_for(lambda: [e for e in slack.ephemerals if e["user"] == "U0NOMAIL"])
    assert "e-mail address" in note[0]["text"]
    assert "users:read.email" in note[0]["text"]
    assert replies(slack, CHANNEL, ts) == []
    assert questions(trellis) == []


async def test_seed_datasource_error_offers_no_retry(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """The seed API's "No datasource connected" (no `retryable` flag) gets the admin fix, not Retry."""
    async with FakeTrellis(version="seed", require_integration=True) as seed:
        await start_bot(
            TRELLIS_WS_URL=seed.ws_url,
            TRELLIS_API_URL=seed.api_url,
            TRELLIS_TOKEN=seed.make_token("seed-member"),
        )
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders?")
        msgs = await answered(slack, CHANNEL, ts, "No datasource connected")
        assert "TRELLIS_INTEGRATION_ID" in body(msgs[0])
        assert RETRY_ACTION not in buttons(msgs[0])


async def test_answer_survives_slack_refusing_the_markdown_block(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """If Slack refuses the formatted answer, the same text still arrives, unformatted."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), Step.message("Revenue was **1,234** in May.")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue in May")
    await working_message(slack, CHANNEL, ts)
    slack.fail("chat.update", "invalid_blocks", times=1)
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "Revenue was **1,234** in May.")
    assert [b["type"] for b in msgs[0]["blocks"]] == [
        "section",
        "context_actions",
    ]  # text, then feedback


async def test_answer_is_posted_when_the_working_message_cannot_be_updated(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """If the working message cannot become the answer, the answer is posted as a new message."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), *answer("Still here.")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} anything")
    await working_message(slack, CHANNEL, ts)
    slack.fail("chat.update", "cant_update_message", times=10)
    gate.set()
    await slack.wait_for(lambda: any(body(m) == "Still here." for m in replies(slack, CHANNEL, ts)))


@pytest.mark.edited_messages
async def test_asker_is_told_when_the_bot_cannot_post(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """If Slack refuses the bot's post in the thread, the asker gets a private note, not silence."""
    slack.fail("chat.postMessage", "restricted_action", times=1)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} hello")
    note = await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == ALICE])
    assert "did not let me post" in note[0]["text"]
    assert replies(slack, CHANNEL, ts) == []


async def test_a_chat_created_before_a_failure_is_reused_by_retry(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """If sending fails after Trellis created the chat, Retry continues that chat, not a new one."""
    trellis.reject_next_connections(10, code=1011)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} fragile start")
    failed = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)]
    )
    assert len(trellis.chats) == 1
    await slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, ts, "You asked: fragile start")
    assert len(trellis.chats) == 1
