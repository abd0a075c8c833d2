"""Feedback and the card audit trail, through SQLAlchemy (SQLite file by default, PostgreSQL by
URL). Every card returned is recorded without patient identifiers, so feedback links to its rule
and knowledge version; feedback is idempotent and acknowledged only after commit."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

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


class Store:
    """Feedback is written in the request; the card audit goes through a background writer that
    commits in batches, so the ordering path never waits on the database."""

    def __init__(self, url: str, flush_seconds: float = 0.2):
        url = _with_driver(url)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._pending: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._flush_lock = threading.Lock()
        self._flush_seconds = flush_seconds
        threading.Thread(target=self._writer, name="card-audit", daemon=True).start()
        atexit.register(self.flush)

    def _writer(self) -> None:
        while True:
            time.sleep(self._flush_seconds)
            try:
                self.flush()
            except SQLAlchemyError as error:  # rows stay queued; the next round retries
                logging.getLogger(__name__).error(
                    "card audit not stored yet: %s", type(error).__name__
                )

    def flush(self) -> None:
        """Write every queued audit row in one transaction; on failure put them back."""
        with self._flush_lock:
            rows = []
            while not self._pending.empty():
                rows.append(self._pending.get())
            if not rows:
                return
            try:
                with self.engine.begin() as connection:
                    connection.execute(self._insert(issued_cards), rows)
            except SQLAlchemyError:
                for row in rows:
                    self._pending.put(row)
                raise

    def _insert(self, table: Table):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def record_cards(self, service: str, cards: list[dict[str, Any]], version: str) -> None:
        now = datetime.now(UTC)
        for row in (
            {
                "uuid": c["uuid"],
                "service": service,
                "rule_id": c["extension"]["org.labelwise.explanation"]["ruleId"],
                "knowledge_version": version,
                "issued_at": now,
            }
            for c in cards
        ):
            self._pending.put(row)

    def record_feedback(self, service: str, items: list[dict[str, Any]]) -> None:
        """All items in one transaction: either every item is stored or none is."""
        now = datetime.now(UTC)
        rows = [_feedback_row(service, item, now) for item in items]
        with self.engine.begin() as connection:
            connection.execute(self._insert(feedback), rows)

    def first_use(self, token_id: str, expires: float) -> bool:
        """Record a client JWT's id; False when it was seen before (a replay)."""
        now = datetime.now(UTC)
        row = {"token_id": token_id, "expires_at": datetime.fromtimestamp(expires, UTC)}
        with self.engine.begin() as connection:
            connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
            inserted = connection.execute(self._insert(seen_tokens), row)
        return inserted.rowcount == 1

    def override_rates(self) -> list[dict[str, Any]]:
        self.flush()
        query = (
            select(
                issued_cards.c.rule_id,
                func.count(func.distinct(issued_cards.c.uuid)).label("cards"),
                func.count(feedback.c.id).label("feedback"),
                func.count(feedback.c.id)
                .filter(feedback.c.outcome == "overridden")
                .label("overridden"),
            )
            .select_from(
                issued_cards.outerjoin(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
            )
            .group_by(issued_cards.c.rule_id)
            .order_by(issued_cards.c.rule_id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
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


def _feedback_row(service: str, item: dict[str, Any], now: datetime) -> dict[str, Any]:
    reason = (item.get("overrideReason") or {}).get("reason") or {}
    return {
        "service": service,
        "card_uuid": item["card"],
        "outcome": item["outcome"],
        "accepted_suggestions": [s["id"] for s in item.get("acceptedSuggestions") or []],
        "override_system": reason.get("system"),
        "override_code": reason.get("code"),
        "override_comment": (item.get("overrideReason") or {}).get("userComment"),
        "outcome_timestamp": item["outcomeTimestamp"],
        "received_at": now,
    }


def _with_driver(url: str) -> str:
    """DATABASE_URL as platforms give it (postgres://, postgresql://) -> the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=2000")
    cursor.close()
