"""Bad input never yields a 5xx: random JSON anywhere in a hook request or its FHIR resources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks import create_app
from conftest import ROOT

EXAMPLES = [
    json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "requests").glob("*.json"))
]
SERVICE_BY_HOOK = {
    "order-sign": "voclosporin-order-sign",
    "order-select": "voclosporin-order-select",
    "patient-view": "voclosporin-patient-view",
}
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    database = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    config = {
        "TESTING": True,
        "RELOAD_SECONDS": 0,
        "NOW": "2026-11-01",
        "DATABASE_URL": f"sqlite:///{database}",
    }
    return create_app(config).test_client()


def paths(value, prefix=()):
    """Every place in a JSON document: the path of keys and indexes to it."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(document, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def post(client, body) -> int:
    hook = body.get("hook") if isinstance(body, dict) else None
    service = SERVICE_BY_HOOK.get(hook if isinstance(hook, str) else "", "voclosporin-order-sign")
    return client.post(
        f"/cds-services/{service}", data=json.dumps(body), content_type="application/json"
    ).status_code


@FUZZ
@given(body=JSON)
def test_random_json_bodies_get_a_4xx_never_a_5xx(fuzz_client, body):
    assert post(fuzz_client, body) < 500


@FUZZ
@given(data=st.data())
def test_any_field_of_a_real_request_replaced_by_random_json_never_gives_a_5xx(fuzz_client, data):
    example = data.draw(st.sampled_from(EXAMPLES))
    path = data.draw(st.sampled_from(list(paths(example))))
    mutated = replaced(example, path, data.draw(JSON))
    assert post(fuzz_client, mutated) in (200, 400, 404, 412)


@FUZZ
@given(data=st.data())
def test_odd_dates_numbers_and_units_in_fhir_resources_never_give_a_5xx(fuzz_client, data):
    example = data.draw(st.sampled_from(EXAMPLES))
    odd = st.sampled_from(
        [
            "",
            "2026-13-45",
            "20261101",
            "not a date",
            "2026",
            "2026-11",
            "1e309",
            "-0",
            "NaN",
            "mm[Hg]",
            "{1.73_m2}",
            "mg/dL",
            "μmol/L",
        ]
    )
    keys = (
        "effectiveDateTime",
        "authoredOn",
        "birthDate",
        "value",
        "unit",
        "code",
        "frequency",
        "period",
        "periodUnit",
    )
    candidates = [p for p in paths(example) if p and p[-1] in keys] or [()]
    path = data.draw(st.sampled_from(candidates))
    new = data.draw(
        odd
        | st.integers(min_value=-(10**12), max_value=10**12)
        | st.floats(allow_nan=True, allow_infinity=True)
    )
    assert post(fuzz_client, replaced(example, path, new)) in (200, 400, 412)


# FHIR elements set to a shape R4 does not allow (a number where a list of backbone elements
# belongs, a string where a Quantity belongs...), whether or not the example had them.
ELEMENTS = (
    "referenceRange",
    "interpretation",
    "valueQuantity",
    "component",
    "code",
    "category",
    "dosageInstruction",
    "reaction",
    "criticality",
    "medicationCodeableConcept",
    "medicationReference",
    "contained",
    "dosage",
    "intent",
    "vaccineCode",
    "clinicalStatus",
)
WRONG_SHAPES = st.sampled_from([0, 5.1, -1, "", "high", True, None, [], [1, 2], [None], {}])


def resources(value):
    """Paths of every FHIR resource (an object with a resourceType) inside a request."""
    return [p for p in paths(value) if _resource_at(value, p)]


def _resource_at(document, path) -> bool:
    for step in path:
        document = document[step]
    return isinstance(document, dict) and isinstance(document.get("resourceType"), str)


@FUZZ
@given(data=st.data())
def test_fhir_elements_of_the_wrong_shape_never_give_a_5xx(fuzz_client, data):
    example = data.draw(st.sampled_from(EXAMPLES))
    path = data.draw(st.sampled_from(resources(example)))
    element = data.draw(st.sampled_from(ELEMENTS))
    mutated = replaced(example, (*path, element), data.draw(WRONG_SHAPES | JSON))
    assert post(fuzz_client, mutated) in (200, 400, 412)


def test_a_potassium_reference_range_given_as_a_number_is_not_used(fuzz_client):
    body = json.loads((ROOT / "examples" / "requests" / "patient-view-egfr-fall.json").read_text())
    for entry in body["prefetch"]["potassium"]["entry"]:
        entry["resource"]["referenceRange"] = 5
    assert post(fuzz_client, body) == 200


MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationOrder", "Medication")
DOSAGE_ELEMENTS = ("sequence", "timing", "route", "doseAndRate", "doseQuantity", "doseRange")


@FUZZ
@given(data=st.data())
def test_medication_shapes_of_any_fhir_version_with_odd_dosages_never_give_a_5xx(fuzz_client, data):
    """A medication entry retyped (statement, DSTU2 order, bare Medication), pointing at a
    Medication elsewhere, with one dosage element (taper step, timing, range) of any shape."""
    example = data.draw(st.sampled_from(EXAMPLES))
    path = data.draw(st.sampled_from(resources(example)))
    kind = data.draw(st.sampled_from(MEDICATION_TYPES))
    mutated = replaced(example, (*path, "resourceType"), kind)
    target = data.draw(st.sampled_from(["Medication/1", "#1", "Medication/", "", None]))
    mutated = replaced(mutated, (*path, "medicationReference"), {"reference": target})
    mutated = replaced(mutated, (*path, "medicationCodeableConcept"), None)
    dosage = {data.draw(st.sampled_from(DOSAGE_ELEMENTS)): data.draw(WRONG_SHAPES | JSON)}
    mutated = replaced(mutated, (*path, "dosageInstruction"), [dosage, {"sequence": 2}])
    assert post(fuzz_client, mutated) in (200, 400, 412)


def test_fuzz_examples_are_real_requests():
    assert len(EXAMPLES) >= 5 and all(
        Path(ROOT / "examples" / "requests").exists() for _ in EXAMPLES
    )
