"""Every activity's timeouts and retry policy, declared in one place as data.

Ledger steps talk to our own database: retried with backoff until they work (a database outage
must not fail a payment). Gateway calls: a bounded number of attempts with exponential backoff;
declines and other 4xx are non-retryable. The charge lookup after an unknown outcome is retried
until the gateway answers, because a hold is never released while the gateway may have charged.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from contracts.payment import PAYMENT_CONFLICT
from contracts.saga import GATEWAY_DECLINED, ConnectorPlan, SagaPolicy

NON_RETRYABLE = [GATEWAY_DECLINED, PAYMENT_CONFLICT]


def ledger_retry(p: SagaPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=p.ledger_retry_initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=p.ledger_retry_max_interval_seconds),
        maximum_attempts=p.ledger_retry_max_attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def _backoff(initial: float, backoff: float, max_interval: float, attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=backoff,
        maximum_interval=timedelta(seconds=max_interval),
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def gateway_retry(p: SagaPolicy) -> RetryPolicy:
    return _backoff(p.gateway_retry_initial_seconds, p.gateway_retry_backoff,
                    p.gateway_retry_max_interval_seconds, p.gateway_retry_max_attempts)


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


def charge_retry(p: SagaPolicy, c: ConnectorPlan | None) -> RetryPolicy:
    """A charge's retries: its connector's own policy (CONNECTORS), or, for a payment from before
    routing, the saga policy's."""
    if c is None:
        return gateway_retry(p)
    return _backoff(c.retry_initial_seconds, c.retry_backoff, c.retry_max_interval_seconds,
                    c.retry_max_attempts)


def first_try(retry: RetryPolicy) -> RetryPolicy:
    """A movement's first try alone (a local activity: its retries are an activity's)."""
    return RetryPolicy(maximum_attempts=1, non_retryable_error_types=retry.non_retryable_error_types)


def first_try_timeout(p: SagaPolicy, c: ConnectorPlan | None) -> timedelta:
    """A first try's timeout: the connector's, bounded by `first_try_seconds` (a local activity
    holds its workflow task, and a worker's task slot, while it runs)."""
    return min(charge_timeout(p, c), timedelta(seconds=p.first_try_seconds))


def after_first_try(retry: RetryPolicy) -> RetryPolicy:
    """The retries left after a first try: one attempt fewer, backing off from the second
    interval (the first was waited before them)."""
    return RetryPolicy(
        initial_interval=retry.initial_interval * retry.backoff_coefficient,
        backoff_coefficient=retry.backoff_coefficient, maximum_interval=retry.maximum_interval,
        maximum_attempts=max(retry.maximum_attempts - 1, 1) if retry.maximum_attempts else 0,
        non_retryable_error_types=retry.non_retryable_error_types)


def charge_timeout(p: SagaPolicy, c: ConnectorPlan | None) -> timedelta:
    """One call's timeout at a connector (as gateway_timeout: a little over the HTTP client's)."""
    return gateway_timeout(p) if c is None else timedelta(seconds=c.timeout_seconds + 5)
