"""FHIR R4 in, facts out: parse the hook request and turn its resources into engine facts."""

from .facts import PatientFacts, patient_facts
from .fetch import FetchSettings, complete_prefetch
from .request import HookRequest, RequestError, parse_request

__all__ = [
    "FetchSettings",
    "complete_prefetch",
    "HookRequest",
    "PatientFacts",
    "RequestError",
    "parse_request",
    "patient_facts",
]
