"""The App Home's decisions with a ten-line fake of its Slack seam (no sockets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trellis_slack.bot.access import Access
from trellis_slack.bot.home import Home
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import Rendered
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.users import UserInfo
from trellis_slack.store.sqlite import SqliteStore as Store

BOT = BotIdentity(user_id="U0BOT", bot_id="B0BOT", team_id="T0TEAM")
SETTINGS = Settings.from_mapping(
    {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_APP_TOKEN": "xapp-x",
        "TRELLIS_TOKEN": FakeTrellis().make_token("member"),
    }
)


class FakeSlack:
    """Records what the Home handler publishes and posts."""

    def __init__(self, teams: dict[str, str]) -> None:
        self.teams = teams
        self.views: dict[str, dict[str, Any]] = {}
        self.posts: list[tuple[str, str]] = []
        self.prompts: list[tuple[str, list[tuple[str, str]]]] = []

    async def user(self, user_id: str, *, fresh: bool = False) -> UserInfo | None:
        team = self.teams.get(user_id)
        return (
            UserInfo(user_id, user_id, None, team, is_bot=False, is_admin=False) if team else None
        )

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> bool:
        self.views[user_id] = view
        return True

    async def post(self, channel: str, thread_ts: str | None, body: Rendered) -> str | None:
        self.posts.append((channel, body.text))
        return "1.0"

    async def suggest_prompts(self, channel: str, prompts: Sequence[tuple[str, str]]) -> bool:
        self.prompts.append((channel, list(prompts)))
        return True


def lock_shown(view: dict[str, Any]) -> bool:
    return any(":lock:" in (b.get("text") or {}).get("text", "") for b in view["blocks"])


async def test_people_from_elsewhere_see_why_and_are_not_greeted(tmp_path: Path) -> None:
    """A Slack Connect visitor's Home tab says they may not ask, and they get no greeting."""
    slack = FakeSlack({"U0EXT": "T0OTHER", "U0ME": "T0TEAM"})
    async with await Store.open(tmp_path / "s.db") as store:
        home = Home(slack=slack, store=store, settings=SETTINGS, access=Access(), bot=BOT)
        for user in ("U0EXT", "U0ME"):
            await home.opened({"user": user, "tab": "home"})
            await home.opened({"user": user, "tab": "messages", "channel": f"D{user}"})
    assert lock_shown(slack.views["U0EXT"])
    assert "only answer people from this workspace" in str(slack.views["U0EXT"])
    assert not lock_shown(slack.views["U0ME"])
    assert [channel for channel, _ in slack.posts] == ["DU0ME"]


async def test_a_user_lookup_that_fails_counts_as_this_workspace(tmp_path: Path) -> None:
    """When Slack cannot say who someone is, the Home tab and greeting follow the lists alone."""
    slack = FakeSlack({})
    access = Access(allowed_users=frozenset({"U0ME"}))
    async with await Store.open(tmp_path / "s.db") as store:
        home = Home(slack=slack, store=store, settings=SETTINGS, access=access, bot=BOT)
        await home.opened({"user": "U0ME", "tab": "messages", "channel": "D1"})
        await home.opened({"user": "U0YOU", "tab": "messages", "channel": "D2"})
        await home.opened({"tab": "home"})  # no user: ignored
    assert [channel for channel, _ in slack.posts] == ["D1"]
    assert slack.views == {}


async def test_opening_the_conversation_suggests_prompts_to_those_who_may_ask(
    tmp_path: Path,
) -> None:
    """Each visit to the Messages tab sets the suggested prompts, but not for someone refused."""
    slack = FakeSlack({"U0EXT": "T0OTHER", "U0ME": "T0TEAM"})
    async with await Store.open(tmp_path / "s.db") as store:
        home = Home(slack=slack, store=store, settings=SETTINGS, access=Access(), bot=BOT)
        for _ in range(2):
            for user in ("U0EXT", "U0ME"):
                await home.opened({"user": user, "tab": "messages", "channel": f"D{user}"})
    assert [channel for channel, _ in slack.prompts] == ["DU0ME", "DU0ME"]
    assert slack.prompts[0][1] == list(SETTINGS.suggested_prompts)
    assert len(slack.posts) == 1  # greeted once, prompted every time
