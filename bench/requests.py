"""Bench requests, built with the case builder: a typical order-sign and a large patient-view."""

from __future__ import annotations

from labelwise.cases import hook_request

VOC = {"id": "voc", "text": "voclosporin 7.9 MG Oral Capsule", "dose": "23.7 mg", "per_day": 2}
OTHER_MEDS = [
    {"id": f"med-{i}", "text": text, "dose": "10 mg", "per_day": 1, "authored": "2026-05-01"}
    for i, text in enumerate(
        [
            "mycophenolate mofetil 500 MG",
            "prednisone 5 MG",
            "lisinopril 10 MG",
            "amlodipine 5 MG",
            "atorvastatin 20 MG",
            "hydroxychloroquine 200 MG",
            "calcium carbonate 500 MG",
            "vitamin D3",
            "omeprazole 20 MG",
            "metformin 500 MG",
            "fluconazole 150 MG Oral Tablet",
        ]
    )
]


def order_sign() -> dict:
    """About 45 resources: a voclosporin draft, 11 medications, labs, conditions, allergies."""
    case = {
        "patient": {"birthDate": "1985-04-12", "gender": "female"},
        "draftOrders": [VOC],
        "medications": OTHER_MEDS,
        "egfr": [
            {"id": f"e{i}", "value": 80 - i, "date": f"2026-{i + 1:02d}-15"} for i in range(10)
        ],
        "bloodPressure": [
            {"id": f"b{i}", "systolic": 130, "diastolic": 85, "date": f"2026-{i + 1:02d}-15"}
            for i in range(10)
        ],
        "potassium": [
            {"id": f"k{i}", "value": 4.5, "date": f"2026-{i + 1:02d}-15", "high": 5.1}
            for i in range(5)
        ],
        "conditions": [
            {"id": "ln", "text": "Lupus nephritis", "snomed": "68815009"},
            {"id": "htn", "text": "Essential hypertension"},
        ],
        "allergies": [
            {"id": "a1", "text": "Penicillin", "criticality": "high"},
            {"id": "a2", "text": "Peanut"},
        ],
    }
    return hook_request(case, "order-sign")


def patient_view_2000_egfr() -> dict:
    case = {
        "patient": {"birthDate": "1985-04-12", "gender": "female"},
        "medications": [dict(VOC, id="voc-active", authored="2021-01-10")],
        "egfr": [
            {
                "id": f"e{i}",
                "value": 60 + (i % 30),
                "date": f"{2020 + i // 365}-{(i // 31) % 12 + 1:02d}-{i % 28 + 1:02d}",
            }
            for i in range(2000)
        ],
    }
    return hook_request(case, "patient-view")
