"""Pure rules: money, fees, statuses, identifiers, fingerprints, access scopes, reconciliation
classes. No I/O."""
