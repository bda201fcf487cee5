"""The sagas' steps: thin I/O, each a transaction through `db/` or a call through `gateway/`
(or a question to Temporal), idempotent by payment and attempt. Activities are peers."""
