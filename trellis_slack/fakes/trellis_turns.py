"""The fake Trellis playing a turn: one socket's state and the scripted steps of its answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from trellis_slack.fakes.trellis_script import (
    CLOSE,
    DROP,
    PAUSE,
    RAW,
    Question,
    Step,
    new_visualization_id,
)
from trellis_slack.fakes.trellis_state import (
    FakeChat,
    FakeMessage,
    Problem,
    TrellisState,
    new_id,
    opt_str,
)

__all__ = ["Conn", "TurnPlayer"]

logger = logging.getLogger(__name__)

_TOOL_EVENTS: Final = frozenset({"tool_call", "tool_result", "tool_message"})
#: The seed has no tool events: it ignores ``include_tool_events``.
_SEED_NEVER_SENDS: Final = frozenset({"text_delta", "heartbeat", *_TOOL_EVENTS})


class ServerTurn:
    """One streaming response on one connection."""

    __slots__ = ("announced", "heartbeat", "streaming", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.streaming = True
        #: Set once ``chat_metadata`` went out: every response starts with it, even one that is
        #: interrupted at once (the user message is already stored).
        self.announced = asyncio.Event()

    def finish(self) -> None:
        """The terminal event is going out: the connection may take a new turn."""
        self.streaming = False
        if self.heartbeat is not None:
            self.heartbeat.cancel()


class Conn:
    """Server-side state of one WebSocket connection."""

    __slots__ = ("heartbeat", "id", "sends", "sub", "tasks", "token", "turn", "ws")

    def __init__(self, conn_id: int, ws: ServerConnection, *, heartbeat: bool) -> None:
        self.id = conn_id
        self.ws = ws
        self.heartbeat = heartbeat
        self.token: str | None = None
        self.sub: str | None = None
        self.turn: ServerTurn | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        #: When this socket sent each recent ``send_message`` (for the rate limits).
        self.sends: deque[float] = deque()

    @property
    def streaming(self) -> bool:
        return self.turn is not None and self.turn.streaming

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def send_event(self, event: str, data: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps({"event": event, "data": data}))


class TurnPlayer:
    """Starts, plays and interrupts the scripted answers of one :class:`TrellisState`."""

    def __init__(self, state: TrellisState) -> None:
        self.state = state

    def start(
        self,
        conn: Conn,
        chat: FakeChat,
        frame: Mapping[str, Any],
        user_message: FakeMessage,
        integration_id: str | None,
        *,
        is_edit: bool,
    ) -> None:
        """Answer ``user_message`` on ``conn`` with the responder's steps, in a task."""
        assert conn.sub is not None
        question = Question(
            text=user_message.content,
            chat_id=chat.id,
            integration_id=integration_id,
            model=opt_str(frame.get("model")),
            is_edit=is_edit,
            token_sub=conn.sub,
            user_message_id=user_message.id,
            include_tool_events=frame.get("include_tool_events") is True,
            files=self._files(frame.get("upload_ids")),
        )
        injections = self.state.injections
        injected = injections.popleft() if injections else ()
        turn = ServerTurn()
        conn.turn = turn
        turn.task = conn.spawn(self._run(conn, turn, chat, question, injected))

    def _files(self, upload_ids: object) -> tuple[tuple[str, bytes], ...]:
        """The uploads a ``send_message`` attaches (already checked by ``upload_problem``)."""
        if not isinstance(upload_ids, list):
            return ()
        uploads = (self.state.uploads.get(i) for i in upload_ids if isinstance(i, str))
        return tuple((u.filename, u.content) for u in uploads if u is not None)

    async def interrupt(self, conn: Conn) -> Problem | None:
        """Cancel the answer streaming on ``conn`` (after its ``chat_metadata``)."""
        turn = conn.turn
        if turn is None or not turn.streaming or turn.task is None:
            return Problem("No response is streaming on this connection", "NOT_STREAMING")
        task = turn.task
        announced = asyncio.ensure_future(turn.announced.wait())
        await asyncio.wait([task, announced], return_when=asyncio.FIRST_COMPLETED)
        announced.cancel()
        turn.finish()
        task.cancel()
        await asyncio.wait([task])
        await conn.send_event("interrupted", {"status": "interrupted"})
        return None

    async def _run(
        self,
        conn: Conn,
        turn: ServerTurn,
        chat: FakeChat,
        question: Question,
        injected: Sequence[str],
    ) -> None:
        try:
            for text in injected:
                await conn.ws.send(text)
            await conn.send_event(
                "chat_metadata", {"id": chat.id, "user_message_id": question.user_message_id}
            )
            turn.announced.set()
            if conn.heartbeat:
                turn.heartbeat = conn.spawn(self._heartbeat(conn))
            try:
                steps = list(self.state.responder(question))
            except Exception:
                logger.exception("the responder failed on a question in chat %s", chat.id)
                await conn.ws.close(1011, "Internal server error")
                return
            for step in steps:
                if not await self._play(conn, turn, chat, question, step):
                    return
        except ConnectionClosed:
            return
        finally:
            turn.finish()
            if conn.turn is turn:
                conn.turn = None
            self.state.changed()

    async def _heartbeat(self, conn: Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.state.heartbeat_interval)
                await conn.send_event("heartbeat", {})

    async def _play(
        self, conn: Conn, turn: ServerTurn, chat: FakeChat, question: Question, step: Step
    ) -> bool:
        """Perform one step; False when it ended the connection."""
        if step.gate is not None:
            await step.gate.wait()
        if step.delay > 0:
            await asyncio.sleep(step.delay)
        event = step.event
        if event == PAUSE:
            return True
        if event == DROP:
            conn.ws.transport.abort()
            return False
        if event == CLOSE:
            await conn.ws.close(int(step.data.get("code", 1011)), str(step.data.get("reason", "")))
            return False
        if event == RAW:
            await conn.ws.send(str(step.data["text"]))
            return True
        if self.state.version == "seed" and event in _SEED_NEVER_SENDS:
            return True
        if event in _TOOL_EVENTS and not question.include_tool_events:
            return True
        data = dict(step.data)
        if event == "message":
            data.setdefault("id", new_id("msg"))
            content = data.get("content")  # a faulty script may leave it out, or send null
            chat.messages.append(
                FakeMessage(
                    str(data["id"]), "assistant", content if isinstance(content, str) else ""
                )
            )
            turn.finish()
        elif event == "error":
            data = self._scripted_error(data)
            turn.finish()
        elif event == "visualization":
            data.setdefault("id", new_visualization_id())
        if self.state.on_step is not None:
            self.state.on_step(event, data)
        await conn.send_event(event, data)
        self.state.changed()
        return True

    def _scripted_error(self, data: Mapping[str, Any]) -> dict[str, Any]:
        text = str(data.get("error", "Something went wrong"))
        if self.state.version == "seed":
            return {"error": text}
        return {
            "code": "AGENT_ERROR",
            "retryable": False,
            "debug_id": new_id("dbg"),
            "error_type": "agent_error",
            **data,
        }
