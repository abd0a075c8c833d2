"""The store on SQLite and PostgreSQL: Alembic migrations (once, before workers fork), the
atomic JWT replay check, bounded waits that fail closed with 503, and the bounded card audit."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from postgres import count_rows, locked, new_database_url
from sqlalchemy import create_engine, insert

from cds_hooks import create_app, migrations
from cds_hooks.store import (
    SchemaNotReady,
    Store,
    StoreUnavailable,
    issued_cards,
    make_engine,
    metadata,
    upgrade,
)
from conftest import ROOT, free_port

RULE = "contraindication.strong-cyp3a4-inhibitor"
NOW = datetime.now(UTC)
LABELWISE = str(Path(sys.executable).with_name("labelwise"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
KETOCONAZOLE = ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json"


@pytest.fixture()
def store(database_url):
    store = Store(database_url, timeout=0.5)
    yield store
    store.close()


def at_head(url: str) -> bool:
    engine = make_engine(url, 2)
    try:
        with engine.connect() as connection:
            return migrations.is_at_head(connection)
    finally:
        engine.dispose()


def card(uuid_: str) -> dict:
    return {"uuid": uuid_, "extension": {"org.labelwise.explanation": {"ruleId": RULE}}}


def tables_made_before_migrations(url: str) -> None:
    engine = make_engine(url, 2)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(issued_cards).values(
                uuid="old", service="s", rule_id=RULE, knowledge_version="v", issued_at=NOW
            )
        )
    engine.dispose()


# --- migrations -------------------------------------------------------------------------------


def test_a_fresh_database_is_migrated_to_head_and_a_second_upgrade_changes_nothing(
    empty_database_url,
):
    upgrade(empty_database_url)
    assert at_head(empty_database_url)
    upgrade(empty_database_url)
    assert at_head(empty_database_url) and count_rows(empty_database_url, "issued_cards") == 0


def test_concurrent_db_upgrade_commands_on_one_fresh_database_all_succeed(empty_database_url):
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    runs = [
        subprocess.Popen([LABELWISE, "db", "upgrade"], env=env, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [run.communicate(timeout=120)[1].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], errors
    assert at_head(empty_database_url)


def test_tables_made_before_migrations_are_adopted_with_their_rows(empty_database_url):
    tables_made_before_migrations(empty_database_url)
    upgrade(empty_database_url)
    assert at_head(empty_database_url) and count_rows(empty_database_url, "issued_cards") == 1


def test_a_store_on_a_database_behind_head_refuses_naming_labelwise_db_upgrade(
    empty_database_url,
):
    tables_made_before_migrations(empty_database_url)
    with pytest.raises(SchemaNotReady, match="labelwise db upgrade"):
        Store(empty_database_url)


def test_a_store_on_an_empty_postgresql_database_refuses_naming_labelwise_db_upgrade(postgres):
    with pytest.raises(SchemaNotReady, match="labelwise db upgrade"):
        Store(postgres.new_database())


def test_an_app_on_a_fresh_sqlite_file_migrates_it_itself(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'labelwise.db'}"
    app = create_app({"TESTING": True, "RELOAD_SECONDS": 0, "DATABASE_URL": url})
    app.extensions["labelwise.store"].close()
    assert at_head(url)


def test_db_upgrade_with_a_bad_database_url_refuses_naming_the_setting():
    env = {**os.environ, "DATABASE_URL": "mysql://nope"}
    run = subprocess.run([LABELWISE, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "DATABASE_URL" in run.stderr


# --- the JWT replay store ---------------------------------------------------------------------


def test_twenty_concurrent_copies_of_one_jti_give_exactly_one_first_use(store):
    barrier = threading.Barrier(20)
    expires = time.time() + 300

    def use(_):
        barrier.wait()
        return store.first_use("https://ehr.example.org|jti-1", expires)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(use, range(20)))
    assert answers.count(True) == 1 and answers.count(False) == 19


def test_a_token_id_is_new_once_and_forgotten_after_it_expires(store):
    assert store.first_use("iss|a", time.time() + 300)
    assert not store.first_use("iss|a", time.time() + 300)
    assert store.first_use("iss|expired", time.time() - 1)
    assert store.first_use("iss|other", time.time() + 300)  # sweeps the expired id
    assert store.first_use("iss|expired", time.time() + 300)


def test_odd_token_ids_are_stored_by_their_digest(store):
    long_id, nul_id = "iss|" + "j" * 5000, "iss|a\x00b\ud800"
    assert store.first_use(long_id, time.time() + 300) and store.first_use(
        nul_id, time.time() + 300
    )
    assert not store.first_use(long_id, time.time() + 300)


def test_a_locked_token_store_raises_store_unavailable_within_its_timeout(store, database_url):
    started = time.monotonic()
    with locked(database_url, "seen_tokens"), pytest.raises(StoreUnavailable):
        store.first_use("iss|b", time.time() + 300)
    assert time.monotonic() - started < 10  # DB_TIMEOUT is 0.5 s; generous for a loaded CI


def test_an_unreachable_database_raises_store_unavailable(database_url):
    store = Store(database_url, timeout=0.5)
    store.engine.dispose()
    if database_url.startswith("sqlite"):
        store.engine = create_engine("sqlite:////nonexistent-dir/x.db")
    else:
        store.engine = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x", 0.5)
    with pytest.raises(StoreUnavailable, match="token store is unavailable"):
        store.first_use("iss|c", time.time() + 300)
    store.close()


ISSUER = "https://ehr.example.org"
HOOK = "/cds-services/voclosporin-patient-view"
BODY = {"hook": "patient-view", "hookInstance": "j", "context": {"patientId": "p"}}


@pytest.fixture(scope="module")
def signing_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture()
def jwt_client(signing_key, database_url, tmp_path):
    public = json.loads(ECAlgorithm.to_jwk(signing_key.public_key())) | {"kid": "k1"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public]}))
    app = create_app(
        {
            "TESTING": True,
            "RELOAD_SECONDS": 0,
            "JWT_ISSUERS": {ISSUER: {"jwks_file": str(tmp_path / "jwks.json")}},
            "JWT_AUDIENCE_BASE": "http://localhost",
            "DATABASE_URL": database_url,
            "DB_TIMEOUT": 0.5,
        }
    )
    yield app.test_client()
    app.extensions["labelwise.store"].close()


def bearer(signing_key, jti: str) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "http://localhost" + HOOK, "iat": now, "exp": now + 60}
    token = jwt.encode(claims | {"jti": jti}, signing_key, "ES384", headers={"kid": "k1"})
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_is_accepted_once_and_its_replay_refused(jwt_client, signing_key):
    headers = bearer(signing_key, str(uuid.uuid4()))
    body = BODY | {"prefetch": {"patient": None}}
    assert jwt_client.post(HOOK, json=body, headers=headers).status_code == 200
    assert jwt_client.post(HOOK, json=body, headers=headers).status_code == 401


def test_a_locked_token_store_makes_hook_calls_fail_closed_with_503(
    jwt_client, signing_key, database_url
):
    body = BODY | {"prefetch": {"patient": None}}
    with locked(database_url, "seen_tokens"):
        response = jwt_client.post(HOOK, json=body, headers=bearer(signing_key, "locked"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json["issue"][0]["diagnostics"] == "the token store is unavailable; retry"


# --- the card audit ---------------------------------------------------------------------------


def test_the_audit_queue_is_bounded_and_counts_what_it_drops(database_url):
    store = Store(database_url, queue_max=3, flush_seconds=3600)
    store.record_cards("s", [card(f"c{i}") for i in range(5)], "v")
    assert (store.audit_pending(), store.audit_dropped) == (3, 2)
    store.flush()
    assert store.audit_pending() == 0 and count_rows(database_url, "issued_cards") == 3
    store.close()


def test_audit_rows_wait_while_the_database_is_locked_and_closing_writes_them(database_url):
    store = Store(database_url, timeout=0.3, flush_seconds=0.05)
    with locked(database_url, "issued_cards"):
        store.record_cards("s", [card("a"), card("b")], "v")
        time.sleep(0.5)  # several failed flushes
        assert store.audit_pending() == 2
    store.close()
    assert count_rows(database_url, "issued_cards") == 2 and store.audit_dropped == 0


# --- gunicorn ---------------------------------------------------------------------------------


def start_gunicorn(url: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WEB_CONCURRENCY": str(workers),
        "LABELWISE_RELOAD_SECONDS": "0",
        "LABELWISE_NOW": "2026-11-01",
    }
    conf = str(ROOT / "cds_hooks" / "gunicorn_conf.py")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [GUNICORN, "--config", conf, "--bind", f"127.0.0.1:{port}", "cds_hooks:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, port


def ask(port: int, method: str = "GET", path: str = "/healthz", body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def serves(proc: subprocess.Popen, port: int, workers: int, deadline: float = 90) -> bool:
    """Every worker has booted and /healthz answers, before the deadline (a safety bound)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and proc.poll() is None:
        try:
            if all(ask(port)[0] == 200 for _ in range(2 * workers)):
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("engine", "starts", "workers"), [("sqlite", 20, 2), ("postgresql", 6, 4)])
def test_cold_gunicorn_starts_on_a_fresh_database_all_serve(
    request, tmp_path, engine, starts, workers
):
    request.param = engine  # new_database_url reads the engine from request.param
    failures = []
    for i in range(starts):
        folder = tmp_path / str(i)
        folder.mkdir()
        url = new_database_url(request, folder)
        proc, port = start_gunicorn(url, workers, folder / "server.log")
        try:
            if not serves(proc, port, workers):
                failures.append((folder / "server.log").read_text()[-2000:])
        finally:
            stop(proc)
    assert not failures, failures[0]


def test_a_gracefully_stopped_gunicorn_has_recorded_every_card_it_returned(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    proc, port = start_gunicorn(url, 2, tmp_path / "server.log")
    try:
        assert serves(proc, port, 2)
        path = "/cds-services/voclosporin-order-sign"
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda _: ask(port, "POST", path, KETOCONAZOLE.read_bytes()), range(40))
            )
    finally:
        stop(proc)
    returned = sum(len(body["cards"]) for _, body in answers)
    assert returned == 40 and count_rows(url, "issued_cards") == returned
