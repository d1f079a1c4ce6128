"""Local stand-ins for Slack and Trellis on 127.0.0.1, for the tests and the offline demo only.

The one test package trellis-slack ships. Its surface is what ``__all__`` lists:

* :class:`FakeSlack`: Slack's Web API and Socket Mode on one aiohttp server. The real bolt app
  reaches it through ``SLACK_API_URL``; tests play the people (``post``, ``edit``, ``click``,
  ``slash``, ``open_home``, ``feedback``, ``stop_agent``, …), inject trouble (``fail``,
  ``rate_limit``, ``refuse_streams``, ``expire_stream``) and await what the bot did with
  ``wait_for``. :class:`Ack`, :class:`ApiCall`, :class:`Envelope`, :class:`FakeFile` and
  :class:`Stream` (a streamed message, from ``stream_of``) are its records.
* :class:`FakeTrellis`: Trellis's WebSocket and REST API, answering each :class:`Question`
  with scripted :class:`Step` s (``answer`` builds the usual ones).

Only the demo and the tests may import this package (an import-linter contract checks it); the
bot never does.
"""

from trellis_slack.fakes.slack_server import Ack, ApiCall, Envelope, FakeFile, FakeSlack, Stream
from trellis_slack.fakes.trellis_server import (
    DEFAULT_INTEGRATIONS,
    FakeTrellis,
    Question,
    Step,
    answer,
)

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "Ack",
    "ApiCall",
    "Envelope",
    "FakeFile",
    "FakeSlack",
    "FakeTrellis",
    "Question",
    "Step",
    "Stream",
    "answer",
]
