"""Pure payment domain: money, fees, statuses, identifiers, fingerprints. No I/O."""
