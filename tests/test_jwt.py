"""Client JWT validation, with keys generated in the test: ES384 and RS384 accepted; `none`,
HS*, wrong audience, expiry, unknown issuer or kid, and replays get a bare 401."""

from __future__ import annotations

import json
import threading
import time
import uuid
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_hooks import create_app

ISSUER = "https://ehr.example.org"
URL_ISSUER = "https://other-ehr.example.org"
BASE = "http://localhost"
SERVICE = "/cds-services/voclosporin-patient-view"
BODY = {
    "hook": "patient-view",
    "hookInstance": "j1",
    "context": {"patientId": "p"},
    "prefetch": {"patient": None},
}


@pytest.fixture(scope="module")
def keys():
    return {
        "ec": ec.generate_private_key(ec.SECP384R1()),
        "rsa": rsa.generate_private_key(65537, 2048),
    }


def jwks(keys) -> dict:
    ec_jwk = json.loads(ECAlgorithm.to_jwk(keys["ec"].public_key())) | {
        "kid": "ec-1",
        "alg": "ES384",
        "use": "sig",
    }
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(keys["rsa"].public_key())) | {
        "kid": "rsa-1",
        "alg": "RS384",
        "use": "sig",
    }
    return {"keys": [ec_jwk, rsa_jwk]}


@pytest.fixture(scope="module")
def jwks_url(keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("jwks")
    (folder / "jwks.json").write_text(json.dumps(jwks(keys)))
    server = HTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


@pytest.fixture()
def client(keys, jwks_url, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(keys)))
    issuers = {ISSUER: {"jwks_file": str(path)}, URL_ISSUER: {"jwks_url": jwks_url}}
    database = f"sqlite:///{tmp_path / 'jwt.db'}"
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "JWT_ISSUERS": issuers,
        "JWT_AUDIENCE_BASE": BASE,
        "DATABASE_URL": database,
    }
    return create_app(config).test_client()


def token(keys, alg="ES384", kid="ec-1", key=None, **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": BASE + SERVICE,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    key = key or (keys["ec"] if alg.startswith("ES") else keys["rsa"])
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def call(client, bearer: str | None, path: str = SERVICE):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return client.post(path, json=BODY, headers=headers)


def test_es384_and_rs384_tokens_are_accepted(client, keys):
    assert call(client, token(keys)).status_code == 200
    assert call(client, token(keys, alg="RS384", kid="rsa-1")).status_code == 200


def test_keys_are_fetched_from_an_issuers_jwks_url(client, keys):
    assert call(client, token(keys, iss=URL_ISSUER)).status_code == 200


@pytest.mark.parametrize(
    "make",
    [
        lambda keys: None,
        lambda keys: jwt.encode(
            {
                "iss": ISSUER,
                "aud": BASE + SERVICE,
                "exp": time.time() + 60,
                "iat": time.time(),
                "jti": "n",
            },
            None,
            algorithm="none",
        ),
        lambda keys: jwt.encode(
            {
                "iss": ISSUER,
                "aud": BASE + SERVICE,
                "exp": time.time() + 60,
                "iat": time.time(),
                "jti": "h",
            },
            "a-shared-secret-of-32-bytes-long!",
            algorithm="HS256",
            headers={"kid": "ec-1"},
        ),
        lambda keys: token(keys, alg="ES256", key=ec.generate_private_key(ec.SECP256R1())),
        lambda keys: token(keys, aud=BASE + "/cds-services/another-service"),
        lambda keys: token(keys, exp=int(time.time()) - 120),
        lambda keys: token(keys, iss="https://unknown.example.org"),
        lambda keys: token(keys, kid="nope"),
        lambda keys: token(keys, jti=None),
    ],
    ids=[
        "missing",
        "alg-none",
        "hs256",
        "es256",
        "wrong-aud",
        "expired",
        "unknown-iss",
        "unknown-kid",
        "no-jti",
    ],
)
def test_bad_tokens_get_a_bare_401(client, keys, make):
    response = call(client, make(keys))
    assert response.status_code == 401
    assert response.json["issue"][0]["diagnostics"] == "unauthorized"


def test_a_replayed_jti_is_rejected(client, keys):
    once = token(keys)
    assert call(client, once).status_code == 200
    assert call(client, once).status_code == 401


def test_a_jti_replayed_to_another_worker_is_rejected(client, keys, tmp_path, jwks_url):
    # a second app on the same database stands for another gunicorn worker
    path = tmp_path / "jwks.json"
    issuers = {ISSUER: {"jwks_file": str(path)}}
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "JWT_ISSUERS": issuers,
        "JWT_AUDIENCE_BASE": BASE,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jwt.db'}",
    }
    other_worker = create_app(config).test_client()
    once = token(keys)
    assert call(client, once).status_code == 200
    assert call(other_worker, once).status_code == 401


def test_discovery_needs_a_token_audienced_to_it(client, keys):
    assert client.get("/cds-services").status_code == 401
    good = token(keys, aud=BASE + "/cds-services")
    assert (
        client.get("/cds-services", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    )


def test_cors_preflight_needs_no_token(client):
    response = client.options(
        SERVICE,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert response.status_code == 200


def test_without_configured_issuers_no_token_is_needed():
    app = create_app({"TESTING": True, "RELOAD_SECONDS": 0})
    assert app.test_client().post(SERVICE, json=BODY).status_code == 200
