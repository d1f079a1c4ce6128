"""The README documents the configuration contract exactly."""

from __future__ import annotations

import re

from tests.helpers import ROOT
from trellis_slack.settings import VARIABLES

README = ROOT / "README.md"


def test_configuration_table_matches_the_settings() -> None:
    """Every variable the settings read is in the README table, and nothing else is."""
    rows = re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert rows == list(VARIABLES)


def test_quick_start_has_install_and_test_commands() -> None:
    """The quick start shows one command to install and run the bot and one for the tests."""
    text = README.read_text()
    assert "pip install . && trellis-slack run" in text
    assert 'pip install -e ".[dev]" && python -m pytest' in text
