"""Gateway steps: charge (or authorize) by idempotency key, look a charge up when its outcome is
unknown, capture or void an authorization, refund.

Thin I/O over gateway.client (its error mapping is the retry policy's input). What the gateway
said is recorded by the ledger step that acts on it, in its own transaction
(`gateway.payment_approved` with the capture, `gateway.payment_rejected` with the release). A
charge that succeeds is posted by the charge activity itself when the saga asks
(`ChargeRequest.post`): a payment's hold captured, a top-up's wallet credited, by the same
functions as the saga's own step (activities/postings), one local activity and one workflow
activation fewer; if it cannot be posted there, the saga's step posts it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import postings
from contracts.payment import CaptureCharge, Captured, CaptureFunds
from contracts.refund import RefundStep
from contracts.saga import GATEWAY_DECLINED, Charge, ChargeRequest
from contracts.transfers import SettleTransfer
from db import transfers
from domain.ids import gateway_key
from domain.money import to_major
from gateway.client import Gateways, NotSent
from gateway.metrics import GATEWAY_CALLS


class GatewayActivities:
    """The gateway steps for every connector; a request names its connector (None: the first)."""

    def __init__(self, gateways: Gateways, engine: AsyncEngine | None = None) -> None:
        self.gateways = gateways
        self.engine = engine  # None: a charge is never posted here (the capture step posts it)

    @activity.defn(name="charge_gateway")
    async def charge_gateway(self, req: ChargeRequest) -> Charge:
        client = self.gateways.at(req.connector)
        key = gateway_key(req.payment_id, req.attempt, req.connector)
        first_try = activity.info().attempt == 1
        if req.fail_fast and first_try and not client.breaker.allow_peek():
            # nothing was sent under this key: the payment may go to the next connector
            GATEWAY_CALLS.labels(client.name, "charge", "circuit_open").inc()
            return Charge(status="circuit_open")
        activity.logger.info("charging %s at %s", key, client.name)
        try:
            charge = await client.charge(key, req.payment_id, to_major(req.amount, req.currency),
                                         req.currency, capture=req.capture,
                                         source_type=req.source_type)
        except NotSent:
            if req.fail_fast and first_try:
                # no connection, and no earlier attempt: nothing was ever sent under this key
                return Charge(status="unreachable")
            raise
        if charge.status == "succeeded" and req.post is not None:
            charge.posted = await self._post(req, charge.gateway_reference)
        return charge

    async def _post(self, req: ChargeRequest, reference: str | None) -> bool:
        """Post the charge now, as the saga's step would (a payment's capture, a top-up's
        credit); False when it could not be posted here, and the saga's step posts it (and
        retries, or tells an operator)."""
        if self.engine is None or req.post not in ("payment", "top_up"):
            return False
        try:
            if req.post == "top_up":
                await postings.settle(self.engine, transfers.TOP_UP, SettleTransfer(
                    req.payment_id, req.tenant_id, True, reference, req.connector))
                return True
            posted = await postings.capture(self.engine, CaptureFunds(
                req.payment_id, req.tenant_id, req.attempt, req.amount, req.post_fee,
                req.currency, reference, connector=req.connector))
        except Exception:  # charged: whatever failed here, the charge is answered, never retried
            activity.logger.warning("charged %s, but not posted here: the saga's step posts it",
                                    req.payment_id, exc_info=True)
            return False
        return posted.outcome != "no_hold"

    @activity.defn(name="lookup_charge")
    async def lookup_charge(self, req: ChargeRequest) -> Charge:
        return await self.gateways.at(req.connector).lookup(
            gateway_key(req.payment_id, req.attempt, req.connector))

    @activity.defn(name="capture_charge")
    async def capture_charge(self, step: CaptureCharge) -> Captured:
        """Capture a manual payment's authorization (idempotent by the charge: a retried
        capture answers the first one's outcome)."""
        captured = await self.gateways.at(step.connector).capture(
            step.gateway_reference, to_major(step.amount, step.currency))
        return Captured(captured.status, step.amount if captured.status == "captured" else 0,
                        captured.code)

    @activity.defn(name="void_charge")
    async def void_charge(self, step: CaptureCharge) -> Captured:
        """Void a manual payment's authorization (idempotent)."""
        return await self.gateways.at(step.connector).void(step.gateway_reference)

    @activity.defn(name="refund_gateway")
    async def refund_gateway(self, step: RefundStep) -> str:
        """Give the money back at the gateway, once per refund id (its idempotency key)."""
        refunded = await self.gateways.at(step.connector).refund(
            step.refund_id, step.gateway_reference, to_major(step.amount, step.currency))
        if refunded.status != "succeeded":
            raise ApplicationError(f"the gateway refused the refund: {refunded.code}",
                                   type=GATEWAY_DECLINED, non_retryable=True)
        return str(refunded.refund_id)
