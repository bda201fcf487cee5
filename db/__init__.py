"""PostgreSQL: the ledger, the payment projection and the outbox. Tables in `models`, engine in `engine`."""
