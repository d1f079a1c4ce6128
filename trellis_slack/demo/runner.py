"""Runs the offline demo: a local Trellis and Slack, the real bot between them, and the page."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import tempfile
import webbrowser
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from trellis_slack.bot.app import Bot
from trellis_slack.demo.answers import SUGGESTIONS
from trellis_slack.demo.sample import SampleAnalyst
from trellis_slack.demo.server import DemoPage
from trellis_slack.demo.workspace import DemoWorkspace, Person, Room
from trellis_slack.errors import DemoError
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import Settings
from trellis_slack.trellis.client import Backoff

__all__ = [
    "CHANNEL",
    "DEFAULT_PORT",
    "DM",
    "PEOPLE",
    "SAMPLE_DATABASE",
    "YOU",
    "Demo",
    "display_available",
    "run",
]

log = logging.getLogger(__name__)

#: Where the page is served unless ``--port`` says otherwise.
DEFAULT_PORT: Final = 8642
#: The person at the keyboard, and their colleagues.
YOU: Final = "U0ALEX"
PEOPLE: Final = (Person(YOU, "alex"), Person("U0MARIA", "maria"), Person("U0SAM", "sam"))
CHANNEL: Final = "C0SALES"
DM: Final = "D0ALEX"
_TEAM: Final = "T0DEMO"
_BOT_USER: Final = "U0BOT"
_WELCOME: Final = (
    "Morning! The 2025 orders data is connected to Trellis now. Ask it anything about "
    "orders, regions or customers: mention @trellis here, or DM it."
)
#: The database the demo's Trellis answers from, listed by it and the bot's default, so
#: `/trellis status` and the App Home describe the sample data the answers come from.
SAMPLE_DATABASE: Final = {
    "id": "00000000-0000-4000-8000-000000002025",
    "display_name": "Sample orders 2025 (the demo's data)",
    "type": "sample",
}
#: The demo's Trellis token outlives any demo session (a day-old one would only log a warning).
_TOKEN_TTL: Final = 30 * 24 * 3600.0


class Demo:
    """Everything the demo runs, started and stopped together, in one process.

    The fake Trellis answers from the sample data, the fake Slack holds a small workspace
    (``#sales`` with two colleagues, and a DM with the bot), and the real :class:`Bot` connects
    to both exactly as in production: Socket Mode, the Web API, a SQLite state file (in a
    temporary folder removed on stop). ``pace`` scales how fast Trellis answers (0 in tests);
    ``hold`` keeps the slow question (the forecast) waiting until it is set.
    """

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        pace: float = 1.0,
        hold: asyncio.Event | None = None,
        update_interval: float = 1.0,
        warm_up_charts: bool = False,
        slash_timeout: float = 3.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.port = port
        self.trellis = FakeTrellis(
            version="current",
            responder=SampleAnalyst(pace=pace, hold=hold),
            integrations=[dict(SAMPLE_DATABASE)],
        )
        self.slack = FakeSlack(team_id=_TEAM, bot_user_id=_BOT_USER)
        self.workspace = DemoWorkspace(
            name="Acme Inc",
            me=YOU,
            bot=_BOT_USER,
            people=(*PEOPLE, Person(_BOT_USER, "trellis", is_bot=True)),
            rooms=(
                Room(CHANNEL, "sales", "public", "Orders, revenue and customers"),
                Room(DM, "trellis", "im", "Ask Trellis about the sample orders data"),
            ),
            suggestions=SUGGESTIONS,
        )
        self.page = DemoPage(self.slack, self.workspace, slash_timeout=slash_timeout)
        self.bot: Bot | None = None
        self._update_interval = update_interval
        self._warm_up_charts = warm_up_charts
        self._backoff = backoff
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The page's address."""
        return self.page.url

    async def start(self) -> None:
        """Serve the page (DemoError if the port is taken), then start Trellis, Slack, the bot."""
        try:
            await self.page.start("127.0.0.1", self.port)
        except OSError as exc:
            raise DemoError(
                f"cannot serve the demo page on 127.0.0.1:{self.port} ({exc.strerror or exc}); "
                "choose another port with --port, or --port 0 for any free one"
            ) from None
        await self.trellis.start()
        await self.slack.start()
        self._populate()
        # A colleague's welcome: the bot sees an ordinary message (no mention) and lets it be.
        await self.slack.post(CHANNEL, "U0MARIA", _WELCOME)
        self._folder = tempfile.TemporaryDirectory(prefix="trellis-slack-demo-")
        self.bot = Bot(
            self._settings(Path(self._folder.name) / "state.db"),
            backoff=self._backoff,
            update_interval=self._update_interval,
            warm_up_charts=self._warm_up_charts,
        )
        await self.bot.start()
        await self.slack.wait_for(lambda: self.slack.socket_connections > 0, timeout=10)

    def _populate(self) -> None:
        slack = self.slack
        for person in PEOPLE:
            slack.add_user(person.id, person.name, email=f"{person.name}@acme.example")
        members = [p.id for p in PEOPLE]
        slack.add_channel(CHANNEL, "sales", members=members)
        slack.add_channel(DM, "trellis", kind="im", members=[YOU])

    def _settings(self, db: Path) -> Settings:
        env: Mapping[str, str] = {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_APP_TOKEN": self.slack.app_token,
            "SLACK_API_URL": self.slack.api_url,
            "TRELLIS_TOKEN": self.trellis.make_token("demo", ttl=_TOKEN_TTL),
            "TRELLIS_WS_URL": self.trellis.ws_url,
            "TRELLIS_API_URL": self.trellis.api_url,
            "TRELLIS_INTEGRATION_ID": SAMPLE_DATABASE["id"],
            "TRELLIS_SLACK_DB": str(db),
        }
        return Settings.from_mapping(env)

    async def stop(self) -> None:
        """Stop the page, then the bot (answers in progress get two seconds), then the fakes."""
        await self.page.stop()
        if self.bot is not None:
            await self.bot.stop(grace=2.0)
        await self.slack.stop()
        await self.trellis.stop()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def display_available(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether a browser window can be opened: on macOS and Windows, or with an X11/Wayland display.

    Without a display, ``webbrowser`` would start a text browser in this terminal, so the demo
    only prints the address then.
    """
    if platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


async def run(port: int = DEFAULT_PORT, *, open_browser: bool = True) -> int:
    """Run the demo until Ctrl-C or SIGTERM; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("Starting the trellis-slack demo: local Slack, local Trellis, and the real bot…")
    async with Demo(port=port) as demo:
        print(f"Open {demo.url} in your browser. Press Ctrl-C to stop.", flush=True)
        if open_browser:
            await asyncio.to_thread(webbrowser.open, demo.url)
        await stop.wait()
        print("Stopping…", flush=True)
    return 0
