"""Fetch what the prefetch did not bring: GET from the client's fhirServer with its token.

Opt-in: only a fhirServer on the allowlist (`FetchSettings.servers`) is ever called. A key that
is absent, or holds an OperationOutcome, is fetched; a `null` key is known to be empty and is not.
Calls are bounded in number, size and time: one wall-clock deadline covers the whole fetch phase
and no slow server can extend it. Searchset `next` links are followed up to a bound, only below
the same base URL; redirects are not followed, so the token reaches that server and no other.
What went wrong is logged (its class, never the URL, ids or token); the card only says the data
could not be fetched, so the service cannot be used to probe a network."""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import httpx
import orjson

from .request import HookRequest, Prefetched, RequestError, bundle_resources, reports_an_error

LOG = logging.getLogger(__name__)
for _noisy in ("httpx", "httpcore"):  # they log full URLs, query strings included, at INFO
    logging.getLogger(_noisy).setLevel(logging.WARNING)

TOKEN = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
ENCODED_SEPARATORS = ("%2f", "%5c", "%2e", "\\")
NOT_ALLOWED = "the fhirServer given is not one this service is allowed to fetch from"
NOT_FETCHED = "the EHR's FHIR server did not return it"


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 2.0
    budget: float = 4.0
    max_pages: int = 5
    max_calls: int = 20
    max_bytes: int = 20 * 1024 * 1024
    servers: tuple[str, ...] = ()  # allowed base URLs; empty: nothing is fetched
    count: Callable[[str], None] = lambda outcome: None  # told each key's outcome (metrics)


class Failed(Exception):
    """A fetch that did not succeed: `kind` is logged, `reason` may go into a card."""

    def __init__(self, kind: str, reason: str = NOT_FETCHED):
        super().__init__(kind)
        self.kind, self.reason = kind, reason


def complete_prefetch(
    request: HookRequest, templates: dict[str, str], settings: FetchSettings
) -> HookRequest:
    """Fill absent or failed keys from an allowed FHIR server; 412 when nothing can be had."""
    missing = [k for k, v in request.prefetch.items() if v.state in ("absent", "failed")]
    if not missing:
        return request
    if not (request.fhir_server and allowed(request.fhir_server, settings.servers)):
        return _unfetchable(request, missing)
    run = _Run(request.fhir_server, _headers(request), settings)
    fetched = run.fetch_all({key: _query(templates[key], request.context) for key in missing})
    return replace(request, prefetch={**request.prefetch, **fetched})


def allowed(server: str, bases: tuple[str, ...] | list[str]) -> bool:
    """Whether `server` is one of `bases` or below one: same scheme, host and port, and the
    base's path segments first. Credentials, queries and encoded separators are refused."""
    try:
        url, allowed_bases = httpx.URL(server), [httpx.URL(base) for base in bases]
    except httpx.InvalidURL:
        return False
    if url.userinfo or url.query or url.fragment or url.scheme not in ("http", "https"):
        return False
    return any(_within(url, base) for base in allowed_bases)


def _within(url: httpx.URL, base: httpx.URL) -> bool:
    path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    if any(s in path.lower() for s in ENCODED_SEPARATORS):
        return False
    base_path = base.raw_path.split(b"?", 1)[0].decode("ascii")
    segments, base_segments = path.rstrip("/").split("/"), base_path.rstrip("/").split("/")
    return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and (
        segments[: len(base_segments)] == base_segments
    )


def _unfetchable(request: HookRequest, missing: list[str]) -> HookRequest:
    if all(v.state == "absent" for v in request.prefetch.values()):
        if request.fhir_server:
            raise RequestError(f"no prefetch data, and {NOT_ALLOWED}", status=412)
        raise RequestError("no prefetch data and no fhirServer to fetch it from", status=412)
    if not request.fhir_server:
        return request
    for key in missing:
        _log_failure(key, "not-allowed", time.monotonic())
    refused = Prefetched("failed", reason=NOT_ALLOWED)
    kept = {k: refused for k in missing if request.prefetch[k].state == "absent"}
    return replace(request, prefetch={**request.prefetch, **kept})


def _headers(request: HookRequest) -> dict[str, str]:
    headers = {"Accept": "application/fhir+json", "Accept-Encoding": "identity"}
    token = (request.fhir_authorization or {}).get("access_token")
    if token is None:
        return headers
    if not isinstance(token, str) or not BEARER_TOKEN.fullmatch(token):
        raise RequestError("'fhirAuthorization.access_token' must be a bearer token (RFC 6750)")
    return headers | {"Authorization": f"Bearer {token}"}


def _query(template: str, context: dict[str, Any]) -> str | Failed:
    """Substitute {{context.x}} and {{userPractitionerId}}-style tokens with FHIR ids; a Failed
    when one is unknown, or is not an id (so no value can leave the base path)."""
    user = str(context.get("userId", ""))
    values = {f"context.{k}": str(v) for k, v in context.items() if isinstance(v, str | int)}
    values.update(
        {
            f"user{t}Id": user.split("/", 1)[1]
            for t in ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
            if user.startswith(f"{t}/")
        }
    )
    names = TOKEN.findall(template)
    if any(name not in values for name in names):
        return Failed("template", "its prefetch template needs a context value the request lacks")
    if not all(_is_id(values[name]) for name in names):
        return Failed("bad-id", "a context value it needs is not a valid FHIR id")
    return TOKEN.sub(lambda m: values[m.group(1)], template)


