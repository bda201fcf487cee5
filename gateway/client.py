"""One client per connector: the gateway's HTTP API as methods, each call through the connector's
circuit breaker and counted.

    charge(key, ...)        -> Charge: succeeded (authorized with capture=False), declined
    lookup(key)             -> Charge: succeeded, authorized, processing, declined, not_found
    capture(charge, amount) -> Captured: captured (with the amount) or refused (with its code)
    void(charge)            -> Captured: voided, or refused (already captured)
    record(key)             -> the gateway's charge record, or None
    refund(key, charge, amount) -> Refunded: succeeded (with its id) or refused (with its code)
    payout(key, ...)        -> Payout: succeeded, declined (with its code)
    lookup_payout(key)      -> Payout: succeeded, declined, not_found
    report(start, end, cursor, limit) -> a page of the settlement report

Error mapping (the caller's retry policy does the rest):
- 2xx                      -> the result
- 402 and other 4xx        -> declined / refused: a business outcome, not retried
- 429                      -> retryable GatewayRateLimited, next attempt after its Retry-After
- 5xx, timeouts, transport -> retryable GatewayUnavailable (the charge may or may not have
                              happened); NotSent when no connection was made at all
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from json import loads
from typing import Any

import aiohttp
from opentelemetry import propagate, trace
from temporalio.exceptions import ApplicationError

from contracts.payment import Captured
from contracts.saga import GATEWAY_RATE_LIMITED, GATEWAY_UNAVAILABLE, Charge
from contracts.transfers import Payout
from gateway.breaker import CircuitBreaker
from gateway.metrics import GATEWAY_CALLS, GATEWAY_LATENCY
from settings import Settings
from settings.connectors import SOFT_DECLINES


class NotSent(ApplicationError):
    """No connection was made: the request never left this worker."""


@dataclass
class Refunded:
    status: str  # succeeded | refused
    refund_id: str | None = None
    code: str | None = None  # why it was refused


@dataclass(frozen=True)
class Answer:
    """A connector's HTTP answer, read whole."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return loads(self.content)


TRACER = trace.get_tracer("paysaga.gateway")


