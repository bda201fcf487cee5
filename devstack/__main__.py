"""`make dev`: the whole system on embedded defaults, data kept under .data/ across restarts.

Starts, in order: the Temporal dev server (SQLite file, WAL pragmas, search attributes), PostgreSQL
(DATABASE_URL, or an embedded server), migrations, a development API key, the fake gateway, the
worker and the API. Prints where everything is; if a part dies it says which and why and stops
the rest; Ctrl-C stops every part cleanly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from devstack.nats import nats_argv
from devstack.postgres import EmbeddedPostgres, ensure_database
from devstack.temporal import SEARCH_ATTRIBUTES, dev_server_tuning, temporal_binary
from release.build import build_id
from settings import Settings, get_settings

DEV_TENANT = "default"


class Part:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log_path, self.env = name, argv, log, env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_port(port: int, part: Part | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if part is not None and part.exited() is not None:
            raise RuntimeError(f"{what} exited with code {part.exited()}:\n{part.tail()}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f}s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _interrupt(signum: int, frame: object) -> None:
    # the first Ctrl-C (or kill) stops everything; a second one, even an instant later (a
    # terminal and a `timeout` wrapper both forwarding it), must not cut that short and orphan parts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C and `kill` both stop every part cleanly, even when started with SIGINT ignored
    # (as a shell's background job is).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    s = get_settings()
    data = Path(s.data_dir).resolve()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for port, var in ((s.temporal_port, "TEMPORAL_PORT"), (s.temporal_ui_port, "TEMPORAL_UI_PORT"),
                      (s.api_port, "API_PORT"), (s.gateway_port, "GATEWAY_PORT"),
                      (s.gateway_secondary_port, "GATEWAY_SECONDARY_PORT"),
                      (s.codec_port, "CODEC_PORT")):
        if not port_free(port):
            print(f"port {port} is in use: stop what holds it or set {var}", file=sys.stderr)
            return 1

    parts: list[Part] = []
    pg: EmbeddedPostgres | None = None
    env = dict(os.environ)
    env.update({
        "TEMPORAL_ADDRESS": f"127.0.0.1:{s.temporal_port}",
        "TEMPORAL_UI_URL": f"http://localhost:{s.temporal_ui_port}",
        "GATEWAY_URL": f"http://127.0.0.1:{s.gateway_port}",
        "PYTHONUNBUFFERED": "1",
    })
    # two processors, each a fake gateway of its own: payments route primary, then secondary
    env["GATEWAY_SECONDARY_URL"] = f"http://127.0.0.1:{s.gateway_secondary_port}"
    # payloads are encrypted: a dev key ring and the user-id HMAC key, made once, kept in .data/
    env.update(dev_keys(data, s))
    # each fake processor signs the events it POSTs to paysaga's inbox with its own secret
    hooks = processor_secrets(data, s)
    env["PROCESSOR_WEBHOOK_SECRETS"] = json.dumps(hooks)
    codec_url = f"http://localhost:{s.codec_port}"
    env["CODEC_TRUSTED_ORIGINS"] = f"http://localhost:{s.temporal_ui_port}"
    try:
        temporal = Part("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(s.temporal_port), "--ui-port", str(s.temporal_ui_port),
            "--namespace", s.temporal_namespace, "--db-filename", str(data / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn", "--ui-codec-endpoint", codec_url,
            *dev_server_tuning(),
            *[arg for name, kind in SEARCH_ATTRIBUTES.items()
              for arg in ("--search-attribute", f"{name}={kind}")],
        ], logs / "temporal.log", env)
        temporal.start()
        parts.append(temporal)

        if s.database_url:
            database_url = s.database_url
            db_where = "DATABASE_URL"
        else:
            if not port_free(s.embedded_pg_port):
                raise RuntimeError(f"port {s.embedded_pg_port} is in use: set EMBEDDED_PG_PORT")
            pg = EmbeddedPostgres(data / "postgres", s.embedded_pg_port, logs / "postgres.log")
            pg.start()
            ensure_database(pg.url(), "paysaga")
            database_url = pg.url("paysaga")
            db_where = f"embedded, data in {data / 'postgres'}"
        env["DATABASE_URL"] = database_url
        if s.nats_url:
            bus_where = f"{s.nats_url} (NATS_URL)"
        else:
            if not port_free(s.nats_port):
                raise RuntimeError(f"port {s.nats_port} is in use: set NATS_PORT (or NATS_URL)")
            nats = Part("nats", nats_argv(s.nats_port, data / "nats"), logs / "nats.log", env)
            nats.start()
            parts.append(nats)
            wait_port(s.nats_port, nats, 30, "the NATS server")
            env["NATS_URL"] = f"nats://127.0.0.1:{s.nats_port}"
            bus_where = f"{env['NATS_URL']} (embedded, JetStream data in {data / 'nats'})"
        env.setdefault("GATEWAY_RECORDS_PATH", str(data / "gateway.sqlite"))

        step(env, [sys.executable, "-m", "db.migrate"], "migrations", logs / "migrate.log")
        secret, operator_secret = create_dev_keys(
            env, env.get("DEV_API_KEY") or _existing_dev_key(data, "dev_api_key"),
            env.get("DEV_OPERATOR_KEY") or _existing_dev_key(data, "dev_operator_key"),
            logs / "keys.log")
        (data / "dev_api_key").write_text(secret + "\n")
        (data / "dev_operator_key").write_text(operator_secret + "\n")

        wait_port(s.temporal_port, temporal, 60, "the Temporal dev server")
        inbox = f"http://127.0.0.1:{s.api_port}/v1/processor-webhooks"
        gateway = Part("gateway", [sys.executable, "-m", "fakegateway"], logs / "gateway.log",
                       dict(env, GATEWAY_WEBHOOK_URL=f"{inbox}/primary",
                            GATEWAY_WEBHOOK_SECRET=hooks["primary"].split(",")[0]))
        secondary = Part("gateway-secondary", [sys.executable, "-m", "fakegateway"],
                         logs / "gateway-secondary.log", dict(
                             env, GATEWAY_NAME="secondary", GATEWAY_PORT=str(s.gateway_secondary_port),
                             GATEWAY_RECORDS_PATH=str(data / "gateway-secondary.sqlite"),
                             GATEWAY_WEBHOOK_URL=f"{inbox}/secondary",
                             GATEWAY_WEBHOOK_SECRET=hooks["secondary"].split(",")[0]))
        workers = [Part(name, [sys.executable, "-m", "worker"], logs / f"{name}.log",
                        _worker_env(env, s, i, name))
                   for i, name in enumerate(_worker_names(s.worker_processes))]
        api = Part("api", [sys.executable, "-m", "api"], logs / "api.log", env)
        codec = Part("codec", [sys.executable, "-m", "temporal_client.codec_server"], logs / "codec.log", env)
        for part in (gateway, secondary, *workers, api, codec):
            part.start()
            parts.append(part)
        wait_port(s.gateway_port, gateway, 30, "the fake gateway")
        wait_port(s.gateway_secondary_port, secondary, 30, "the secondary fake gateway")
        wait_port(s.api_port, api, 30, "the API")
        wait_port(s.codec_port, codec, 30, "the codec server")
        # the workers poll as a version of the Worker Deployment: make it current, behind the
        # replay gate (README: deploying a new build)
        step(env, [sys.executable, "-m", "deploy", "promote", "--wait", "60"],
             "making the workers' build current (python -m deploy promote)", logs / "deploy.log")

        print(f"""
