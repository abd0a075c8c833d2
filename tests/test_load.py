"""Many concurrent requests against the real gunicorn server: every answer equals the serial
answer (durable-rules never sees two threads at once); logs are JSON, without patient data."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, free_port

EXAMPLES = sorted((ROOT / "examples" / "requests").glob("*.json"))
SERVICE_BY_HOOK = {
    "order-sign": "voclosporin-order-sign",
    "order-select": "voclosporin-order-select",
    "patient-view": "voclosporin-patient-view",
}


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    port, logs = free_port(), tmp_path_factory.mktemp("logs") / "server.log"
    env = {
        **os.environ,
        "LABELWISE_NOW": "2026-11-01",
        "LABELWISE_RELOAD_SECONDS": "0",
        "DATABASE_URL": f"sqlite:///{logs.parent / 'load.db'}",
        "WEB_CONCURRENCY": "2",
    }
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    with logs.open("w") as out:
        proc = subprocess.Popen(
            [
                gunicorn_bin,
                "--config",
                "cds_hooks/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "cds_hooks:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while not ready(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"gunicorn did not start:\n{logs.read_text()}")
        time.sleep(0.2)
    yield port, logs
    proc.terminate()
    proc.wait(timeout=10)


def ready(port: int) -> bool:
    """Both workers answer: a few health checks in a row succeed."""
    try:
        return all(ask(port, "GET", "/healthz")[0] == 200 for _ in range(4))
    except (OSError, http.client.HTTPException, ValueError):
        return False


def ask(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def answer(port: int, path: Path) -> tuple[int, list[tuple[str, str]]]:
    body = json.loads(path.read_text())
    status, data = ask(
        port, "POST", f"/cds-services/{SERVICE_BY_HOOK[body['hook']]}", path.read_bytes()
    )
    return status, sorted(
        (c["extension"]["org.labelwise.explanation"]["ruleId"], c["summary"]) for c in data["cards"]
    )


def test_concurrent_requests_to_gunicorn_all_get_the_serial_answer(gunicorn):
    port, _ = gunicorn
    serial = {p: answer(port, p) for p in EXAMPLES}
    work = [EXAMPLES[i % len(EXAMPLES)] for i in range(240)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda p: (p, answer(port, p)), work))
    assert all(result == serial[p] for p, result in results)
    assert all(status == 200 for status, _ in serial.values())


def test_logs_are_json_without_patient_data(gunicorn):
    port, logs = gunicorn
    answer(port, EXAMPLES[0])
    time.sleep(0.5)
    lines = [line for line in logs.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(
        r.get("path", "").startswith("/cds-services/") and r.get("status") == 200 for r in records
    )
    text = logs.read_text()
    assert "example-patient" not in text and "ketoconazole" not in text
