"""Temporal activities: thin adapters to the ledger database and the payment gateway."""
