"""The Temporal worker: runs payment workflows and their ledger and gateway activities."""
