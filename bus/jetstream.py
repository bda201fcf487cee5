"""Publishing to JetStream, and the stream's declaration.

    subject(tenant, type)      paysaga.events.<tenant>.<type>   (a tenant's `.`, `*`, `>` and
                               whitespace become `_`: one token)
    EventBus.connect(...)      connect, create or update the stream (retention, max age, replicas,
                               duplicate window from settings)
    EventBus.publish(events)   publish in order, wait for every ack; BusUnavailable if any fails

A publish is only done when JetStream acknowledged it: the relay marks events published after
`publish` returns, and on BusUnavailable keeps them in the outbox to try again. A republished
event (a relay that crashed between the ack and the mark) carries the same `Nats-Msg-Id` and is
dropped by the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import APIError, NotFoundError

from bus.metrics import BUS_PUBLISHES
from settings import Settings

SUBJECT_PREFIX = "paysaga.events"
# publishes awaiting their acks at once: `publish` waits for a chunk's acks before the next
IN_FLIGHT = 4000
_UNSAFE = re.compile(r"[.*>\s]")


class BusUnavailable(Exception):
    """The broker did not acknowledge every event: nothing is marked published."""


def subject(tenant_id: str, event_type: str) -> str:
    return f"{SUBJECT_PREFIX}.{_UNSAFE.sub('_', tenant_id) or '_'}.{event_type}"


@dataclass(frozen=True)
class StreamSettings:
    name: str = "PAYSAGA_EVENTS"
    max_age_seconds: float = 30 * 24 * 3600
    replicas: int = 1
    duplicate_window_seconds: float = 600
    ack_timeout_seconds: float = 5

    def config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.name, subjects=[f"{SUBJECT_PREFIX}.>"],
            retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE,
            max_age=self.max_age_seconds, num_replicas=self.replicas,
            duplicate_window=self.duplicate_window_seconds)


def stream_settings(s: Settings) -> StreamSettings:
    return StreamSettings(s.nats_stream, s.nats_stream_max_age_seconds, s.nats_stream_replicas,
                          s.nats_duplicate_window_seconds)


def _ack(answer: bytes) -> api.PubAck:
    """JetStream's answer to a publish: its ack, or an error (a status without a body, as "no
    responders" when no stream takes the subject, fails to parse and is an error too)."""
    reply = json.loads(answer)
    if "error" in reply:
        raise APIError.from_error(reply["error"])
    return api.PubAck.from_response(reply)


class EventBus:
    def __init__(self, nc: NATS, stream: StreamSettings) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.stream = stream
        self._inbox: str | None = None  # where JetStream answers: `<inbox>.<token>`
        self._acks: dict[str, asyncio.Future[bytes]] = {}
        self._tokens = itertools.count()

    @classmethod
    async def connect(cls, url: str, stream: StreamSettings | None = None,
                      name: str = "paysaga") -> EventBus:
        """Connect (reconnecting for ever) and create or update the stream."""
        servers = [u.strip() for u in url.split(",") if u.strip()]  # a cluster: several URLs
        nc = await nats.connect(servers, name=name, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.5, connect_timeout=2, allow_reconnect=True)
        bus = cls(nc, stream or StreamSettings())
        await bus.ensure_stream()
        return bus

    async def ensure_stream(self) -> None:
        config = self.stream.config()
        try:
            await self.js.stream_info(self.stream.name)
        except NotFoundError:
            await self.js.add_stream(config)
        else:
            await self.js.update_stream(config)

    async def publish(self, events: list[dict[str, Any]]) -> int:
        """Publish each event (the feed's form, with `tenant_id` for its subject) in order and
        wait for every ack; the number the stream had already (dropped as duplicates)."""
        if not events:
            return 0
        if not self.nc.is_connected:
            BUS_PUBLISHES.labels("failed").inc(len(events))
            raise BusUnavailable("not connected to the broker")
        acks: list[api.PubAck] = []
        for start in range(0, len(events), IN_FLIGHT):
            acks.extend(await self._publish_chunk(events[start:start + IN_FLIGHT]))
        duplicates = sum(1 for ack in acks if ack.duplicate)
        BUS_PUBLISHES.labels("published").inc(len(events) - duplicates)
        BUS_PUBLISHES.labels("duplicate").inc(duplicates)
        return duplicates

    async def _publish_chunk(self, events: list[dict[str, Any]]) -> list[api.PubAck]:
        """At most IN_FLIGHT events, sent without a pause (the acks come while the last are
        sent), then every ack awaited. Each is a plain publish with a reply subject on one inbox
        of ours, as the client's `publish_async` makes it, but without the task, the semaphore
        and the random token that call spends on every message (a third of the relay's CPU)."""
        inbox = await self._ack_inbox()
        loop = asyncio.get_running_loop()
        tokens: list[str] = []
        futures: list[asyncio.Future[bytes]] = []
        try:
            for event in events:
                token = str(next(self._tokens))
                future: asyncio.Future[bytes] = loop.create_future()
                self._acks[token] = future
                tokens.append(token)
                futures.append(future)
                message = {k: v for k, v in event.items() if k != "tenant_id"}
                await self.nc.publish(
                    subject(event["tenant_id"], event["type"]), json.dumps(message).encode(),
                    reply=f"{inbox}.{token}", headers={"Nats-Msg-Id": str(event["id"])})
            answers = await asyncio.wait_for(asyncio.gather(*futures),
                                             self.stream.ack_timeout_seconds)
            return [_ack(answer) for answer in answers]
        except Exception as err:
            for token in tokens:
                self._acks.pop(token, None)
            for future in futures:
                future.cancel()
            BUS_PUBLISHES.labels("failed").inc(len(events))
            raise BusUnavailable(f"the broker did not acknowledge: {type(err).__name__}") from err

    async def _ack_inbox(self) -> str:
        if self._inbox is None:
            inbox = self.nc.new_inbox()
            await self.nc.subscribe(f"{inbox}.*", cb=self._on_ack)
            self._inbox = inbox
        return self._inbox

    async def _on_ack(self, msg: Msg) -> None:
        future = self._acks.pop(msg.subject.rsplit(".", 1)[-1], None)
        if future is not None and not future.done():
            future.set_result(msg.data)

    async def stream_state(self) -> tuple[int, int]:
        """(messages, last sequence) of the stream."""
        info = await self.js.stream_info(self.stream.name)
        return int(info.state.messages), int(info.state.last_seq)

    async def close(self) -> None:
        await self.nc.close()