@dataclass
class ConnectorClient:
    """One connector: its HTTP client, its own circuit breaker and the declines it calls soft.
    `traced`: each call is a client span whose context travels in the request's headers."""

    name: str
    http: aiohttp.ClientSession
    breaker: CircuitBreaker
    soft_declines: frozenset[str] = frozenset(SOFT_DECLINES)
    traced: bool = field(default=False, kw_only=True)

    async def charge(self, key: str, payment_id: str, amount: str, currency: str,
                     capture: bool = True, source_type: str | None = None) -> Charge:
        body: dict[str, Any] = {"idempotency_key": key, "payment_id": payment_id,
                                "amount": amount, "currency": currency}
        if not capture:
            body["capture"] = False  # authorize only
        if source_type:
            body["source_type"] = source_type
        response = await self.send("POST", "/charges", "charge" if capture else "authorize",
                                   headers={"Idempotency-Key": key}, json=body)
        if response.status_code in (200, 201, 202):
            answer = response.json()
            status = str(answer.get("status"))
            return Charge(status=status if status in ("authorized", "processing",
                                                      "requires_action") else "succeeded",
                          gateway_reference=str(answer["id"]),
                          redirect_url=(answer.get("next_action") or {}).get("url"))
        _raise_unless_answered(response)
        # a decline is a business outcome, not an error: a result, with its decline code
        code = _decline_code(response)
        return Charge(status="declined", decline_code=code,
                      retryable_elsewhere=code in self.soft_declines)

    async def lookup(self, key: str) -> Charge:
        charge = await self.record(key)
        if charge is None:
            return Charge(status="not_found")
        if charge.get("status") in ("succeeded", "authorized", "processing", "requires_action"):
            return Charge(status=str(charge["status"]), gateway_reference=str(charge["id"]))
        code = as_code(str(charge.get("decline_code") or "declined"))
        return Charge(status="declined", decline_code=code,
                      retryable_elsewhere=code in self.soft_declines)

    async def record(self, key: str) -> dict[str, Any] | None:
        """The gateway's record of the charge made under `key` (any status), or None."""
        return await self._found(f"/charges/by-key/{key}", "lookup", "charge lookup")

    async def capture(self, charge_id: str, amount: str) -> Captured:
        """Capture an authorization (idempotent by the charge): `captured`, or `refused` with
        the processor's code (authorization_expired, already_voided)."""
        response = await self.send("POST", f"/charges/{charge_id}/capture", "capture",
                                   json={"amount": amount})
        if response.status_code == 200:
            return Captured("captured")
        _raise_unless_answered(response)
        return Captured("refused", code=_decline_code(response))

    async def void(self, charge_id: str) -> Captured:
        """Void an authorization (idempotent): `voided` (or `expired`: it lapsed first, which
        moved no money either), or `refused` when it was captured."""
        response = await self.send("POST", f"/charges/{charge_id}/void", "void")
        if response.status_code == 200:
            status = str(response.json().get("status"))
            ended = status in ("voided", "expired", "canceled")  # no money moved, or will
            return Captured(status if ended else "refused",
                            code=None if ended else f"charge_{status}")
        _raise_unless_answered(response)
        return Captured("refused", code=_decline_code(response))

    async def refund(self, key: str, charge_id: str | None, amount: str) -> Refunded:
        response = await self.send("POST", "/refunds", "refund", headers={"Idempotency-Key": key},
                                   json={"idempotency_key": key, "charge_id": charge_id,
                                         "amount": amount})
        if response.status_code in (200, 201):
            return Refunded("succeeded", str(response.json()["id"]))
        _raise_unless_answered(response)
        return Refunded("refused", code=_decline_code(response))

    async def payout(self, key: str, withdrawal_id: str, amount: str, currency: str) -> Payout:
        response = await self.send("POST", "/payouts", "payout", headers={"Idempotency-Key": key},
                                   json={"idempotency_key": key, "withdrawal_id": withdrawal_id,
                                         "amount": amount, "currency": currency})
        if response.status_code in (200, 201):
            return Payout("succeeded", str(response.json()["id"]))
        _raise_unless_answered(response)
        return Payout("declined", decline_code=_decline_code(response))

    async def lookup_payout(self, key: str) -> Payout:
        response = await self.send("GET", f"/payouts/by-key/{key}", "payout_lookup")
        if response.status_code == 404:
            return Payout("not_found")
        if response.status_code != 200:
            raise ApplicationError(f"payout lookup answered {response.status_code}",
                                   type=GATEWAY_UNAVAILABLE)
        found = response.json()
        if found.get("status") == "succeeded":
            return Payout("succeeded", str(found["id"]))
        return Payout("declined", decline_code=str(found.get("decline_code") or "declined"))

    async def report(self, start: str, end: str, cursor: int | str, limit: int) -> dict[str, Any]:
        """A page of the settlement report: `{items, next_cursor}`, oldest first."""
        response = await self.send("GET", "/reports/transactions", "report", params={
            "from": start, "to": end, "cursor": cursor, "limit": limit})
        if response.status_code != 200:
            raise ApplicationError(f"the gateway's report answered {response.status_code}",
                                   type=GATEWAY_UNAVAILABLE)
        page: dict[str, Any] = response.json()
        return page

    async def dispute(self, dispute_id: str) -> dict[str, Any] | None:
        """The processor's dispute as it is now, or None when it has none by this id."""
        return await self._found(f"/disputes/{dispute_id}", "dispute_lookup", "dispute lookup")

    async def _found(self, path: str, operation: str, what: str) -> dict[str, Any] | None:
        """GET one record: None on 404; any other answer but 200 is the gateway unavailable."""
        response = await self.send("GET", path, operation)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ApplicationError(f"{what} answered {response.status_code}",
                                   type=GATEWAY_UNAVAILABLE)
        found: dict[str, Any] = response.json()
        return found

    async def dispute_evidence(self, dispute_id: str, text: str,
                               files: list[str]) -> dict[str, Any]:
        """Forward the merchant's evidence (the same evidence again answers the same); a dispute
        no longer open is refused (`DISPUTE_NOT_OPEN`, not retried)."""
        return await self._dispute_call(f"/disputes/{dispute_id}/evidence", "dispute_evidence",
                                        {"text": text, "files": files})

    async def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """Accept a dispute (`lost`); a dispute decided otherwise is refused."""
        return await self._dispute_call(f"/disputes/{dispute_id}/close", "dispute_close",
                                        {"status": status})

    async def _dispute_call(self, path: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.send("POST", path, operation, json=body)
        if response.status_code in (404, 409):
            raise ApplicationError(f"the processor refused: {_code_of(response)}",
                                   type="DISPUTE_NOT_OPEN", non_retryable=True)
        if response.status_code != 200:
            raise ApplicationError(f"the processor answered {response.status_code}",
                                   type=GATEWAY_UNAVAILABLE)
        answer: dict[str, Any] = response.json()
        return answer

    async def send(self, method: str, path: str, operation: str, *,
                   headers: dict[str, str] | None = None, json: Any = None,
                   params: Mapping[str, Any] | None = None) -> Answer:
        """One HTTP call through the breaker, counted by outcome and timed."""
        def counted(outcome: str) -> None:
            GATEWAY_CALLS.labels(self.name, operation, outcome).inc()

        if not self.breaker.allow():
            counted("circuit_open")
            raise ApplicationError(
                "the gateway circuit is open: failing fast", type=GATEWAY_UNAVAILABLE,
                next_retry_delay=timedelta(seconds=max(self.breaker.retry_in(), 0.1)))
        started = time.perf_counter()
        try:
            if self.traced:
                response = await self._traced(method, path, headers or {}, json, params)
            else:
                response = await self._call(method, path, headers, json, params)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
            self.breaker.failed()
            counted("unreachable")
            raise NotSent(f"{self.name} is unreachable ({type(err).__name__}): nothing was sent",
                          type=GATEWAY_UNAVAILABLE) from None
        except TimeoutError:
            self.breaker.failed()
            counted("timeout")
            raise ApplicationError("the gateway timed out; the outcome is unknown",
                                   type=GATEWAY_UNAVAILABLE) from None
        except aiohttp.ClientError as err:
            self.breaker.failed()
            counted("unreachable")
            raise ApplicationError(f"the gateway is unreachable: {type(err).__name__}",
                                   type=GATEWAY_UNAVAILABLE) from None
        finally:
            GATEWAY_LATENCY.labels(self.name, operation).observe(time.perf_counter() - started)
        if response.status_code >= 500:
            self.breaker.failed()
        else:
            self.breaker.succeeded()
        counted(_outcome(response.status_code))
        return response

    async def _call(self, method: str, path: str, headers: dict[str, str] | None, body: Any,
                    params: Mapping[str, Any] | None) -> Answer:
        async with self.http.request(method, path, headers=headers, json=body,
                                     params=params) as r:
            return Answer(r.status, r.headers, await r.read())

    async def _traced(self, method: str, path: str, headers: dict[str, str], body: Any,
                      params: Mapping[str, Any] | None) -> Answer:
        """The call as a client span, its context sent along (W3C `traceparent`) so the
        processor's side joins the trace."""
        with TRACER.start_as_current_span(method, kind=trace.SpanKind.CLIENT, attributes={
                "http.request.method": method, "url.path": path,
                "paysaga.connector": self.name}) as span:
            propagate.inject(headers)
            answer = await self._call(method, path, headers, body, params)
            span.set_attribute("http.response.status_code", answer.status_code)
            if answer.status_code >= 500:
                span.set_status(trace.StatusCode.ERROR)
            return answer


class Gateways:
    """Every configured connector's client; a request names its connector (None: the first)."""

    def __init__(self, clients: list[ConnectorClient]) -> None:
        self.clients = {c.name: c for c in clients}
        self.default = clients[0].name

    def at(self, name: str | None) -> ConnectorClient:
        found = self.clients.get(name or self.default)
        if found is None:  # a payment routed before a connector was removed from CONNECTORS
            raise ApplicationError(f"connector {name} is not configured on this worker",
                                   type=GATEWAY_UNAVAILABLE)
        return found

    def __iter__(self) -> Iterator[ConnectorClient]:
        return iter(self.clients.values())

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.http.close()

    async def __aenter__(self) -> Gateways:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def session(base_url: str, timeout_seconds: float = 10.0) -> aiohttp.ClientSession:
    """A connector's HTTP session: keep-alive connections (200 at most); each phase of a call
    (waiting for a connection, connecting, each read) within `timeout_seconds`. A connection
    that could not be made is `NotSent`; a timeout after it was, an unknown outcome."""
    return aiohttp.ClientSession(
        base_url=base_url, connector=aiohttp.TCPConnector(limit=200),
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout_seconds,
                                      sock_connect=timeout_seconds, sock_read=timeout_seconds))


