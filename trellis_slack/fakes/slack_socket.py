"""The fake Slack's Socket Mode: envelopes written to the app's WebSockets, acks read back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
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
    """Socket Mode as Slack runs it for an app holding one or several (up to 10) connections.

    - Each envelope (events, clicks, slash commands) is written to one open connection, chosen
      at random (:attr:`rng`, seeded so a run repeats) or by :attr:`deliver_to` when a test sets
      it (:meth:`route_to` pins one connection). Slack promises no pattern across connections.
    - An ``events_api`` envelope that is not acked is redelivered as a fresh envelope with the
      same payload, ``retry_attempt`` one higher and ``retry_reason`` ``"timeout"``, at most
      :data:`MAX_RETRIES` times: ``redeliver_after`` seconds after it was written (when set),
      and at once when the connection it was written to closes before the ack. A redelivery
      goes to another open connection when there is one; with none open it waits for one.
    - Clicks and slash commands are never redelivered: Slack shows the person an error instead,
      so one in flight on a connection that closes is lost, as with Slack.
    - :meth:`deliveries` and :meth:`delivered_to` say which connection got which envelope.
    """

    def route_to(self, number: int | None) -> None:
        """Write every envelope to connection ``number`` while it is open; ``None``: at random.

        A redelivery still avoids the connection that missed it, so one of a pinned
        connection's redeliveries goes elsewhere when another connection is open.
        """
        if number is None:
            self.deliver_to = None
            return

        def pinned(candidates: Sequence[Connection]) -> Connection | None:
            return next((c for c in candidates if c.number == number), None)

        self.deliver_to = pinned

    def _choose(self, envelope: Envelope, live: list[Connection]) -> Connection:
        """The connection for ``envelope``: not the one that missed it, if another is open."""
        missed = self._avoid.get(envelope.envelope_id)
        candidates = [c for c in live if c.number != missed] or live
        if self.deliver_to is not None:
            chosen = self.deliver_to(candidates)
            if chosen is not None and chosen in candidates:
                return chosen
            if chosen is not None:
                logger.warning("deliver_to chose %r, not one of %r", chosen, candidates)
        if len(candidates) == 1:
            return candidates[0]
        return self.rng.choice(candidates)

    async def _dispatch(self) -> None:
        """Write queued envelopes to open sockets, in order, each to a connection of its own."""
        while True:
            self._redeliver_lost()
            live = [c for c in self._connections if not c.ws.closed]
            if not self._outbox or not live:
                self._wake.clear()
                await self._wake.wait()
                continue
            envelope = self._outbox.popleft()
            connection = self._choose(envelope, live)
            self._sent_at[envelope.envelope_id] = time.monotonic()
            self._delivered_to[envelope.envelope_id] = connection.number
            connection.delivered.append(envelope)
            connection.inflight[envelope.envelope_id] = envelope
            try:
                await connection.ws.send_str(json.dumps(envelope.frame()))
            except ConnectionResetError:
                # never written: not a delivery, so not a retry either
                connection.inflight.pop(envelope.envelope_id, None)
                connection.delivered.remove(envelope)
                del self._sent_at[envelope.envelope_id], self._delivered_to[envelope.envelope_id]
                self._outbox.appendleft(envelope)
                continue
            logger.debug(
                "sent %s envelope %s on socket %d",
                envelope.type,
                envelope.envelope_id,
                connection.number,
            )
            if (
                self.redeliver_after is not None
                and envelope.type == "events_api"
                and envelope.retry_attempt < MAX_RETRIES
            ):
                self._spawn(self._redeliver_later(envelope, self.redeliver_after))
            self._notify()

    def _redeliver_lost(self) -> None:
        """Redeliver the unacked events of connections that closed since the last look."""
        while self._closed:
            connection = self._closed.pop(0)
            lost, connection.inflight = list(connection.inflight.values()), {}
            for envelope in lost:
                if envelope.type != "events_api":
                    logger.debug(
                        "%s envelope lost with socket %d", envelope.type, connection.number
                    )
                elif envelope.envelope_id in self._retried:
                    continue  # its retry is already on its way
                elif envelope.retry_attempt < MAX_RETRIES:
                    self._redeliver(envelope, envelope.retry_attempt + 1, "timeout")

    async def _redeliver_later(self, envelope: Envelope, delay: float) -> None:
        await asyncio.sleep(delay)  # Slack's own retry delay, scripted
        if envelope.envelope_id not in self._acked and envelope.envelope_id not in self._retried:
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
        self._every_connection[connection.number] = connection
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
            self._closed.append(connection)  # the dispatcher redelivers what it left unacked
            self._wake.set()
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
        number = self._delivered_to.get(ack.envelope_id)
        if number is not None:
            self._every_connection[number].inflight.pop(ack.envelope_id, None)
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
