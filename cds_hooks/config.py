"""Settings: defaults, then `LABELWISE_*` environment variables, then explicit overrides.

Every value is parsed and checked once, at start-up; a bad one stops the process with a
`ConfigError` naming the setting (`labelwise serve` prints it as one line)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "LABELWISE_"


class ConfigError(ValueError):
    """A setting that cannot be used; the message starts with the setting's name."""


def _positive(kind: type) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        number = kind(value)
        if number <= 0:
            raise ValueError("must be greater than 0")
        return number

    return parse


def _non_negative(kind: type) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        number = kind(value)
        if number < 0:
            raise ValueError("must not be negative")
        return number

    return parse


def _json_or_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _directory(value: Any) -> str:
    if not Path(value).is_dir():
        raise ValueError(f"no such folder: {value}")
    return str(value)


def _switch(value: Any) -> bool:
    """on/off, 1/0 or true/false."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("on", "off", "1", "0", "true", "false"):
        raise ValueError(f"must be on or off (1 or 0), not {value!r}")
    return text in ("on", "1", "true")


def _date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)).isoformat()


def _origins(value: Any) -> str | list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    value = str(value).strip()
    return value if value == "*" else [v.strip() for v in value.split(",") if v.strip()]


def base_url(value: Any) -> str:
    """An absolute http(s) URL with a host and no query or fragment, without a trailing slash."""
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {value}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"a base URL has no query, fragment or credentials: {value}")
    return str(value).strip().rstrip("/")


def _base_urls(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [base_url(v) for v in items if str(v).strip()]


def _optional_base_url(value: Any) -> str | None:
    return base_url(value) if value not in (None, "") else None


def _issuers(value: Any) -> dict[str, dict[str, Any]]:
    issuers = _json_or_value(value) or {}
    if not isinstance(issuers, dict):
        raise ValueError('must be a JSON object: {"<issuer>": {"jwks_url": "..."}}')
    for issuer, entry in issuers.items():
        if not isinstance(entry, dict) or not ({"jwks_url", "jwks_file"} & entry.keys()):
            raise ValueError(f"issuer {issuer!r} needs jwks_url or jwks_file")
        if "jwks_url" in entry:
            base_url(entry["jwks_url"])
        if "jwks_file" in entry and not Path(entry["jwks_file"]).is_file():
            raise ValueError(f"issuer {issuer!r}: no such jwks_file {entry['jwks_file']}")
        entry["fhir_servers"] = _base_urls(entry.get("fhir_servers", []))
    return issuers


def _optional_seconds(value: Any) -> float | None:
    return _positive(float)(value) if value not in (None, "") else None


def _database_url(value: Any) -> str:
    value = str(value)
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value


# name: (default, parser). Names are read from the environment with the LABELWISE_ prefix.
SETTINGS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "KNOWLEDGE_DIR": (str(ROOT / "knowledge"), _directory),
    "MAX_CONTENT_LENGTH": (5 * 1024 * 1024, _positive(int)),
    "CORS_ORIGINS": ("*", _origins),
    "NOW": (None, _date),
    "RELOAD_SECONDS": (2.0, _non_negative(float)),
    "FHIR_SERVERS": ([], _base_urls),
    "FHIR_TIMEOUT": (2.0, _positive(float)),
    "FHIR_BUDGET": (4.0, _positive(float)),
    "FHIR_MAX_PAGES": (5, _non_negative(int)),
    "FHIR_MAX_CALLS": (20, _positive(int)),
    "FHIR_MAX_BYTES": (20 * 1024 * 1024, _positive(int)),
    "JWT_ISSUERS": ({}, _issuers),
    "JWT_AUDIENCE_BASE": (None, _optional_base_url),
    "JWT_LEEWAY": (30.0, _non_negative(float)),
    "JWT_MAX_LIFETIME": (None, _optional_seconds),
    "UI": (True, _switch),
    "DATABASE_URL": (f"sqlite:///{ROOT / 'var' / 'labelwise.db'}", _database_url),
    "METRICS": (True, _switch),
    "DB_TIMEOUT": (2.0, _positive(float)),
    "AUDIT_QUEUE_MAX": (10_000, _positive(int)),
    "AUDIT_FLUSH_SECONDS": (0.2, _positive(float)),
}
# Read by gunicorn's configuration or the test tooling, not by the app.
OTHER_VARIABLES = {"THREADS", "LOG_LEVEL", "SKIP_POSTGRES", "SKIP_PROXY"}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checked settings; raises ConfigError naming the first setting that cannot be used."""
    _refuse_unknown_variables()
    raw = {name: default for name, (default, _) in SETTINGS.items()}
    if os.environ.get("DATABASE_URL"):
        raw["DATABASE_URL"] = os.environ["DATABASE_URL"]
    raw.update({n: os.environ[PREFIX + n] for n in SETTINGS if PREFIX + n in os.environ})
    raw.update(overrides or {})
    config = {name: _parse(name, value) for name, value in raw.items()}
    if config["JWT_ISSUERS"] and not config["JWT_AUDIENCE_BASE"]:
        raise ConfigError(
            f"{PREFIX}JWT_AUDIENCE_BASE: required when {PREFIX}JWT_ISSUERS is set "
            "(the external base URL that EHRs call, e.g. https://cds.example.org)"
        )
    if config["JWT_ISSUERS"] and config["FHIR_SERVERS"]:
        raise ConfigError(
            f"{PREFIX}FHIR_SERVERS: not used when {PREFIX}JWT_ISSUERS is set; list each "
            'issuer\'s servers in its entry instead: {"<issuer>": {..., "fhir_servers": [...]}}'
        )
    return config


def _parse(name: str, value: Any) -> Any:
    parse = SETTINGS[name][1] if name in SETTINGS else (lambda v: v)
    try:
        return parse(value)
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        env = name if name == "DATABASE_URL" else PREFIX + name
        raise ConfigError(f"{env}: {error}") from None


def _refuse_unknown_variables() -> None:
    known = SETTINGS.keys() | OTHER_VARIABLES
    names = (k.removeprefix(PREFIX) for k in os.environ if k.startswith(PREFIX))
    unknown = sorted(PREFIX + name for name in names if name not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a Labelwise setting (see the README's configuration)")
