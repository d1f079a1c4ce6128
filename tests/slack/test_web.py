"""The Slack shell translates Slack's refusals and network failures once, into our own errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.helpers import ALICE, CHANNEL
from trellis_slack.errors import SlackRefused, SlackUnavailable
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.slack.blocks import Rendered
from trellis_slack.slack.users import parse_user
from trellis_slack.slack.web import SlackIO, web_client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def test_a_refusal_carries_slacks_error_code(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    """A strict call Slack refuses raises SlackRefused with the method and Slack's code."""
    shell = SlackIO(web_client(slack.bot_token, slack.api_url, session, retries=False))
    slack.fail("auth.test", "invalid_auth")
    with pytest.raises(SlackRefused) as refused:
        await shell.auth_test()
    assert (refused.value.method, refused.value.error) == ("auth.test", "invalid_auth")
    assert "xoxb" not in str(refused.value)


async def test_an_unreachable_slack_is_unavailable(session: aiohttp.ClientSession) -> None:
    """Nobody listening at SLACK_API_URL raises SlackUnavailable; forgiving calls return None."""
    shell = SlackIO(web_client("xoxb-x", "http://127.0.0.1:9/api/", session, retries=False))
    with pytest.raises(SlackUnavailable):
        await shell.auth_test()
    assert await shell.post(CHANNEL, None, Rendered(text="hi", blocks=())) is None
    assert not await shell.respond("http://127.0.0.1:9/response", Rendered(text="hi", blocks=()))


async def test_forgiving_calls_log_and_go_on(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    """A refused post is None, and a fresh user lookup asks Slack again instead of the cache."""
    shell = SlackIO(web_client(slack.bot_token, slack.api_url, session, retries=False))
    slack.fail("chat.postMessage", "channel_not_found")
    assert await shell.post(CHANNEL, None, Rendered(text="hi", blocks=())) is None
    assert (await shell.user(ALICE)) is not None
    await shell.user(ALICE)
    await shell.user(ALICE, fresh=True)
    assert len(slack.calls_to("users.info")) == 2


def test_admin_means_admin_or_owner_and_not_deactivated() -> None:
    """users.info is read once: is_admin, is_owner or is_primary_owner, unless deleted."""
    for flag in ("is_admin", "is_owner", "is_primary_owner"):
        info = parse_user("U1", {"team_id": "T1", flag: True})
        assert info is not None
        assert info.is_admin
    gone = parse_user("U1", {"is_admin": True, "deleted": True})
    assert gone is not None
    assert not gone.is_admin
    assert parse_user("U1", "nonsense") is None
