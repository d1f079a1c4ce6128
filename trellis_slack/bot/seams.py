"""The small Protocols the glue depends on, so its unit tests pass ten-line fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from trellis_slack.trellis.client import EditMessage, SendMessage
from trellis_slack.trellis.protocol import TrellisEvent
from trellis_slack.viz.renderer import NativeChart, Rendered


class TurnHandle(Protocol):
    """One streaming answer, as the Trellis client runs it."""

    chat_id: str | None
    user_message_id: str | None

    @property
    def last_frame_at(self) -> float | None:
        """``time.monotonic()`` when the last frame of this turn arrived."""

    def __aiter__(self) -> AsyncIterator[TrellisEvent]: ...

    async def interrupt(self) -> None: ...


class PendingTurn(AbstractAsyncContextManager[TurnHandle], Protocol):
    """A turn not yet entered; ``chat_id`` is the chat created for it, even if sending failed."""

    chat_id: str | None


class TurnSource(Protocol):
    """Something that runs turns: ``TrellisClient``, or a small fake in unit tests."""

    def turn(
        self,
        request: SendMessage | EditMessage,
        *,
        identity: str | None = None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
    ) -> PendingTurn: ...


class MessageDeleter(Protocol):
    """Something that deletes a user message (and all after it) in Trellis."""

    async def delete_message(self, message_id: str, *, identity: str | None = None) -> None: ...


class VisualizationRenderer(Protocol):
    """Turns a ``visualization`` payload into things to post, off the event loop."""

    async def render(
        self, viz_id: str, kind: str, payload: Mapping[str, Any]
    ) -> list[Rendered]: ...

    async def draw_instead(self, chart: NativeChart) -> list[Rendered]:
        """The PNG (or a table or note) of a native chart Slack refused."""