def _is_id(value: str) -> bool:
    return bool(FHIR_ID.fullmatch(value)) and value.strip(".") != ""


@cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context (SSL_CERT_FILE honoured), built once: it reads a CA bundle."""
    return httpx.create_ssl_context()


class _Run:
    """One request's fetch phase: a shared deadline and call count, one thread per key."""

    def __init__(self, server: str, headers: dict[str, str], settings: FetchSettings):
        self.base = httpx.URL(server.rstrip("/") + "/")
        self.headers, self.settings = headers, settings
        self.start = time.monotonic()
        self.deadline = self.start + settings.budget
        self.calls, self.lock = 0, threading.Lock()

    def fetch_all(self, queries: dict[str, str | Failed]) -> dict[str, Prefetched]:
        """Every key's outcome by the deadline; threads still running give up on their own at
        their next read (each read is bounded by the timeout)."""
        pool = ThreadPoolExecutor(max_workers=len(queries))
        futures = {key: pool.submit(self._fetch, query) for key, query in queries.items()}
        wait(futures.values(), timeout=max(0.0, self.deadline - time.monotonic()))
        pool.shutdown(wait=False)
        return {key: self._outcome(key, future) for key, future in futures.items()}

    def _outcome(self, key: str, future: Future) -> Prefetched:
        failure = future.exception(timeout=0) if future.done() else Failed("timeout")
        if failure is None:
            self.settings.count("ok")
            return future.result()
        if not isinstance(failure, Failed):
            raise failure
        self.settings.count(failure.kind)
        _log_failure(key, failure.kind, self.start)
        return Prefetched("failed", reason=failure.reason)

    def _fetch(self, query: str | Failed) -> Prefetched:
        if isinstance(query, Failed):
            raise query
        try:
            url = self.base.join(query)
        except httpx.InvalidURL:
            raise Failed("bad-url") from None
        return Prefetched("ok", self._pages(url))

    def _pages(self, url: httpx.URL) -> tuple[dict[str, Any], ...]:
        resources: list[dict[str, Any]] = []
        with httpx.Client(headers=self.headers, follow_redirects=False, verify=_tls()) as client:
            for _ in range(self.settings.max_pages + 1):
                body = self._get(client, url)
                if body["resourceType"] != "Bundle":
                    return (body,)
                if reports_an_error(body):  # an incomplete answer is not data to trust
                    raise Failed("error-outcome")
                try:
                    resources += bundle_resources(body, "fetched bundle")
                except RequestError:
                    raise Failed("bad-bundle") from None
                next_url = _next_link(body)
                if next_url is None:
                    return tuple(resources)
                url = next_url
        raise Failed("too-many-pages")  # a partial list would read as a complete one

    def _get(self, client: httpx.Client, url: httpx.URL) -> dict[str, Any]:
        """One call, below the base URL, counted, and cut at the deadline or the size limit."""
        if not _within(url, self.base):
            raise Failed("outside-base")
        self._count_call()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failed("timeout")
        try:
            with client.stream("GET", url, timeout=min(self.settings.timeout, left)) as response:
                if response.status_code != 200:
                    raise Failed(f"{response.status_code // 100}xx")
                content = self._read(response)
        except httpx.TimeoutException:
            raise Failed("timeout") from None
        except (httpx.HTTPError, httpx.InvalidURL):
            raise Failed("unreachable") from None
        return _resource(content)

    def _count_call(self) -> None:
        with self.lock:
            self.calls += 1
            if self.calls > self.settings.max_calls:
                raise Failed("too-many-calls")

    def _read(self, response: httpx.Response) -> bytearray:
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise Failed("encoded")  # identity was asked for: a compressed body could be a bomb
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.settings.max_bytes:
            raise Failed("too-large")
        content = bytearray()
        for chunk in response.iter_raw():
            content += chunk
            if len(content) > self.settings.max_bytes:
                raise Failed("too-large")
            if time.monotonic() > self.deadline:
                raise Failed("timeout")
        return content


def _resource(content: bytearray) -> dict[str, Any]:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise Failed("not-json") from None
    if not isinstance(body, dict) or body.get("resourceType") in (None, "OperationOutcome"):
        raise Failed("not-fhir")
    if not isinstance(body["resourceType"], str):
        raise Failed("not-fhir")
    return body


def _next_link(bundle: dict[str, Any]) -> httpx.URL | None:
    """The searchset's next page; the caller checks that it stays below the base URL."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            try:
                return httpx.URL(link["url"])
            except (httpx.InvalidURL, TypeError, KeyError):
                raise Failed("bad-next-link") from None
    return None


def _log_failure(key: str, kind: str, start: float) -> None:
    elapsed = round((time.monotonic() - start) * 1000)
    LOG.warning("prefetch %s not fetched: %s after %d ms", key, kind, elapsed)
