"""Tests for trellis_slack.slack.events: what each Slack event shape means for the bridge."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trellis_slack.slack.events import (
    BotIdentity,
    Deletion,
    Edit,
    Ignore,
    Question,
    classify_app_mention,
    classify_message,
    mentioned_user_ids,
    question_text,
)

BOT = BotIdentity(user_id="U0BOT", bot_id="B0BOT", team_id="T0OURS")

# Payload shapes as Slack sends them in `event` of an events_api envelope.

CHANNEL_MESSAGE: dict[str, Any] = {
    "type": "message",
    "user": "U0ALICE",
    "text": "<@U0BOT> what were sales in Q3?",
    "ts": "1718000000.000100",
    "team": "T0OURS",
    "blocks": [{"type": "rich_text", "block_id": "x", "elements": []}],
    "channel": "C0SALES",
    "event_ts": "1718000000.000100",
    "channel_type": "channel",
}

APP_MENTION: dict[str, Any] = {
    "type": "app_mention",
    "user": "U0ALICE",
    "text": "<@U0BOT> what were sales in Q3?",
    "ts": "1718000000.000100",
    "team": "T0OURS",
    "blocks": [],
    "channel": "C0SALES",
    "event_ts": "1718000000.000100",
}

DM_MESSAGE: dict[str, Any] = {
    "type": "message",
    "user": "U0ALICE",
    "text": "top customers by revenue",
    "ts": "1718000001.000200",
    "team": "T0OURS",
    "channel": "D0ALICE",
    "event_ts": "1718000001.000200",
    "channel_type": "im",
}

THREAD_REPLY: dict[str, Any] = {
    "type": "message",
    "user": "U0ALICE",
    "text": "and by region?",
    "ts": "1718000002.000300",
    "thread_ts": "1718000000.000100",
    "parent_user_id": "U0ALICE",
    "team": "T0OURS",
    "channel": "C0SALES",
    "event_ts": "1718000002.000300",
    "channel_type": "channel",
}

OWN_REPLY: dict[str, Any] = {
    "type": "message",
    "subtype": "bot_message",
    "text": "Sales were $1.2M",
    "ts": "1718000003.000400",
    "bot_id": "B0BOT",
    "app_id": "A0APP",
    "thread_ts": "1718000000.000100",
    "channel": "C0SALES",
    "event_ts": "1718000003.000400",
    "channel_type": "channel",
}

# Messages posted with a bot token carry the bot user and bot_id but no subtype.
OWN_CHAT_POST: dict[str, Any] = {
    "type": "message",
    "user": "U0BOT",
    "bot_id": "B0BOT",
    "app_id": "A0APP",
    "text": "Sales were $1.2M",
    "ts": "1718000003.000400",
    "thread_ts": "1718000000.000100",
    "team": "T0OURS",
    "bot_profile": {"id": "B0BOT", "name": "Trellis"},
    "channel": "C0SALES",
    "event_ts": "1718000003.000400",
    "channel_type": "channel",
}

OTHER_BOT: dict[str, Any] = {
    **OWN_CHAT_POST,
    "user": "U0OTHERBOT",
    "bot_id": "B0OTHER",
    "bot_profile": {"id": "B0OTHER", "name": "Jira"},
    "text": "<@U0BOT> ticket created",
}


def changed(message: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """A message_changed event wrapping `message` and `previous_message`."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": message,
        "previous_message": previous,
        "channel": "C0SALES",
        "hidden": True,
        "ts": "1718000099.000900",
        "event_ts": "1718000099.000900",
        "channel_type": "channel",
    }


ORIGINAL: dict[str, Any] = {
    "type": "message",
    "user": "U0ALICE",
    "text": "<@U0BOT> what were sales in Q3?",
    "ts": "1718000000.000100",
    "team": "T0OURS",
    "blocks": [],
}

