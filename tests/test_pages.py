"""The review sheet (/review/, `labelwise review`) and the try page (/try/), through Flask."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from cds_hooks import ConfigError, create_app
from cds_hooks.config import load_config
from cds_hooks.pages import EXAMPLES, SYNTHEA
from conftest import PINNED_NOW
from engine import load_knowledge
from labelwise.__main__ import main
from labelwise.review import condition_text, review_sheet

LABEL_PAGE = "/review/lupkynis-label.html"


class Tags(HTMLParser):
    """Every start tag with its attributes, so tests check markup rather than substrings."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def having(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in attrs]


def statement_chunks(html: str) -> dict[str, str]:
    """The HTML of each statement's section on a label page, by statement id."""
    parts = re.split(r'(?=<section class="statement")', html)
    found = {}
    for part in parts[1:]:
        match = re.search(r'data-statement="([^"]+)"', part)
        found[match.group(1)] = part.split('<section class="declined"')[0]
    return found


def test_the_review_sheet_lists_every_statement_of_every_label(client, kb):
    index = client.get("/review/")
    assert index.status_code == 200
    links = [a["href"] for a in Tags(index.text).having("href") if a["href"].endswith(".html")]
    assert links == ["lupkynis-label.html"]
    chunks = statement_chunks(client.get(f"/review/{links[0]}").text)
    assert sorted(chunks) == sorted(kb.statements)


def test_every_statement_shows_its_rules_each_with_a_card_rendered_from_a_case(client, kb):
    chunks = statement_chunks(client.get(LABEL_PAGE).text)
    for rule in kb.rules.values():
        chunk = chunks[rule.cites]
        rule_part = chunk.split(f'data-rule="{rule.id}"')[1].split('<div class="rule"')[0]
        assert '<article class="card card-' in rule_part, rule.id
        assert "Rendered from case" in rule_part, rule.id


def test_the_strong_inhibitor_rule_shows_its_critical_card_cases_and_suggestion(client):
    chunk = statement_chunks(client.get(LABEL_PAGE).text)["ci-strong-cyp3a4-inhibitor"]
    assert 'data-indicator="critical"' in chunk
    assert "Remove the draft order for" in chunk
    assert "Benefit outweighs risk for this patient" in chunk  # an override reason offered
    assert "interactions/" in chunk and "Cases that keep it silent" in chunk


def test_a_site_setting_carries_an_unverified_badge_and_a_label_value_does_not(client):
    page = client.get(LABEL_PAGE).text

    def row(key: str) -> str:
        return re.search(rf"<tr><td><code>{key}</code>.*?</tr>", page, re.S).group()

    assert "unverified" in row("recent-max-age-days")
    assert "unverified" not in row("bp-systolic-max")


def test_the_sign_off_block_has_a_decision_for_every_rule(client, kb):
    tags = Tags(client.get(LABEL_PAGE).text)
    decisions = {a["name"] for a in tags.having("name") if a["name"].startswith("decision-")}
    assert decisions == {f"decision-{rule_id}" for rule_id in kb.rules}
    assert {"reviewer", "review-date"} <= {a["id"] for a in tags.having("id")}


def test_a_statement_no_rule_cites_is_listed_as_not_encoded(knowledge_copy, client):
    with (knowledge_copy / "drugs" / "voclosporin.ttl").open("a") as ttl:
        ttl.write(
            '\nkb:overdose a lw:Precaution ; lw:labelSection "10" ;'
            ' lw:statedIn kb:lupkynis-label ; lw:text "Overdose: supportive care." .\n'
        )
    (label,) = review_sheet(load_knowledge(knowledge_copy), None)
    assert [s.id for s in label.not_encoded] == ["overdose"]
    assert label.statements[-1].id == "overdose"  # section 10 sorts after 8.7


def test_the_condition_is_shown_as_written_in_either_rule_form():
    mapping = {"when": {"all": [{"v": {"kind": "medication", "drug": "voclosporin"}}]}}
    assert condition_text(mapping) == "all:\n- v:\n    kind: medication\n    drug: voclosporin"
    text = {"when": ["starting", "bp: blood-pressure.systolic > bp-systolic-max"]}
    assert condition_text(text) == "starting\nbp: blood-pressure.systolic > bp-systolic-max"


