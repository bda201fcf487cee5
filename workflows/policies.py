"""Every activity's timeouts and retry policy, declared in one place as data.

Ledger steps talk to our own database: retried with backoff until they work (a database outage
must not fail a payment). Gateway calls: a bounded number of attempts with exponential backoff;
declines and other 4xx are non-retryable. The charge lookup after an unknown outcome is retried
until the gateway answers, because a hold is never released while the gateway may have charged.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from workflows.types import GATEWAY_DECLINED, PAYMENT_CONFLICT, ConnectorPlan, SagaPolicy

NON_RETRYABLE = [GATEWAY_DECLINED, PAYMENT_CONFLICT]


def ledger_retry(p: SagaPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=p.ledger_retry_initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=p.ledger_retry_max_interval_seconds),
        maximum_attempts=p.ledger_retry_max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def gateway_retry(p: SagaPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=p.gateway_retry_initial_seconds),
        backoff_coefficient=p.gateway_retry_backoff,
        maximum_interval=timedelta(seconds=p.gateway_retry_max_interval_seconds),
        maximum_attempts=p.gateway_retry_max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def lookup_retry(p: SagaPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=p.gateway_retry_initial_seconds),
        backoff_coefficient=p.gateway_retry_backoff,
        maximum_interval=timedelta(seconds=max(p.gateway_retry_max_interval_seconds, 60.0)),
        maximum_attempts=0,
        non_retryable_error_types=NON_RETRYABLE,
    )


def ledger_timeout() -> timedelta:
    return timedelta(seconds=30)


def gateway_timeout(p: SagaPolicy) -> timedelta:
    # the HTTP client gives up a little earlier, so the activity reports why
    return timedelta(seconds=p.gateway_timeout_seconds + 5)


def connector_retry(c: ConnectorPlan) -> RetryPolicy:
    """A routed charge: the connector's own retry policy (CONNECTORS)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=c.retry_initial_seconds),
        backoff_coefficient=c.retry_backoff,
        maximum_interval=timedelta(seconds=c.retry_max_interval_seconds),
        maximum_attempts=c.retry_max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def connector_timeout(c: ConnectorPlan) -> timedelta:
    return timedelta(seconds=c.timeout_seconds + 5)  # as gateway_timeout
