"""The reverse-proxy profile (deploy/nginx.conf.template): nginx terminates TLS and buffers each
request whole, so slow clients wait in nginx and never hold gunicorn's few threads; bodies over
the size limit are refused with 413, chunked or not, by the proxy and by gunicorn alone.

Needs nginx (`make proxy-deps`); without it these tests fail, unless LABELWISE_SKIP_PROXY=1."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import gunicorn

from conftest import ROOT, free_port

TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
KETOCONAZOLE = ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json"
SIGN = "/cds-services/voclosporin-order-sign"
LIMIT = 200_000  # LABELWISE_MAX_CONTENT_LENGTH here, and the proxy's client_max_body_size
PER_ADDRESS = 16  # requests in progress allowed per client address
JSON_TYPE = {"Content-Type": "application/json"}


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("LABELWISE_SKIP_PROXY") == "1":
        pytest.skip("LABELWISE_SKIP_PROXY=1: the reverse-proxy tests were skipped on request")
    pytest.fail(
        "The reverse-proxy tests need nginx: run `make proxy-deps` (installs Debian's "
        "nginx-light), or set LABELWISE_SKIP_PROXY=1 to skip them.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A throwaway self-signed certificate for localhost and 127.0.0.1 (key beside it)."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return folder / "cert.pem"


def render(template: str, **values: str) -> str:
    text = template
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = set(re.findall(r"@[A-Z_]+@", text))
    assert not left, f"placeholders left unfilled: {left}"
    return text


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[int]:
    """gunicorn with one worker of two threads: few enough for slow clients to starve it."""
    tmp = tmp_path_factory.mktemp("upstream")
    settings = {"LABELWISE_THREADS": "2", "LABELWISE_MAX_CONTENT_LENGTH": str(LIMIT)}
    with gunicorn(tmp, workers=1, **settings) as port:
        yield port


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, upstream, certificate) -> Iterator[int]:
    """nginx from the template, in front of `upstream`, on a free TLS port; stops by itself."""
    binary, run_dir, port = nginx_binary(), tmp_path_factory.mktemp("nginx"), free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(
        render(
            TEMPLATE.read_text(),
            USER=pwd.getpwuid(os.getuid()).pw_name,
            RUN_DIR=str(run_dir),
            MAX_BODY=str(LIMIT),
            UPSTREAM=f"127.0.0.1:{upstream}",
            LISTEN=f"127.0.0.1:{port}",
            CERT=str(certificate),
            KEY=str(certificate.with_name("key.pem")),
            CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
        )
    )
    command = [binary, "-p", str(run_dir), "-c", str(conf), "-g", "daemon off; master_process on;"]
    with (run_dir / "nginx.out").open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, run_dir)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for_port(proc: subprocess.Popen, port: int, run_dir: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                logs = (
                    "".join(p.read_text() for p in run_dir.glob("*.log"))
                    + (run_dir / "nginx.out").read_text()
                )
                raise RuntimeError(f"nginx did not start:\n{logs}") from None
            time.sleep(0.1)


def https_client(certificate: Path, source: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(verify=str(certificate), local_address=source)
    return httpx.Client(transport=transport, timeout=10)


def chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def oversized() -> bytes:
    """A valid request padded past the limit: cut at the limit, it would still parse."""
    return KETOCONAZOLE.read_bytes() + b" " * LIMIT


@pytest.mark.req("cds-hooks_2.0@2", "cds-hooks_2.0@168")
def test_a_hook_call_over_https_gets_the_critical_card(proxy, certificate):
    for host in ("localhost", "127.0.0.1"):  # the certificate names both
        with https_client(certificate) as client:
            response = client.post(
                f"https://{host}:{proxy}{SIGN}",
                content=KETOCONAZOLE.read_bytes(),
                headers=JSON_TYPE,
            )
        assert response.status_code == 200
        assert [c["indicator"] for c in response.json()["cards"]] == ["critical"]
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_metrics_are_not_served_through_the_proxy(proxy, certificate, upstream):
    with https_client(certificate) as client:
        assert client.get(f"https://localhost:{proxy}/metrics").status_code == 404
    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=10)
    conn.request("GET", "/metrics")
    assert conn.getresponse().status == 200  # the scraper's way in: the private address


def test_a_chunked_body_over_the_limit_is_refused_by_the_proxy(proxy, certificate):
    with https_client(certificate) as client:
        small = client.post(
            f"https://localhost:{proxy}{SIGN}",
            content=chunks(KETOCONAZOLE.read_bytes()),
            headers=JSON_TYPE,
        )
        large = client.post(
            f"https://localhost:{proxy}{SIGN}", content=chunks(oversized()), headers=JSON_TYPE
        )
    assert small.status_code == 200
    assert large.status_code == 413
    assert large.json()["issue"][0]["code"] == "too-long"


def post_chunked(port: int, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("POST", SIGN, body=chunks(body), headers=JSON_TYPE, encode_chunked=True)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_a_chunked_body_over_the_limit_is_refused_by_gunicorn_alone(upstream):
    assert post_chunked(upstream, KETOCONAZOLE.read_bytes())[0] == 200
    status, body = post_chunked(upstream, oversized())
    assert status == 413
    assert body["issue"][0]["diagnostics"] == f"request body is larger than {LIMIT} bytes"


def test_a_chunked_body_over_the_limit_is_refused_in_process(tmp_path):
    from cds_hooks import create_app

    config = {"MAX_CONTENT_LENGTH": LIMIT, "RELOAD_SECONDS": 0, "NOW": "2026-11-01"}
    config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'chunked.db'}"
    client = create_app(config).test_client()

    def post(body: bytes) -> int:
        return client.post(
            SIGN,
            input_stream=io.BytesIO(body),
            headers={"Transfer-Encoding": "chunked", **JSON_TYPE},
            environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
        ).status_code

    assert post(KETOCONAZOLE.read_bytes()) == 200
    assert post(oversized()) == 413


class Slowloris:
    """Sockets that send a request one byte a second: half still in the head, half in the body."""

    def __init__(self, port: int, certificate: Path, sockets: int = 40):
        context = ssl.create_default_context(cafile=str(certificate))
        self.heads, self.bodies = [], []
        for index in range(sockets):
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn = context.wrap_socket(raw, server_hostname="localhost")
            if index % 2:
                conn.sendall(f"POST {SIGN} HTTP/1.1\r\nHost: localhost\r\n".encode())
                conn.sendall(b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
                self.bodies.append(conn)
            else:
                conn.sendall(f"POST {SIGN} HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".encode())
                self.heads.append(conn)
        self.bytes_sent = 0

    def drip(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for conn in self.heads + self.bodies:
                with contextlib.suppress(OSError):  # nginx closed it: that is the point
                    self.bytes_sent += conn.send(b"a")
            time.sleep(1)

    def turned_away(self) -> int:
        """Slow bodies answered 429 at once: beyond the per-address limit."""
        count = 0
        for conn in self.bodies:
            conn.settimeout(0.2)
            with contextlib.suppress(OSError):
                count += conn.recv(64).startswith(b"HTTP/1.1 429")
        return count

    def close(self) -> None:
        for conn in self.heads + self.bodies:
            conn.close()


def test_slow_clients_do_not_delay_hook_calls_through_the_proxy(proxy, certificate):
    attack = Slowloris(proxy, certificate)
    dripping = threading.Thread(target=attack.drip, args=(8,))
    dripping.start()
    timings = []
    try:
        with https_client(certificate, source="127.0.0.2") as client:  # the EHR's own address
            while dripping.is_alive():
                start = time.monotonic()
                response = client.post(
                    f"https://localhost:{proxy}{SIGN}",
                    content=KETOCONAZOLE.read_bytes(),
                    headers=JSON_TYPE,
                )
                timings.append(time.monotonic() - start)
                assert response.status_code == 200
                assert response.json()["cards"][0]["indicator"] == "critical"
                time.sleep(0.3)
    finally:
        dripping.join()
        turned_away = attack.turned_away()
        attack.close()
    assert len(timings) >= 5 and max(timings) < 3.0, timings
    assert attack.bytes_sent >= 40  # the attack did reach the proxy
    assert turned_away == 20 - PER_ADDRESS
