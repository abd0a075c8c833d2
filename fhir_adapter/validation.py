"""Tolerant R4 validation: only the elements the facts are read from are checked against their
FHIR R4 datatypes (fhir.resources R4B models; never R5). A malformed element nothing reads, such
as the CDS Hooks sandbox's `category` object, is ignored (Postel)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import orjson
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from pydantic import TypeAdapter, ValidationError

MODELS = {
    "AllergyIntolerance": AllergyIntolerance,
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "Observation": Observation,
}
# Element -> how a clinician names it, for the elements the facts of each type are read from.
DOSE = "dose instructions"  # checked last: when only they are invalid, the dose is unknown
READS: dict[str, dict[str, str]] = {
    "MedicationRequest": {
        "medicationCodeableConcept": "medication",
        "medicationReference": "medication",
        "contained": "medication",
        "status": "order status",
        "authoredOn": "order date",
        "dosageInstruction": DOSE,
    },
    "MedicationStatement": {
        "medicationCodeableConcept": "medication",
        "medicationReference": "medication",
        "contained": "medication",
        "status": "statement status",
        "dosage": DOSE,
    },
    "AllergyIntolerance": {
        "code": "substance",
        "clinicalStatus": "clinical status",
        "verificationStatus": "verification status",
        "criticality": "criticality",
        "reaction": "reaction",
    },
    "Observation": {
        "status": "result status",
        "code": "test code",
        "effectiveDateTime": "date taken",
        "effectivePeriod": "date taken",
        "issued": "date taken",
        "valueQuantity": "result value",
        "component": "result value",
        "interpretation": "interpretation",
        "referenceRange": "reference range",
    },
}


@dataclass(frozen=True)
class Problem:
    """An element a check reads that is not valid FHIR R4: `element` is its FHIR path (for
    integrators), `words` how a clinician names it."""

    element: str
    words: str


def problem(resource: dict[str, Any]) -> Problem | None:
    """The first element the facts read (in READS order) that is not valid R4, else None (also
    for resources of other FHIR versions, such as DSTU2/STU3 MedicationOrder: read tolerantly).

    The same resources come back hook after hook, so verdicts are cached by the exact JSON of
    the elements checked."""
    reads = READS.get(resource["resourceType"], {})
    present = {k: resource[k] for k in reads if k in resource}
    if not present:
        return None
    found = _verdict(resource["resourceType"], orjson.dumps(present))
    return Problem(found, reads[found.partition("[")[0].partition(".")[0]]) if found else None


@lru_cache(maxsize=4096)
def _verdict(resource_type: str, text: bytes) -> str | None:
    for element, value in orjson.loads(text).items():
        try:
            _adapter(resource_type, element).validate_python(value)
        except ValidationError as error:
            return element + "".join(_step(p) for p in error.errors()[0]["loc"])
        except (TypeError, ValueError):
            return element
    return None


def _step(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else f".{part}"


@cache
def _adapter(resource_type: str, element: str) -> TypeAdapter:
    return TypeAdapter(MODELS[resource_type].model_fields[element].annotation)


def unusable(resource: dict[str, Any], found: Problem) -> dict[str, str]:
    """The data of an `unusable` fact for a resource whose `found` element is not valid R4."""
    return {
        "resource": resource["resourceType"],
        "field": found.words,
        "element": found.element,
        "reason": f"its {found.words} is not in a form FHIR R4 allows",
    }
