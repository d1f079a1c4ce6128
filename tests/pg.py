"""A throw-away PostgreSQL server for tests: Debian's binaries, a temporary cluster, a free port.

Fixtures (import them into a conftest: ``from tests.pg import postgres_server, postgres_url``):

- ``postgres_server`` (session): a `PostgresServer` running in a temporary directory on
  127.0.0.1 (password authentication over TCP, its unix socket in that directory), as Debian's
  unprivileged ``postgres`` user when the tests run as root; removed afterwards. Tests may
  ``stop()`` and ``start()`` it (same port, same data) to restart PostgreSQL underneath a bot.
- ``postgres_url``: a fresh, empty database on it for one test, as a ``postgresql://`` URL
  with a password; dropped afterwards.

Without Debian's ``postgresql`` package the tests that use them are skipped, saying what to
install; with ``CI=true`` they fail instead, so CI cannot pass without PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

__all__ = ["PostgresServer", "find_postgres", "give_up", "postgres_server", "postgres_url"]

#: The cluster's superuser (also the owner of every test database).
USER = "trellis"

_INSTALL = (
    "PostgreSQL's server binaries are not installed: install Debian's `postgresql` package "
    "(apt-get install postgresql) to run the PostgreSQL store tests"
)


def find_postgres() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, pg_ctl and postgres."""
    found = []
    for directory in glob.glob("/usr/lib/postgresql/*/bin"):
        path = Path(directory)
        if all((path / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            version = path.parent.name
            found.append((int(version) if version.isdigit() else 0, path))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; `start`, `stop`, `url`."""

    bin_dir: Path
    root: Path
    port: int
    password: str = field(repr=False)
    #: Run the server's programs as this (unprivileged) system user; None: as ourselves.
    run_as: str | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stderr}")

    def init(self) -> None:
        """Create the cluster: password authentication on 127.0.0.1, trust on its own socket."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()

    def start(self) -> None:
        """Start the server (again) on its port; returns once it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: pg_ctl's smart, fast or immediate)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A URL for ``database`` over TCP with the password (as an operator would write it)."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def give_up(problem: str, env: Mapping[str, str]) -> NoReturn:
    """Skip the test for ``problem``; on CI (``CI=true``) fail it: CI must run PostgreSQL."""
    if env.get("CI") == "true":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skipped without binaries, failed on CI)."""
    bin_dir = find_postgres()
    run_as = None
    problem = None if bin_dir is not None else _INSTALL
    if problem is None and os.geteuid() == 0:
        run_as = "postgres"
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            problem = "running as root needs the `postgres` user (Debian's postgresql package)"
        if shutil.which("runuser") is None:
            problem = "running as root needs `runuser` (util-linux) to start PostgreSQL"
    if problem is not None or bin_dir is None:
        give_up(str(problem), os.environ)
    root = Path(tempfile.mkdtemp(prefix="trellis-pg-"))
    server = PostgresServer(bin_dir, root, _free_port(), secrets.token_urlsafe(12), run_as)
    try:
        server._chown(root)
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (a ``postgresql://`` URL with a password)."""
    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
