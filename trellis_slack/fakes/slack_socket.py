"""The fake Slack's Socket Mode: envelopes written to the app's WebSockets, acks read back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Final

from aiohttp import WSMsgType, web

from trellis_slack.fakes.slack_model import Ack, Envelope
from trellis_slack.fakes.slack_records import Connection, SlackRecords

__all__ = ["MAX_CONNECTIONS", "MAX_RETRIES", "SocketMode"]

logger = logging.getLogger(__name__)

#: Slack redelivers an unacked event at most three times.
MAX_RETRIES: Final = 3
#: Slack allows this many Socket Mode connections per app.
MAX_CONNECTIONS: Final = 10


class SocketMode(SlackRecords):
    """Socket Mode: connections, round-robin delivery, Slack's redeliveries, acks, disconnects."""

    async def _dispatch(self) -> None:
        """Write queued envelopes to open sockets, round robin, in order."""
        while True:
            live = [c for c in self._connections if not c.ws.closed]
            if not self._outbox or not live:
                self._wake.clear()
                await self._wake.wait()
                continue
            envelope = self._outbox.popleft()
            connection = live[self._round_robin % len(live)]
            self._round_robin += 1
            self._sent_at[envelope.envelope_id] = time.monotonic()
            try:
                await connection.ws.send_str(json.dumps(envelope.frame()))
            except ConnectionResetError:
                self._outbox.appendleft(envelope)
                del self._sent_at[envelope.envelope_id]
                continue
            logger.debug("sent %s envelope %s", envelope.type, envelope.envelope_id)
            if (
                self.redeliver_after is not None
                and envelope.type == "events_api"
                and envelope.retry_attempt < MAX_RETRIES
            ):
                self._spawn(self._redeliver_later(envelope, self.redeliver_after))
            self._notify()

    async def _redeliver_later(self, envelope: Envelope, delay: float) -> None:
        await asyncio.sleep(delay)  # Slack's own retry delay, scripted
        if envelope.envelope_id not in self._acked:
            self._redeliver(envelope, envelope.retry_attempt + 1, "timeout")

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        if len(self._connections) >= MAX_CONNECTIONS:
            await ws.send_json({"type": "disconnect", "reason": "too_many_websockets"})
            await ws.close()
            return ws
        self._connection_count += 1
        connection = Connection(ws, self._connection_count)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._connections) + 1,
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._connections.append(connection)
        self._wake.set()
        self._notify()
        logger.debug("socket %d open", connection.number)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_frame(str(frame.data))
        finally:
            self._connections.remove(connection)
            connection.gone.set()
            self._notify()
            logger.debug("socket %d closed", connection.number)
        return ws

    def _on_frame(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            logger.warning("the app sent a frame that is not JSON")
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        envelope = self._envelope_by_id.get(str(envelope_id))
        if envelope is None or envelope.envelope_id in self._acked:
            logger.debug("ignoring ack for unknown or acked envelope %s", envelope_id)
            return
        sent = self._sent_at.get(envelope.envelope_id, time.monotonic())
        payload = frame.get("payload")
        ack = Ack(
            envelope.envelope_id,
            envelope.type,
            time.monotonic() - sent,
            payload if isinstance(payload, dict) else None,
        )
        self._acked[ack.envelope_id] = ack
        self.acks.append(ack)
        self._notify()

    async def disconnect_sockets(
        self, reason: str = "refresh_requested", *, grace: float = 1.0
    ) -> None:
        """Send ``{"type": "disconnect"}`` on every socket, then close those still open.

        Like Slack, the fake gives the app ``grace`` seconds to reconnect and close the old
        socket itself (closing at once makes slack_sdk reconnect twice).
        """
        connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(ConnectionResetError):
                await connection.ws.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
                )
        for connection in connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await connection.gone.wait()
            await connection.ws.close()
