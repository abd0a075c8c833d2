"""`make bench`: figures for in-process evaluation, HTTP overhead against a bare Flask floor,
a 2,000-observation patient-view against json.loads + json.dumps, gunicorn throughput with 16
concurrent clients, knowledge load time and memory, and memory over 50 hot reloads. Prints
figures; asserts nothing."""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from multiprocessing import Pool
from pathlib import Path

from bench.requests import order_sign, patient_view_2000_egfr
from cds_hooks import create_app
from cds_hooks.cards import render_cards
from engine import evaluate, load_knowledge
from fhir_adapter import parse_request, patient_facts

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
NOW = date(2026, 11, 1)


def timed(fn, n: int) -> list[float]:
    for _ in range(min(20, n)):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def in_process(kb) -> None:
    body, service = order_sign(), kb.services["voclosporin-order-sign"]

    def run():
        request = parse_request(body, service.hook, tuple(service.prefetch))
        facts = patient_facts(kb, request, NOW)
        render_cards(kb, evaluate(kb, service.id, facts.facts), facts.resources, "p")

    t = timed(run, 500)
    print(
        f"1. in-process order-sign ({count(body)} resources): p50 {pct(t, 50):.2f} ms, p95 {pct(t, 95):.2f} ms"
    )


def count(body: dict) -> int:
    drafts = len(body["context"].get("draftOrders", {}).get("entry", []))
    return drafts + sum(
        len(v.get("entry", [1])) if isinstance(v, dict) else 0 for v in body["prefetch"].values()
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app_spec: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = str(ROOT / "cds_hooks" / "gunicorn_conf.py")
    database = f"sqlite:///{tempfile.gettempdir()}/labelwise-bench.db"
    env = {
        **os.environ,
        "LABELWISE_NOW": NOW.isoformat(),
        "LABELWISE_RELOAD_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database,
    }
    proc = subprocess.Popen(
        [
            GUNICORN,
            "--config",
            conf,
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
            app_spec,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{app_spec} did not start")


def post(conn: http.client.HTTPConnection, path: str, data: bytes) -> int:
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def latency(port: int, data: bytes, n: int = 400) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    path = "/cds-services/voclosporin-order-sign"
    return timed(lambda: post(conn, path, data), n)


def _client(args: tuple[int, bytes, int, float]) -> tuple[int, int]:
    port, data, threads, seconds = args

    def loop(_):
        conn, ok, bad, end = (
            http.client.HTTPConnection("127.0.0.1", port),
            0,
            0,
            time.time() + seconds,
        )
        while time.time() < end:
            try:
                status = post(conn, "/cds-services/voclosporin-order-sign", data)
            except (OSError, http.client.HTTPException):
                conn, status = http.client.HTTPConnection("127.0.0.1", port), 0
            ok, bad = (ok + 1, bad) if status == 200 else (ok, bad + 1)
        return ok, bad

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(loop, range(threads)))
    return sum(r[0] for r in results), sum(r[1] for r in results)


def throughput(
    port: int, data: bytes, clients: int = 16, seconds: float = 10.0
) -> tuple[float, int, str]:
    """With wrk when installed (apt-get install wrk): it costs the 2 cores far less than Python."""
    if shutil.which("wrk"):
        return (*wrk(port, data, clients, seconds), "wrk")
    with Pool(2) as pool:
        results = pool.map(_client, [(port, data, clients // 2, seconds)] * 2)
    ok, bad = sum(r[0] for r in results), sum(r[1] for r in results)
    return ok / seconds, bad, "Python http.client, 2 processes x 8 threads"


def wrk(port: int, data: bytes, clients: int, seconds: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        body, script = Path(tmp, "body.json"), Path(tmp, "post.lua")
        body.write_bytes(data)
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{clients}",
                f"-d{int(seconds)}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/cds-services/voclosporin-order-sign",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(
        int(n)
        for n in re.findall(
            r"(?:Non-2xx or 3xx responses|errors: connect \d+, read \d+, write \d+, timeout):?\s+(\d+)",
            out,
        )
    )
    return rate, errors


def http_figures() -> None:
    data = json.dumps(order_sign()).encode()
    service, port = serve("cds_hooks:create_app()")
    bare, bare_port = serve("bench.bare_app:create_app()")
    try:
        ours, floor = latency(port, data), latency(bare_port, data)
        ratio = pct(ours, 50) / pct(floor, 50)
        print(
            f"2. HTTP p50: service {pct(ours, 50):.2f} ms, bare Flask {pct(floor, 50):.2f} ms, ratio {ratio:.2f} (goal <= 3)"
        )
        rate, errors, tool = throughput(port, data)
        floor_rate, _, _ = throughput(bare_port, data)
        print(
            f"4. throughput, 16 clients on gunicorn ({tool}): {rate:.0f} req/s, {errors} errors (goal >= 400, 0); bare Flask {floor_rate:.0f} req/s"
        )
    finally:
        service.terminate()
        bare.terminate()


def large_patient_view() -> None:
    app = create_app({"NOW": NOW.isoformat(), "RELOAD_SECONDS": 0})
    client = app.test_client()
    body = patient_view_2000_egfr()
    text = json.dumps(body)
    ours = timed(
        lambda: client.post(
            "/cds-services/voclosporin-patient-view", data=text, content_type="application/json"
        ),
        60,
    )
    floor = timed(lambda: json.dumps(json.loads(text)), 60)
    ratio = pct(ours, 50) / pct(floor, 50)
    print(
        f"3. patient-view with 2,000 eGFR: p50 {pct(ours, 50):.1f} ms vs json.loads+dumps {pct(floor, 50):.1f} ms, ratio {ratio:.1f} (goal <= 5)"
    )


def knowledge_cost() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    load_knowledge(ROOT / "knowledge")
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"5. knowledge load {seconds * 1000:.0f} ms; process RSS {rss / 1024:.0f} MiB (grew {max(rss - before, 0) / 1024:.0f} MiB while loading)"
    )


def resident_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def reload_memory(reloads: int = 50) -> None:
    """Each hot reload builds a new knowledge base; the replaced one (C rulesets too) is freed."""
    kb = load_knowledge(ROOT / "knowledge")
    kb = load_knowledge(ROOT / "knowledge")
    after_one = resident_mib()
    for _ in range(reloads - 1):
        kb = load_knowledge(ROOT / "knowledge")
    print(
        f"6. knowledge reloads ({len(kb.services)} services): RSS {after_one:.0f} MiB after 1, {resident_mib():.0f} MiB after {reloads} (grew ~2 MiB a reload before C rulesets were freed)"
    )


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    knowledge_cost()
    reload_memory()
    in_process(load_knowledge(ROOT / "knowledge"))
    http_figures()
    large_patient_view()


if __name__ == "__main__":
    main()
