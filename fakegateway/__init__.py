"""The fake payment processor we ship: a real HTTP service (charges, payouts, refunds, lookups by
key, a settlement report) with fault injection through `PUT /behavior`."""