def test_labelwise_review_writes_an_index_one_page_per_label_and_its_stylesheet(tmp_path):
    assert main(["review", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.html",
        "lupkynis-label.html",
        "static",
    ]
    assert (tmp_path / "static" / "style.css").is_file()
    page = (tmp_path / "lupkynis-label.html").read_text()
    assert 'href="static/style.css"' in page
    sources = [a.get("src") or a.get("href") for t, a in Tags(page).tags if t in ("script", "link")]
    assert not [s for s in sources if s and "//" in s]  # nothing from another host: works offline


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_card_text_from_a_request_is_never_rendered_as_markup(client):
    card = {
        "uuid": "c1",
        "indicator": "critical",
        "summary": HOSTILE,
        "detail": f"**bold** {HOSTILE} [link](javascript:alert(3))",
        "source": {"label": "evil", "url": "javascript:alert(4)"},
        "links": [{"label": "x", "url": "javascript:alert(5)", "type": "absolute"}],
        "suggestions": [{"label": HOSTILE, "uuid": "s1"}],
        "overrideReasons": [{"system": "s", "code": "c", "display": HOSTILE}],
    }
    response = client.post("/try/cards", json={"cards": [card]})
    assert response.status_code == 200
    tags = Tags(response.text)
    assert {t for t, _ in tags.tags} <= {
        "p", "article", "h3", "span", "div", "strong", "a", "button", "form", "label",
        "select", "option", "input", "ul", "li",
    }  # fmt: skip
    assert not [a for a in tags.having("href") if "javascript" in a["href"]]
    assert not tags.having("onerror")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<strong>bold</strong>" in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"cards": "no"},
        {"cards": [1]},
        {"cards": [{"extension": {"org.labelwise.explanation": {"facts": 5}}}]},
        {"cards": [{"extension": {"org.labelwise.explanation": {"facts": [{"values": [1]}]}}}]},
    ],
)
def test_what_is_not_a_list_of_cards_gets_a_400_outcome(client, body):
    response = client.post("/try/cards", json=body)
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"


def test_every_example_request_loads_as_written(client):
    names = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert len(names) >= 5
    for name in names:
        assert client.get(f"/try/examples/{name}").json == json.loads((EXAMPLES / name).read_text())
    assert client.get("/try/examples/nothing.json").status_code == 404


def test_a_synthea_patient_with_a_draft_voclosporin_order_gets_cards(client):
    name = sorted(p.name for p in SYNTHEA.glob("*.json"))[0]
    request = client.get(f"/try/synthea/{name}").json
    assert request["context"]["draftOrders"]["entry"][0]["resource"]["status"] == "draft"
    response = client.post("/cds-services/voclosporin-order-sign", json=request)
    assert response.status_code == 200
    rules = {c["extension"]["org.labelwise.explanation"]["ruleId"] for c in response.json["cards"]}
    assert "course.initiation-counselling" in rules


def test_the_try_page_offers_examples_patients_and_every_service(client, kb):
    tags = Tags(client.get("/try/").text)
    values = {a.get("value") for t, a in tags.tags if t == "option"}
    assert "order-sign-voclosporin-with-ketoconazole.json" in values
    assert set(kb.services) <= values
    assert {a["for"] for a in tags.having("for")} >= {"example", "patient", "request", "service"}


def test_the_pages_are_off_when_ui_is_0(tmp_path):
    app = create_app(
        {"UI": "0", "RELOAD_SECONDS": 0, "DATABASE_URL": f"sqlite:///{tmp_path / 'ui.db'}"}
    )
    client = app.test_client()
    for path in ("/review/", "/try/", "/static/style.css"):
        assert client.get(path).status_code == 404
    assert client.get("/cds-services").status_code == 200


def test_a_ui_setting_that_is_not_a_switch_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("LABELWISE_UI", "maybe")
    with pytest.raises(ConfigError, match="^LABELWISE_UI: "):
        load_config()


def test_the_try_page_says_it_is_off_when_client_jwt_is_required(tmp_path):
    jwks = "https://ehr.example.org/jwks.json"  # fetched only when a token arrives
    app = create_app(
        {
            "NOW": PINNED_NOW,
            "RELOAD_SECONDS": 0,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'jwt.db'}",
            "JWT_ISSUERS": {"https://ehr.example.org": {"jwks_url": jwks}},
            "JWT_AUDIENCE_BASE": "https://cds.example.org",
        }
    )
    page = app.test_client().get("/try/").text
    assert "The try page is off" in page and "client JWT" in page
    assert "try.js" not in page and 'id="try-form"' not in page