REAL_EDIT = changed(
    {
        **ORIGINAL,
        "text": "<@U0BOT> what were sales in Q4?",
        "edited": {"user": "U0ALICE", "ts": "1718000050.000000"},
        "source_team": "T0OURS",
        "user_team": "T0OURS",
    },
    ORIGINAL,
)

UNFURL = changed(
    {
        **ORIGINAL,
        "text": "see <https://example.com/report>",
        "attachments": [{"from_url": "https://example.com/report", "title": "Report", "id": 1}],
    },
    {**ORIGINAL, "text": "see <https://example.com/report>"},
)

REPLY_COUNT = changed(
    {
        **ORIGINAL,
        "thread_ts": "1718000000.000100",
        "reply_count": 2,
        "reply_users": ["U0BOT", "U0ALICE"],
        "reply_users_count": 2,
        "latest_reply": "1718000002.000300",
    },
    {
        **ORIGINAL,
        "thread_ts": "1718000000.000100",
        "reply_count": 1,
        "reply_users": ["U0BOT"],
        "reply_users_count": 1,
        "latest_reply": "1718000001.000300",
    },
)

TOMBSTONE = changed(
    {
        "type": "message",
        "subtype": "tombstone",
        "text": "This message was deleted.",
        "user": "USLACKBOT",
        "hidden": True,
        "ts": "1718000000.000100",
        "thread_ts": "1718000000.000100",
        "reply_count": 2,
    },
    {**ORIGINAL, "thread_ts": "1718000000.000100", "reply_count": 2},
)

DELETED_REPLY: dict[str, Any] = {
    "type": "message",
    "subtype": "message_deleted",
    "hidden": True,
    "deleted_ts": "1718000002.000300",
    "channel": "C0SALES",
    "previous_message": {**THREAD_REPLY},
    "ts": "1718000098.000800",
    "event_ts": "1718000098.000800",
    "channel_type": "channel",
}


def test_channel_mention_message_is_a_mentioned_question() -> None:
    """A top-level channel message mentioning the bot is a new, mentioned question."""
    assert classify_message(CHANNEL_MESSAGE, BOT) == Question(
        team_id="T0OURS",
        channel_id="C0SALES",
        ts="1718000000.000100",
        thread_ts=None,
        user_id="U0ALICE",
        user_team_id="T0OURS",
        text="<@U0BOT> what were sales in Q3?",
        mentioned=True,
        is_dm=False,
    )


def test_app_mention_is_the_same_question_as_its_message() -> None:
    """The app_mention and the message Slack sends for one mention give equal questions."""
    mention = classify_app_mention(APP_MENTION, BOT)
    assert isinstance(mention, Question)
    assert mention == classify_message(CHANNEL_MESSAGE, BOT)
    assert mention.reply_thread_ts == "1718000000.000100"


def test_dm_is_a_question_without_mention() -> None:
    """A direct message is a question in a DM even without an @mention."""
    meaning = classify_message(DM_MESSAGE, BOT)
    assert isinstance(meaning, Question)
    assert meaning.is_dm
    assert not meaning.mentioned
    assert meaning.thread_ts is None


def test_thread_reply_is_a_follow_up_candidate_answered_in_its_thread() -> None:
    """A reply in a thread keeps its thread_ts, where the bot answers."""
    meaning = classify_message(THREAD_REPLY, BOT)
    assert isinstance(meaning, Question)
    assert meaning.thread_ts == "1718000000.000100"
    assert meaning.reply_thread_ts == "1718000000.000100"
    assert not meaning.mentioned


@pytest.mark.parametrize("subtype", ["file_share", "thread_broadcast"])
def test_file_share_and_broadcast_are_questions(subtype: str) -> None:
    """A message with a file, or a reply also sent to the channel, is still a question."""
    event = {**THREAD_REPLY, "subtype": subtype}
    assert isinstance(classify_message(event, BOT), Question)


