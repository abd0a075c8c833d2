"""Real servers for tests: gunicorn with the project's configuration, on a free loopback port."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import PINNED_NOW, ROOT, free_port

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


@contextmanager
def gunicorn(tmp: Path, workers: int = 2, **settings: str) -> Iterator[int]:
    """gunicorn with cds_hooks/gunicorn_conf.py; yields its port once every worker answers."""
    port, log = free_port(), tmp / f"gunicorn-{workers}.log"
    env = {
        **os.environ,
        "LABELWISE_NOW": PINNED_NOW,
        "LABELWISE_RELOAD_SECONDS": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'gunicorn.db'}",
        "WEB_CONCURRENCY": str(workers),
        **settings,
    }
    args = ["--config", "cds_hooks/gunicorn_conf.py", "--bind", f"127.0.0.1:{port}"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [GUNICORN, *args, "cds_hooks:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(proc, port, workers, log)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_until_ready(proc: subprocess.Popen, port: int, workers: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while not all(healthy(port) for _ in range(2 * workers)):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
        time.sleep(0.2)


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
