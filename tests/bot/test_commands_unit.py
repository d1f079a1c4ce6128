"""``/trellis`` decisions with small fakes of its seams (Slack, Trellis REST, the ping)."""

from __future__ import annotations

from pathlib import Path

from trellis_slack.bot.access import Access
from trellis_slack.bot.commands import Commands
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import Rendered
from trellis_slack.slack.events import BotIdentity, SlashCommand
from trellis_slack.slack.users import UserInfo
from trellis_slack.store.sqlite import SqliteStore as Store
from trellis_slack.trellis.rest import Integration, ModelList
from trellis_slack.trellis.tokens import StaticToken

BOT = BotIdentity(user_id="U0BOT", bot_id="B0BOT", team_id="T0TEAM")
SETTINGS = Settings.from_mapping(
    {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_APP_TOKEN": "xapp-x",
        "TRELLIS_TOKEN": FakeTrellis().make_token("member"),
    }
)


class FakeSlack:
    """People by id; every lookup and answer is recorded."""

    def __init__(self, *people: UserInfo) -> None:
        self.people = {p.user_id: p for p in people}
        self.fresh: list[bool] = []
        self.answers: list[str] = []

    async def user(self, user_id: str, *, fresh: bool = False) -> UserInfo | None:
        self.fresh.append(fresh)
        return self.people.get(user_id)

    async def respond(self, response_url: str, body: Rendered) -> bool:
        self.answers.append(" ".join(str(b) for b in body.blocks))
        return True


class FakeRest:
    """Lists one database and answers every ping."""

    async def list_integrations(self, token: str) -> tuple[Integration, ...]:
        return (Integration("int-a", "A", None),)

    async def list_models(self, token: str) -> ModelList:
        return ModelList((), None)

    async def check(self, *, identity: str | None = None) -> None:
        return None


def person(user_id: str, *, team: str = "T0TEAM", admin: bool = False) -> UserInfo:
    return UserInfo(user_id, user_id, None, team, is_bot=False, is_admin=admin)


def commands(slack: FakeSlack, store: Store, access: Access) -> Commands:
    trellis = FakeRest()
    return Commands(
        slack=slack,
        store=store,
        rest=trellis,
        tokens=StaticToken("t"),
        trellis=trellis,
        settings=SETTINGS,
        access=access,
        bot=BOT,
    )


def run(text: str, user: str, channel: str = "C1") -> SlashCommand:
    return SlashCommand(text, user, channel, channel.startswith("D"), "http://x/response")


async def test_an_admin_left_out_of_allowed_users_is_refused(tmp_path: Path) -> None:
    """A listed admin who may not ask gets the asking refusal and changes nothing."""
    slack = FakeSlack(person("U0ADA", admin=True))
    access = Access(allowed_users=frozenset({"U0BOB"}), admin_users=frozenset({"U0ADA"}))
    async with await Store.open(tmp_path / "s.db") as store:
        reply = await commands(slack, store, access).answer(run("integration int-a", "U0ADA"))
        assert await store.channel_settings("T0TEAM", "C1") is None
    assert "not on the list of people who can ask" in str(reply.blocks)
    assert slack.fresh == [True]  # admin rights are never taken from the cache


async def test_a_workspace_admin_changes_the_database(tmp_path: Path) -> None:
    """This workspace's admin may set the channel's database; an admin from elsewhere may not."""
    slack = FakeSlack(person("U0ADA", admin=True), person("U0OTTO", team="T0X", admin=True))
    access = Access(allow_external_users=True)
    async with await Store.open(tmp_path / "s.db") as store:
        command = commands(slack, store, access)
        refused = await command.answer(run("integration int-a", "U0OTTO"))
        assert await store.channel_settings("T0TEAM", "C1") is None
        done = await command.answer(run("integration int-a", "U0ADA"))
        chosen = await store.channel_settings("T0TEAM", "C1")
    assert "only workspace admins and owners" in str(refused.blocks)
    assert "will use *A*" in str(done.blocks)
    assert chosen is not None
    assert chosen.integration_id == "int-a"


async def test_a_failed_lookup_does_nothing_and_says_so(tmp_path: Path) -> None:
    """When users.info fails the command changes nothing and asks to try again."""
    slack = FakeSlack()
    async with await Store.open(tmp_path / "s.db") as store:
        await commands(slack, store, Access()).run(
            {"text": "status", "user_id": "U0GONE", "channel_id": "C1", "response_url": "http://x"}
        )
    assert len(slack.answers) == 1
    assert "could not look up your Slack profile" in slack.answers[0]
