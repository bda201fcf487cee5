"""Events on a real bus (issue 20): the outbox relay publishes every event to JetStream exactly as
the events feed shows it, once each, in order, through a broker outage, a relay that crashed
between publishing and marking, and two relays at once; the documented consumer reads it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest_asyncio
from nats.js import api
from nats.js.errors import FetchTimeoutError
from sqlalchemy import text

from bus.jetstream import IN_FLIGHT, BusUnavailable, EventBus, StreamSettings, subject
from tests.conftest import eventually
from tests.system.conftest import NatsServer, System
from tests.system.test_disputes import dispute_now, disputed
from tests.system.test_money_movement import top_up
from worker.outbox import as_published, relay_once

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="session")
async def bus(nats_server: NatsServer) -> AsyncIterator[EventBus]:
    connected = await EventBus.connect(nats_server.url, StreamSettings(ack_timeout_seconds=2))
    yield connected
    await connected.close()


async def drain(sys_: System, bus: EventBus) -> None:
    """Relay until the outbox is empty (the suite's earlier events too)."""
    while await relay_once(sys_.engine, bus=bus):
        pass


async def stream_events(url: str, subject_filter: str) -> list[tuple[str, dict[str, Any], str]]:
    """Every message on the stream under the filter: (subject, event, Nats-Msg-Id), in order."""
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject_filter, config=api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.NONE))
        found: list[tuple[str, dict[str, Any], str]] = []
        while True:
            try:
                batch = await sub.fetch(500, timeout=0.5)
            except (FetchTimeoutError, TimeoutError):
                return found
            found += [(m.subject, json.loads(m.data), (m.headers or {}).get("Nats-Msg-Id", ""))
                      for m in batch]
    finally:
        await nc.close()


async def payment_events(sys_: System, pid: str) -> list[dict[str, Any]]:
    async with sys_.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT id, type, tenant_id, payment_id, wallet_id, data, created_at, published_at "
            "FROM events WHERE payment_id = :p ORDER BY id"), {"p": pid})).all()
    return [{**as_published(r), "published": r.published_at is not None} for r in rows]


