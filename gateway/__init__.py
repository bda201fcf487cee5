"""The gateway behind one client: every connector's HTTP API (charge, look up, refund, report),
its circuit breaker and its metrics. The payment saga, refunds, the sweeper and reconciliation all
speak to processors through `gateway.client` only."""
