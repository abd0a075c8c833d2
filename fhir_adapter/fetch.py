"""Fetch what the prefetch did not bring: GET from the client's fhirServer with its token.

A key that is absent, or holds an OperationOutcome, is fetched; a `null` key is known to be
empty and is not. Every call has its own timeout and all calls share one time budget; searchset
`next` links are followed up to a bound, and only on the same server. The access token goes to
that server and nowhere else."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import httpx

from .request import HookRequest, Prefetched, RequestError, bundle_resources

TOKEN = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 2.0
    budget: float = 4.0
    max_pages: int = 5


def complete_prefetch(
    request: HookRequest, templates: dict[str, str], settings: FetchSettings
) -> HookRequest:
    """Fill absent or failed keys from the FHIR server; 412 when nothing can be had at all."""
    missing = [k for k, v in request.prefetch.items() if v.state in ("absent", "failed")]
    if not missing:
        return request
    if not request.fhir_server:
        if all(v.state == "absent" for v in request.prefetch.values()):
            raise RequestError("no prefetch data and no fhirServer to fetch it from", status=412)
        return request
    deadline = time.monotonic() + settings.budget
    queries = {key: _query(templates[key], request.context) for key in missing}
    with (
        httpx.Client(headers=_headers(request), follow_redirects=False) as client,
        ThreadPoolExecutor(max_workers=len(missing)) as pool,
    ):
        futures = {
            key: pool.submit(_fetch, client, request.fhir_server, query, deadline, settings)
            for key, query in queries.items()
        }
        fetched = {key: future.result() for key, future in futures.items()}
    return replace(request, prefetch={**request.prefetch, **fetched})


def _headers(request: HookRequest) -> dict[str, str]:
    headers = {"Accept": "application/fhir+json"}
    token = (request.fhir_authorization or {}).get("access_token")
    if isinstance(token, str) and token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _query(template: str, context: dict[str, Any]) -> str | None:
    """Substitute {{context.x}} and {{userPractitionerId}}-style tokens; None if one is unknown."""
    user = str(context.get("userId", ""))
    values = {f"context.{k}": v for k, v in context.items() if isinstance(v, str | int)}
    values.update(
        {
            f"user{t}Id": user.split("/", 1)[1]
            for t in ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
            if user.startswith(f"{t}/")
        }
    )
    unknown = [t for t in TOKEN.findall(template) if t not in values]
    return None if unknown else TOKEN.sub(lambda m: str(values[m.group(1)]), template)


def _fetch(
    client: httpx.Client, server: str, query: str | None, deadline: float, settings: FetchSettings
) -> Prefetched:
    if query is None:
        return Prefetched(
            "failed", reason="its prefetch template needs a context value the request lacks"
        )
    base = server.rstrip("/") + "/"
    url, resources = base + query, []
    for _ in range(settings.max_pages):
        left = deadline - time.monotonic()
        if left <= 0:
            return Prefetched(
                "failed", reason="the FHIR server did not answer within the time budget"
            )
        try:
            response = client.get(url, timeout=min(settings.timeout, left))
        except httpx.TimeoutException:
            return Prefetched("failed", reason="the FHIR server did not answer in time")
        except (httpx.HTTPError, httpx.InvalidURL):
            return Prefetched("failed", reason="the FHIR server could not be reached")
        if response.status_code != 200:
            return Prefetched(
                "failed", reason=f"the FHIR server answered HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            return Prefetched("failed", reason="the FHIR server sent something that is not JSON")
        if not isinstance(body, dict) or body.get("resourceType") in (None, "OperationOutcome"):
            return Prefetched("failed", reason="the FHIR server did not return a FHIR resource")
        if body["resourceType"] != "Bundle":
            return Prefetched("ok", (body,))
        try:
            resources += bundle_resources(body, "fetched bundle")
        except RequestError:
            return Prefetched("failed", reason="the FHIR server returned a malformed Bundle")
        url = _next_link(body, base)
        if url is None:
            return Prefetched("ok", tuple(resources))
    return Prefetched("ok", tuple(resources))


def _next_link(bundle: dict[str, Any], base: str) -> str | None:
    """The next page, only when it is on the same server (the token must not leave it)."""
    for link in bundle.get("link") or []:
        if (
            isinstance(link, dict)
            and link.get("relation") == "next"
            and isinstance(link.get("url"), str)
        ):
            return link["url"] if link["url"].startswith(base) else None
    return None
