"""Operating payments: manual retry and cancel from REST and from the real `temporal` CLI,
search attributes as the operator's queue; the seed's bills scenarios in our contract's terms."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import eventually
from tests.system.conftest import System, temporal_cli

BILLS = {"decline_above": "1000", "retry_success_rate": 0.0}


async def timeline(sys_: System, pid: str) -> list[dict[str, Any]]:
    return list((await sys_.api.get(f"/v1/payments/{pid}/events")).json()["items"])


async def test_the_validated_cli_retry_answers_and_says_who_asked(sys_: System) -> None:
    await sys_.behave(decline_above="5", retry_success_rate=1.0)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "6.00")).json()["id"]
    await sys_.settled(pid, "failed")
    said = await temporal_cli(sys_, "workflow", "update", "execute", "--workflow-id", pid,
                              "--name", "request_retry", "--input", '"ops-alice"')
    assert "manual_retries" in said or "manualRetries" in said
    await sys_.settled(pid, "completed")
    retry = next(e for e in await timeline(sys_, pid) if e["type"] == "payment.retry_requested")
    assert retry["data"]["requested_by"] == "ops-alice"
    # completed: nothing to retry, and the CLI says so with a non-zero exit
    refused = await temporal_cli(sys_, "workflow", "update", "execute", "--workflow-id", pid,
                                 "--name", "request_retry", ok=False)
    assert "completed" in refused.lower()


async def test_refusals_answer_from_every_door(sys_: System) -> None:
    # every charge call times out (the gateway charged, its answer is lost): processing for a while
    await sys_.behave(timeout_rate=1.0, timeout_hang_seconds=2)
    wallet = await sys_.wallet(funds="50.00")
    pid = (await sys_.pay(wallet["user_id"], "1.00")).json()["id"]
    await sys_.settled(pid, "processing")
    # the four doors at once: the charge's retries keep it processing for about 6 s, and on a
    # slow machine four CLI processes one after another took longer than that
    by_update, by_rest, _, _ = await asyncio.gather(
        temporal_cli(sys_, "workflow", "update", "execute", "--workflow-id", pid,
                     "--name", "request_retry", "--input", '"ops-bob"', ok=False),
        sys_.api.post(f"/v1/payments/{pid}/cancel"),
        temporal_cli(sys_, "workflow", "signal", "--workflow-id", pid, "--name", "retry",
                     "--input", '"ops-carol"'),
        temporal_cli(sys_, "workflow", "signal", "--workflow-id", pid, "--name", "cancel"))
    assert "cannot be retried: status processing" in by_update
    assert (by_rest.status_code, by_rest.json()["code"]) == (409, "CANNOT_CANCEL_PAYMENT")
    refused = await eventually(
        lambda: timeline(sys_, pid),
        lambda events: sum(e["type"].endswith("_refused") for e in events) == 2)
    retry = next(e for e in refused if e["type"] == "payment.retry_refused")
    cancel = next(e for e in refused if e["type"] == "payment.cancel_refused")
    assert retry["data"]["requested_by"] == "ops-carol"
    assert "status processing" in retry["data"]["reason"]
    assert cancel["data"]["requested_by"] == "temporal-cli"
    assert (await sys_.settled(pid, "completed"))["manual_retries"] == 0  # nothing else changed
    # a closed workflow: the server refuses the signal itself, and the CLI says so
    closed = await temporal_cli(sys_, "workflow", "signal", "--workflow-id", pid, "--name", "retry",
                                ok=False)
    assert "completed" in closed.lower()


async def test_bulk_retry_of_what_a_query_selects(sys_: System) -> None:
    await sys_.behave(decline_above="5", retry_success_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    pids = [(await sys_.pay(wallet["user_id"], "6.00")).json()["id"] for _ in range(3)]
    for pid in pids:
        await sys_.settled(pid, "failed")
    query = f"PaymentStatus='failed' AND PaymentUserId='{sys_.user_hash(wallet['user_id'])}'"
    await eventually(lambda: temporal_cli(sys_, "workflow", "count", "--query", query),
                     lambda out: "3" in out, timeout=20, interval=0.5)
    await temporal_cli(sys_, "workflow", "signal", "--query", query, "--name", "retry",
                       "--input", '"bulk-ops"', "--yes")
    for pid in pids:
        assert (await sys_.settled(pid, "completed"))["manual_retries"] == 1
        retry = next(e for e in await timeline(sys_, pid) if e["type"] == "payment.retry_requested")
        assert retry["data"]["requested_by"] == "bulk-ops"


async def test_amounts_up_to_1000_succeed_at_once(sys_: System) -> None:  # seed 000, scenario 1
    await sys_.behave(**BILLS)
    wallet = await sys_.wallet(funds="600.00", currency="MXN")
    created = await sys_.pay(wallet["user_id"], "500", currency="MXN", reference="FAC-12345")
    assert (await sys_.settled(created.json()["id"]))["status"] == "completed"


async def test_three_failed_retries_exhaust_then_409(sys_: System) -> None:  # scenarios 2, 5
    await sys_.behave(**BILLS)
    wallet = await sys_.wallet(funds="6000.00", currency="MXN")
    pid = (await sys_.pay(wallet["user_id"], "5000", currency="MXN")).json()["id"]
    payment = await sys_.settled(pid)
    assert (payment["status"], payment["manual_retries"]) == ("failed", 0)
    for n in (1, 2, 3):
        retried = await sys_.api.post(f"/v1/payments/{pid}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["manual_retries"] == n
        payment = await sys_.settled(pid, "failed", "exhausted")
    assert (payment["status"], payment["manual_retries"]) == ("exhausted", 3)
    refused = await sys_.api.post(f"/v1/payments/{pid}/retry")
    assert refused.status_code == 409
    assert refused.json()["code"] == "CANNOT_RETRY_PAYMENT"
    assert refused.json()["payment_status"] == "exhausted"
    assert await sys_.charges(pid) == []
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("6000.00", "0.00")
    events = await sys_.events(pid)
    assert events.count("payment.retry_requested") == 3
    assert events[-1] == "payment.exhausted"


async def test_a_retry_can_succeed_and_charges_once(sys_: System) -> None:  # scenario 4
    await sys_.behave(decline_above="1000", retry_success_rate=1.0)
    wallet = await sys_.wallet(funds="3000.00", currency="MXN")
    pid = (await sys_.pay(wallet["user_id"], "2000", currency="MXN")).json()["id"]
    await sys_.settled(pid, "failed")
    assert (await sys_.api.post(f"/v1/payments/{pid}/retry")).status_code == 202
    payment = await sys_.settled(pid, "completed")
    assert payment["manual_retries"] == 1
    assert len(await sys_.charges(pid)) == 1
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert after["balance"] == "960.00"  # 3000 - 2000 - 40 fee


async def test_a_completed_payment_cannot_be_retried_or_canceled(sys_: System) -> None:  # 7
    wallet = await sys_.wallet(funds="600.00", currency="MXN")
    pid = (await sys_.pay(wallet["user_id"], "500", currency="MXN")).json()["id"]
    await sys_.settled(pid, "completed")
    retry = await sys_.api.post(f"/v1/payments/{pid}/retry")
    assert (retry.status_code, retry.json()["code"]) == (409, "CANNOT_RETRY_PAYMENT")
    cancel = await sys_.api.post(f"/v1/payments/{pid}/cancel")
    assert (cancel.status_code, cancel.json()["code"]) == (409, "CANNOT_CANCEL_PAYMENT")
    missing = await sys_.api.post("/v1/payments/pay_missing/retry")
    assert missing.status_code == 404


async def test_retry_by_temporal_cli_signal(sys_: System) -> None:
    await sys_.behave(decline_above="1000", retry_success_rate=1.0)
    wallet = await sys_.wallet(funds="3000.00", currency="MXN")
    pid = (await sys_.pay(wallet["user_id"], "1500", currency="MXN")).json()["id"]
    await sys_.settled(pid, "failed")
    await temporal_cli(sys_, "workflow", "signal", "--workflow-id", pid, "--name", "retry")
    payment = await sys_.settled(pid, "completed")
    assert payment["manual_retries"] == 1


async def test_cancel_by_rest_and_by_cli_releases_the_hold(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    by_rest = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    by_cli = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(by_rest, "failed")
    await sys_.settled(by_cli, "failed")
    canceled = await sys_.api.post(f"/v1/payments/{by_rest}/cancel")
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    await temporal_cli(sys_, "workflow", "signal", "--workflow-id", by_cli, "--name", "cancel")
    assert (await sys_.settled(by_cli, "canceled"))["status"] == "canceled"
    again = await sys_.api.post(f"/v1/payments/{by_rest}/cancel")
    assert again.status_code == 409
    after = (await sys_.api.get(f"/v1/wallets/{wallet['id']}")).json()
    assert (after["balance"], after["held"]) == ("100.00", "0.00")
    assert (await sys_.events(by_rest))[-1] == "payment.canceled"


async def test_search_attributes_find_the_payments_that_need_an_operator(sys_: System) -> None:
    await sys_.behave(decline_rate=1.0)
    wallet = await sys_.wallet(funds="100.00")
    pid = (await sys_.pay(wallet["user_id"], "10.00")).json()["id"]
    await sys_.settled(pid, "failed")
    query = f"PaymentStatus='failed' AND PaymentUserId='{sys_.user_hash(wallet['user_id'])}'"

    async def listed() -> str:
        return await temporal_cli(sys_, "workflow", "list", "--query", query)

    await eventually(listed, lambda out: pid in out, timeout=20, interval=0.5)