def connect(settings: Settings, *, traced: bool = False) -> Gateways:
    """A client and a breaker per configured connector (the caller closes them); `traced`: each
    call is a span (telemetry/tracing.py)."""
    return Gateways([ConnectorClient(
        c.name, session(c.base_url, c.timeout_seconds),
        CircuitBreaker(c.breaker_failures, c.breaker_cooldown_seconds, connector=c.name),
        frozenset(c.soft_decline_codes), traced=traced) for c in settings.connector_list])


def single(base_url: str, breaker: CircuitBreaker | None = None,
           name: str = "primary") -> Gateways:
    """One connector at `base_url` (tests, tools): `async with single(url) as gateways`."""
    return Gateways([ConnectorClient(name, session(base_url),
                                     breaker or CircuitBreaker(connector=name))])


def _raise_unless_answered(response: Answer) -> None:
    """A 429 or a 5xx is no answer: retry (after the gateway's Retry-After for a 429)."""
    if response.status_code == 429:
        raise ApplicationError("the gateway is rate limiting", type=GATEWAY_RATE_LIMITED,
                               next_retry_delay=timedelta(seconds=_retry_after(response)))
    if not 400 <= response.status_code < 500:
        raise ApplicationError(f"the gateway answered {response.status_code}",
                               type=GATEWAY_UNAVAILABLE)


def _outcome(status: int) -> str:
    if status < 300:
        return "approved"
    if status == 429:
        return "429"
    if status == 404:
        return "not_found"
    return "5xx" if status >= 500 else "declined"


def _retry_after(response: Answer) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.1), 300.0)
    except ValueError:
        return 1.0


DECLINE_CODE = re.compile(r"[a-z0-9_]{1,60}")


def _decline_code(response: Answer) -> str:
    """The processor's decline code, as a code: it goes into failure messages that Temporal shows
    in plain text, so anything not shaped like one (free text could quote a cardholder) is
    `unrecognized_decline`."""
    try:
        body = response.json()
        code = str(body.get("decline_code") or body.get("code") or f"http_{response.status_code}")
    except (ValueError, AttributeError):
        return f"http_{response.status_code}"
    return as_code(code)


def as_code(code: str) -> str:
    return code if DECLINE_CODE.fullmatch(code) else "unrecognized_decline"


def _code_of(response: Answer) -> str:
    try:
        return as_code(str(response.json().get("code") or response.status_code))
    except ValueError:
        return str(response.status_code)
