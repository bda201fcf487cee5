"""The HTTP API: translates HTTP to Temporal and database calls; no business rules here."""
