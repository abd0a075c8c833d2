"""Client JWT validation, with keys generated in the test: ES384 and RS384 accepted; `none`,
HS*, wrong audience, expiry, unknown issuer or kid, odd claim types, and replays get a bare 401
with `WWW-Authenticate: Bearer`, never a 500."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from test_outbound_safety import Stub, answer
from test_prefetch_fallback import gaps, order_sign

from cds_hooks import create_app
from fhir_adapter.fetch import NOT_ALLOWED

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


def jwt_app(keys, jwks_url, folder, **settings):
    path = folder / "jwks.json"
    path.write_text(json.dumps(jwks(keys)))
    issuers = {ISSUER: {"jwks_file": str(path)}, URL_ISSUER: {"jwks_url": jwks_url}}
    for issuer, servers in settings.pop("fhir_servers", {}).items():
        issuers[issuer]["fhir_servers"] = servers
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "NOW": "2026-11-01",
        "JWT_ISSUERS": issuers,
        "JWT_AUDIENCE_BASE": BASE,
        "DATABASE_URL": f"sqlite:///{folder / 'jwt.db'}",
        **settings,
    }
    return create_app(config)


@pytest.fixture()
def client(keys, jwks_url, tmp_path):
    return jwt_app(keys, jwks_url, tmp_path).test_client()


@pytest.fixture(scope="module")
def shared_client(keys, jwks_url, tmp_path_factory):
    """One app for tests that need no fresh replay store (each token has its own jti)."""
    return jwt_app(keys, jwks_url, tmp_path_factory.mktemp("jwt-shared")).test_client()


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


@pytest.mark.req("cds-hooks_2.0@176", "cds-hooks_2.0@199", "cds-hooks_2.0@200", "cds-hooks_2.0@205")
def test_es384_and_rs384_tokens_are_accepted(client, keys):
    assert call(client, token(keys)).status_code == 200
    assert call(client, token(keys, alg="RS384", kid="rsa-1")).status_code == 200


@pytest.mark.req("cds-hooks_2.0@176")
def test_keys_are_fetched_from_an_issuers_jwks_url(client, keys):
    assert call(client, token(keys, iss=URL_ISSUER)).status_code == 200


@pytest.mark.req(
    "cds-hooks_2.0@177",
    "cds-hooks_2.0@195",
    "cds-hooks_2.0@201",
    "cds-hooks_2.0@203",
    "cds-hooks_2.0@205",
)
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
def test_bad_tokens_get_a_bare_401(shared_client, keys, make):
    assert_bare_401(call(shared_client, make(keys)))


def assert_bare_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["issue"][0]["diagnostics"] == "unauthorized"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(keys, header: dict, claims: dict, key_alg: str = "ES384") -> str:
    """A token with any header and claims, validly signed (PyJWT's encoder refuses odd ones)."""
    head = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    key = keys["ec"] if key_alg.startswith("ES") else keys["rsa"]
    return f"{head}.{b64(jwt.get_algorithm_by_name(key_alg).sign(head.encode(), key))}"


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": BASE + SERVICE, "iat": now, "exp": now + 300}
    return base | {"jti": str(uuid.uuid4())} | changes


EC_HEADER = {"alg": "ES384", "kid": "ec-1", "typ": "JWT"}
NOW = int(time.time())


@pytest.mark.parametrize(
    ("header", "payload", "key_alg"),
    [
        (EC_HEADER, claims(iss=[ISSUER]), "ES384"),
        (EC_HEADER, claims(iss={"url": ISSUER}), "ES384"),
        (EC_HEADER, claims(iss=None), "ES384"),
        ({"alg": "RS384", "kid": "ec-1"}, claims(), "RS384"),
        ({"alg": "ES384", "kid": "rsa-1"}, claims(), "ES384"),
        (EC_HEADER, claims(exp=253402300800 + 60), "ES384"),
        (EC_HEADER, claims(exp=10**20), "ES384"),
        (EC_HEADER, claims(exp=10**400), "ES384"),
        (EC_HEADER, claims(exp=str(NOW + 300)), "ES384"),
        (EC_HEADER, claims(exp=NOW + 300.5), "ES384"),
        (EC_HEADER, claims(exp=True), "ES384"),
        (EC_HEADER, claims(iat=str(NOW)), "ES384"),
        (EC_HEADER, claims(iat=NOW + 0.5), "ES384"),
        (EC_HEADER, claims(iat=-(10**400)), "ES384"),
        (EC_HEADER, claims(jti=["a"]), "ES384"),
        (EC_HEADER, claims(aud=[]), "ES384"),
        ({"alg": "ES384", "kid": ["ec-1"]}, claims(), "ES384"),
        ({"alg": "ES384", "kid": {"id": "ec-1"}}, claims(), "ES384"),
        ({"alg": "ES384"}, claims(), "ES384"),
        ({"alg": ["ES384"], "kid": "ec-1"}, claims(), "ES384"),
    ],
    ids=[
        "iss-list",
        "iss-object",
        "iss-null",
        "rs384-with-ec-kid",
        "es384-with-rsa-kid",
        "exp-after-9999",
        "exp-1e20",
        "exp-1e400",
        "exp-string",
        "exp-float",
        "exp-bool",
        "iat-string",
        "iat-float",
        "iat-huge-negative",
        "jti-list",
        "aud-empty-list",
        "kid-list",
        "kid-object",
        "no-kid",
        "alg-list",
    ],
)
def test_odd_claims_and_headers_get_a_401_not_a_500(shared_client, keys, header, payload, key_alg):
    assert_bare_401(call(shared_client, signed(keys, header, payload, key_alg)))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not.a.jwt",
        "Bearer %%%.***.!!!",
        "Bearer ....",
        "Bearer eyJhbGciOiJFUzM4NCJ9",
        "Bearer " + b64(b"[]") + "." + b64(b"{}") + ".c2ln",
        "Bearer " + b64(b"\xff\xfe") + "." + b64(b"{}") + ".c2ln",
        "Bearer ",
        "Bearer",
        "Basic dXNlcjpwdw==",
        "",
    ],
)
def test_garbage_authorization_headers_get_a_401(shared_client, authorization):
    response = shared_client.post(SERVICE, json=BODY, headers={"Authorization": authorization})
    assert_bare_401(response)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_bearer_scheme_is_accepted_in_any_case(shared_client, keys, scheme):
    headers = {"Authorization": f"{scheme} {token(keys)}"}
    response = shared_client.post(SERVICE, json=BODY, headers=headers)
    assert response.status_code == 200


