"""The HTTP API: translates HTTP into one Temporal call or one `db/` function, and answers in the
contract's shapes (docs/contract.md); no business rules and no SQL here."""
