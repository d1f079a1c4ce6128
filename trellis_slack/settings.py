"""The configuration contract: environment variables → one frozen, validated ``Settings``."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

import jwt

from trellis_slack.errors import ConfigError
from trellis_slack.logs import LogFormat

FollowUps = Literal["all", "mentions"]
Streaming = Literal["native", "update"]
Charts = Literal["auto", "native", "png"]
PrivateAnswers = Literal["off", "ephemeral", "dm"]

#: Every variable the bridge reads, with its one-line meaning. The README's configuration table is
#: tested against this mapping, so a variable cannot be added without being documented.
VARIABLES: dict[str, str] = {
    "SLACK_BOT_TOKEN": "Bot token `xoxb-…`. Required for `run`.",
    "SLACK_APP_TOKEN": "App-level token `xapp-…` with `connections:write` (Socket Mode). Required for `run`.",
    "SLACK_API_URL": "Slack Web API base URL; every Slack call goes through it. Default `https://slack.com/api/`.",
    "TRELLIS_TOKEN": "A Trellis JWT shared by all Slack users. This or `TRELLIS_API_KEY` is required.",
    "TRELLIS_API_KEY": "A Trellis API key: the bridge mints a JWT per Slack user from their e-mail.",
    "TRELLIS_WS_URL": "Trellis chat WebSocket. Default `wss://api.trellis.sh/v1/chats/ws`.",
    "TRELLIS_API_URL": "Trellis REST API. Default `https://api.trellis.sh`.",
    "TRELLIS_INTEGRATION_ID": "Default integration (database) for questions. Optional.",
    "TRELLIS_MODEL": "Default model. Optional (Trellis picks its default).",
    "TRELLIS_SLACK_DB": "Where the state is kept: the path of a SQLite file (one copy of the bot), or a `postgresql://user:password@host/db` URL (several replicas share it: see [Running several replicas](#running-several-replicas)). Default `./trellis-slack.db`.",
    "REPLICA_TTL": "Seconds a replica's heartbeat in the state store lasts (renewed every third of it): a replica silent this long is taken for dead, and another takes over its questions. Default `15`.",
    "LOG_LEVEL": "`DEBUG`, `INFO`, `WARNING` or `ERROR`. Default `INFO`.",
    "FOLLOW_UPS": "`all`: any reply in a bot thread is a follow-up (default); `mentions`: only replies that mention the bot.",
    "SLACK_STREAMING": "`native`: answers stream into their message with Slack's streaming methods, steps as task cards (default); `update`: the message is edited as the answer grows (for workspaces that cannot stream).",
    "SLACK_CHARTS": "`auto`: charts Slack can draw itself become native chart blocks, the others PNG images (default); `native`: the same, native wherever it fits; `png`: always images.",
    "PRIVATE_ANSWERS": "Where answers to questions asked in channels go: `off`: in the thread, for everyone there (default); `ephemeral`: in the thread, visible only to the asker, with a button to share it; `dm`: in the asker's DM with the bot, with a short link left in the thread. Meant for `TRELLIS_API_KEY`, where an answer is built on the asker's own Trellis permissions.",
    "SUGGESTED_PROMPTS": "Up to 4 prompts, separated by `;`, suggested when someone opens the bot's conversation; each `Title=question` or just the question. Default: four questions a data analyst is often asked.",
    "ALLOWED_CHANNELS": "Comma-separated channel ids the bot answers in (DMs included by id). Default: everywhere it is invited.",
    "ALLOWED_USERS": "Comma-separated Slack user ids allowed to ask. Default: everyone in the workspace.",
    "ALLOW_EXTERNAL_USERS": "`true` to answer users from other workspaces (Slack Connect). Default `false`.",
    "TRELLIS_TURN_TIMEOUT": "Seconds without any event from Trellis before an answer is given up. Default `300`.",
    "TRELLIS_IDLE_TIMEOUT": "Seconds an idle Trellis connection is kept open. Default `120`.",
    "TRELLIS_CHATS_PER_MINUTE": "New Trellis chats the bot starts per minute per token (the current API allows 20); questions beyond it wait, and say so. Default `20`.",
    "TRELLIS_MAX_CONNECTIONS": "Trellis connections per token (the current API allows 3). Default `3`.",
    "TRELLIS_CHAT_RETENTION_DAYS": "Days a thread's Trellis chat may stay unused before it is deleted in Trellis (checked at start-up and daily; a follow-up there then starts afresh). Chats are also retired, least recently used first, when Trellis's open-chat cap is reached. Default: off.",
    "TRELLIS_ADMIN_USERS": "Comma-separated Slack user ids who may change a channel's integration and model with `/trellis` (workspace admins always may).",
    "LOG_FORMAT": "`text` (default) or `json`: one JSON object per line with the channel, thread and chat ids.",
    "HEALTH_PORT": "Port of the HTTP server for `/healthz` and `/metrics` (Prometheus). Default: no server.",
    "HEALTH_HOST": "Address that server listens on. Default `0.0.0.0` (all interfaces, as a container needs).",
    "CHECK_EMAIL": "For `trellis-slack check` with `TRELLIS_API_KEY`: an e-mail to mint a test token for (Trellis creates that member if unknown). Without it that part is skipped.",
}

#: What the bot's conversation suggests asking when someone opens it: (title, message) pairs.
DEFAULT_PROMPTS: tuple[tuple[str, str], ...] = (
    ("Top regions", "Which regions had the most orders last month?"),
    ("Revenue trend", "How did revenue change month by month this year?"),
    ("Biggest customers", "Who are our ten biggest customers by revenue?"),
    ("What can you do?", "What data can you answer questions about?"),
)
_MAX_PROMPTS = 4

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMATS = ("text", "json")
_ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the health server must be reachable from outside a container
_TOKEN_WARN_WITHIN = timedelta(days=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration. Secrets are kept out of ``repr``."""

    slack_bot_token: str = field(repr=False)
    slack_app_token: str = field(repr=False)
    trellis_token: str | None = field(default=None, repr=False)
    trellis_api_key: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    trellis_ws_url: str = "wss://api.trellis.sh/v1/chats/ws"
    trellis_api_url: str = "https://api.trellis.sh"
    trellis_integration_id: str | None = None
    trellis_model: str | None = None
    db_path: str = field(default="./trellis-slack.db", repr=False)  # a URL may hold a password
    log_level: str = "INFO"
    follow_ups: FollowUps = "all"
    slack_streaming: Streaming = "native"
    slack_charts: Charts = "auto"
    #: Where answers to channel questions go (`bot.private`); DMs are private already.
    private_answers: PrivateAnswers = "off"
    suggested_prompts: tuple[tuple[str, str], ...] = DEFAULT_PROMPTS
    allowed_channels: frozenset[str] | None = None
    allowed_users: frozenset[str] | None = None
    allow_external_users: bool = False
    turn_timeout: float = 300.0
    idle_timeout: float = 120.0
    max_connections: int = 3
    chats_per_minute: int = 20
    replica_ttl: float = 15.0  # seconds a replica's heartbeat lasts (`bot.fleet`)
    #: Days a chat may stay unused before it is retired (deleted in Trellis); None: never.
    chat_retention_days: float | None = None
    #: Slack user ids who may change channel settings (besides workspace admins); None: nobody else.
    admin_users: frozenset[str] | None = None
    log_format: LogFormat = "text"
    #: Port of the ``/healthz`` + ``/metrics`` server; None: no server (0 picks a free port).
    health_port: int | None = None
    health_host: str = _ALL_INTERFACES
    #: The e-mail ``trellis-slack check`` mints a test token for in per-user mode.
    check_email: str | None = None
    #: Things the admin should know but that do not stop the bot (e.g. a token expiring soon).
    warnings: tuple[str, ...] = ()

    @property
    def per_user_identity(self) -> bool:
        """True when each Slack user gets their own Trellis JWT minted from the API key."""
        return self.trellis_token is None and self.trellis_api_key is not None

    @classmethod
    def from_mapping(
        cls,
        env: Mapping[str, str],
        *,
        require_slack: bool = True,
        require_trellis: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> Settings:
        """Build settings from ``env``; raise ``ConfigError`` listing *every* problem at once.

        ``require_trellis=False`` leaves the Trellis credentials out (unread), for checking the
        Slack half of a configuration whose Trellis half is wrong (``trellis-slack check``).
        """
        reader = _Reader(env)
        bot_token = reader.secret("SLACK_BOT_TOKEN", prefix="xoxb-", required=require_slack)
        app_token = reader.secret("SLACK_APP_TOKEN", prefix="xapp-", required=require_slack)
        trellis_token = reader.secret("TRELLIS_TOKEN") if require_trellis else None
        api_key = reader.secret("TRELLIS_API_KEY") if require_trellis else None
        if require_trellis and trellis_token is None and api_key is None:
            reader.problems.append(
                "TRELLIS_TOKEN or TRELLIS_API_KEY is required: set a Trellis JWT shared by all "
                "users, or an API key to mint one per Slack user"
            )
        warnings: list[str] = []
        if trellis_token is not None:
            problem, warning = inspect_static_token(trellis_token, now())
            if problem:
                reader.problems.append(problem)
            if warning:
                warnings.append(warning)
        slack_api_url = reader.url("SLACK_API_URL", "https://slack.com/api/", ("https", "http"))
        if not slack_api_url.endswith("/"):
            slack_api_url += "/"
        settings = cls(
            slack_bot_token=bot_token or "",
            slack_app_token=app_token or "",
            trellis_token=trellis_token,
            trellis_api_key=api_key,
            slack_api_url=slack_api_url,
            trellis_ws_url=reader.url(
                "TRELLIS_WS_URL", "wss://api.trellis.sh/v1/chats/ws", ("wss", "ws")
            ),
            trellis_api_url=reader.url(
                "TRELLIS_API_URL", "https://api.trellis.sh", ("https", "http")
            ).rstrip("/"),
            trellis_integration_id=reader.optional("TRELLIS_INTEGRATION_ID"),
            trellis_model=reader.optional("TRELLIS_MODEL"),
            db_path=reader.database("TRELLIS_SLACK_DB", "./trellis-slack.db"),
            log_level=reader.choice("LOG_LEVEL", _LOG_LEVELS, "INFO", upper=True),
            log_format=reader.log_format(),
            follow_ups=reader.follow_ups(),
            slack_streaming=reader.streaming(),
            slack_charts=reader.charts(),
            private_answers=reader.private_answers(),
            suggested_prompts=reader.prompts(),
            allowed_channels=reader.id_list("ALLOWED_CHANNELS"),
            allowed_users=reader.id_list("ALLOWED_USERS"),
            allow_external_users=reader.boolean("ALLOW_EXTERNAL_USERS", default=False),
            turn_timeout=reader.number("TRELLIS_TURN_TIMEOUT", 300.0),
            idle_timeout=reader.number("TRELLIS_IDLE_TIMEOUT", 120.0),
            max_connections=int(reader.number("TRELLIS_MAX_CONNECTIONS", 3, integer=True)),
            chats_per_minute=int(reader.number("TRELLIS_CHATS_PER_MINUTE", 20, integer=True)),
            replica_ttl=reader.number("REPLICA_TTL", 15.0),
            chat_retention_days=reader.days("TRELLIS_CHAT_RETENTION_DAYS"),
            admin_users=reader.id_list("TRELLIS_ADMIN_USERS"),
            health_port=reader.port("HEALTH_PORT"),
            health_host=reader.optional("HEALTH_HOST") or _ALL_INTERFACES,
            check_email=reader.email("CHECK_EMAIL"),
            warnings=tuple(warnings),
        )
        if reader.problems:
            raise ConfigError(reader.problems)
        return settings


def inspect_static_token(token: str, now: datetime) -> tuple[str | None, str | None]:
    """Look inside a JWT without verifying it: ``(problem, warning)``, never quoting the token.

    Trellis holds the signing key, so only the shape and ``exp`` can be checked here; an expired
    token is refused at start-up (every answer would fail), one expiring within a day is a warning.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ("TRELLIS_TOKEN is not a JWT (expected three base64 parts separated by dots)", None)
    exp = claims.get("exp")
    if exp is None:
        return None, None
    if not isinstance(exp, int | float):
        return ("TRELLIS_TOKEN has an `exp` claim that is not a number", None)
    expires = datetime.fromtimestamp(exp, UTC)
    left = expires - now
    when = expires.strftime("%Y-%m-%d %H:%M UTC")
    if left <= timedelta(0):
        return (f"TRELLIS_TOKEN expired at {when}: ask Trellis for a new token", None)
    if left <= _TOKEN_WARN_WITHIN:
        hours, rest = divmod(int(left.total_seconds()), 3600)
        return None, f"TRELLIS_TOKEN expires in {hours} h {rest // 60} min (at {when})"
    return None, None


@dataclass
class _Reader:
    """Reads variables from the mapping, collecting problems instead of stopping at the first."""

    env: Mapping[str, str]
    problems: list[str] = field(default_factory=list)

    def optional(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            # `docker run --env-file` keeps quotes as part of the value: say so plainly rather
            # than reporting a token that "does not start with xoxb-".
            self.problems.append(
                f"{name} is wrapped in quotes: remove them (docker --env-file keeps quotes as "
                "part of the value)"
            )
            value = value[1:-1].strip()
        return value or None

    def secret(self, name: str, *, prefix: str = "", required: bool = False) -> str | None:
        value = self.optional(name)
        if value is None:
            if required:
                self.problems.append(f"{name} is required")
            return None
        if prefix and not value.startswith(prefix):
            self.problems.append(f"{name} must start with {prefix!r}")
        return value

    def database(self, name: str, default: str) -> str:
        """A file path or a PostgreSQL URL (never quoted back: it may hold a password)."""
        value = self.optional(name) or default
        scheme, sep, _ = value.partition("://")
        if sep and scheme.lower() not in ("postgresql", "postgres"):
            self.problems.append(f"{name} must be a file path or a postgresql:// URL")
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.optional(name) or default
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            self.problems.append(f"{name} must be a URL starting with {' or '.join(schemes)}://")
        elif parts.query or parts.username or parts.password:
            self.problems.append(f"{name} must not carry credentials or a query string")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str, *, upper: bool) -> str:
        value = self.optional(name) or default
        value = value.upper() if upper else value.lower()
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)} (got {value!r})")
            return default
        return value

    def log_format(self) -> LogFormat:
        return (
            "json"
            if self.choice("LOG_FORMAT", _LOG_FORMATS, "text", upper=False) == "json"
            else "text"
        )

    def follow_ups(self) -> FollowUps:
        value = (self.optional("FOLLOW_UPS") or "all").lower()
        if value == "mentions":
            return "mentions"
        if value != "all":
            self.problems.append(f"FOLLOW_UPS must be 'all' or 'mentions' (got {value!r})")
        return "all"

    def prompts(self) -> tuple[tuple[str, str], ...]:
        value = self.optional("SUGGESTED_PROMPTS")
        if value is None:
            return DEFAULT_PROMPTS
        prompts: list[tuple[str, str]] = []
        for part in value.split(";"):
            title, sep, message = part.partition("=")
            if not sep:
                title, message = part, part
            title, message = title.strip(), message.strip()
            if message:
                prompts.append(((title or message)[:75], message[:1000]))
        if not prompts or len(prompts) > _MAX_PROMPTS:
            self.problems.append(
                f"SUGGESTED_PROMPTS must list 1 to {_MAX_PROMPTS} prompts separated by ';' "
                f"(got {len(prompts)})"
            )
            return DEFAULT_PROMPTS
        return tuple(prompts)

    def charts(self) -> Charts:
        value = (self.optional("SLACK_CHARTS") or "auto").lower()
        if value in ("native", "png"):
            return "native" if value == "native" else "png"
        if value != "auto":
            self.problems.append(f"SLACK_CHARTS must be 'auto', 'native' or 'png' (got {value!r})")
        return "auto"

    def private_answers(self) -> PrivateAnswers:
        value = self.choice("PRIVATE_ANSWERS", ("off", "ephemeral", "dm"), "off", upper=False)
        return "ephemeral" if value == "ephemeral" else "dm" if value == "dm" else "off"

    def streaming(self) -> Streaming:
        value = (self.optional("SLACK_STREAMING") or "native").lower()
        if value == "update":
            return "update"
        if value != "native":
            self.problems.append(f"SLACK_STREAMING must be 'native' or 'update' (got {value!r})")
        return "native"

    def id_list(self, name: str) -> frozenset[str] | None:
        value = self.optional(name)
        if value is None:
            return None
        ids = frozenset(part.strip() for part in value.split(",") if part.strip())
        if not ids:
            self.problems.append(f"{name} is set but lists no ids")
        return ids

    def port(self, name: str) -> int | None:
        value = self.optional(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or int(value) > 65535:
            self.problems.append(f"{name} must be a port number from 0 to 65535 (got {value!r})")
            return None
        return int(value)

    def email(self, name: str) -> str | None:
        value = self.optional(name)
        if value is None:
            return None
        local, _, domain = value.partition("@")
        if not local or "." not in domain or "@" in domain or any(c.isspace() for c in value):
            self.problems.append(f"{name} must be an e-mail address (got {value!r})")
            return None
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false (got {value!r})")
        return default

    def days(self, name: str) -> float | None:
        """A positive number of days, or None when unset."""
        value = self.optional(name)
        if value is None:
            return None
        try:
            days = float(value)
        except ValueError:
            days = -1.0
        if not math.isfinite(days) or days <= 0:
            self.problems.append(f"{name} must be a number of days above zero (got {value!r})")
            return None
        return days

    def number(self, name: str, default: float, *, integer: bool = False) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            kind = "a whole number" if integer else "a number of seconds"
            self.problems.append(f"{name} must be {kind} (got {value!r})")
            return default
        if number <= 0:
            self.problems.append(f"{name} must be greater than zero (got {value!r})")
            return default
        return number
