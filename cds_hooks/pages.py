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
from jinja2 import Environment, PackageLoader, TemplateError
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
DRAFT_ORDER = ROOT / "examples" / "try" / "draft-order.json"  # the order the page adds

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
    except (TypeError, AttributeError, ValueError, TemplateError) as error:
        raise RequestError("'cards' are not CDS Hooks cards") from error


def _listed(folder: Path, name: str) -> Path:
    """Only a file the folder lists: a name never becomes a path of the caller's choosing."""
    if name not in {p.name for p in folder.glob("*.json")}:
        abort(404, f"no file '{name}' to try")
    return folder / name


def synthea_request(kb: KnowledgeBase, bundle: dict[str, Any]) -> dict[str, Any]:
    """An order-sign request for a Synthea patient with the example draft order: each prefetch
    key of the order-sign service answered from the bundle as its template would be."""
    patient = next(e["resource"] for e in bundle["entry"] if _type(e["resource"]) == "Patient")
    service = next(s for s in kb.services.values() if s.hook == "order-sign")
    resources = [e["resource"] for e in bundle.get("entry", [])]
    prefetch = {key: _answer(template, resources) for key, template in service.prefetch.items()}
    draft = json.loads(DRAFT_ORDER.read_text(encoding="utf-8"))
    draft["subject"] = {"reference": f"Patient/{patient['id']}"}
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


def _answer(template: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """What a FHIR server would answer the template for one patient's bundle: `Type/{{id}}` is
    the resource; `Type?...` the resources of that type, filtered by `code=` or `code:text=`."""
    path, _, query = template.partition("?")
    kind = path.split("/")[0]
    found = [r for r in resources if _type(r) == kind]
    if not query:
        return found[0]
    params = dict(p.partition("=")[::2] for p in query.split("&"))
    if "code" in params:
        wanted = set(params["code"].split(","))
        found = [r for r in found if _system_codes(r) & wanted]
    if "code:text" in params:
        text = params["code:text"].lower()
        found = [r for r in found if text in json.dumps(r.get("code", {})).lower()]
    return _searchset(found)


def _type(resource: dict[str, Any]) -> str:
    return resource.get("resourceType", "")


def _system_codes(resource: dict[str, Any]) -> set[str]:
    codings = (resource.get("code") or {}).get("coding") or []
    return {f"{c.get('system')}|{c.get('code')}" for c in codings} | {
        c.get("code") for c in codings
    }


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