def test_slack_connect_user_keeps_their_team() -> None:
    """A Slack Connect user's own team is kept apart from the workspace's team."""
    event = {**CHANNEL_MESSAGE, "team": "T0PARTNER", "user_team": "T0PARTNER"}
    meaning = classify_message(event, BOT)
    assert isinstance(meaning, Question)
    assert (meaning.team_id, meaning.user_team_id) == ("T0OURS", "T0PARTNER")
    without_team = {key: value for key, value in CHANNEL_MESSAGE.items() if key != "team"}
    meaning = classify_message(without_team, BOT)
    assert isinstance(meaning, Question)
    assert meaning.user_team_id is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (OWN_REPLY, "own echo"),
        (OWN_CHAT_POST, "own echo"),
        ({**OWN_CHAT_POST, "bot_id": None}, "own echo"),
        (OTHER_BOT, "bot message"),
        ({**OWN_REPLY, "bot_id": "B0OTHER"}, "bot message"),
        ({**THREAD_REPLY, "user": "USLACKBOT"}, "bot message"),
    ],
)
def test_bot_messages_are_ignored(event: dict[str, Any], reason: str) -> None:
    """The bot's own posts and other bots' posts (even mentioning us) are never questions."""
    assert classify_message(event, BOT) == Ignore(reason)
    if event.get("subtype") is None:
        assert classify_app_mention({**event, "type": "app_mention"}, BOT) == Ignore(reason)


def test_real_edit_is_an_edit() -> None:
    """A message_changed with `edited` and new text is an edit of the original message's ts."""
    assert classify_message(REAL_EDIT, BOT) == Edit(
        team_id="T0OURS",
        channel_id="C0SALES",
        ts="1718000000.000100",
        thread_ts=None,
        user_id="U0ALICE",
        user_team_id="T0OURS",
        text="<@U0BOT> what were sales in Q4?",
        previous_text="<@U0BOT> what were sales in Q3?",
        mentioned=True,
        is_dm=False,
        edited_ts="1718000050.000000",
    )


def test_edit_in_thread_and_dm_keeps_context() -> None:
    """An edited thread reply in a DM keeps its thread and DM flag; an added mention counts."""
    reply = {**DM_MESSAGE, "thread_ts": "1718000000.000100"}
    event = changed(
        {**reply, "text": "<@U0BOT> by region", "edited": {"user": "U0ALICE", "ts": "1.0"}},
        reply,
    )
    event["channel"] = "D0ALICE"
    event["channel_type"] = "im"
    meaning = classify_message(event, BOT)
    assert isinstance(meaning, Edit)
    assert meaning.thread_ts == "1718000000.000100"
    assert meaning.is_dm
    assert meaning.mentioned


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (UNFURL, "unfurl"),
        (REPLY_COUNT, "reply count"),
        (
            changed({**ORIGINAL, "pinned_to": ["C0SALES"]}, ORIGINAL),
            "pin",
        ),
        (
            changed({**ORIGINAL, "edited": {"user": "U0ALICE", "ts": "1.0"}}, ORIGINAL),
            "unchanged text",
        ),
        (changed({**ORIGINAL, "text": "new text"}, ORIGINAL), "text changed without an edit mark"),
    ],
)
def test_non_edits_are_ignored(event: dict[str, Any], reason: str) -> None:
    """Unfurls, reply counts, pins and saves without a change are not edits."""
    assert classify_message(event, BOT) == Ignore(reason)


def test_edit_of_bot_message_is_ignored() -> None:
    """The bot updating its own answer (chat.update) is an own echo, not an edit."""
    event = changed(
        {**OWN_CHAT_POST, "text": "Sales were $1.3M", "edited": {"user": "U0BOT", "ts": "1.0"}},
        OWN_CHAT_POST,
    )
    assert classify_message(event, BOT) == Ignore("own echo")
    event = changed({**OTHER_BOT, "text": "ticket closed", "edited": {}}, OTHER_BOT)
    assert classify_message(event, BOT) == Ignore("bot message")


