"""The fake Slack's core without I/O, in one import: the world, Slack's limits, the Web API.

Each part lives in its own module: ``slack_model`` (users, channels, files, envelopes, calls),
``slack_content`` (text and Block Kit limits; native charts and tables in ``slack_data_blocks``),
``slack_workspace`` (the world and the events its changes cause) and ``slack_webapi`` (what
each Web API method does, by family in ``slack_api_*``).
"""

from __future__ import annotations

from trellis_slack.fakes.slack_api_base import Handler, optional_str, truthy
from trellis_slack.fakes.slack_api_files import filetype_of
from trellis_slack.fakes.slack_content import (
    KNOWN_BLOCKS,
    MAX_MARKDOWN,
    MAX_TEXT,
    block_problems,
    content_failure,
    find_action,
    first_link,
    rich_text_blocks,
    with_block_ids,
)
from trellis_slack.fakes.slack_data_blocks import data_table_problems, data_visualization_problems
from trellis_slack.fakes.slack_model import (
    CHANNEL_TYPES,
    DOMAIN,
    Ack,
    ApiCall,
    Channel,
    ChannelKind,
    Envelope,
    Failure,
    FakeFile,
    JsonDict,
    TsClock,
    User,
    new_id,
)
from trellis_slack.fakes.slack_webapi import WebApi
from trellis_slack.fakes.slack_workspace import Workspace

__all__ = [
    "CHANNEL_TYPES",
    "DOMAIN",
    "KNOWN_BLOCKS",
    "MAX_MARKDOWN",
    "MAX_TEXT",
    "Ack",
    "ApiCall",
    "Channel",
    "ChannelKind",
    "Envelope",
    "Failure",
    "FakeFile",
    "Handler",
    "JsonDict",
    "TsClock",
    "User",
    "WebApi",
    "Workspace",
    "block_problems",
    "content_failure",
    "data_table_problems",
    "data_visualization_problems",
    "filetype_of",
    "find_action",
    "first_link",
    "new_id",
    "optional_str",
    "rich_text_blocks",
    "truthy",
    "with_block_ids",
]