def test_the_audience_is_the_configured_base_never_the_host_header(client, keys):
    forged = token(keys, aud="http://attacker.example" + SERVICE)
    headers = {"Authorization": f"Bearer {forged}", "Host": "attacker.example"}
    assert_bare_401(client.post(SERVICE, json=BODY, headers=headers))
    headers = {"Authorization": f"Bearer {token(keys)}", "Host": "attacker.example"}
    assert client.post(SERVICE, json=BODY, headers=headers).status_code == 200


def test_a_token_living_longer_than_the_maximum_lifetime_is_refused(keys, jwks_url, tmp_path):
    client = jwt_app(keys, jwks_url, tmp_path, JWT_MAX_LIFETIME=600).test_client()
    now = int(time.time())
    assert_bare_401(call(client, token(keys, iat=now, exp=now + 3600)))
    assert call(client, token(keys, iat=now, exp=now + 300)).status_code == 200


def test_analytics_need_a_token_audienced_to_them(client, keys):
    path = "/analytics/override-rates"
    assert_bare_401(client.get(path))
    elsewhere = token(keys, aud=BASE + "/cds-services")
    assert_bare_401(client.get(path, headers={"Authorization": f"Bearer {elsewhere}"}))
    good = token(keys, aud=BASE + path)
    assert client.get(path, headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_token_reaches_only_its_issuers_fhir_servers(keys, jwks_url, tmp_path):
    ehr = Stub(answer(401, {"resourceType": "OperationOutcome"}))
    try:
        app = jwt_app(keys, jwks_url, tmp_path, fhir_servers={ISSUER: [ehr.url]})
        client = app.test_client()
        body = order_sign(ehr.url, prefetch={"patient": None})
        path = "/cds-services/voclosporin-order-sign"
        other = token(keys, iss=URL_ISSUER, aud=BASE + path)
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {other}"})
        assert gaps(response)["medications"] == NOT_ALLOWED and ehr.requests == []
        own = token(keys, aud=BASE + path)
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {own}"})
        assert response.status_code == 200 and ehr.requests  # called, with the EHR's token
        assert {auth for _, auth in ehr.requests} == {"Bearer test-token-7f3a"}
    finally:
        ehr.close()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def odd(valid) -> st.SearchStrategy:
    return st.just(valid) | JSON_VALUES


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_validly_signed_tokens_get_a_200_or_a_401(shared_client, keys, data):
    header = data.draw(
        st.fixed_dictionaries(
            {"alg": odd("ES384"), "kid": st.sampled_from(["ec-1", "rsa-1"]) | JSON_VALUES}
        )
    )
    now = int(time.time())
    payload = data.draw(
        st.fixed_dictionaries(
            {
                "iss": st.sampled_from([ISSUER, URL_ISSUER]) | JSON_VALUES,
                "aud": odd(BASE + SERVICE),
                "iat": odd(now),
                "exp": odd(now + 300) | st.integers(),
                "jti": st.uuids().map(str) | JSON_VALUES,
            }
        )
    )
    key_alg = data.draw(st.sampled_from(["ES384", "RS384"]))
    assert call(shared_client, signed(keys, header, payload, key_alg)).status_code in (200, 401)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    authorization=st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80)
)
def test_random_authorization_headers_get_a_401(shared_client, authorization):
    response = shared_client.post(SERVICE, json=BODY, headers={"Authorization": authorization})
    assert response.status_code == 401


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


@pytest.mark.req("cds-hooks_2.0@177")
def test_discovery_needs_a_token_audienced_to_it(client, keys):
    assert client.get("/cds-services").status_code == 401
    good = token(keys, aud=BASE + "/cds-services")
    assert (
        client.get("/cds-services", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    )


@pytest.mark.req("cds-hooks_2.0@208")
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
