"""Feedback, the card audit trail and seen JWT ids, through SQLAlchemy (SQLite file by default,
PostgreSQL by URL). The schema comes from Alembic migrations (`labelwise db upgrade`); a store
only checks it is at head. Every database call is bounded by `timeout` seconds and a failure
surfaces as `StoreUnavailable`, never as a hang."""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import migrations

if TYPE_CHECKING:
    from .feedback import Feedback

log = logging.getLogger(__name__)
MIGRATION_TIMEOUT = 60.0  # seconds another process's migration may hold the database
FEEDBACK_UNAVAILABLE = "the feedback store is unavailable; nothing was recorded, please retry"

metadata = MetaData()

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service", String(128), nullable=False),
    Column("rule_id", String(128), nullable=False, index=True),
    Column("knowledge_version", String(32), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(128), nullable=False),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),
    Column("override_system", String(256)),
    Column("override_code", String(128)),
    Column("override_comment", String(2000)),
    Column("outcome_timestamp", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("service", "card_uuid", "outcome", "outcome_timestamp", name="feedback_once"),
)

seen_tokens = Table(
    "seen_tokens",
    metadata,
    Column("token_id", String(512), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)


class StoreUnavailable(Exception):
    """The database did not answer within the timeout; the message is safe to show a client."""


class SchemaNotReady(RuntimeError):
    """The database schema is not at the newest migration."""


class Store:
    """Feedback and token ids are written in the request; the card audit goes through a bounded
    queue that a background thread writes every `flush_seconds`, so hooks never wait on the
    database. Rows that do not fit in the queue are dropped and counted in `audit_dropped`."""

    def __init__(
        self, url: str, timeout: float = 2.0, queue_max: int = 10_000, flush_seconds: float = 0.2
    ):
        self.engine: Engine = make_engine(url, timeout)
        _check_schema(self.engine, url)
        self.audit_dropped = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._queue_max, self._flush_seconds = queue_max, flush_seconds
        self._lock = threading.Lock()  # guards _pending and audit_dropped
        self._flush_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="card-audit", daemon=True)
        self._writer.start()
        atexit.register(self.close)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Store:
        return cls(
            config["DATABASE_URL"],
            config["DB_TIMEOUT"],
            config["AUDIT_QUEUE_MAX"],
            config["AUDIT_FLUSH_SECONDS"],
        )

    def close(self) -> None:
        """Stop the writer, write what is queued (a clean shutdown loses no card), release."""
        atexit.unregister(self.close)
        self._stop.set()
        self._writer.join(timeout=self._flush_seconds + 1)
        try:
            self.flush()
        except StoreUnavailable:
            log.error("card audit: %d rows not written at shutdown", self.audit_pending())
        self.engine.dispose()

    def audit_pending(self) -> int:
        """Card audit rows queued and not yet written."""
        return len(self._pending)

    def record_cards(self, service: str, cards: list[dict[str, Any]], version: str) -> None:
        now = datetime.now(UTC)
        rows = [
            {
                "uuid": c["uuid"],
                "service": service,
                "rule_id": c["extension"]["org.labelwise.explanation"]["ruleId"],
                "knowledge_version": version,
                "issued_at": now,
            }
            for c in cards
        ]
        with self._lock:
            self._pending.extend(rows)
            self._trim()

    def flush(self) -> None:
        """Write every queued audit row in one transaction; they leave the queue only after
        commit (new rows join at the right, drops come off the right: these stay put)."""
        with self._flush_lock:
            with self._lock:
                rows = list(self._pending)
            if not rows:
                return
            try:
                with self.engine.begin() as connection:
                    connection.execute(self._insert(issued_cards), rows)
            except SQLAlchemyError as error:  # logged by the writer, once per outage
                raise StoreUnavailable("the card audit store is unavailable; retry") from error
            with self._lock:
                for _ in rows:
                    self._pending.popleft()

    def _trim(self) -> int:
        """Drop the newest rows beyond the bound (caller holds the lock); how many went."""
        dropped = max(0, len(self._pending) - self._queue_max)
        for _ in range(dropped):
            self._pending.pop()
        self.audit_dropped += dropped
        return dropped

    def _write_loop(self) -> None:
        """Flush every interval; log an outage once, and drops when their count grows."""
        failing, dropped = False, 0
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except StoreUnavailable as error:
                if not failing:
                    log.error("card audit: %s (%s)", error, type(error.__cause__).__name__)
                failing = True
            else:
                if failing:
                    log.info("card audit: database available again")
                failing = False
            if self.audit_dropped != dropped:
                dropped = self.audit_dropped
                log.error("card audit queue full: %d rows dropped so far", dropped)

    def _insert(self, table: Table):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def unissued(self, service: str, uuids: list[str]) -> list[str]:
        """The uuids that `service` never issued. Cards queued here are written first; cards
        from another worker may still be in its queue, so missing ones are looked up again
        after two flush intervals."""
        try:
            self.flush()
            missing = self._unissued(service, set(uuids))
            if missing:
                time.sleep(2 * self._flush_seconds)
                missing = self._unissued(service, missing)
        except (SQLAlchemyError, StoreUnavailable) as error:
            raise _unavailable(FEEDBACK_UNAVAILABLE, error) from error
        return sorted(missing)

    def _unissued(self, service: str, uuids: set[str]) -> set[str]:
        query = select(issued_cards.c.uuid).where(
            issued_cards.c.service == service, issued_cards.c.uuid.in_(uuids)
        )
        with self.engine.connect() as connection:
            return uuids - set(connection.scalars(query))

    def record_feedback(self, service: str, items: list[Feedback]) -> None:
        """All items in one transaction: either every item is stored or none is."""
        now = datetime.now(UTC)
        rows = [_feedback_row(service, item, now) for item in items]
        try:
            with self.engine.begin() as connection:
                connection.execute(self._insert(feedback), rows)
        except SQLAlchemyError as error:
            raise _unavailable(FEEDBACK_UNAVAILABLE, error) from error

    def first_use(self, token_id: str, expires: float) -> bool:
        """Record a client JWT's id; False when it was seen before (a replay). Atomic: of many
        concurrent calls with one id exactly one gets True. Raises StoreUnavailable."""
        key = hashlib.sha256(token_id.encode("utf-8", "surrogatepass")).hexdigest()
        row = {"token_id": key, "expires_at": datetime.fromtimestamp(expires, UTC)}
        insert = self._insert(seen_tokens).values(row).returning(seen_tokens.c.token_id)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    seen_tokens.delete().where(seen_tokens.c.expires_at < datetime.now(UTC))
                )
                return connection.execute(insert).first() is not None
        except SQLAlchemyError as error:
            raise _unavailable("the token store is unavailable; retry", error) from error

    def override_rates(self) -> list[dict[str, Any]]:
        """Per rule: cards issued, cards with feedback and how many were overridden. A card
        counts once, with its latest outcome (by outcomeTimestamp, then arrival)."""
        try:
            self.flush()
            with self.engine.connect() as connection:
                rows = connection.execute(_rates_query()).all()
        except (SQLAlchemyError, StoreUnavailable) as error:
            raise _unavailable("the analytics store is unavailable; retry", error) from error
        return [
            {
                "ruleId": r.rule_id,
                "cardsIssued": r.cards,
                "feedback": r.feedback,
                "overridden": r.overridden,
                "overrideRate": round(r.overridden / r.feedback, 3) if r.feedback else 0.0,
            }
            for r in rows
        ]


