"""The medication identity step: any FHIR medication source (MedicationRequest, -Statement,
-Administration, -Dispense, DSTU2/STU3 MedicationOrder) -> which drugs it contains, how each
was recognised, and whether its route or dose form gives systemic exposure.

Recognition order: ingredient RxCUI; product RxCUI or NDC from the knowledge code sets; the
NDC labeler; then ingredient, brand and product names on whole tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.vocabulary import Vocabulary

from .coding import NDC, RXNORM, codings, reference, texts
from .request import HookRequest, bundle_resources

SOURCES = {
    "MedicationRequest",
    "MedicationStatement",
    "MedicationOrder",
    "MedicationAdministration",
    "MedicationDispense",
}
LOCAL, SYSTEMIC = "local-routes", "systemic-routes"


@dataclass(frozen=True)
class Identity:
    """`how` maps each drug key to the first way it was recognised (code or name, source)."""

    drugs: tuple[str, ...]
    how: tuple[tuple[str, str], ...]
    exposure: str  # "systemic", or "local" (topical, ophthalmic, otic, vaginal)
    name: str

    def explained(self) -> str:
        return "; ".join(f"{drug}: {how}" for drug, how in self.how)


def identify(
    resource: dict[str, Any], vocabulary: Vocabulary, bundled: Mapping[str, dict] | None = None
) -> Identity:
    """The identity of one medication resource; `bundled` holds Medication resources delivered
    elsewhere in the request (other prefetch entries, the draft Bundle) by reference."""
    concepts, forms = medication_concepts(resource, bundled or {})
    found: dict[str, str] = {}
    exposures: set[str] = set()
    for concept in concepts:
        for coding in codings(concept):
            _by_code(coding, vocabulary, found, exposures)
        for text in texts(concept):
            _by_name(text, vocabulary, found, exposures)
    name = next((t for c in concepts for t in texts(c)), "medication order")
    if not found:
        return Identity((), (), "systemic", name)
    exposure = _exposure(exposures, concepts + forms + _routes(resource), vocabulary)
    return Identity(tuple(found), tuple(found.items()), exposure, name)


def request_resources(request: HookRequest) -> list[dict[str, Any]]:
    """Every resource of a request: each prefetch entry, then the draft orders Bundle."""
    found = [r for value in request.prefetch.values() for r in value.resources]
    drafts = request.context.get("draftOrders")
    drafted = isinstance(drafts, dict)
    return found + (bundle_resources(drafts, "context.draftOrders") if drafted else [])


def bundled_medications(resources: list[dict[str, Any]]) -> dict[str, dict]:
    """The Medication resources among `resources`, by reference ("Medication/123")."""
    return {reference(r): r for r in resources if r["resourceType"] == "Medication" and r.get("id")}


def medication_concepts(
    resource: dict[str, Any], bundled: Mapping[str, dict]
) -> tuple[list[Any], list[Any]]:
    """The CodeableConcepts that name the drug, and those that give its dose form: inline, a
    contained Medication, or one delivered elsewhere in the request (by reference)."""
    concept = resource.get("medicationCodeableConcept")
    if concept is not None:
        return [concept], []
    ref = resource.get("medicationReference")
    if not isinstance(ref, dict):
        return [], []
    names: list[Any] = [{"text": ref["display"]}] if isinstance(ref.get("display"), str) else []
    medication = _resolve(resource, ref.get("reference"), bundled)
    if medication is None:
        return names, []
    ingredients = medication.get("ingredient")
    items = [i.get("itemCodeableConcept") for i in ingredients or [] if isinstance(i, dict)]
    return [medication.get("code"), *names, *items], [medication.get("form")]


def _resolve(resource: dict, target: Any, bundled: Mapping[str, dict]) -> dict | None:
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        contained = resource.get("contained") or []
        return next(
            (m for m in contained if isinstance(m, dict) and f"#{m.get('id')}" == target), None
        )
    return bundled.get("/".join(target.split("/")[-2:]))


def _by_code(coding: dict, vocabulary: Vocabulary, found: dict, exposures: set) -> None:
    code, system = coding.get("code"), coding.get("system")
    if not isinstance(code, str):
        return
    if system == RXNORM and (drug := vocabulary.drug_by_rxnorm(code)):
        found.setdefault(drug, f"RxNorm {code} (ingredient code, knowledge)")
        return
    product = (
        vocabulary.product_by_rxnorm(code)
        if system == RXNORM
        else vocabulary.product_by_ndc(code)
        if system == NDC
        else None
    )
    if product:
        label = "RxNorm" if system == RXNORM else "NDC"
        _add_product(product, f"{label} {code} (product {product}, knowledge)", vocabulary, found)
        exposures.add(vocabulary.products[product].exposure)
    elif system == NDC and (drug := vocabulary.drug_by_ndc(code)):
        found.setdefault(drug, f"NDC {code} (labeler code, knowledge)")


def _by_name(text: str, vocabulary: Vocabulary, found: dict, exposures: set) -> None:
    for product in vocabulary.products_named_in(text):
        _add_product(product, f'name "{text}" (product {product}, knowledge)', vocabulary, found)
        exposures.add(vocabulary.products[product].exposure)
    for drug in vocabulary.drugs_in_medication_text(text):
        found.setdefault(drug, f'name "{text}" (knowledge)')


def _add_product(product: str, how: str, vocabulary: Vocabulary, found: dict) -> None:
    for drug in vocabulary.products[product].ingredients:
        found.setdefault(drug, how)


def _routes(resource: dict[str, Any]) -> list[Any]:
    """Dosage.route of every dosage: dosageInstruction (orders), dosage (statements, a list;
    administrations, one object)."""
    dosages = resource.get("dosageInstruction", resource.get("dosage"))
    dosages = [dosages] if isinstance(dosages, dict) else dosages
    return [d.get("route") for d in dosages or [] if isinstance(d, dict)]


def _exposure(exposures: set[str], concepts: list[Any], vocabulary: Vocabulary) -> str:
    """A product's dose form decides; without a product, a local route or form word counts
    only when nothing names a systemic one (so a contradictory order stays systemic)."""
    if exposures:
        return "systemic" if "systemic" in exposures else "local"
    if not any(_says(c, LOCAL, vocabulary) for c in concepts):
        return "systemic"
    return "systemic" if any(_says(c, SYSTEMIC, vocabulary) for c in concepts) else "local"


def _says(concept: Any, code_set: str, vocabulary: Vocabulary) -> bool:
    codes = vocabulary.code_sets.get(code_set)
    if codes is None:
        return False
    coded = any(
        c.get("system") == codes.system and c.get("code") in codes.codes for c in codings(concept)
    )
    return coded or any(vocabulary.code_set_named_in(code_set, t) for t in texts(concept))
