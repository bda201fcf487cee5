"""One webhook delivery: retried with exponential backoff for about a day, then parked as failed
(listed by `GET /v1/webhook-deliveries?status=failed`, replayable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError


@dataclass
class DeliveryPolicy:
    initial_seconds: float = 5.0
    max_interval_seconds: float = 3600.0
    give_up_after_seconds: float = 24 * 3600.0


@dataclass
class Delivery:
    delivery_id: str
    policy: DeliveryPolicy


# Auto-upgrade: a delivery is retried for up to WEBHOOK_GIVE_UP_AFTER_SECONDS (a day).
@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery: Delivery) -> str:
        p = delivery.policy
        try:
            await workflow.execute_activity(
                "deliver_webhook", delivery.delivery_id,
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=timedelta(seconds=p.give_up_after_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=p.initial_seconds), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=p.max_interval_seconds)))
        except ActivityError:
            await workflow.execute_activity("park_failed_delivery", delivery.delivery_id,
                                            start_to_close_timeout=timedelta(seconds=30))
            return "failed"
        return "succeeded"