paysaga is running
  API            http://localhost:{s.api_port}        (OpenAPI: http://localhost:{s.api_port}/docs)
  Temporal UI    http://localhost:{s.temporal_ui_port}  (payloads decoded by the codec server)
  Codec server   {codec_url}  (payloads are encrypted; the CLI decodes with
                 --codec-endpoint {codec_url} --codec-auth "Bearer $PAYSAGA_OPERATOR_KEY")
  Temporal       127.0.0.1:{s.temporal_port}  namespace {s.temporal_namespace}
  Task queue     {s.temporal_task_queue}
  Workers        deployment {s.worker_deployment_name}, build {build_id(s)}, current
                 (python -m deploy status)
  Fake gateways  primary http://localhost:{s.gateway_port}, secondary http://localhost:{s.gateway_secondary_port}
                 (GET /charges, PUT /behavior; payments fail over from primary to secondary)
  PostgreSQL     {_redact(database_url)}  ({db_where})
  Event bus      {bus_where}, stream {s.nats_stream} (python -m bus.consume)
  API key        {secret}  (tenant {DEV_TENANT}: payments, wallets)
                 export PAYSAGA_KEY={secret}
  Operator key   {operator_secret}  (platform-wide: reconciliation)
                 export PAYSAGA_OPERATOR_KEY={operator_secret}
  Logs           {logs}/{{temporal,postgres,nats,gateway,gateway-secondary,worker,api,codec}}.log
