"""TRELLIS_CHAT_RETENTION_DAYS: off by default, a positive number of days when set."""

from __future__ import annotations

import pytest

from tests.test_settings import base_env, load
from trellis_slack.errors import ConfigError


def test_chat_retention_is_off_by_default() -> None:
    """Without the variable no chat is retired for being idle."""
    assert load(base_env()).chat_retention_days is None


def test_chat_retention_takes_days() -> None:
    """A number of days, fractions allowed."""
    assert load(base_env(TRELLIS_CHAT_RETENTION_DAYS="30")).chat_retention_days == 30.0
    assert load(base_env(TRELLIS_CHAT_RETENTION_DAYS="0.5")).chat_retention_days == 0.5


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_a_retention_that_is_no_positive_number_is_reported(value: str) -> None:
    """Zero, negative, infinite or non-numeric days are a configuration problem, named."""
    with pytest.raises(ConfigError, match="TRELLIS_CHAT_RETENTION_DAYS"):
        load(base_env(TRELLIS_CHAT_RETENTION_DAYS=value))


def test_chats_per_minute_defaults_to_trellis_limit() -> None:
    """New chats are paced at Trellis's 20 a minute unless TRELLIS_CHATS_PER_MINUTE says otherwise."""
    assert load(base_env()).chats_per_minute == 20
    assert load(base_env(TRELLIS_CHATS_PER_MINUTE="60")).chats_per_minute == 60
