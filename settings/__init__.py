"""One validated settings object for every part of paysaga, read from the environment.

Every part (API, worker, fake gateway, `make dev`) reads the same variables, so one `.env`
or one shell export configures the whole system. Defaults are the embedded development setup.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from settings.connectors import Connector, Rule, check_routing


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: str = "development"

    # PostgreSQL. Empty means "the embedded server `make dev` runs under .data/".
    database_url: str = ""
    db_pool_size: int = Field(default=10, ge=1)

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "paysaga-payments"
    temporal_ui_url: str = "http://localhost:8233"

    # Parts and ports
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8001
    gateway_url: str = "http://127.0.0.1:8001"
    # the fake gateway's records (SQLite); `make dev` keeps them under .data/, empty = memory only
    gateway_records_path: str = ""
    gateway_name: str = "primary"  # the fake gateway's name (make dev runs primary and secondary)
    gateway_secondary_port: int = 8002
    gateway_secondary_url: str = "http://127.0.0.1:8002"

    # Payment processors and the routing among them (settings/connectors.py, routing/). No CONNECTORS: make
    # dev's two, `primary` at GATEWAY_URL and `secondary` at GATEWAY_SECONDARY_URL (empty: none),
    # with the GATEWAY_* timeout, retry and breaker settings. Production sets CONNECTORS.
    connectors: list[Connector] = Field(default_factory=list)
    routing_rules: list[Rule] = Field(default_factory=list)
    routing_default: list[str] | None = None
    embedded_pg_port: int = 5433
    # Payload encryption (temporal_client/codec.py): `id:<base64 32 bytes>` keys, newest first, or a file
    # of them; the key of the PaymentUserId search attribute's HMAC (base64). `make dev` makes both.
    payload_keys: str = Field(default="", repr=False)
    payload_keys_file: str = ""
    search_hash_key: str = Field(default="", repr=False)
    codec_port: int = 8081
    codec_host: str = "127.0.0.1"
    # origins whose requests the codec server decodes without a bearer token (make dev: its Web UI)
    codec_trusted_origins: str = ""
    # The event bus: NATS JetStream. Empty NATS_URL under `make dev` means its embedded server on
    # NATS_PORT (4222 is often taken); elsewhere, empty means events are only logged.
    nats_url: str = ""
    nats_port: int = 4223
    nats_stream: str = "PAYSAGA_EVENTS"
    nats_stream_max_age_seconds: float = Field(default=30 * 24 * 3600, gt=0)
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    nats_duplicate_window_seconds: float = Field(default=600, gt=0)
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    data_dir: str = ".data"

    # The API's edges
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger bodies get 413")

    # Per API key and scope: a token bucket (requests per second, burst), shared by all API
    # processes through PostgreSQL. Generous by default; 0 turns a scope's limit off.
    rate_limit_write_per_second: float = Field(default=100.0, ge=0)
    rate_limit_write_burst: int = Field(default=200, ge=1)
    rate_limit_read_per_second: float = Field(default=500.0, ge=0)
    rate_limit_read_burst: int = Field(default=1000, ge=1)

    # Business rules
    fee_bps: int = Field(default=200, ge=0, le=10_000, description="fee in basis points: 200 = 2%")
    max_amount: str = "1000000"
    # money in and out through the gateway (the seeds' 2% commission), half-up like payments
    top_up_fee_percent: Decimal = Field(default=Decimal(2), ge=0, le=100, decimal_places=2)
    withdrawal_fee_percent: Decimal = Field(default=Decimal(2), ge=0, le=100, decimal_places=2)
    hold_ttl_seconds: int = Field(default=15 * 60, ge=1)
    # outcomes that arrive later (processing charges, bank debits): how long a saga waits for the
    # processor's event at most, and when it asks the processor itself meanwhile
    async_payment_max_seconds: int = Field(default=14 * 24 * 3600, ge=1)
    processor_sync_first_seconds: float = Field(default=60.0, gt=0)
    processor_sync_interval_seconds: float = Field(default=300.0, gt=0)
    # 3-D Secure: how long a payment waits for the customer to authenticate
    action_timeout_seconds: int = Field(default=900, ge=1)
    # the processors' signed events in (POST /v1/processor-webhooks/{connector}): each
    # connector's secrets, comma-separated during a rotation (`whsec_<base64>`), as JSON:
    # PROCESSOR_WEBHOOK_SECRETS='{"primary": "whsec_...", "secondary": "whsec_...,whsec_..."}'
    processor_webhook_secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    # the fake gateway's side: where it POSTs its events, signed with this secret
    gateway_webhook_url: str = ""
    gateway_webhook_secret: str = Field(default="", repr=False)
    # manual capture: how long an authorization waits for its capture at most (and by default);
    # card networks let most card-not-present authorizations lapse after 7 days
    authorization_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=10)
    max_manual_retries: int = Field(default=3, ge=0)
    manual_retry_window_seconds: int = Field(default=72 * 3600, ge=1)
    refund_window_seconds: int = Field(default=180 * 24 * 3600, ge=1)

    # Gateway calls: the per-call timeout and the automatic retry policy of one attempt.
    gateway_timeout_seconds: float = 10.0
    gateway_retry_initial_seconds: float = 1.0
    gateway_retry_backoff: float = 2.0
    gateway_retry_max_interval_seconds: float = 30.0
    gateway_retry_max_attempts: int = Field(default=5, ge=1)
    # Circuit breaker in front of the gateway (per worker process)
    gateway_breaker_failures: int = Field(default=5, ge=1)
    gateway_breaker_cooldown_seconds: float = Field(default=10.0, gt=0)
    # Ledger (database) steps: retried until they work, with backoff.
    ledger_retry_initial_seconds: float = 0.2
    ledger_retry_max_interval_seconds: float = 10.0
    ledger_retry_max_attempts: int = Field(default=0, ge=0, description="0 = unlimited")

    # Worker tuning
    # The workflow sandbox re-imports the workflow module for every workflow a worker runs and
    # guards each activation; measured with make bench it costs ~15% of the payments a 2-core
    # machine completes. Determinism is guarded where it is cheap instead: the workflow and replay
    # tests run every workflow sandboxed, and recorded histories replay in CI. True turns it on.
    worker_workflow_sandbox: bool = False
    # Activations run on the worker's event loop (worker/activations.py): a thread hop and a GIL
    # hand-off fewer per activation. True runs them on the SDK's thread pool, with its deadlock
    # detection (to find a workflow that blocks).
    worker_workflow_threads: bool = False
    worker_processes: int = Field(default=1, ge=1, le=16, description="worker processes `make dev` runs")
    worker_identity: str = ""
    worker_max_concurrent_activities: int = 200
    worker_max_concurrent_workflow_tasks: int = 100
    # parked payments (failed, waiting for an operator) are evicted past this and replayed when
    # retried: the worker's memory stays bounded whatever waits
    worker_max_cached_workflows: int = 250
    worker_workflow_task_pollers: int = Field(default=5, ge=1)
    worker_activity_task_pollers: int = Field(default=5, ge=1)
    # Worker Versioning (README: deploying a new build). Every worker polls as a version of the
    # Worker Deployment `worker_deployment_name`; its build id is WORKER_BUILD_ID or, empty, the
    # package version and a digest of the code it runs (release/build.py).
    worker_deployment_name: str = "paysaga"
    worker_build_id: str = Field(default="", pattern=r"^[A-Za-z0-9_.+\-]*$",
                                 description="empty: <version>-<digest of the code>")
    # Hosts webhook endpoints may point at ("*" = any). Loopback only by default, so a
    # development system never sends traffic elsewhere; list your receivers' hosts in production.
    webhook_allowed_hosts: str = "localhost,127.0.0.1,::1"
    webhook_retry_initial_seconds: float = 5.0
    webhook_retry_max_interval_seconds: float = 3600.0
    webhook_give_up_after_seconds: float = 24 * 3600.0
    sweeper_interval_seconds: int = Field(default=60, ge=1)
    # Reconciliation against the gateway's report: a Temporal Schedule runs it every interval over
    # the `lookback` ending `settle` seconds ago (charges newer than that may still be in flight).
    reconciliation_interval_seconds: int = Field(default=15 * 60, ge=1)
    reconciliation_lookback_seconds: int = Field(default=3600, ge=1)
    reconciliation_settle_seconds: int = Field(default=60, ge=0)
    reconciliation_page_size: int = Field(default=1000, ge=1, le=5000)
    reconciliation_pages_per_run: int = Field(default=20, ge=1, description="then continue-as-new")
    # A charge whose payment released its hold: `refund` it at the gateway, or `post` it to the
    # wallet (the payment becomes completed when the wallet can pay and no retry is pending).
    reconciliation_released_charge: Literal["refund", "post"] = "refund"
    worker_metrics_port: int = Field(default=9464, ge=0, description="0 disables")
    worker_metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in a container")
    worker_sdk_metrics_port: int = Field(default=9465, ge=0, description="0 disables")

    @model_validator(mode="after")
    def _routing_is_sound(self) -> Settings:
        check_routing(self.connector_list, self.routing_rules, self.routing_default)
        return self

    @property
    def top_up_fee_bps(self) -> int:
        return int(self.top_up_fee_percent * 100)

    @property
    def withdrawal_fee_bps(self) -> int:
        return int(self.withdrawal_fee_percent * 100)

    @property
    def connector_list(self) -> list[Connector]:
        if self.connectors:
            return self.connectors
        urls = {"primary": self.gateway_url, "secondary": self.gateway_secondary_url}
        return [Connector(
            name=name, base_url=url, timeout_seconds=self.gateway_timeout_seconds,
            retry_initial_seconds=self.gateway_retry_initial_seconds,
            retry_backoff=self.gateway_retry_backoff,
            retry_max_interval_seconds=self.gateway_retry_max_interval_seconds,
            retry_max_attempts=self.gateway_retry_max_attempts,
            breaker_failures=self.gateway_breaker_failures,
            breaker_cooldown_seconds=self.gateway_breaker_cooldown_seconds)
            for name, url in urls.items() if url]

    def webhook_host_allowed(self, host: str | None) -> bool:
        allowed = {h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip()}
        return "*" in allowed or (host or "").strip("[]").lower() in allowed

    @property
    def database_url_or_dev(self) -> str:
        """DATABASE_URL, or the embedded server `make dev` runs (for the command-line tools)."""
        return self.database_url or f"postgresql://postgres@127.0.0.1:{self.embedded_pg_port}/paysaga"

    @property
    def temporal_ui_workflow_base(self) -> str:
        return f"{self.temporal_ui_url}/namespaces/{self.temporal_namespace}/workflows"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