async def test_a_payments_events_reach_the_stream_once_each_as_the_feed_shows_them(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "5.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await drain(sys_, bus)
    mine = [e for e in await stream_events(nats_server.url, f"paysaga.events.{sys_.tenant}.>")
            if e[1]["payment_id"] == pid]
    assert [e[1]["type"] for e in mine] == [
        "payment.initiated", "payment.routed", "wallet.funds_reserved",
        "gateway.payment_approved", "wallet.funds_deducted", "payment.completed"]
    feed = {e["id"]: e for e in (await sys_.api.get(
        f"/v1/payments/{pid}/events", params={"limit": 200})).json()["items"]}
    for subj, event, msg_id in mine:
        assert subj == subject(sys_.tenant, event["type"])
        assert msg_id == str(event["id"])
        assert event["data"] == feed[event["id"]]["data"]  # decimal-string money, as the API
        assert event["created_at"] == feed[event["id"]]["created_at"]
    completed = mine[-1][1]["data"]
    assert (completed["amount"], completed["fee"]) == ("5.00", "0.10")


async def test_a_disputes_events_reach_the_stream_under_their_tenants_subjects(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    """A consumer of `paysaga.events.<tenant>.dispute.>` sees a dispute opened, answered and
    lost, each event once, as the feed shows it."""
    await sys_.behave()
    wallet = await sys_.wallet()
    made = await top_up(sys_, wallet, "10.00", wait="10")
    assert made.json()["status"] == "succeeded", made.text
    d = await disputed(sys_, made.json()["gateway_reference"], amount="5.00")
    answer = await sys_.api.post(f"/v1/disputes/{d['id']}/evidence", json={"text": "receipt"})
    assert answer.status_code == 200, answer.text
    await sys_.gateway.post(f"/disputes/{d['processor_id']}/close", json={"status": "lost"})
    await eventually(lambda: dispute_now(sys_, d["id"]), lambda x: x["status"] == "lost",
                     timeout=30)
    await drain(sys_, bus)
    mine = [e for e in await stream_events(
        nats_server.url, f"paysaga.events.{sys_.tenant}.dispute.>")
        if e[1]["payment_id"] == d["id"]]
    assert [e[1]["type"] for e in mine] == [
        "dispute.created", "dispute.evidence_submitted", "dispute.lost"]
    assert all(subj == subject(sys_.tenant, e["type"]) and msg_id == str(e["id"])
               for subj, e, msg_id in mine)
    assert (mine[0][1]["data"]["amount"], mine[0][1]["data"]["from_wallet"]) == ("5.00", "5.00")


async def test_events_made_while_the_broker_is_down_arrive_after_it_returns(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    await drain(sys_, bus)
    nats_server.stop()
    try:
        wallet = await sys_.wallet(funds="50.00")
        pid = (await sys_.pay(wallet["user_id"], "3.00")).json()["id"]
        await sys_.settled(pid, "completed")
        try:
            await relay_once(sys_.engine, bus=bus)
            raise AssertionError("published with the broker down")
        except BusUnavailable:
            pass
        assert not any(e["published"] for e in await payment_events(sys_, pid))  # kept
    finally:
        nats_server.start()
    await eventually(lambda: asyncio.sleep(0, bus.nc.is_connected), bool, timeout=20)
    await eventually(lambda: relay_once(sys_.engine, bus=bus), lambda n: n == 0, timeout=20)
    assert all(e["published"] for e in await payment_events(sys_, pid))
    got = [e for e in await stream_events(nats_server.url, f"paysaga.events.{sys_.tenant}.>")
           if e[1]["payment_id"] == pid]
    assert len(got) == 6
    assert len({e[1]["id"] for e in got}) == 6


async def test_a_relay_that_died_before_marking_republishes_and_the_stream_drops_it(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    await drain(sys_, bus)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "2.00")).json()["id"]
    await sys_.settled(pid, "completed")
    events = [{k: v for k, v in e.items() if k != "published"}
              for e in await payment_events(sys_, pid)]
    assert await bus.publish(events) == 0  # published, acked ... and the relay died: not marked
    async with sys_.engine.connect() as conn:
        others = (await conn.execute(text(
            "SELECT count(*) FROM events WHERE published_at IS NULL "
            "AND payment_id IS DISTINCT FROM :p"), {"p": pid})).scalar()
    before = await bus.stream_state()
    await drain(sys_, bus)  # the next relay publishes the same events again
    after = await bus.stream_state()
    assert after[0] - before[0] == others  # this payment's: every one dropped as a duplicate
    got = [e for e in await stream_events(nats_server.url, f"paysaga.events.{sys_.tenant}.>")
           if e[1]["payment_id"] == pid]
    assert [e[1]["id"] for e in got] == [e["id"] for e in events]


async def test_two_relays_never_publish_twice_or_skip_and_keep_each_payments_order(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    await drain(sys_, bus)
    other = await EventBus.connect(nats_server.url, StreamSettings(ack_timeout_seconds=2),
                                   name="second relay")
    try:
        wallet = await sys_.wallet(funds="200.00")
        pids = [(await sys_.pay(wallet["user_id"], "1.00")).json()["id"] for _ in range(8)]
        for pid in pids:
            await sys_.settled(pid, "completed")
        async with sys_.engine.connect() as conn:
            pending = (await conn.execute(text(
                "SELECT count(*) FROM events WHERE published_at IS NULL"))).scalar()
        before = await bus.stream_state()
        while sum(await asyncio.gather(relay_once(sys_.engine, bus=bus, batch=5),
                                       relay_once(sys_.engine, bus=other, batch=5))):
            pass
        after = await bus.stream_state()
    finally:
        await other.close()
    got = [e[1] for e in await stream_events(nats_server.url, f"paysaga.events.{sys_.tenant}.>")
           if e[1]["payment_id"] in pids]
    expected = [e["id"] for pid in pids for e in await payment_events(sys_, pid)]
    assert sorted(e["id"] for e in got) == sorted(expected)  # each once, none skipped
    for pid in pids:  # each payment's events in order (across payments, commit order rules)
        ids = [e["id"] for e in got if e["payment_id"] == pid]
        assert ids == sorted(ids)
    assert after[0] - before[0] == pending  # every waiting event once, the wallet's too


async def test_the_documented_consumer_reads_one_tenant_from_a_durable_point(
        sys_: System, bus: EventBus, nats_server: NatsServer) -> None:
    wallet = await sys_.wallet(funds="20.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "completed")
    await drain(sys_, bus)
    durable = f"test-{secrets.token_hex(3)}"

    def consume(count: int) -> list[dict[str, Any]]:
        run = subprocess.run(
            [sys.executable, "-m", "bus.consume", "--url", nats_server.url,
             "--filter", f"paysaga.events.{sys_.tenant}.payment.completed", "--durable", durable,
             "--count", str(count), "--idle", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
            env=dict(os.environ))
        return [json.loads(line) for line in run.stdout.splitlines()]

    first = await asyncio.to_thread(consume, 10_000)
    assert first, "the consumer read nothing"
    assert all(m["event"]["type"] == "payment.completed" for m in first)
    assert pid in {m["event"]["payment_id"] for m in first}
    # the durable consumer resumes where it stopped: nothing new, nothing again
    assert await asyncio.to_thread(consume, 10_000) == []


async def test_more_events_than_may_await_acks_at_once_are_published_in_order(
        bus: EventBus, nats_server: NatsServer) -> None:
    """A publish of more events than the client lets await acks at once (IN_FLIGHT) goes in
    chunks: every event acked once, in order, none waiting on the client's stall timer."""
    tenant = f"chunks-{secrets.token_hex(3)}"
    n = IN_FLIGHT + 7
    events = [{"id": f"chunk-{tenant}-{i}", "type": "bench.relayed", "payment_id": None,
               "wallet_id": None, "data": {"i": i}, "created_at": "2026-12-02T00:00:00Z",
               "tenant_id": tenant} for i in range(n)]
    assert await bus.publish(events) == 0
    assert await bus.publish(events[-10:]) == 10  # again: the stream drops them as duplicates
    got = await stream_events(nats_server.url, f"paysaga.events.{tenant}.>")
    assert [e[1]["data"]["i"] for e in got] == list(range(n))
