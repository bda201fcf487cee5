"""Workflow code only: the sagas (payment, refund, top-up, withdrawal, reconciliation, webhook
delivery, hold sweeper) and what they share (charging, the transfer tail, retry policies, the
ledger-step helper, search attribute keys). Deterministic; nothing here runs outside a workflow
(that is `temporal_client/`)."""
