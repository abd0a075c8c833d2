"""HTTP in, HTTP out: the Flask CDS Hooks service. Start it with `create_app()`."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask
from flask.json.provider import JSONProvider
from flask_cors import CORS

from engine import load_knowledge

from . import metrics
from .auth import JwtVerifier
from .config import ConfigError, load_config
from .errors import register_error_handlers
from .reload import KEY, KnowledgeHolder, start_watcher
from .routes import bp
from .store import Store

__all__ = ["ConfigError", "create_app"]


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: responses are most of a request's serialisation work."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the service: settings from defaults, LABELWISE_* environment, then `config`.

    Raises ConfigError, naming the setting, when one cannot be used."""
    app = Flask(__name__, static_folder=None)  # the pages blueprint serves static files
    app.json = OrjsonProvider(app)
    app.config.from_mapping(load_config(config))
    holder = KnowledgeHolder(load_knowledge(app.config["KNOWLEDGE_DIR"]))
    app.extensions[KEY] = holder
    if app.config["RELOAD_SECONDS"] > 0:
        start_watcher(app, holder, app.config["RELOAD_SECONDS"])
    CORS(
        app,
        origins=app.config["CORS_ORIGINS"],
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
    )
    store = app.extensions["labelwise.store"] = Store.from_config(app.config)
    if app.config["JWT_ISSUERS"]:
        leeway, lifetime = app.config["JWT_LEEWAY"], app.config["JWT_MAX_LIFETIME"]
        verifier = JwtVerifier(app.config["JWT_ISSUERS"], store.first_use, leeway, lifetime)
        app.extensions["labelwise.jwt"] = verifier
    app.register_blueprint(bp)
    metrics.register(app)
    if app.config["UI"]:
        from .pages import bp as pages  # here: pages uses labelwise, which uses cds_hooks

        app.register_blueprint(pages)
    register_error_handlers(app)
    return app
