"""Every exception trellis-slack raises, in one place.

The hierarchy::

    TrellisSlackError                 base of everything below; ``str()`` is safe to show a user
    ├── ConfigError                   the environment is incomplete or invalid (all problems at once)
    ├── StateError                    the SQLite state file cannot be opened or migrated
    ├── SlackError                    a Slack Web API call failed (translated once, in slack/web.py)
    │   ├── SlackRefused              Slack answered ``ok: false``; ``error`` is Slack's code
    │   └── SlackUnavailable          Slack's Web API could not be reached (network, time-out)
    ├── DemoError                     ``trellis-slack demo`` cannot start (its port is taken)
    └── TrellisError                  anything that went wrong talking to Trellis
        ├── TrellisAuthError          the token or API key was rejected (close 4001, HTTP 401/403)
        ├── TrellisUnavailable        Trellis could not be reached (connect failures, backoff exhausted)
        ├── TrellisConnectionLost     the connection dropped while an answer was streaming
        ├── TrellisTimeout            no event arrived for too long; the turn was interrupted
        ├── TrellisRateLimited        Trellis said slow down (4429, ``RATE_LIMIT``); ``retry_after``
        ├── TrellisProtocolError      a frame that is not JSON or lacks required fields
        │   └── TrellisMalformedAnswer  the turn's final ``message`` (or ``error``) was unreadable
        └── TrellisAPIError           an ``error`` event or a REST error answer from Trellis

Third-party exceptions (``websockets``, ``aiohttp``) are translated at the boundary with
``raise ... from exc``. No message built here ever contains a token.
"""

from __future__ import annotations


class TrellisSlackError(Exception):
    """Base class: the message is plain words, safe to log and to show in Slack."""


class ConfigError(TrellisSlackError):
    """The configuration is incomplete or invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class SlackError(TrellisSlackError):
    """A Slack Web API call (or a ``response_url`` answer) did not work."""


class SlackRefused(SlackError):
    """Slack answered with ``ok: false``: ``method`` and Slack's ``error`` code say which and why."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error


class SlackUnavailable(SlackError):
    """Slack could not be reached (network, proxy, firewall, or a wrong ``SLACK_API_URL``)."""


class StateError(TrellisSlackError):
    """The SQLite state file cannot be opened, created or migrated."""


class DemoError(TrellisSlackError):
    """The offline demo cannot start, for example because its port is already in use."""


class TrellisError(TrellisSlackError):
    """Something went wrong talking to Trellis."""

    #: Whether asking again may help (drives the Retry button).
    retryable: bool = True


class TrellisAuthError(TrellisError):
    """Trellis rejected our credentials: retrying with the same token cannot help."""

    retryable = False


class TrellisUnavailable(TrellisError):
    """Trellis could not be reached."""


class TrellisConnectionLost(TrellisError):
    """The connection dropped while a turn was in progress."""


class TrellisTimeout(TrellisError):
    """Trellis sent nothing for longer than the turn timeout."""


class TrellisRateLimited(TrellisError):
    """Trellis asked us to slow down."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrellisProtocolError(TrellisError):
    """A frame from Trellis was not JSON or lacked required fields."""


class TrellisMalformedAnswer(TrellisProtocolError):
    """The frame that ends a turn (its ``message`` or ``error``) could not be read: the turn is over.

    Asking again usually helps, so it is retryable; ``str()`` is the line the user sees.
    """

    def __init__(self, message: str = "Trellis sent an answer I could not read.") -> None:
        super().__init__(message)


class TrellisAPIError(TrellisError):
    """Trellis answered with an error (an ``error`` event or a REST error body)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        debug_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.debug_id = debug_id
        self.status = status
        if retryable is not None:
            self.retryable = retryable
