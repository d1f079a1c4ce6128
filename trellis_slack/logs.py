"""Logging set-up: one configuration at start-up, secrets scrubbed, conversation ids on every record."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

#: Slack tokens, Trellis JWTs and ``?token=`` query values, whatever library logs them.
_SECRET_PATTERNS = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+"
    r"|xapp-[A-Za-z0-9-]+"
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    r"|(?<=token=)[^&\s\"']+"
    # A ``"token": "…"`` field, as in a Slack envelope's verification token (JSON or a dict repr).
    r"|(?<=\"token\": \")[^\"]+|(?<=\"token\":\")[^\"]+|(?<='token': ')[^']+"
)
REDACTED = "[redacted]"

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "trellis_slack_log_context", default=None
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything shaped like a token replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _SECRET_PATTERNS.sub(REDACTED, text)


class SecretFilter(logging.Filter):
    """Rewrites each record's message so no token reaches a handler, whoever logged it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, self._secrets)
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted tracebacks quote exception messages: format once here and scrub that too.
            record.exc_text = scrub(
                logging.Formatter().formatException(record.exc_info), self._secrets
            )
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


#: What a record carries when no conversation is in context.
_NO_ID = "-"


class ContextFilter(logging.Filter):
    """Adds the current channel, thread and chat ids (see ``log_context``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get() or {}
        record.slack_channel = values.get("channel", _NO_ID)
        record.slack_thread = values.get("thread", _NO_ID)
        record.trellis_chat = values.get("chat", _NO_ID)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the conversation ids, any traceback.

    Ids not known for a record are ``null``. The message and traceback are the ones the
    ``SecretFilter`` already scrubbed, so JSON lines hide secrets exactly as text lines do.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str | None] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("slack_channel", "slack_thread", "trellis_chat"):
            value = getattr(record, name, _NO_ID)
            entry[name] = None if value == _NO_ID else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Within the block, log records carry these ids (channel=, thread=, chat=)."""
    merged = dict(_context.get() or {})
    merged.update({key: value for key, value in values.items() if value})
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def add_log_context(**values: str | None) -> None:
    """Add ids to the current context (e.g. the chat id once Trellis names it)."""
    merged = dict(_context.get() or {})
    merged.update({key: value for key, value in values.items() if value})
    _context.set(merged)


#: Loggers of this project; every other logger belongs to a library.
_OWN = ("trellis_slack", "tests", "bench", "__main__")


class LibraryFilter(logging.Filter):
    """Drops library records below ``minimum``, whatever level the library gave its own logger.

    Setting the level of ``slack_bolt`` is not enough: Bolt gives each of its loggers the root
    logger's level when it creates them (``slack_bolt.logger``), and at DEBUG they log whole
    Socket Mode envelopes (user text, the envelope's verification ``token``). The handler's filter
    holds whatever the loggers' levels are.
    """

    def __init__(self, minimum: int) -> None:
        super().__init__()
        self.minimum = minimum

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.minimum:
            return True
        return record.name.partition(".")[0] in _OWN


def library_level(level: str) -> int:
    """The lowest level a library may log at: one step quieter than ours, never below INFO.

    At INFO the libraries' start-up chatter (matplotlib's font cache, slack_sdk's retry handlers)
    stays out of the admin's first lines; at DEBUG they say what they do, never their payloads.
    """
    ours = logging.getLevelName(level.upper())
    ours = ours if isinstance(ours, int) else logging.INFO
    return logging.INFO if ours <= logging.DEBUG else max(ours, logging.WARNING)


def configure(level: str, secrets: Iterable[str] = (), *, fmt: LogFormat = "text") -> None:
    """Configure the root logger once: text or JSON lines with conversation ids, secrets scrubbed.

    Libraries log at ``library_level(level)`` at most (see ``LibraryFilter``).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(slack_channel)s %(slack_thread)s %(trellis_chat)s] %(message)s"
        )
    )
    floor = library_level(level)
    handler.addFilter(LibraryFilter(floor))
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Also at the source, so libraries do not build records only to have them dropped.
    for name in ("websockets", "aiohttp", "slack_sdk", "slack_bolt", "matplotlib", "dotenv"):
        logging.getLogger(name).setLevel(floor)
