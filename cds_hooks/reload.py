"""Hot reload: watch knowledge/, validate an edit in full, then swap it in atomically.

An invalid edit is logged with file and node, and the previous knowledge keeps serving; the
status (not the error, which names files) shows at /healthz and in the metrics."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from engine import KnowledgeBase, KnowledgeError, load_knowledge
from engine.knowledge import content_hash

from . import metrics

KEY = "labelwise.kb"


@dataclass
class KnowledgeHolder:
    """The knowledge in service. Readers take `kb` once per request; a reload replaces it whole."""

    kb: KnowledgeBase
    loaded_at: float = field(default_factory=time.time)
    last_error: str | None = None
    seen: str = ""

    def __post_init__(self) -> None:
        self.seen = self.kb.version
        metrics.knowledge_state(True, self.loaded_at)

    def reload_if_changed(self, root: Path, log) -> bool:
        version = content_hash(root)
        if version == self.seen:
            return False
        self.seen = version
        try:
            fresh = load_knowledge(root)
        except KnowledgeError as error:
            log.error("knowledge reload rejected, still serving %s: %s", self.kb.version, error)
            self._rejected(str(error))
            return False
        except Exception as error:  # a loader bug: reject the edit all the same, with traceback
            log.exception("knowledge reload failed, still serving %s", self.kb.version)
            self._rejected(f"{type(error).__name__}: {error}")
            return False
        self.kb, self.loaded_at, self.last_error = fresh, time.time(), None
        metrics.knowledge_state(True, self.loaded_at)
        log.info("knowledge reloaded: version %s", fresh.version)
        return True

    def _rejected(self, error: str) -> None:
        self.last_error = error
        metrics.knowledge_state(False, self.loaded_at)


def start_watcher(app: Flask, holder: KnowledgeHolder, every: float) -> threading.Thread:
    root = Path(app.config["KNOWLEDGE_DIR"])

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                holder.reload_if_changed(root, app.logger)
            except Exception:  # keep watching whatever a half-written file does
                app.logger.exception("knowledge watcher error")

    thread = threading.Thread(target=watch, name="knowledge-watcher", daemon=True)
    thread.start()
    return thread