def test_tombstoned_thread_parent_is_a_deletion() -> None:
    """A thread parent deleted while it has replies turns into a tombstone: a deletion."""
    assert classify_message(TOMBSTONE, BOT) == Deletion(
        team_id="T0OURS", channel_id="C0SALES", ts="1718000000.000100", thread_ts=None
    )


def test_tombstone_of_bot_message_is_ignored() -> None:
    """A bot's thread parent turning into a tombstone is nothing to cancel."""
    event = copy.deepcopy(TOMBSTONE)
    event["previous_message"] = {**OWN_CHAT_POST, "thread_ts": OWN_CHAT_POST["ts"]}
    assert classify_message(event, BOT) == Ignore("own echo")


def test_message_deleted_is_a_deletion_with_its_thread() -> None:
    """A deleted thread reply is a deletion of deleted_ts, in the thread of the old message."""
    assert classify_message(DELETED_REPLY, BOT) == Deletion(
        team_id="T0OURS",
        channel_id="C0SALES",
        ts="1718000002.000300",
        thread_ts="1718000000.000100",
    )


def test_message_deleted_without_previous_message_is_still_a_deletion() -> None:
    """Without previous_message the deletion is still reported, as a top-level message."""
    event = {key: value for key, value in DELETED_REPLY.items() if key != "previous_message"}
    assert classify_message(event, BOT) == Deletion(
        team_id="T0OURS", channel_id="C0SALES", ts="1718000002.000300", thread_ts=None
    )


@pytest.mark.parametrize("previous", [OWN_CHAT_POST, OWN_REPLY, OTHER_BOT])
def test_deleting_a_bot_message_is_ignored(previous: dict[str, Any]) -> None:
    """Deleting a bot's message (ours or another's) cancels nothing."""
    event = {**DELETED_REPLY, "previous_message": previous}
    assert isinstance(classify_message(event, BOT), Ignore)


@pytest.mark.parametrize(
    "subtype",
    ["channel_join", "channel_topic", "message_replied", "ekm_access_denied", "pinned_item"],
)
def test_other_subtypes_are_ignored_with_their_name(subtype: str) -> None:
    """Joins, topic changes and other subtypes are ignored, naming the subtype."""
    event = {**CHANNEL_MESSAGE, "subtype": subtype}
    assert classify_message(event, BOT) == Ignore(f"subtype {subtype}")


def test_message_without_text_is_ignored() -> None:
    """A file shared with no comment, or a blank message, asks nothing."""
    event = {**CHANNEL_MESSAGE, "subtype": "file_share", "text": ""}
    assert classify_message(event, BOT) == Ignore("no text")
    assert classify_message({**DM_MESSAGE, "text": "  \n"}, BOT) == Ignore("no text")


def test_edited_app_mention_is_ignored() -> None:
    """Slack resends app_mention on edit; the message_changed carries the edit instead."""
    event = {**APP_MENTION, "edited": {"user": "U0ALICE", "ts": "1718000050.000000"}}
    assert classify_app_mention(event, BOT) == Ignore("edited mention")


def test_channel_type_missing_falls_back_to_channel_id() -> None:
    """Without channel_type, a D… channel is taken for a DM and a C… channel is not."""
    dm = {key: value for key, value in DM_MESSAGE.items() if key != "channel_type"}
    channel = {key: value for key, value in CHANNEL_MESSAGE.items() if key != "channel_type"}
    assert isinstance(meaning := classify_message(dm, BOT), Question)
    assert meaning.is_dm
    assert isinstance(meaning := classify_message(channel, BOT), Question)
    assert not meaning.is_dm


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "message"},
        {**CHANNEL_MESSAGE, "channel": None},
        {**CHANNEL_MESSAGE, "ts": 1718000000.0001},
        {**CHANNEL_MESSAGE, "user": ["U0ALICE"]},
        {**CHANNEL_MESSAGE, "text": 42},
        {**CHANNEL_MESSAGE, "subtype": 7},
        {**REAL_EDIT, "message": "not a dict"},
        {**REAL_EDIT, "message": {**REAL_EDIT["message"], "ts": None}},
        {**REAL_EDIT, "message": {**REAL_EDIT["message"], "user": None}},
        {**REAL_EDIT, "message": {**REAL_EDIT["message"], "text": None}},
        {**REAL_EDIT, "previous_message": None},
        {**REAL_EDIT, "channel": {}},
        {**DELETED_REPLY, "deleted_ts": None},
        {**DELETED_REPLY, "channel": 3},
    ],
)
def test_malformed_events_are_ignored_never_raise(event: dict[str, Any]) -> None:
    """Events missing channel, ts, user or message, or with wrong types, are ignored as malformed."""
    meaning = classify_message(event, BOT)
    assert isinstance(meaning, Ignore)
    assert meaning.reason.startswith("malformed"), meaning.reason


