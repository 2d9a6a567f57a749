"""A throwaway PostgreSQL 15 cluster and a basic-auth ``mlflow server`` on top of it.

:class:`PostgresCluster` runs ``initdb`` and ``pg_ctl`` from PATH (the PostgreSQL 15 server
binaries) on a temporary folder and a free loopback port. Both refuse to run as root, so as root
they run as the ``postgres`` user (``runuser -u postgres --``) on a folder owned by it. Local
connections are trusted (the cluster listens on 127.0.0.1 only and lives for one test).

:class:`AuthMlflowServer` is ``mlflow server --app-name basic-auth`` with the PostgreSQL backend
(driver ``psycopg2``), proxied artifacts and ``NullPool`` connections; its admin user is created
from ``MLFLOW_AUTH_ADMIN_PASSWORD`` at the first start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.servers import free_port, health, server_environment, stop_group

PG_START_TIMEOUT_S = 60


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresCluster:
    """``initdb`` + ``pg_ctl start`` on a temporary folder; :meth:`stop` removes it.

    Given a ``folder``, the cluster lives there and outlives :meth:`stop` (a benchmark's cache):
    a later cluster on the same folder starts on the existing data.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.kept = folder is not None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.folder = (
            folder if folder is not None else Path(tempfile.mkdtemp(prefix="emstrack-pg-"))
        )
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.running = False

    def start(self) -> None:
        """Create the cluster and start the server on 127.0.0.1:port; wait until it accepts."""
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                ["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]
            )
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(PG_START_TIMEOUT_S),
                "start",
            ]
        )
        self.running = True

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its SQLAlchemy URI (driver psycopg2)."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)

    def uri(self, name: str) -> str:
        """SQLAlchemy URI of database ``name``."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def dump(self, name: str) -> bytes:
        """``pg_dump`` of database ``name`` (plain SQL, data included)."""
        return subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster's folder (unless kept)."""
        if self.running:
            self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)
            self.running = False
        if not self.kept:
            shutil.rmtree(self.folder, ignore_errors=True)

    def has_database(self, name: str) -> bool:
        """Whether database ``name`` exists."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                return cursor.fetchone() is not None
        finally:
            connection.close()

    def _run(self, command: list[str], check: bool = True) -> None:
        result = subprocess.run(
            _as_postgres(command), capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {result.stderr[-2000:]}\n{log}")

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AuthMlflowServer:
    """``mlflow server --app-name basic-auth`` on PostgreSQL with proxied artifacts."""

    def __init__(self, folder: Path, backend_uri: str, auth_uri: str, admin_password: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.backend_uri = backend_uri
        self.artifacts = folder / "artifacts"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.auth_config = folder / "basic_auth.ini"
        self.auth_config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {auth_uri}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without it every request re-hashes the password (PBKDF2): slow for many workers.
            "auth_cache_ttl_seconds = 60\n"
        )
        self._admin_password = admin_password
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        """Start the server; wait until ``/health`` answers."""
        env = {
            **server_environment(),
            "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self._admin_password,
            "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
            # basic-auth's CSRF protection needs one static key (the same on every server).
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        }
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
            "--app-name", "basic-auth", "--workers", "1",
            "-h", "127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not health(self.url):
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(
                    "mlflow server exited early:\n" + self.log.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"mlflow server not healthy after {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server's process group (SIGKILL after a timeout)."""
        if self.process is not None:
            stop_group(self.process)
        self.process = None

    def __enter__(self) -> AuthMlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
