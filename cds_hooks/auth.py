"""Client JWTs (CDS Hooks 2.0 "Trusting CDS Clients"): off unless trusted issuers are configured.

Checks: asymmetric algorithm (ES384 or RS384; never `none` or HS*), `kid` found in the issuer's
JWK Set (fetched from its URL with a cache, or read from a file), `iss` on the allowlist, `aud`
equal to the URL called, `exp`/`iat` with a small leeway, and `jti` not seen before. Any failure
is a bare 401; the token itself is never logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKClient, PyJWKSet

ALGORITHMS = ["ES384", "RS384"]
REQUIRED = ["iss", "aud", "exp", "iat", "jti"]


class Unauthorized(Exception):
    """The request's JWT is missing or does not pass; the reason stays server-side."""


class JwtVerifier:
    """`first_use(jti, expires)` answers whether a token id is new; it is shared by every
    worker (the database), so a token replayed to another worker is caught too."""

    def __init__(
        self,
        issuers: dict[str, dict[str, str]],
        first_use: Callable[[str, float], bool],
        leeway: float = 30.0,
    ):
        self._leeway = leeway
        self._clients = {
            iss: PyJWKClient(cfg["jwks_url"], cache_keys=True, lifespan=300)
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
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthorized(f"algorithm {header.get('alg')!r} not accepted")
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            key = self._key(issuer, header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": REQUIRED},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error)) from error
        if not self._first_use(f"{issuer}|{claims['jti']}", float(claims["exp"]) + self._leeway):
            raise Unauthorized("jti replayed")
        return claims

    def _key(self, issuer: Any, kid: Any) -> Any:
        if issuer in self._sets:
            found = next((k for k in self._sets[issuer].keys if k.key_id == kid), None)
            if found is None:
                raise Unauthorized("unknown kid")
            return found.key
        if issuer in self._clients:
            return self._clients[issuer].get_signing_key(kid).key
        raise Unauthorized("issuer not trusted")
