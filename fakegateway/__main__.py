"""Run the fake gateway: `python -m fakegateway` (GATEWAY_HOST, GATEWAY_PORT, GATEWAY_NAME,
GATEWAY_RECORDS_PATH; GATEWAY_WEBHOOK_URL and GATEWAY_WEBHOOK_SECRET: where it POSTs its signed
events). `make dev` runs two: primary and secondary, each wired to paysaga's inbox."""

from __future__ import annotations

import uvicorn

from fakegateway.app import create_app
from settings import get_settings

if __name__ == "__main__":
    s = get_settings()
    uvicorn.run(create_app(records_path=s.gateway_records_path or None, name=s.gateway_name,
                           webhook_url=s.gateway_webhook_url,
                           webhook_secret=s.gateway_webhook_secret),
                host=s.gateway_host,
                port=s.gateway_port, log_level="warning")
