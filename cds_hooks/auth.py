"""Client JWTs (CDS Hooks 2.0 "Trusting CDS Clients"): off unless trusted issuers are configured.

Checks: the Bearer scheme (any case), an asymmetric algorithm (ES384 or RS384; never `none` or
HS*) matching the type of the key its `kid` names in the issuer's JWK Set (fetched from its URL
with a cache, or read from a file), `iss` a string on the allowlist, `aud` equal to the URL
called, `exp`/`iat` integers within a small leeway (and `exp - iat` within the optional maximum
lifetime), and `jti` not seen before. Any failure is a bare 401; the token is never logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

KEY_TYPES = {"ES384": "EC", "RS384": "RSA"}  # accepted algorithms and the key type each needs
ALGORITHMS = list(KEY_TYPES)
JWKS_TIMEOUT = 2  # seconds for an issuer's JWK Set; well inside a worker's request time
REQUIRED = ["iss", "aud", "exp", "iat", "jti"]
LATEST = datetime(9000, 1, 1, tzinfo=UTC).timestamp()  # later is nonsense (and overflows)


class Unauthorized(Exception):
    """The request's JWT is missing or does not pass; the reason stays server-side."""


class JwtVerifier:
    """`first_use(jti, expires)` answers whether a token id is new; it is shared by every
    worker (the database), so a token replayed to another worker is caught too."""

    def __init__(
        self,
        issuers: dict[str, dict[str, Any]],
        first_use: Callable[[str, float], bool],
        leeway: float = 30.0,
        max_lifetime: float | None = None,
    ):
        self._leeway, self._max_lifetime = leeway, max_lifetime
        self._clients = {
            iss: PyJWKClient(cfg["jwks_url"], cache_keys=True, lifespan=300, timeout=JWKS_TIMEOUT)
            for iss, cfg in issuers.items()
            if "jwks_url" in cfg
        }
        self._sets = {
            iss: PyJWKSet.from_dict(json.loads(Path(cfg["jwks_file"]).read_text()))
            for iss, cfg in issuers.items()
            if "jwks_file" in cfg
        }
        self._first_use = first_use

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims; raises Unauthorized. `first_use` errors (the store) propagate."""
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            key = self._key(issuer, header.get("kid"), header.get("alg"))
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                audience=audience,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": REQUIRED},
            )
        except (jwt.PyJWTError, ValueError) as error:  # ValueError: a JWKS that is not JSON
            raise Unauthorized(str(error)) from error
        self._check_times(claims)
        if not self._first_use(f"{issuer}|{claims['jti']}", claims["exp"] + self._leeway):
            raise Unauthorized("jti replayed")
        return claims

    def _key(self, issuer: Any, kid: Any, alg: Any) -> PyJWK:
        if not isinstance(alg, str) or alg not in KEY_TYPES:
            raise Unauthorized(f"algorithm {alg!r} not accepted")
        if not isinstance(issuer, str) or not isinstance(kid, str):
            raise Unauthorized("iss and kid must be strings")
        if issuer in self._sets:
            key = next((k for k in self._sets[issuer].keys if k.key_id == kid), None)
        elif issuer in self._clients:
            key = self._clients[issuer].get_signing_key(kid)
        else:
            raise Unauthorized("issuer not trusted")
        if key is None or key.key_type != KEY_TYPES[alg]:
            raise Unauthorized("no key of the algorithm's type with this kid")
        return key

    def _check_times(self, claims: dict[str, Any]) -> None:
        """CDS Hooks says integers; PyJWT alone would also take strings and floats."""
        exp, iat = claims["exp"], claims["iat"]
        if not all(type(value) is int and 0 <= value <= LATEST for value in (exp, iat)):
            raise Unauthorized("exp and iat must be integers between 1970 and 9000")
        if self._max_lifetime is not None and exp - iat > self._max_lifetime:
            raise Unauthorized("token lifetime above the maximum")


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("no bearer token")
    return token.strip()
