"""HTTP in, HTTP out: the Flask CDS Hooks service. Start it with `create_app()`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from flask.json.provider import JSONProvider
from flask_cors import CORS

from engine import load_knowledge

from .auth import JwtVerifier
from .errors import register_error_handlers
from .reload import KEY, KnowledgeHolder, start_watcher
from .routes import bp
from .store import Store

DEFAULTS = {
    "KNOWLEDGE_DIR": str(Path(__file__).resolve().parents[1] / "knowledge"),
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    "CORS_ORIGINS": "*",
    "NOW": None,
    "RELOAD_SECONDS": 2.0,
    "FHIR_TIMEOUT": 2.0,
    "FHIR_BUDGET": 4.0,
    "FHIR_MAX_PAGES": 5,
    "JWT_ISSUERS": {},
    "JWT_AUDIENCE_BASE": None,
    "JWT_LEEWAY": 30.0,
    "DATABASE_URL": os.environ.get("DATABASE_URL")
    or f"sqlite:///{Path(__file__).resolve().parents[1] / 'var' / 'labelwise.db'}",
}


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: responses are most of a request's serialisation work."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the service: config from defaults, LABELWISE_* environment, then `config`."""
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LABELWISE")
    app.config.update(config or {})
    holder = KnowledgeHolder(load_knowledge(app.config["KNOWLEDGE_DIR"]))
    app.extensions[KEY] = holder
    if float(app.config["RELOAD_SECONDS"]) > 0:
        start_watcher(app, holder, float(app.config["RELOAD_SECONDS"]))
    CORS(
        app,
        origins=app.config["CORS_ORIGINS"],
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
    )
    store = app.extensions["labelwise.store"] = Store(app.config["DATABASE_URL"])
    if app.config["JWT_ISSUERS"]:
        leeway = float(app.config["JWT_LEEWAY"])
        verifier = JwtVerifier(app.config["JWT_ISSUERS"], store.first_use, leeway)
        app.extensions["labelwise.jwt"] = verifier
    app.register_blueprint(bp)
    register_error_handlers(app)
    return app
