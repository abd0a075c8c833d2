"""Databases for the store tests: `database_url` runs a test on SQLite and on PostgreSQL, the
latter on a throwaway cluster (initdb in a temp dir, loopback only, trust auth) started once per
session. Without PostgreSQL binaries those tests fail, unless LABELWISE_SKIP_POSTGRES=1 says to
skip them. Also: `locked`, a lock held on a table from outside, and `count_rows`."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cds_hooks.store import upgrade
from conftest import free_port

MISSING = (
    "PostgreSQL's initdb and pg_ctl were not found (pg_config --bindir, /usr/lib/postgresql/*/bin):"
    " install PostgreSQL (apt-get install postgresql) or set LABELWISE_SKIP_POSTGRES=1 to skip"
)


def postgres_bindir() -> Path | None:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout
        candidates.append(Path(out.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True
    )
    return next(
        (d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None
    )


class Cluster:
    """A PostgreSQL cluster in `folder`, run as an unprivileged user when we are root."""

    def __init__(self, bindir: Path, folder: Path):
        self.bindir, self.folder, self.port = bindir, folder, free_port()
        self.admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._names = itertools.count()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:  # initdb refuses to run as root; the folder is nobody's
            command = ["runuser", "-u", "nobody", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "nobody")
        data = str(self.folder / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder}"
            " -c fsync=off -c max_connections=300"
        )
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def new_database(self) -> str:
        """A new, empty database's URL."""
        name = f"t{next(self._names)}"
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    bindir = postgres_bindir()
    if bindir is None:
        if os.environ.get("LABELWISE_SKIP_POSTGRES") == "1":
            pytest.skip(f"LABELWISE_SKIP_POSTGRES=1: {MISSING}")
        pytest.fail(MISSING, pytrace=False)
    cluster = Cluster(bindir, Path(tempfile.mkdtemp(prefix="labelwise-pg-")))
    try:
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


def new_database_url(request, folder: Path) -> str:
    """A new empty database on the engine named by `request.param`."""
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'labelwise.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path) -> str:
    """A new empty database on each engine."""
    return new_database_url(request, tmp_path)


@pytest.fixture()
def database_url(empty_database_url) -> str:
    """A new database on each engine, migrated to the newest schema."""
    upgrade(empty_database_url)
    return empty_database_url


@contextlib.contextmanager
def locked(url: str, table: str) -> Iterator[None]:
    """Hold a write-blocking lock on `table` (SQLite: the whole file) from another connection."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        connection.execute("BEGIN EXCLUSIVE")
    else:
        connection = psycopg.connect(url)
        connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


def count_rows(url: str, table: str) -> int:
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    with psycopg.connect(url) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
