from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cds_hooks import create_app
from engine import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
EXTERNAL = ROOT / "tests" / "fixtures" / "external"  # vendored; see its README for provenance
PINNED_NOW = "2026-11-01"  # the date the examples and cases are written against
# conformance_plugin: the `req` marker and the requirement matrix;
# postgres: database_url, on SQLite and on a throwaway PostgreSQL cluster
pytest_plugins = ["conformance_plugin", "postgres"]


@pytest.fixture(scope="session")
def kb():
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    database = tmp_path_factory.mktemp("db") / "labelwise.db"
    return create_app(
        {
            "TESTING": True,
            "NOW": PINNED_NOW,
            "RELOAD_SECONDS": 0,
            "DATABASE_URL": f"sqlite:///{database}",
        }
    )


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def knowledge_copy(tmp_path: Path) -> Path:
    """A private copy of knowledge/ that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def external(*parts: str) -> dict:
    return json.loads((EXTERNAL.joinpath(*parts)).read_text(encoding="utf-8"))


FHIR_SERVER_DIR = ROOT / "tests" / "fhir_server"
FHIR_TOKEN = "test-token-7f3a"
SYNTHEA = EXTERNAL / "synthea"
ASA = "c79b748f-a792-4aea-bca5-c7c9c5b188cd"  # Asa Hermiston: stopped cyclosporine, 4 allergies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fhir_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Medplum's in-memory FHIR router behind tests/fhir_server/server.mjs, loaded with Synthea."""
    port = free_port()
    bundles = [str(p) for p in sorted(SYNTHEA.glob("Asa_*.json"))]
    log = FHIR_SERVER_DIR / f"server-{port}.log"  # a pipe left unread would block the server
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["node", "--experimental-websocket", "server.mjs", str(port), *bundles],
            cwd=FHIR_SERVER_DIR,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/fhir/R4"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"FHIR server exited: {log.read_text()}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("FHIR server did not start within 60 s")


@pytest.fixture(scope="session")
def fhir_server():
    proc, url = start_fhir_server({"FHIR_TOKEN": FHIR_TOKEN})
    yield url
    proc.terminate()
    proc.wait(timeout=10)