@pytest.mark.parametrize(
    "event",
    [
        "not a mapping",
        None,
        {"type": "app_mention"},
        {**APP_MENTION, "user": None},
        {**APP_MENTION, "channel": ""},
        {**APP_MENTION, "text": ["<@U0BOT>"]},
    ],
)
def test_malformed_app_mentions_are_ignored_never_raise(event: Any) -> None:
    """An app_mention missing its fields, or not even a dict, is ignored as malformed."""
    meaning = classify_app_mention(event, BOT)
    assert isinstance(meaning, Ignore)
    assert meaning.reason.startswith("malformed"), meaning.reason
    assert isinstance(classify_message(event, BOT), Ignore)


def test_question_text_removes_bot_mention_and_translates_markup() -> None:
    """The text sent to Trellis has our mention removed and Slack markup as plain words."""
    text = (
        "<@U0BOT>, compare <@U0BOB> and <@W0CAROL> in <#C0SALES|sales> for <!here> "
        "&amp; <!channel>: see <https://x.io/q3|the Q3 deck> and <https://x.io/raw> "
        "where revenue &gt; 5 &lt; 10"
    )
    names = {"U0BOB": "bob"}
    assert question_text(text, "U0BOT", names) == (
        "compare @bob and @W0CAROL in #sales for @here & @channel: see the Q3 deck "
        "(https://x.io/q3) and https://x.io/raw where revenue > 5 < 10"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what is <@U0BOT> thinking", "what is thinking"),
        ("  sales by region <@U0BOT>  ", "sales by region"),
        ("<@U0BOT>\nline one\n  indented", "line one\n  indented"),
        ("first\n<@U0BOT>\nsecond", "first\n\nsecond"),
        ("<@U0BOT|trellis> hi", "hi"),
        ("<@U0BOT>", ""),
        ("mail <mailto:bob@x.io|bob@x.io>", "mail bob@x.io"),
        ("site <http://x.io|x.io>", "site x.io"),
        ("<!subteam^S0DATA|@data-team> ping", "@data-team ping"),
        ("<!subteam^S0DATA> ping", "@S0DATA ping"),
        ("<#C0OPS>", "#C0OPS"),
        ("&amp;lt; stays escaped once", "&lt; stays escaped once"),
    ],
)
def test_question_text_edge_cases(text: str, expected: str) -> None:
    """Mentions anywhere, legacy labels, e-mail links and escapes read naturally."""
    assert question_text(text, "U0BOT", {}) == expected


def test_mentioned_user_ids_in_order_without_repeats() -> None:
    """Mentioned users are listed once each, in order; an excluded id (the bot) is left out."""
    text = "<@U0BOT> ask <@U0BOB> and <@W0CAROL|carol>, then <@U0BOB> again; <#C0X|x> <!here>"
    assert mentioned_user_ids(text) == ("U0BOT", "U0BOB", "W0CAROL")
    assert mentioned_user_ids(text, exclude={"U0BOT"}) == ("U0BOB", "W0CAROL")
    assert mentioned_user_ids("no mentions &lt;@U0BOB&gt;") == ()
