"""Findings -> CDS Hooks 2.0 cards, from the knowledge's card templates."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from engine import Finding, KnowledgeBase
from engine.cards import Action, CardTemplate
from engine.model import Fact
from engine.vocabulary import MonitoringItem, Regimen

SUMMARY_LIMIT = 140
UCUM = "http://unitsofmeasure.org"
EXPLANATION = "org.labelwise.explanation"


def render_cards(
    kb: KnowledgeBase,
    findings: list[Finding],
    resources: dict[str, dict[str, Any]],
    patient_id: str,
) -> list[dict[str, Any]]:
    return [
        _card(kb, kb.cards[f.rule_id], f, {**resources, "$patient": patient_id}) for f in findings
    ]


def _names(kb: KnowledgeBase, finding: Finding) -> dict[str, Any]:
    facts = {alias: _fact_view(f) for alias, f in finding.facts}
    focus = finding.focus
    return {
        **facts,
        "focus": _fact_view(focus) if focus else None,
        "facts": list(facts.values()),
        "params": kb.params,
        "regimens": kb.regimens,
        "drugs": kb.vocabulary.drugs,
        "label": kb.label,
        "sections": finding.sections,
        "statement": finding.statement,
    }


def _fact_view(fact: Fact) -> dict[str, Any]:
    return {
        "name": None,
        "status": None,
        **fact.data,
        "ref": fact.ref or "not recorded",
        "kind": fact.kind,
    }


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
    out = {"label": suggestion.label.render(names), "uuid": str(uuid.uuid4()), "actions": actions}
    if suggestion.recommended:
        out["isRecommended"] = True
    return out


def _action(kb, action: Action, fact: Fact | None, names: dict, resources: dict) -> dict | None:
    """Delete a draft order, update a MedicationRequest to a regimen, or create an order."""
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
    return {**base, "resource": with_regimen(resource, kb.regimens[action.regimen], dose)}


def service_request(kb: KnowledgeBase, item: MonitoringItem, patient_id: str) -> dict[str, Any]:
    system = kb.vocabulary.code_sets[item.code_set].system
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": item.order_code}], "text": item.name},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def with_regimen(
    resource: dict[str, Any], regimen: Regimen, dose_mg: float | None = None
) -> dict[str, Any]:
    updated = copy.deepcopy(resource)
    updated["dosageInstruction"] = [
        {
            "sequence": i,
            "text": f"{dose_mg} mg at {dose.time_of_day[:5]}" if dose_mg else dose.text,
            "timing": {
                "repeat": {
                    "frequency": 1,
                    "period": 1,
                    "periodUnit": "d",
                    "timeOfDay": [dose.time_of_day],
                }
            },
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": dose_mg or dose.amount_mg,
                        "unit": "mg",
                        "system": UCUM,
                        "code": "mg",
                    }
                }
            ],
        }
        for i, dose in enumerate(regimen.doses, start=1)
    ]
    return updated
