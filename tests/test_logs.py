"""Secrets never reach a log handler, and records carry the conversation ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from trellis_slack import logs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZW1iZXIifQ.c2lnbmF0dXJlLXZhbHVl"


def configured(fmt: logs.LogFormat) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure("DEBUG", ["plain-api-key-42"], fmt=fmt)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    yield from configured("text")


@pytest.fixture
def captured_json() -> Iterator[io.StringIO]:
    yield from configured("json")


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


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


def test_json_lines_carry_the_fields_and_ids(captured_json: io.StringIO) -> None:
    """LOG_FORMAT=json writes one JSON object per line with level, logger, message and the ids."""
    with logs.log_context(channel="C1", thread="111.222"):
        logs.add_log_context(chat="chat_9")
        logging.getLogger("trellis_slack.bot.turn").warning("turn failed: %s", "timeout")
    logging.getLogger("y").info("outside")
    inside, outside = json_lines(captured_json)
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "trellis_slack.bot.turn"
    assert inside["message"] == "turn failed: timeout"
    assert (inside["slack_channel"], inside["slack_thread"], inside["trellis_chat"]) == (
        "C1",
        "111.222",
        "chat_9",
    )
    assert str(inside["time"]).endswith("+00:00")
    assert (outside["slack_channel"], outside["slack_thread"], outside["trellis_chat"]) == (
        None,
        None,
        None,
    )


def test_json_lines_scrub_secrets_like_text(captured_json: io.StringIO) -> None:
    """JSON lines hide tokens, configured secrets and secrets in tracebacks exactly as text lines do."""
    log = logging.getLogger("some.library")
    log.info("bot token %s", "xoxb-123-456-abcdef")
    log.info("connecting to wss://x/ws?token=%s&heartbeat=1", JWT)
    log.warning("key plain-api-key-42")
    try:
        raise RuntimeError(f"bad auth {JWT}")
    except RuntimeError:
        log.exception("failed")
    text = captured_json.getvalue()
    for secret in ("xoxb-123-456-abcdef", JWT, "plain-api-key-42"):
        assert secret not in text
    entries = json_lines(captured_json)
    assert len(entries) == 4
    assert entries[0]["message"] == f"bot token {logs.REDACTED}"
    assert "RuntimeError: bad auth [redacted]" in str(entries[3]["exception"])