Ctrl-C stops everything; data survives in {data}.
""", flush=True)
        return supervise(parts)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.CalledProcessError, TimeoutError) as err:
        print(f"make dev failed: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan parts
        print("stopping...", flush=True)
        for part in reversed(parts):
            part.stop()
        if pg is not None:
            pg.stop()
        print("stopped", flush=True)


def _worker_names(count: int) -> list[str]:
    return ["worker"] if count == 1 else [f"worker-{i + 1}" for i in range(count)]


def _worker_env(env: dict[str, str], s: Settings, index: int, name: str) -> dict[str, str]:
    """Each worker process serves its own metrics ports (the next ones up) and says who it is."""
    own = dict(env, WORKER_IDENTITY=name)
    for var, port in (("WORKER_METRICS_PORT", s.worker_metrics_port),
                      ("WORKER_SDK_METRICS_PORT", s.worker_sdk_metrics_port)):
        if port:
            own[var] = str(port + 2 * index)
    return own


def supervise(parts: list[Part]) -> int:
    while True:
        for part in parts:
            code = part.exited()
            if code is not None:
                print(f"\n{part.name} died (exit code {code}); last lines of {part.log_path}:\n"
                      f"{part.tail()}\nstopping the other parts.", file=sys.stderr, flush=True)
                return 1
        time.sleep(0.5)


def step(env: dict[str, str], argv: list[str], what: str, log: Path) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-2000:]}")


def dev_keys(data: Path, s: Settings) -> dict[str, str]:
    """The payload key ring and the search-hash key: from the environment when set, else made
    once into .data/payload_keys and .data/search_hash_key (kept, so histories stay readable)."""
    from temporal_client.codec import KeyRing

    found: dict[str, str] = {}
    if not s.payload_keys and not s.payload_keys_file:
        ring = data / "payload_keys"
        if not ring.exists():
            ring.write_text(KeyRing.new_key("dev-1") + "\n")
            ring.chmod(0o600)
        found["PAYLOAD_KEYS_FILE"] = str(ring)
    if not s.search_hash_key:
        hashed = data / "search_hash_key"
        if not hashed.exists():
            hashed.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
            hashed.chmod(0o600)
        found["SEARCH_HASH_KEY"] = hashed.read_text().strip()
    return found


def processor_secrets(data: Path, s: Settings) -> dict[str, str]:
    """Each processor's webhook secret: PROCESSOR_WEBHOOK_SECRETS when set, else made once into
    .data/processor_webhook_secrets (JSON, kept so a restarted gateway's events still verify)."""
    if s.processor_webhook_secrets:
        return dict(s.processor_webhook_secrets)
    path = data / "processor_webhook_secrets"
    if not path.exists():
        path.write_text(json.dumps({name: "whsec_" + base64.b64encode(os.urandom(24)).decode()
                                    for name in ("primary", "secondary")}))
        path.chmod(0o600)
    return dict(json.loads(path.read_text()))


def _existing_dev_key(data: Path, name: str) -> str | None:
    path = data / name
    return path.read_text().strip() if path.exists() else None


def create_dev_keys(env: dict[str, str], secret: str | None, operator_secret: str | None,
                    log: Path) -> tuple[str, str]:
    """The tenant key (every tenant scope, tenant `default`) and the platform operator key."""
    from db.api_keys import create_key, create_operator_key
    from db.engine import make_engine

    async def go() -> tuple[str, str]:
        engine = make_engine(env["DATABASE_URL"], pool_size=1)
        try:
            _, tenant = await create_key(engine, tenant_id=DEV_TENANT, name="make dev",
                                         secret=secret)
            _, operator = await create_operator_key(engine, name="make dev operator",
                                                    secret=operator_secret)
            return tenant, operator
        finally:
            await engine.dispose()

    made = asyncio.run(go())
    log.write_text("development keys ready\n")
    return made


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.split("@", 1)
    return f"{scheme}://{creds.split(':')[0]}@{host}"


if __name__ == "__main__":
    sys.exit(main())
