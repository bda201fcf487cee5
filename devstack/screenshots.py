"""`python -m devstack.screenshots`: look at failures the way an operator does, in the Web UI of a
running `make dev`, with headless Chromium (Debian's `chromium`; `apt-get install chromium`).

Makes a declined top-up, an exhausted payment and a payment whose charge met a 5xx on every
attempt (found by the lookup, then completed) through the API and the fake gateways' fault
injection, then screenshots each one's page in the Web UI opened at `localhost` and at `127.0.0.1`
(the codec server must decode for both) into `.data/screenshots/`. The gateways' behavior is put
back as it was. What to check in the pictures: the failure's headline is a readable message
(`the gateway declined the charge (…)`, `the gateway answered 500`), not "Encoded failure", no
Python stack trace, and no banner saying the codec server could not connect.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from settings import get_settings

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--window-size=1440,2000",
                  "--virtual-time-budget=15000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("headless Chromium is needed: apt-get install chromium")


def settle(api: httpx.Client, path: str, wanted: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(path).json()
        if body.get("status") in wanted:
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not reach {sorted(wanted)}: {body.get('status')}")
        time.sleep(0.2)


def make_failures(api: httpx.Client, gateways: list[httpx.Client]) -> dict[str, str]:
    """The three histories to look at: {name: workflow id}."""
    user = f"screenshot-{secrets.token_hex(3)}"
    wallet = api.post("/v1/wallets", json={"user_id": user, "currency": "USD"}).json()
    api.post(f"/v1/wallets/{wallet['id']}/deposits", json={"amount": "100.00"},
             headers={"Idempotency-Key": secrets.token_hex(8)}).raise_for_status()
    wait = {"Prefer": "wait=20"}
    for gw in gateways:
        gw.put("/behavior", json={"fail_rate": 0, "decline_rate": 1,
                                  "decline_code": "insufficient_funds"}).raise_for_status()
    top_up = api.post(f"/v1/wallets/{wallet['id']}/top-ups",
                      json={"amount": "25.00", "source": {"type": "card", "token": "tok_visa"}},
                      headers={"Idempotency-Key": secrets.token_hex(8), **wait}).json()
    payment = api.post("/v1/payments", json={
        "user_id": user, "service_id": "screenshots", "amount": "3.00", "currency": "USD",
        "reference": "INV-SCREENSHOT"}, headers={"Idempotency-Key": secrets.token_hex(8)}).json()
    settle(api, f"/v1/payments/{payment['id']}", {"failed", "exhausted"})
    while api.get(f"/v1/payments/{payment['id']}").json()["status"] == "failed":
        api.post(f"/v1/payments/{payment['id']}/retry", headers=wait)
    for gw in gateways:
        gw.put("/behavior", json={"fail_rate": 0}).raise_for_status()
    gateways[0].put("/behavior", json={"fail_rate": 0, "fail_after_charge_rate": 1})
    met_5xx = api.post("/v1/payments", json={
        "user_id": user, "service_id": "screenshots", "amount": "2.00", "currency": "USD"},
        headers={"Idempotency-Key": secrets.token_hex(8)}).json()
    settle(api, f"/v1/payments/{met_5xx['id']}", {"completed", "failed"}, timeout=120)
    return {"declined-top-up": top_up["id"], "exhausted-payment": payment["id"],
            "5xx-attempt": met_5xx["id"]}


def screenshot(browser: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="paysaga-chromium-") as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        f"--screenshot={out}", url], check=True, capture_output=True, timeout=120)


def main() -> int:
    s = get_settings()
    data = Path(s.data_dir)
    key_file = data / "dev_api_key"
    if not key_file.exists():
        print("start `make dev` first (no .data/dev_api_key)", file=sys.stderr)
        return 2
    browser = chromium()
    out = data / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
    ports = (s.gateway_port, s.gateway_secondary_port)
    with httpx.Client(base_url=f"http://127.0.0.1:{s.api_port}", headers=headers,
                      timeout=60) as api:
        gateways = [httpx.Client(base_url=f"http://127.0.0.1:{p}") for p in ports]
        before = [gw.get("/behavior").json() for gw in gateways]
        try:
            ids = make_failures(api, gateways)
        finally:
            for gw, behavior in zip(gateways, before, strict=True):
                gw.put("/behavior", json=behavior)
                gw.close()
    for name, workflow_id in ids.items():
        for host in ("localhost", "127.0.0.1"):
            url = (f"http://{host}:{s.temporal_ui_port}/namespaces/{s.temporal_namespace}"
                   f"/workflows/{workflow_id}")
            path = out / f"{name}-{host}.png"
            screenshot(browser, url, path)
            print(f"{path}  {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
