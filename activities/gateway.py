"""Gateway steps: charge by idempotency key, and look a charge up when its outcome is unknown.

Thin I/O: HTTP only. What the gateway said is recorded by the ledger step that acts on it, in its
own transaction (`gateway.payment_approved` with the capture, `gateway.payment_rejected` with the
release).

Error mapping (the workflow's retry policy does the rest):
- 2xx                      -> Charge(succeeded)
- 402 and other 4xx        -> Charge(declined, decline code): a business outcome, not retried
- 429                      -> retryable, next attempt after the gateway's Retry-After
- 5xx, timeouts, transport -> retryable GatewayUnavailable (the charge may or may not have happened)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breaker import CircuitBreaker
from activities.metrics import GATEWAY_CALLS, GATEWAY_LATENCY
from domain.ids import gateway_key
from domain.money import to_major
from settings import Settings
from settings.routing import SOFT_DECLINES
from workflows.types import (
    GATEWAY_DECLINED,
    GATEWAY_UNAVAILABLE,
    Charge,
    ChargeRequest,
    RefundStep,
)


class NotSent(ApplicationError):
    """No connection was made: the request never left this worker."""


@dataclass
class Connection:
    """One connector: its HTTP client, its own circuit breaker and the declines it calls soft."""

    name: str
    http: httpx.AsyncClient
    breaker: CircuitBreaker
    soft_declines: frozenset[str] = frozenset(SOFT_DECLINES)


def connections(settings: Settings) -> list[Connection]:
    """A client and a breaker per configured connector (the caller closes the clients)."""
    return [Connection(c.name, httpx.AsyncClient(
        base_url=c.base_url, timeout=httpx.Timeout(c.timeout_seconds),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)),
        CircuitBreaker(c.breaker_failures, c.breaker_cooldown_seconds, connector=c.name),
        frozenset(c.soft_decline_codes)) for c in settings.connector_list]


class GatewayActivities:
    """The gateway steps for every connector; a request names its connector (None: the first)."""

    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient | list[Connection],
                 breaker: CircuitBreaker | None = None, connector: str = "primary") -> None:
        self.engine = engine
        if isinstance(http, list):
            self.connections = {c.name: c for c in http}
            self.default = http[0].name
        else:
            self.connections = {connector: Connection(
                connector, http, breaker or CircuitBreaker(connector=connector))}
            self.default = connector

    def at(self, name: str | None) -> Connection:
        found = self.connections.get(name or self.default)
        if found is None:  # a payment routed before a connector was removed from CONNECTORS
            raise ApplicationError(f"connector {name} is not configured on this worker",
                                   type=GATEWAY_UNAVAILABLE)
        return found

    @activity.defn(name="charge_gateway")
    async def charge_gateway(self, req: ChargeRequest) -> Charge:
        conn = self.at(req.connector)
        key = gateway_key(req.payment_id, req.attempt, req.connector)
        if req.fail_fast and activity.info().attempt == 1 and not conn.breaker.allow_peek():
            # nothing was sent under this key: the payment may go to the next connector
            GATEWAY_CALLS.labels(conn.name, "charge", "circuit_open").inc()
            return Charge(status="circuit_open")
        activity.logger.info("charging %s at %s", key, conn.name)
        body = {"idempotency_key": key, "payment_id": req.payment_id,
                "amount": to_major(req.amount, req.currency), "currency": req.currency}
        try:
            response = await self._send(conn, "POST", "/charges", "charge", json=body,
                                        headers={"Idempotency-Key": key})
        except NotSent:
            if req.fail_fast and activity.info().attempt == 1:
                # no connection, and no earlier attempt: nothing was ever sent under this key
                return Charge(status="unreachable")
            raise
        if response.status_code in (200, 201):
            return Charge(status="succeeded", gateway_reference=str(response.json()["id"]))
        if response.status_code == 429:
            delay = _retry_after(response)
            raise ApplicationError("the gateway is rate limiting", type="GatewayRateLimited",
                                   next_retry_delay=timedelta(seconds=delay))
        if 400 <= response.status_code < 500:
            # a decline is a business outcome, not an error: a result, with its decline code
            code = _decline_code(response)
            return Charge(status="declined", decline_code=code,
                          retryable_elsewhere=code in conn.soft_declines)
        raise ApplicationError(f"the gateway answered {response.status_code}",
                               type=GATEWAY_UNAVAILABLE)

    @activity.defn(name="lookup_charge")
    async def lookup_charge(self, req: ChargeRequest) -> Charge:
        conn = self.at(req.connector)
        key = gateway_key(req.payment_id, req.attempt, req.connector)
        response = await self._send(conn, "GET", f"/charges/by-key/{key}", "lookup")
        if response.status_code == 404:
            return Charge(status="not_found")
        if response.status_code != 200:
            raise ApplicationError(f"charge lookup answered {response.status_code}",
                                   type=GATEWAY_UNAVAILABLE)
        charge = response.json()
        if charge.get("status") == "succeeded":
            return Charge(status="succeeded", gateway_reference=str(charge["id"]))
        code = str(charge.get("decline_code") or "declined")
        return Charge(status="declined", decline_code=code,
                      retryable_elsewhere=code in conn.soft_declines)

    @activity.defn(name="refund_gateway")
    async def refund_gateway(self, step: RefundStep) -> str:
        """Give the money back at the gateway, once per refund id (its idempotency key)."""
        async with self.engine.begin() as conn:
            # Saga v2's refunds were recorded and reserved by the API; a v1 refund (queued in its
            # payment's workflow before the upgrade) is recorded and reserved here.
            await conn.execute(text(
                """
                WITH made AS (
                    INSERT INTO refunds (id, payment_id, tenant_id, amount, fee, currency, status,
                                         fingerprint, reason)
                    SELECT :id, :p, :t, :amount, :fee, :c, 'pending', :fp, :reason
                    ON CONFLICT (id) DO NOTHING
                    RETURNING payment_id, amount)
                UPDATE payments SET refund_reserved = refund_reserved + made.amount
                FROM made WHERE payments.id = made.payment_id
                """), {"id": step.refund_id, "p": step.payment_id, "t": step.tenant_id,
                       "amount": step.amount, "fee": step.fee, "c": step.currency,
                       "fp": step.fingerprint,
                       "reason": step.reason})
        response = await self._send(self.at(step.connector), "POST", "/refunds", "refund",
                                    headers={"Idempotency-Key": step.refund_id},
                                    json={"idempotency_key": step.refund_id,
                                          "charge_id": step.gateway_reference,
                                          "amount": to_major(step.amount, step.currency)})
        if response.status_code in (200, 201):
            return str(response.json()["id"])
        if response.status_code == 429:
            raise ApplicationError("the gateway is rate limiting", type="GatewayRateLimited",
                                   next_retry_delay=timedelta(seconds=_retry_after(response)))
        if 400 <= response.status_code < 500:
            raise ApplicationError(f"the gateway refused the refund: {_decline_code(response)}",
                                   type=GATEWAY_DECLINED, non_retryable=True)
        raise ApplicationError(f"the gateway answered {response.status_code}",
                               type=GATEWAY_UNAVAILABLE)

    async def _send(self, conn: Connection, method: str, path: str, operation: str,
                    **kwargs: Any) -> httpx.Response:
        def counted(outcome: str) -> None:
            GATEWAY_CALLS.labels(conn.name, operation, outcome).inc()

        breaker = conn.breaker
        if not breaker.allow():
            counted("circuit_open")
            raise ApplicationError(
                "the gateway circuit is open: failing fast", type=GATEWAY_UNAVAILABLE,
                next_retry_delay=timedelta(seconds=max(breaker.retry_in(), 0.1)))
        started = time.perf_counter()
        try:
            response = await conn.http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            breaker.failed()
            counted("unreachable")
            raise NotSent(f"{conn.name} is unreachable ({type(err).__name__}): nothing was sent",
                          type=GATEWAY_UNAVAILABLE) from None
        except httpx.TimeoutException:
            breaker.failed()
            counted("timeout")
            raise ApplicationError("the gateway timed out; the outcome is unknown",
                                   type=GATEWAY_UNAVAILABLE) from None
        except httpx.TransportError as err:
            breaker.failed()
            counted("unreachable")
            raise ApplicationError(f"the gateway is unreachable: {type(err).__name__}",
                                   type=GATEWAY_UNAVAILABLE) from None
        finally:
            GATEWAY_LATENCY.labels(conn.name, operation).observe(time.perf_counter() - started)
        if response.status_code >= 500:
            breaker.failed()
        else:
            breaker.succeeded()
        counted(_outcome(response.status_code))
        return response


def _outcome(status: int) -> str:
    if status < 300:
        return "approved"
    if status == 429:
        return "429"
    if status == 404:
        return "not_found"
    return "5xx" if status >= 500 else "declined"


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.1), 300.0)
    except ValueError:
        return 1.0


def _decline_code(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("decline_code") or body.get("code") or f"http_{response.status_code}")
    except ValueError:
        return f"http_{response.status_code}"
