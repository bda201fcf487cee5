"""Charges, refunds and payouts by idempotency key, with a fault profile replaced through
PUT /behavior (the same faults for each: 5xx, timeouts, 429, declines, down, a lost answer).

A charge with `"capture": false` is an authorization (`authorized`): `POST /charges/{id}/capture`
(`{"amount"}`, at most what was authorized; idempotent) makes it `succeeded` with
`amount_captured`, `POST /charges/{id}/void` (idempotent) makes it `voided`, and one left past
AUTHORIZATION_EXPIRY_SECONDS is `expired` (a capture is refused `authorization_expired`). The
settlement report lists captures at the captured amount, never bare authorizations.

The same idempotency key never charges twice: a repeated request answers the stored outcome.
A "timeout" records the charge first and then hangs past the caller's timeout, as a real
gateway that charged but whose answer was lost would. With GATEWAY_RECORDS_PATH its records are
kept in SQLite and survive a restart; `GET /reports/transactions` serves them as a processor's
settlement report (a window, paginated by cursor).

Disputes: `POST /charges/{id}/dispute` (a lever: the cardholder disputes a succeeded charge) takes
the amount and DISPUTE_FEE back, sets `evidence_due_by` (DISPUTE_EVIDENCE_DAYS) and sends
`dispute.created`; `POST /disputes/{id}/evidence` takes the merchant's evidence (`under_review`);
`POST /disputes/{id}/close` (`won` or `lost`; the merchant's acceptance is `lost`) sends
`dispute.closed`. Disputes are in the records and the settlement report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from standardwebhooks.webhooks import Webhook

from fakegateway.store import Records


class Behavior(BaseModel):
    fail_rate: float = Field(default=0.1, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    decline_rate: float = Field(default=0.0, ge=0, le=1)
    decline_above: Decimal | None = None
    # the decline code: a hard one (do_not_honor, insufficient_funds, fraudulent) or a soft one
    # that a connector may declare retryable elsewhere (processor_unavailable, try_again_later)
    decline_code: str = Field(default="do_not_honor", pattern=r"^[a-z_]{1,40}$")
    # the charge is made (or found, on a retry), then the answer is a 500: the response was lost
    fail_after_charge_rate: float = Field(default=0.0, ge=0, le=1)
    retry_success_rate: float | None = Field(default=None, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    down: bool = False
    seed: int | None = None
    timeout_hang_seconds: float = Field(default=60.0, ge=0, le=600)
    # a misbehaving processor, for reconciliation: charges this much more than asked, or in
    # another currency
    amount_skew: Decimal = Decimal(0)
    charge_currency: str | None = Field(default=None, min_length=3, max_length=3)
    # outcomes that arrive later: a share of charges answered `processing` and settled after
    # async_settle_seconds (a share of those declined), each settlement POSTed as a signed event
    # to paysaga's inbox; the webhooks can be lost, duplicated or delayed (later ones overtake)
    async_rate: float = Field(default=0.0, ge=0, le=1)
    async_settle_seconds: float = Field(default=2.0, ge=0, le=3600)
    async_decline_rate: float = Field(default=0.0, ge=0, le=1)
    # 3-D Secure: a share of card charges answered `requires_action` with a redirect URL; the
    # page there (`?result=success` or `fail`) ends the authentication and sends the event
    three_ds_rate: float = Field(default=0.0, ge=0, le=1)
    webhook_loss_rate: float = Field(default=0.0, ge=0, le=1)
    webhook_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    webhook_delay_seconds: float = Field(default=0.0, ge=0, le=3600)
    # disputes: what the processor charges the merchant for one (Stripe: 15.00), and how many
    # days the merchant has for evidence (DISPUTE_EVIDENCE_DAYS, default 7)
    dispute_fee: Decimal = Field(default=Decimal("15.00"), ge=0)
    dispute_evidence_days: float = Field(
        default_factory=lambda: float(os.environ.get("DISPUTE_EVIDENCE_DAYS", 7)), gt=0)
    # an authorization (`capture: false`) left uncaptured this long lapses: `expired`, and a
    # capture is refused `authorization_expired` (card networks: 7 days for most)
    authorization_expiry_seconds: float = Field(
        default_factory=lambda: float(os.environ.get("AUTHORIZATION_EXPIRY_SECONDS", 604800)),
        gt=0)


class ChargeIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=300)
    payment_id: str
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)
    capture: bool = True  # False: authorize only; `POST /charges/{id}/capture` captures it
    source_type: str | None = None  # bank_account: a debit, always settled later


class CaptureIn(BaseModel):
    amount: Decimal | None = Field(default=None, gt=0)  # none: all that was authorized


class DisputeIn(BaseModel):
    reason: str = Field(default="fraudulent", pattern=r"^[a-z_]{1,40}$")
    amount: Decimal | None = Field(default=None, gt=0)  # none: the whole charge


class EvidenceIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    files: list[str] = Field(default_factory=list, max_length=20)


class CloseIn(BaseModel):
    status: Literal["won", "lost"]


class PayoutIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=300)
    withdrawal_id: str
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)


class RefundIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=300)
    charge_id: str
    amount: Decimal


class Gateway:
    def __init__(self, behavior: Behavior, records: Records | None = None,
                 name: str = "primary", webhook_url: str = "", webhook_secret: str = "") -> None:
        self.name = name
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.later: set[asyncio.Task[None]] = set()  # settlements and deliveries in flight
        self.delivered: list[str] = []  # event ids the inbox took
        self.lock = asyncio.Lock()
        self.records = records or Records(None)
        self.accepted: list[dict[str, Any]] = []  # charges and refunds, in order
        self.by_key: dict[str, dict[str, Any]] = {}  # every outcome, declines too
        self.declined_payments: set[str] = set()
        for record in self.records.all():  # what it did before a restart
            self._remember(record)
        self.set_behavior(behavior)

    def _remember(self, record: dict[str, Any]) -> None:
        self.by_key[record["idempotency_key"]] = record
        if record["status"] == "declined":
            self.declined_payments.add(record["payment_id"])
        else:
            self.accepted.append(record)

    def void(self, charge_id: str) -> dict[str, Any] | None:
        """Void an authorization (idempotent; a lapsed one stays `expired`), or, as a lever for
        tests, reverse a charge on the processor's side: either leaves the settlement report."""
        record = next((c for c in self.accepted if c["id"] == charge_id), None)
        if record is not None:
            record = self.aged(record)
        if record is not None and record["status"] == "requires_action":
            record["status"] = "canceled"  # never authenticated: nothing was ever charged
            self.records.replace(record)
        elif record is not None and record["status"] in ("succeeded", "authorized"):
            record["status"] = "voided"
            self.records.replace(record)
        return record

    def keep(self, record: dict[str, Any]) -> None:
        self.records.add(record)
        self._remember(record)

    def set_behavior(self, behavior: Behavior) -> None:
        self.behavior = behavior
        self.rng = random.Random(behavior.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def decide_charge(self, body: ChargeIn, base_url: str = "") -> dict[str, Any]:
        b = self.behavior
        declined_before = body.payment_id in self.declined_payments
        if declined_before and b.retry_success_rate is not None:
            decline = not self.roll(b.retry_success_rate)
        else:
            decline = (b.decline_above is not None and body.amount > b.decline_above) or self.roll(
                b.decline_rate)
        three_ds = (not decline and body.capture and body.source_type != "bank_account"
                    and self.roll(b.three_ds_rate))
        record: dict[str, Any] = {
            "id": "ch_" + secrets.token_hex(10),
            "object": "charge",
            "idempotency_key": body.idempotency_key,
            "payment_id": body.payment_id,
            "amount": str(body.amount + b.amount_skew),
            "currency": b.charge_currency or body.currency,
            "status": ("declined" if decline else "authorized" if not body.capture
                       else "requires_action" if three_ds
                       else "processing" if body.source_type == "bank_account"
                       or self.roll(b.async_rate) else "succeeded"),
            "decline_code": b.decline_code if decline else None,
            "connector": self.name,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if not body.capture and not decline:
            record["amount_authorized"] = record["amount"]
        self.keep(record)
        if record["status"] == "requires_action":
            record["next_action"] = {"type": "redirect_to_url",
                                     "url": f"{base_url.rstrip('/')}/authenticate/{record['id']}"}
            self.records.replace(record)
        elif record["status"] == "processing":
            self.later_task(self.settle_later(record))
        return record

    def authenticate(self, charge_id: str, success: bool) -> dict[str, Any] | None:
        """The customer authenticated (or failed to): the charge settles, the event goes out."""
        record = next((c for c in self.accepted if c["id"] == charge_id), None)
        if record is None or record["status"] != "requires_action":
            return record
        record.update(status="succeeded" if success else "declined",
                      decline_code=None if success else "authentication_failed")
        self.records.replace(record)
        if not success:
            self.declined_payments.add(record["payment_id"])
        self.send_event("charge.succeeded" if success else "charge.failed", record)
        return record

    # -- disputes ---------------------------------------------------------------------------

    def dispute_of(self, dispute_id: str) -> dict[str, Any] | None:
        return next((d for d in self.accepted if d["id"] == dispute_id
                     and d.get("object") == "dispute"), None)

    def open_dispute(self, charge_id: str, body: DisputeIn) -> tuple[int, dict[str, Any]]:
        """A cardholder disputes a succeeded charge: the processor takes the amount (and its
        fee) back at once, sets the evidence deadline and says `dispute.created`. One dispute
        per charge (a repeat answers it)."""
        charge = next((c for c in self.accepted if c["id"] == charge_id
                       and c.get("object", "charge") == "charge"), None)
        if charge is None or charge["status"] != "succeeded":
            return 404, {"error": "no succeeded charge by this id", "code": "unknown_charge"}
        known = next((d for d in self.accepted if d.get("object") == "dispute"
                      and d["charge_id"] == charge_id), None)
        if known is not None:
            return 200, known
        amount = Decimal(charge["amount"]) if body.amount is None else body.amount
        if amount > Decimal(charge["amount"]):
            return 400, {"error": "more than was charged", "code": "amount_too_large"}
        now = datetime.now(UTC)
        record = {"id": "dp_" + secrets.token_hex(10), "object": "dispute",
                  "idempotency_key": f"dispute:{charge_id}", "charge_id": charge_id,
                  "payment_id": charge["payment_id"], "amount": str(amount),
                  "currency": charge["currency"], "fee": str(self.behavior.dispute_fee),
                  "reason": body.reason, "status": "needs_response", "evidence": None,
                  "evidence_due_by": _rfc3339(now + timedelta(
                      days=self.behavior.dispute_evidence_days)),
                  "connector": self.name, "created_at": _rfc3339(now)}
        self.keep(record)
        charge["disputed"] = True
        self.records.replace(charge)
        self.send_event("dispute.created", record)
        return 201, record

    def dispute_evidence(self, dispute_id: str, body: EvidenceIn) -> tuple[int, dict[str, Any]]:
        record = self.dispute_of(dispute_id)
        if record is None:
            return 404, {"error": "no such dispute", "code": "unknown_dispute"}
        if record["evidence"] is not None and record["evidence"]["text"] == body.text:
            return 200, record  # the same evidence again
        if record["status"] != "needs_response":
            return 409, {"error": f"the dispute is {record['status']}", "code": "not_open"}
        record.update(status="under_review", evidence=body.model_dump())
        self.records.replace(record)
        return 200, record

    def close_dispute(self, dispute_id: str, status: str) -> tuple[int, dict[str, Any]]:
        """The network decides (or the merchant accepts: `lost`): `dispute.closed`."""
        record = self.dispute_of(dispute_id)
        if record is None:
            return 404, {"error": "no such dispute", "code": "unknown_dispute"}
        if record["status"] in ("won", "lost"):
            if record["status"] == status:
                return 200, record
            return 409, {"error": f"the dispute is {record['status']}", "code": "closed"}
        record.update(status=status, closed_at=_rfc3339(datetime.now(UTC)))
        self.records.replace(record)
        self.send_event("dispute.closed", record)
        return 200, record

    def later_task(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, held until it ends (not a moment longer)."""
        task = asyncio.create_task(work)
        self.later.add(task)
        task.add_done_callback(self.later.discard)

    async def settle_later(self, record: dict[str, Any]) -> None:
        """A `processing` charge settles after async_settle_seconds; the processor says so with
        a signed event (and answers its lookup by key with the new state at once)."""
        await asyncio.sleep(self.behavior.async_settle_seconds)
        async with self.lock:
            declined = self.roll(self.behavior.async_decline_rate)
            record.update(status="declined" if declined else "succeeded",
                          decline_code="insufficient_funds" if declined else None,
                          settled_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            self.records.replace(record)
            if declined:
                self.declined_payments.add(record["payment_id"])
        self.send_event("charge.failed" if declined else "charge.succeeded", record)

    def send_event(self, kind: str, record: dict[str, Any]) -> None:
        """POST a signed event (Standard Webhooks) to paysaga's inbox for this connector, under
        the webhook faults: lost, duplicated, delayed."""
        if not self.webhook_url or self.roll(self.behavior.webhook_loss_rate):
            return
        event = {"id": "evt_" + secrets.token_hex(10), "type": kind,
                 "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                 "data": {"object": dict(record)}}
        copies = 2 if self.roll(self.behavior.webhook_duplicate_rate) else 1
        for _ in range(copies):
            delay = self.rng.uniform(0, self.behavior.webhook_delay_seconds)
            self.later_task(self.deliver(event, delay))

    async def deliver(self, event: dict[str, Any], delay: float) -> None:
        """One delivery, retried a few times with backoff while the inbox does not take it."""
        await asyncio.sleep(delay)
        payload = json.dumps(event)
        for attempt in range(5):
            now = datetime.now(UTC)
            headers = {"webhook-id": event["id"], "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": Webhook(self.webhook_secret).sign(
                           event["id"], now, payload),
                       "content-type": "application/json"}
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=5) as http:
                    answer = await http.post(self.webhook_url, content=payload, headers=headers)
                if answer.status_code < 300:
                    self.delivered.append(event["id"])
                    return
            await asyncio.sleep(0.5 * 2 ** attempt)

    def aged(self, record: dict[str, Any]) -> dict[str, Any]:
        """An authorization past its expiry has lapsed: `expired` (kept so)."""
        if record.get("status") == "authorized":
            created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
            if (datetime.now(UTC) - created).total_seconds() > self.behavior.authorization_expiry_seconds:
                record["status"] = "expired"
                self.records.replace(record)
        return record

    def capture(self, charge_id: str, amount: Decimal | None) -> tuple[int, dict[str, Any]]:
        """Capture an authorization (all or less), once: (HTTP status, answer)."""
        record = next((c for c in self.accepted if c["id"] == charge_id), None)
        if record is None:
            return 404, {"error": "no such charge", "code": "unknown_charge"}
        record = self.aged(record)
        if record["status"] == "succeeded" and "amount_captured" in record:
            return 200, record  # captured before: the same answer
        if record["status"] != "authorized":
            code = {"expired": "authorization_expired", "voided": "already_voided"}.get(
                record["status"], "not_capturable")
            return 409, {"error": f"the charge is {record['status']}", "code": code}
        authorized = Decimal(record["amount_authorized"])
        taken = authorized if amount is None else amount
        if taken > authorized:
            return 400, {"error": "more than was authorized", "code": "amount_too_large"}
        record.update(status="succeeded", amount=str(taken), amount_captured=str(taken),
                      captured_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        self.records.replace(record)
        return 200, record

    def decide_payout(self, body: PayoutIn) -> dict[str, Any]:
        b = self.behavior
        decline = (b.decline_above is not None and body.amount > b.decline_above) or self.roll(
            b.decline_rate)
        record = {
            "id": "po_" + secrets.token_hex(10),
            "object": "payout",
            "idempotency_key": body.idempotency_key,
            "payment_id": body.withdrawal_id,  # the owner, as a charge carries its payment's
            "withdrawal_id": body.withdrawal_id,
            "amount": str(body.amount + b.amount_skew),
            "currency": body.currency,
            "status": "declined" if decline else "succeeded",
            "decline_code": b.decline_code if decline else None,
            "connector": self.name,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.keep(record)
        return record


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _answer(record: dict[str, Any], replay: bool) -> JSONResponse:
    if record["status"] == "declined":
        return JSONResponse(record, status_code=402)
    if record["status"] in ("processing", "requires_action") and not replay:
        return JSONResponse(record, status_code=202)  # the outcome arrives later
    return JSONResponse(record, status_code=200 if replay else 201)


def create_app(behavior: Behavior | None = None, records_path: str | None = None,
               name: str = "primary", webhook_url: str = "", webhook_secret: str = "") -> FastAPI:
    app = FastAPI(title=f"paysaga fake gateway: {name}")
    gw = Gateway(behavior or Behavior(), Records(records_path), name, webhook_url, webhook_secret)
    app.state.gateway = gw

    async def faults() -> JSONResponse | None:
        b = gw.behavior
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.down:
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        if gw.roll(b.rate_limit_rate):
            return JSONResponse({"error": "rate limited"}, status_code=429,
                                headers={"Retry-After": "1"})
        if gw.roll(b.fail_rate):
            return JSONResponse({"error": "internal error"}, status_code=500)
        return None

    async def once(key: str, decide: Callable[[], dict[str, Any]]) -> JSONResponse:
        """Money moved once per idempotency key (a repeated key answers the stored record),
        under the faults: before anything, a 5xx/429/down; after the record, a hang (a timeout
        at the caller) or a lost answer (a 500)."""
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            existing = gw.by_key.get(key)
            record = existing or decide()
            hang = existing is None and gw.roll(gw.behavior.timeout_rate)
            lost = (record["status"] in ("succeeded", "authorized")
                    and gw.roll(gw.behavior.fail_after_charge_rate))
        if hang:
            await asyncio.sleep(gw.behavior.timeout_hang_seconds)
        if lost:
            return JSONResponse({"error": "internal error"}, status_code=500)
        return _answer(record, replay=existing is not None)

    @app.post("/charges")
    async def charge(body: ChargeIn, request: Request) -> JSONResponse:
        return await once(body.idempotency_key,
                          lambda: gw.decide_charge(body, str(request.base_url)))

    @app.get("/authenticate/{charge_id}", response_class=HTMLResponse)
    async def authenticate(charge_id: str, result: str = "") -> HTMLResponse:
        """The 3-D Secure page a customer is sent to: `?result=success` or `?result=fail`."""
        if result not in ("success", "fail"):
            return HTMLResponse(f"<h1>Authenticate charge {charge_id}</h1>"
                                f'<a href="?result=success">Approve</a> '
                                f'<a href="?result=fail">Decline</a>')
        async with gw.lock:
            record = gw.authenticate(charge_id, result == "success")
        if record is None:
            return HTMLResponse("<h1>No such charge</h1>", status_code=404)
        return HTMLResponse(f"<h1>Charge {charge_id}: {record['status']}</h1>")

    @app.post("/charges/{charge_id}/dispute")
    async def dispute(charge_id: str, body: DisputeIn) -> JSONResponse:
        """A lever for tests and demos: the cardholder disputes the charge."""
        async with gw.lock:
            status, answer = gw.open_dispute(charge_id, body)
        return JSONResponse(answer, status_code=status)

    @app.get("/disputes/{dispute_id}")
    async def get_dispute(dispute_id: str) -> JSONResponse:
        record = gw.dispute_of(dispute_id)
        if record is None:
            return JSONResponse({"error": "no such dispute", "code": "unknown_dispute"}, 404)
        return JSONResponse(record)

    @app.post("/disputes/{dispute_id}/evidence")
    async def evidence(dispute_id: str, body: EvidenceIn) -> JSONResponse:
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            status, answer = gw.dispute_evidence(dispute_id, body)
        return JSONResponse(answer, status_code=status)

    @app.post("/disputes/{dispute_id}/close")
    async def close(dispute_id: str, body: CloseIn) -> JSONResponse:
        """The network's decision (`won` or `lost`); the merchant's acceptance is `lost`."""
        async with gw.lock:
            status, answer = gw.close_dispute(dispute_id, body.status)
        return JSONResponse(answer, status_code=status)

    @app.post("/payouts")
    async def payout(body: PayoutIn) -> JSONResponse:
        """Money out, once per idempotency key, under the same faults as charges."""
        return await once(body.idempotency_key, lambda: gw.decide_payout(body))

    @app.get("/payouts/by-key/{key}")
    async def lookup_payout(key: str) -> JSONResponse:
        if gw.behavior.latency_ms:
            await asyncio.sleep(gw.behavior.latency_ms / 1000)
        if gw.behavior.down:
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        record = gw.by_key.get(key)
        if record is None or record.get("object") != "payout":
            return JSONResponse({"error": "no such payout"}, status_code=404)
        return JSONResponse(record)

    @app.post("/charges/{charge_id}/capture")
    async def capture(charge_id: str, body: CaptureIn | None = None) -> JSONResponse:
        """Capture an authorization, all or less of it, once (under the same faults)."""
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            status, answer = gw.capture(charge_id, body.amount if body else None)
        return JSONResponse(answer, status_code=status)

    @app.post("/charges/{charge_id}/void")
    async def void(charge_id: str) -> JSONResponse:
        """Void an authorization, once (under the same faults)."""
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            record = gw.void(charge_id)
        if record is None:
            return JSONResponse({"error": "no such charge"}, status_code=404)
        return JSONResponse(record)

    @app.get("/charges/by-key/{key}")
    async def lookup(key: str) -> JSONResponse:
        if gw.behavior.latency_ms:
            await asyncio.sleep(gw.behavior.latency_ms / 1000)
        if gw.behavior.down:
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        record = gw.by_key.get(key)
        if record is None:
            return JSONResponse({"error": "no such charge"}, status_code=404)
        return JSONResponse(gw.aged(record))

    @app.post("/refunds")
    async def refund(body: RefundIn) -> JSONResponse:
        fault = await faults()
        if fault is not None:
            return fault
        async with gw.lock:
            existing = gw.by_key.get(body.idempotency_key)
            if existing is not None:
                return JSONResponse(existing, status_code=200)
            charged = next((c for c in gw.accepted if c["id"] == body.charge_id), None)
            if charged is None:
                return JSONResponse({"error": "no such charge", "code": "unknown_charge"},
                                    status_code=404)
            record = {
                "id": "re_" + secrets.token_hex(10), "object": "refund",
                "idempotency_key": body.idempotency_key, "payment_id": charged["payment_id"],
                "charge_id": charged["id"], "amount": str(body.amount),
                "currency": charged["currency"], "status": "succeeded", "connector": gw.name,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            gw.keep(record)
        return JSONResponse(record, status_code=201)

    @app.get("/charges")
    async def charges(request: Request) -> list[dict[str, Any]]:
        payment = request.query_params.get("payment_id")
        return [gw.aged(c) for c in gw.accepted if payment is None or c["payment_id"] == payment]

    @app.get("/reports/transactions")
    async def report(start: str = Query(alias="from"), end: str = Query(alias="to"),
                     cursor: int = Query(default=0, ge=0),
                     limit: int = Query(default=500, ge=1, le=5000)) -> dict[str, Any]:
        """The settlement report: accepted charges, refunds and payouts created in [from, to),
        oldest first, a page at a time; `next_cursor` until the window is exhausted."""
        items, after = gw.records.page(start, end, cursor, limit)
        return {"items": items, "next_cursor": after}

    @app.get("/behavior")
    async def get_behavior() -> Behavior:
        return gw.behavior

    @app.put("/behavior")
    async def put_behavior(behavior: Behavior) -> Behavior:
        gw.set_behavior(behavior)
        return behavior

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "name": gw.name}

    return app
