"""Pages people look at: the review sheet for sign-off (/review/) and the try page (/try/).

Server-side Jinja; card text is Markdown rendered with raw HTML off, so nothing a request
carries becomes markup. Registered only when the UI setting is on."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app
from jinja2 import Environment, PackageLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

from engine import KnowledgeBase
from fhir_adapter import RequestError
from labelwise.review import LabelReview, review_sheet

from .config import ROOT
from .routes import json_body, knowledge

EXAMPLES = ROOT / "examples" / "requests"
SYNTHEA = ROOT / "tests" / "fixtures" / "external" / "synthea"
CASES = ROOT / "tests" / "cases"
OBSERVATION_KEYS = {
    "egfr": ("egfr",),
    "bloodPressure": ("blood-pressure-panel", "systolic-bp", "diastolic-bp"),
    "potassium": ("potassium",),
}
VOCLOSPORIN_DRAFT = {
    "resourceType": "MedicationRequest",
    "id": "voclosporin-draft",
    "status": "draft",
    "intent": "order",
    "medicationCodeableConcept": {"text": "voclosporin 7.9 MG Oral Capsule [Lupkynis]"},
    "dosageInstruction": [
        {
            "text": "23.7 mg (3 capsules) twice daily",
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 23.7, "unit": "mg", "code": "mg"}}],
        }
    ],
}

_markdown = MarkdownIt("commonmark", {"html": False})
ENV = Environment(
    loader=PackageLoader("cds_hooks"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
ENV.filters["markdown"] = lambda text: Markup(_markdown.render(str(text or "")))
ENV.filters["http_url"] = lambda url: url if _is_http(url) else None

bp = Blueprint("pages", __name__, static_folder="static", static_url_path="/static")
_sheets: dict[str, list[LabelReview]] = {}
_sheet_lock = threading.Lock()


def render(template: str, **names: Any) -> str:
    return ENV.get_template(template).render(**names)


def _is_http(url: Any) -> bool:
    parts = urlsplit(str(url or ""))
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def sheet(kb: KnowledgeBase) -> list[LabelReview]:
    """The review sheet for this knowledge version, built once (it runs every case)."""
    with _sheet_lock:
        if kb.version not in _sheets:
            _sheets.clear()
            _sheets[kb.version] = review_sheet(kb, CASES)
        return _sheets[kb.version]


@bp.get("/review/")
def review_index():
    return render("review_index.html", labels=sheet(knowledge()), static="/static/")


@bp.get("/review/<key>.html")
def review_label(key: str):
    label = next((x for x in sheet(knowledge()) if x.key == key), None)
    if label is None:
        abort(404, f"no label '{key}' in the knowledge")
    return render("review_label.html", label=label, static="/static/")


@bp.get("/try/")
def try_page():
    jwt_on = bool(current_app.config["JWT_ISSUERS"])
    return render(
        "try.html",
        static="/static/",
        jwt_on=jwt_on,
        services=list(knowledge().services.values()),
        examples=sorted(p.name for p in EXAMPLES.glob("*.json")),
        patients=sorted(p.name for p in SYNTHEA.glob("*.json")),
    )


@bp.get("/try/examples/<name>")
def example(name: str):
    return json.loads(_listed(EXAMPLES, name).read_text(encoding="utf-8"))


@bp.get("/try/synthea/<name>")
def synthea(name: str):
    bundle = json.loads(_listed(SYNTHEA, name).read_text(encoding="utf-8"))
    return synthea_request(knowledge(), bundle)


@bp.post("/try/cards")
def cards_fragment():
    """Cards JSON (as the service answered) -> the HTML an EHR would show."""
    body = json_body()
    cards = body.get("cards") if isinstance(body, dict) else None
    if not isinstance(cards, list) or not all(isinstance(c, dict) for c in cards):
        raise RequestError("'cards' must be a list of card objects")
    try:
        return render("cards.html", cards=cards, interactive=True)
    except (TypeError, AttributeError, ValueError) as error:
        raise RequestError("'cards' are not CDS Hooks cards") from error


def _listed(folder: Path, name: str) -> Path:
    """Only a file the folder lists: a name never becomes a path of the caller's choosing."""
    if name not in {p.name for p in folder.glob("*.json")}:
        abort(404, f"no file '{name}' to try")
    return folder / name


def synthea_request(kb: KnowledgeBase, bundle: dict[str, Any]) -> dict[str, Any]:
    """An order-sign request for a Synthea patient with a draft voclosporin order."""
    by_type: dict[str, list[dict]] = {}
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        by_type.setdefault(resource["resourceType"], []).append(resource)
    patient = by_type["Patient"][0]
    prefetch = {
        "patient": patient,
        "medications": _searchset(by_type.get("MedicationRequest", [])),
        "conditions": _searchset(by_type.get("Condition", [])),
        "allergies": _searchset(by_type.get("AllergyIntolerance", [])),
        "immunizations": _searchset(by_type.get("Immunization", [])),
        "childPugh": _searchset([]),
    }
    for key, sets in OBSERVATION_KEYS.items():
        codes = set().union(*(kb.vocabulary.code_sets[s].codes for s in sets))
        prefetch[key] = _searchset([o for o in by_type.get("Observation", []) if _codes(o) & codes])
    draft = {**VOCLOSPORIN_DRAFT, "subject": {"reference": f"Patient/{patient['id']}"}}
    context = {
        "patientId": patient["id"],
        "userId": "Practitioner/try-page",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
    }
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch,
    }


def _codes(resource: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in resource.get("code", {}).get("coding", [])}


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def write_review(labels: list[LabelReview], out: Path) -> list[Path]:
    """The review sheet as static files: index.html, one page per label, the stylesheet."""
    (out / "static").mkdir(parents=True, exist_ok=True)
    stylesheet = Path(__file__).with_name("static") / "style.css"
    (out / "static" / "style.css").write_bytes(stylesheet.read_bytes())
    pages = {out / "index.html": render("review_index.html", labels=labels, static="static/")}
    for label in labels:
        pages[out / f"{label.key}.html"] = render(
            "review_label.html", label=label, static="static/"
        )
    for path, html in pages.items():
        path.write_text(html, encoding="utf-8")
    return sorted(pages)
