"""A consumer to copy: read the event stream with a durable consumer and print each event.

    python -m bus.consume                                   every event, from the start
    python -m bus.consume --filter 'paysaga.events.acme.>'  one tenant
    python -m bus.consume --filter 'paysaga.events.*.payment.completed'   one event type
    python -m bus.consume --durable billing --from-seq 1200  resume (or start) a named consumer

A durable consumer remembers what it acknowledged: run it again with the same `--durable` and it
continues where it stopped. Each line printed is one event as the events feed shows it (its `id` is
the feed id, also the message's `Nats-Msg-Id`). `--count N` stops after N events (or after
`--idle` seconds with nothing new).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import nats
from nats.js import api
from nats.js.errors import FetchTimeoutError

from settings import get_settings


async def consume(url: str, stream: str, subject_filter: str, durable: str, from_seq: int,
                  count: int | None, idle: float) -> int:
    nc = await nats.connect([u.strip() for u in url.split(",")], name=f"consumer {durable}")
    js = nc.jetstream()
    config = api.ConsumerConfig(
        durable_name=durable, filter_subject=subject_filter, ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=(api.DeliverPolicy.BY_START_SEQUENCE if from_seq > 1
                        else api.DeliverPolicy.ALL),
        opt_start_seq=from_seq if from_seq > 1 else None)
    sub = await js.pull_subscribe(subject_filter, durable=durable, stream=stream, config=config)
    seen = 0
    try:
        while count is None or seen < count:
            try:
                messages = await sub.fetch(min(100, (count or 100) - seen) or 1, timeout=idle)
            except (FetchTimeoutError, TimeoutError):
                if count is not None:
                    break  # nothing new within --idle: done
                continue
            for message in messages:
                event = json.loads(message.data)
                print(json.dumps({"subject": message.subject, "sequence": message.metadata.sequence.stream,
                                  "event": event}), flush=True)
                await message.ack()
                seen += 1
    finally:
        await nc.close()
    return seen


def main(argv: list[str]) -> int:
    s = get_settings()
    parser = argparse.ArgumentParser(prog="python -m bus.consume", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=s.nats_url or f"nats://127.0.0.1:{s.nats_port}")
    parser.add_argument("--stream", default=s.nats_stream)
    parser.add_argument("--filter", default="paysaga.events.>", help="a subject filter")
    parser.add_argument("--durable", default="example", help="the consumer's name")
    parser.add_argument("--from-seq", type=int, default=1, help="start at this stream sequence")
    parser.add_argument("--count", type=int, default=None, help="stop after this many events")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds to wait for more")
    args = parser.parse_args(argv)
    asyncio.run(consume(args.url, args.stream, args.filter, args.durable, args.from_seq,
                        args.count, args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
