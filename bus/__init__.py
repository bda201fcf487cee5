"""The event bus: NATS JetStream. The outbox relay publishes every domain event to the stream
`PAYSAGA_EVENTS` (subjects `paysaga.events.<tenant>.<event type>`), exactly as the events feed
shows it, with `Nats-Msg-Id` set to the feed id so the broker drops a republished event."""
