"""Runs after every other system test (files run in name order): whatever they did, the money
invariants hold across the whole database and the gateway's record."""

from __future__ import annotations

import secrets

from sqlalchemy import text

from db.invariants import check
from tests.system.conftest import System


async def test_the_invariants_hold_after_everything_the_suite_did(sys_: System) -> None:
    records = await sys_.records()  # every connector's charges and refunds
    assert records, "the suite charged nothing: this check would prove nothing"
    violations = await check(sys_.engine, records, sys_.temporal.client)
    assert violations == []


async def test_the_checker_reports_a_planted_violation(sys_: System) -> None:
    wallet = await sys_.wallet(funds="10.00")
    async with sys_.engine.begin() as conn:
        await conn.execute(text("UPDATE accounts SET balance = balance + 1 WHERE id = :w"),
                           {"w": wallet["id"]})
    fake_charge = {"object": "charge", "payment_id": f"pay_{secrets.token_hex(4)}"}
    try:
        violations = await check(sys_.engine, [fake_charge])
        rules = {(v.subject, v.rule) for v in violations}
        assert (wallet["id"], "balance equals entries") in rules
        assert (fake_charge["payment_id"], "every charge has a payment") in rules
    finally:
        async with sys_.engine.begin() as conn:
            await conn.execute(text("UPDATE accounts SET balance = balance - 1 WHERE id = :w"),
                               {"w": wallet["id"]})
