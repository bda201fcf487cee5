"""Seeing what runs: JSON logs (`logs`), OpenTelemetry tracing (`tracing`), the worker's
Prometheus registry (`metrics`) and the request id they share (`request_context`). Imports
nothing of paysaga's own."""
