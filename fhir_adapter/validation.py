"""R4 validation of the resources the rules keep (fhir.resources R4B models; never R5)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

MODELS = {
    "AllergyIntolerance": AllergyIntolerance,
    "Condition": Condition,
    "Immunization": Immunization,
    "ServiceRequest": ServiceRequest,
    "MedicationRequest": MedicationRequest,
    "Observation": Observation,
    "Patient": Patient,
}


def problem(resource: dict[str, Any]) -> str | None:
    """None when the resource is valid FHIR R4, else a short description of the first error.

    The same resources come back hook after hook (order-select, order-sign, each chart open), so
    verdicts are cached by the resource's exact JSON."""
    return _verdict(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=4096)
def _verdict(text: bytes) -> str | None:
    resource = orjson.loads(text)
    model = MODELS[resource["resourceType"]]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or resource["resourceType"]
        return f"{where}: {first['msg']}"
    except (TypeError, ValueError) as error:
        return str(error)[:200]
    return None
