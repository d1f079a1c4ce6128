"""Secrets never reach a log handler, and records carry the conversation ids."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from trellis_slack import logs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZW1iZXIifQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure("DEBUG", ["plain-api-key-42"])
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_tokens_are_scrubbed_from_messages(captured: io.StringIO) -> None:
    """Slack tokens, JWTs, ?token= values and configured secrets are replaced in log lines."""
    log = logging.getLogger("some.library")
    log.info("bot token %s", "xoxb-123-456-abcdef")
    log.info("connecting to wss://x/ws?token=%s&heartbeat=1", JWT)
    log.warning("app token xapp-1-A2-3-xyz and key plain-api-key-42")
    text = captured.getvalue()
    for secret in ("xoxb-123-456-abcdef", JWT, "xapp-1-A2-3-xyz", "plain-api-key-42"):
        assert secret not in text
    assert text.count(logs.REDACTED) >= 4


def test_tracebacks_are_scrubbed(captured: io.StringIO) -> None:
    """An exception message that quotes a token is scrubbed in the logged traceback."""
    try:
        raise RuntimeError(f"bad auth {JWT}")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    text = captured.getvalue()
    assert "RuntimeError" in text
    assert JWT not in text


def test_records_carry_conversation_ids(captured: io.StringIO) -> None:
    """Inside log_context, each line names the channel, thread and chat."""
    with logs.log_context(channel="C1", thread="111.222"):
        logs.add_log_context(chat="chat_9")
        logging.getLogger("y").info("hello")
    logging.getLogger("y").info("outside")
    lines = captured.getvalue().splitlines()
    assert "[C1 111.222 chat_9] hello" in lines[0]
    assert "[- - -] outside" in lines[1]