def _rates_query():
    order = (feedback.c.outcome_timestamp.desc(), feedback.c.id.desc())
    ranked = select(
        feedback.c.service,
        feedback.c.card_uuid,
        feedback.c.outcome,
        func.row_number()
        .over(partition_by=(feedback.c.service, feedback.c.card_uuid), order_by=order)
        .label("rank"),
    ).subquery()
    latest = select(ranked).where(ranked.c.rank == 1).subquery()
    joined = issued_cards.outerjoin(
        latest,
        and_(latest.c.card_uuid == issued_cards.c.uuid, latest.c.service == issued_cards.c.service),
    )
    return (
        select(
            issued_cards.c.rule_id,
            func.count().label("cards"),
            func.count(latest.c.outcome).label("feedback"),
            func.count().filter(latest.c.outcome == "overridden").label("overridden"),
        )
        .select_from(joined)
        .group_by(issued_cards.c.rule_id)
        .order_by(issued_cards.c.rule_id)
    )


def _feedback_row(service: str, item: Feedback, now: datetime) -> dict[str, Any]:
    return {
        "service": service,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "accepted_suggestions": list(item.accepted),
        "override_system": item.system,
        "override_code": item.code,
        "override_comment": item.comment,
        "outcome_timestamp": item.timestamp,
        "received_at": now,
    }


def _unavailable(message: str, error: Exception) -> StoreUnavailable:
    """Log the error's type only: its text may hold the values (feedback, token ids)."""
    cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
    log.error("%s (%s)", message, type(cause).__name__)
    return StoreUnavailable(message)


def upgrade(url: str) -> None:
    """`labelwise db upgrade`: bring the database at `url` to the newest schema."""
    engine = make_engine(url, MIGRATION_TIMEOUT, migrating=True)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


def _check_schema(engine: Engine, url: str) -> None:
    """A fresh SQLite file is migrated here (serialised, so parallel starts are safe); any
    other database must already be at head."""
    with engine.connect() as connection:
        if migrations.is_at_head(connection):
            return
        fresh_sqlite = engine.dialect.name == "sqlite" and migrations.is_empty(connection)
    if not fresh_sqlite:
        raise SchemaNotReady(
            "the database schema is not at the newest migration: run `labelwise db upgrade`"
        )
    upgrade(url)


def make_engine(url: str, timeout: float, migrating: bool = False) -> Engine:
    """An engine whose every wait (connect, pool, lock, statement) ends after `timeout` s."""
    url = _with_driver(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_timeout=timeout, connect_args={"timeout": timeout})
        event.listen(engine, "connect", _sqlite_wal)
        if migrating:  # one transaction holding the write lock from its first statement
            event.listen(engine, "connect", _sqlite_manual_transactions)
            event.listen(engine, "begin", lambda c: c.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    ms = int(timeout * 1000)
    options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    connect_args = {
        "connect_timeout": max(2, round(timeout)),  # libpq's floor is 2 s
        "tcp_user_timeout": ms,  # a peer gone silent mid-query (network partition)
        "options": options,
    }
    return create_engine(url, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect_args)


def _with_driver(url: str) -> str:
    """DATABASE_URL as platforms give it (postgres://, postgresql://) -> the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _sqlite_wal(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_manual_transactions(connection, _record) -> None:
    connection.isolation_level = None  # the "begin" event emits BEGIN IMMEDIATE instead
