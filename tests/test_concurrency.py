"""durable-rules' C engine is not thread-safe: concurrent requests must be serialised safely."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine import Fact, evaluate

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "requests").glob("*.json"))
SERVICE_BY_HOOK = {
    "order-sign": "voclosporin-order-sign",
    "order-select": "voclosporin-order-select",
    "patient-view": "voclosporin-patient-view",
}


def answer(app, body: dict) -> tuple[int, list[tuple[str, str]]]:
    response = app.test_client().post(f"/cds-services/{SERVICE_BY_HOOK[body['hook']]}", json=body)
    cards = response.json["cards"]
    return response.status_code, sorted(
        (c["extension"]["org.labelwise.explanation"]["ruleId"], c["summary"]) for c in cards
    )


def test_eight_threads_posting_concurrently_get_the_serial_answers(app):
    bodies = [json.loads(p.read_text()) for p in EXAMPLES]
    serial = [answer(app, b) for b in bodies]
    work = [i % len(bodies) for i in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: (i, answer(app, bodies[i])), work))
    assert all(result == serial[i] for i, result in results)
    assert any(cards for _, cards in serial)


def test_concurrent_evaluations_keep_their_sessions_apart(kb):
    voc = Fact(
        "medication",
        "MedicationRequest/v",
        {"drug": "voclosporin", "classes": [], "classified": False, "dose_known": False},
        True,
    )
    keto = Fact(
        "medication",
        "MedicationRequest/k",
        {
            "drug": "ketoconazole",
            "classes": ["strong-cyp3a4-inhibitor"],
            "classified": True,
            "dose_known": False,
        },
    )

    def run(i: int) -> set[str]:
        facts = [voc, keto] if i % 2 else [voc]
        return {f.rule_id for f in evaluate(kb, "voclosporin-order-sign", facts)}

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(400)))
    for i, fired in enumerate(results):
        assert ("contraindication.strong-cyp3a4-inhibitor" in fired) == bool(i % 2)
