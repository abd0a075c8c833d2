"""Findings -> CDS Hooks 2.0 cards, from the knowledge's card templates."""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from typing import Any

from engine import Finding, KnowledgeBase
from engine.cards import Action, CardTemplate
from engine.model import Fact, section_order
from engine.vocabulary import MonitoringItem, Regimen

SUMMARY_LIMIT = 140
UCUM = "http://unitsofmeasure.org"
EXPLANATION = "org.labelwise.explanation"
DAILY = {1: "once daily", 2: "twice daily"}


def render_cards(
    kb: KnowledgeBase,
    findings: list[Finding],
    resources: dict[str, dict[str, Any]],
    patient_id: str,
) -> list[dict[str, Any]]:
    resources = {**resources, "$patient": patient_id}
    return [_card(kb, kb.cards[f.rule_id], f, resources) for f in grouped(kb, findings)]


def grouped(kb: KnowledgeBase, findings: list[Finding]) -> list[Finding]:
    """One finding per problem: findings of a rule whose card groups on an alias, alike but for
    that alias (several NSAIDs, say), become one finding holding each of those facts."""
    merged: dict[tuple, Finding] = {}
    for finding in findings:
        alias = kb.cards[finding.rule_id].group
        key = (finding.rule_id, tuple((a, f.ref) for a, f in finding.facts if a != alias))
        if alias is None:
            merged[(finding,)] = finding
        elif key in merged:
            extra = tuple((a, f) for a, f in finding.facts if a == alias)
            merged[key] = replace(merged[key], facts=merged[key].facts + extra)
        else:
            merged[key] = finding
    return list(merged.values())


def _names(kb: KnowledgeBase, finding: Finding) -> dict[str, Any]:
    views = [(alias, fact, _fact_view(fact)) for alias, fact in finding.facts]
    facts: dict[str, dict[str, Any]] = {}
    for alias, _, view in views:
        if alias in facts:  # a grouped card: the alias names every fact it holds
            names = list(dict.fromkeys(facts[alias]["names"] + view["names"]))
            view = {**facts[alias], "names": names, "name": _and(names)}
        facts[alias] = view
    focus = next((view for _, fact, view in views if fact.focus), None)
    return {
        **facts,
        "focus": focus,
        "facts": [view for _, fact, view in views if fact.ref],  # the chart entries used
        "params": kb.params,
        "regimens": kb.regimens,
        "drugs": kb.vocabulary.drugs,
        "label": kb.label,
        "sections": finding.sections,
        "cited": [
            f"§{s}" if s[0].isdigit() else s for s in sorted(finding.sections, key=section_order)
        ],
        "statement": finding.statement,
    }


def _fact_view(fact: Fact) -> dict[str, Any]:
    view = {"name": None, "status": None, **fact.data, "kind": fact.kind}
    return {**view, "ref": fact.ref or "not recorded", "names": [view["name"]]}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _card(kb, template: CardTemplate, finding: Finding, resources: dict) -> dict[str, Any]:
    names = _names(kb, finding)
    detail = template.detail.render(names).strip()
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _fit(template.summary.render(names).strip()),
        "indicator": template.indicator,
        "detail": f"{detail}\n\n{kb.layout.detail_footer.render(names).strip()}",
        "source": {"label": kb.layout.source_label.render(names), "url": kb.label.url},
        "overrideReasons": [dict(r) for r in template.override_reasons],
        "extension": {EXPLANATION: _explanation(kb, finding)},
    }
    suggestions = [
        s
        for s in (_suggestion(kb, x, finding, names, resources) for x in template.suggestions)
        if s
    ]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    return card


def _fit(summary: str) -> str:
    return summary if len(summary) < SUMMARY_LIMIT else summary[: SUMMARY_LIMIT - 2] + "…"


def _explanation(kb: KnowledgeBase, finding: Finding) -> dict[str, Any]:
    return {
        "ruleId": finding.rule_id,
        "labelSections": list(finding.sections),
        "knowledgeVersion": kb.version,
        "facts": [
            {"alias": alias, "kind": f.kind, "reference": f.ref or "none", "values": _values(f)}
            for alias, f in finding.facts
        ],
    }


def _values(fact: Fact) -> dict[str, Any]:
    return {k: v for k, v in fact.data.items() if v not in (None, "", [], {})} or {
        "kind": fact.kind
    }


def _suggestion(kb, suggestion, finding: Finding, names: dict, resources: dict) -> dict | None:
    actions = []
    for action in suggestion.actions:
        fact = finding.focus if action.target == "focus" else finding.fact(action.target)
        built = _action(kb, action, fact, names, resources)
        if built is None:
            return None
        actions.append(built)
    return {
        "label": suggestion.label.render(names),
        "uuid": str(uuid.uuid4()),
        "isRecommended": suggestion.recommended,  # optional in the spec, required by HealthChain
        "actions": actions,
    }


def _action(kb, action: Action, fact: Fact | None, names: dict, resources: dict) -> dict | None:
    """Delete a draft order; change a MedicationRequest to a regimen (an update of a draft, a new
    draft order replacing an active one); or create an order."""
    if fact is None:
        return None
    base = {"type": action.type, "description": action.description.render(names)}
    if action.type == "create":
        item = kb.monitoring[action.service_request.render(names)]
        return {**base, "resource": service_request(kb, item, resources["$patient"])}
    if not fact.ref:
        return None
    if action.type == "delete":
        return {**base, "resourceId": fact.ref} if fact.focus else None
    resource = resources.get(fact.ref)
    if resource is None:
        return None
    dose = float(action.dose_mg.render(names)) if action.dose_mg else None
    dosage = regimen_dosage(kb.regimens[action.regimen], dose)
    if resource.get("status") == "draft":
        return {**base, "resource": {**copy.deepcopy(resource), "dosageInstruction": dosage}}
    return {**base, "type": "create", "resource": replacement(resource, fact.ref, dosage)}


def service_request(kb: KnowledgeBase, item: MonitoringItem, patient_id: str) -> dict[str, Any]:
    system = kb.vocabulary.code_sets[item.code_set].system
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": item.order_code}], "text": item.name},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def replacement(resource: dict[str, Any], ref: str, dosage: list[dict]) -> dict[str, Any]:
    """A new draft order of the same medicine with `dosage`, replacing the order `ref` (an
    active order is changed by a new order, never edited in place)."""
    kept = ("medicationCodeableConcept", "medicationReference", "contained", "subject")
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        **{k: copy.deepcopy(resource[k]) for k in kept if k in resource},
        "dosageInstruction": dosage,
        "priorPrescription": {"reference": ref},
    }


def regimen_dosage(regimen: Regimen, dose_mg: float | None = None) -> list[dict[str, Any]]:
    """The regimen as FHIR dosage: one instruction when every dose is the same (n times a day),
    else one per dose as the label words it (morning, evening). No clock times are invented."""
    amounts = [dose_mg or d.amount_mg for d in regimen.doses]
    if len(set(amounts)) == 1:
        times = DAILY.get(len(amounts), f"{len(amounts)} times daily")
        text = f"{amounts[0]:g} mg {times}" if dose_mg else regimen.text
        return [_instruction(1, text, amounts[0], len(amounts))]
    return [
        _instruction(i, d.text, amount, 1)
        for i, (d, amount) in enumerate(zip(regimen.doses, amounts, strict=True), start=1)
    ]


def _instruction(sequence: int, text: str, mg: float, per_day: int) -> dict[str, Any]:
    quantity = {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}
    return {
        "sequence": sequence,
        "text": text,
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": quantity}],
    }
