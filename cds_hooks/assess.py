"""The one evaluation path: hook request -> (fetch what is missing) -> facts -> findings -> cards.
The HTTP view, the YAML case runner and `labelwise explain` all go through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from engine import Finding, KnowledgeBase, evaluate
from fhir_adapter import (
    FetchSettings,
    HookRequest,
    PatientFacts,
    complete_prefetch,
    parse_request,
    patient_facts,
)

from .cards import render_cards


@dataclass(frozen=True)
class Assessment:
    kb: KnowledgeBase
    request: HookRequest
    facts: PatientFacts
    findings: list[Finding]

    def cards(self) -> list[dict[str, Any]]:
        patient_id = self.request.context["patientId"]
        return render_cards(self.kb, self.findings, self.facts.resources, patient_id)


def assess(
    kb: KnowledgeBase, service_id: str, body: Any, now: date, fetch: FetchSettings | None = None
) -> Assessment:
    """Evaluate one hook request; `fetch` allows calls to the client's fhirServer."""
    service = kb.services[service_id]
    request = parse_request(body, service.hook, tuple(service.prefetch))
    if fetch is not None:
        request = complete_prefetch(request, service.prefetch, fetch)
    facts = patient_facts(kb, request, now)
    return Assessment(kb, request, facts, evaluate(kb, service_id, facts.facts))
