"""Pure payment domain: money, fees, statuses, identifiers, fingerprints. No I/O, stdlib plus ISO 4217 data."""
