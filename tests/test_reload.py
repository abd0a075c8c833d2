"""Hot reload: a valid knowledge edit takes effect without restart; an invalid one is rejected
and the previous knowledge keeps serving."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_hooks import create_app
from cds_hooks.reload import KnowledgeHolder
from conftest import KNOWLEDGE, ROOT
from engine import KnowledgeError, load_knowledge
from labelwise.__main__ import main

REQUEST = json.loads(
    (ROOT / "examples" / "requests" / "order-sign-voclosporin-with-ketoconazole.json").read_text()
)


def summary(client) -> str:
    return client.post("/cds-services/voclosporin-order-sign", json=REQUEST).json["cards"][0][
        "summary"
    ]


def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_card_text_edit_is_served_without_restart(knowledge_copy):
    app = create_app(
        {"KNOWLEDGE_DIR": str(knowledge_copy), "RELOAD_SECONDS": 0.1, "NOW": "2026-11-01"}
    )
    client = app.test_client()
    before = client.get("/healthz").json["knowledgeVersion"]
    assert summary(client).startswith("Contraindicated:")
    cards = knowledge_copy / "cards" / "interactions.yaml"
    cards.write_text(
        cards.read_text().replace(
            'summary: "Contraindicated: voclosporin', 'summary: "Do not combine: voclosporin', 1
        )
    )
    assert wait_for(lambda: client.get("/healthz").json["knowledgeVersion"] != before)
    assert summary(client).startswith("Do not combine:")
    assert client.get("/healthz").json["status"] == "ok"


def test_an_invalid_edit_is_rejected_logged_and_the_old_knowledge_keeps_serving(
    knowledge_copy, caplog
):
    app = create_app(
        {"KNOWLEDGE_DIR": str(knowledge_copy), "RELOAD_SECONDS": 0.1, "NOW": "2026-11-01"}
    )
    client = app.test_client()
    before = client.get("/healthz").json
    rules = knowledge_copy / "rules" / "interactions.yaml"
    rules.write_text(
        rules.read_text().replace("cites: ci-strong-cyp3a4-inhibitor", "cites: no-such-statement")
    )
    assert wait_for(lambda: client.get("/healthz").json["status"] == "degraded")
    health = client.get("/healthz").json
    assert health == {"status": "degraded", "knowledgeVersion": before["knowledgeVersion"]}
    assert "rules/interactions.yaml: contraindication.strong-cyp3a4-inhibitor" in caplog.text
    assert "labelwise_knowledge_reload_ok 0.0" in client.get("/metrics").get_data(as_text=True)
    assert summary(client).startswith("Contraindicated:")


def test_healthz_reports_status_and_version_only(client, kb):
    assert client.get("/healthz").json == {"status": "ok", "knowledgeVersion": kb.version}


def different_shapes(value: Any) -> list[Any]:
    """Values of every JSON type but the one `value` has."""
    shapes = {dict: {"unexpected": {"x": 1}}, list: ["a", "list"], str: "a string", int: 42}
    kind = bool if isinstance(value, bool) else type(value)
    return [shape for shape_kind, shape in shapes.items() if not issubclass(kind, shape_kind)]


def nodes(document: Any, depth: int, where: tuple = ()) -> Iterator[tuple]:
    """Paths to the nodes of a document down to `depth` levels (YAML anchors under x- aside)."""
    if where and str(where[0]).startswith("x-"):
        return
    yield where
    if depth == 0:
        return
    items = document.items() if isinstance(document, dict) else enumerate(document)
    if isinstance(document, dict | list):
        for key, value in list(items)[:3]:  # a few siblings per level keep the table small
            yield from nodes(value, depth - 1, (*where, key))


def mutations(per_file: int = 10) -> Iterator[tuple[str, tuple, Any]]:
    """(file, path, wrong value) for every knowledge YAML file: the whole file, and nodes spread
    through it down to rule conditions and card actions, replaced by a value of another shape."""
    for path in sorted(KNOWLEDGE.rglob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        inner = []
        for where in nodes(document, depth=6):
            node = document
            for step in where:
                node = node[step]
            inner += [(where, wrong) for wrong in different_shapes(node)]
        spread = inner[:: max(1, len(inner) // per_file)]
        file = path.relative_to(KNOWLEDGE).as_posix()
        yield from ((file, where, wrong) for where, wrong in spread if where)
        yield from ((file, (), wrong) for wrong in different_shapes(document))


def replaced(document: Any, where: tuple, value: Any) -> Any:
    if not where:
        return value
    copy = json.loads(json.dumps(document))
    target = copy
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return copy


def still_valid(file: str, where: tuple, wrong: Any) -> bool:
    """A list of words as a field's type in facts.yaml is an allowed-values type, not an error."""
    is_type = file == "facts.yaml" and where[-1:] == ("type",)
    return is_type and isinstance(wrong, list) and all(isinstance(w, str) for w in wrong)


MUTATIONS = [m for m in mutations() if not still_valid(*m)]


def test_the_shape_table_covers_every_knowledge_yaml_file_deeply():
    files = {file for file, _, _ in MUTATIONS}
    assert files == {p.relative_to(KNOWLEDGE).as_posix() for p in KNOWLEDGE.rglob("*.yaml")}
    assert max(len(where) for _, where, _ in MUTATIONS) >= 5


@pytest.mark.parametrize("file", sorted({file for file, _, _ in MUTATIONS}))
def test_a_knowledge_file_of_the_wrong_shape_fails_with_a_named_knowledge_error(
    file, knowledge_copy
):
    target = knowledge_copy / file
    original = yaml.safe_load(target.read_text())
    for _, where, wrong in (m for m in MUTATIONS if m[0] == file):
        target.write_text(yaml.safe_dump(replaced(original, where, wrong)))
        with pytest.raises(KnowledgeError) as raised:
            load_knowledge(knowledge_copy)
        assert raised.value.file and raised.value.node, (where, wrong)


def test_a_rules_file_that_is_a_string_is_named_by_labelwise_check(knowledge_copy, capsys):
    (knowledge_copy / "rules" / "dosing.yaml").write_text("just a sentence\n")
    assert main(["check", str(knowledge_copy)]) == 1
    out = capsys.readouterr().out
    assert "error: rules/dosing.yaml: /: line 1, column 1: 'just a sentence' is not of type" in out
    assert "Traceback" not in out


def test_a_yaml_key_that_is_not_text_is_named(knowledge_copy):
    facts = knowledge_copy / "facts.yaml"
    facts.write_text(facts.read_text() + "\non: a YAML 1.1 boolean key\n")
    with pytest.raises(KnowledgeError, match=r"\[True\]") as raised:
        load_knowledge(knowledge_copy)
    assert raised.value.file == "facts.yaml"


def test_a_wrongly_shaped_edit_leaves_the_old_knowledge_serving_and_status_degraded(
    knowledge_copy, caplog
):
    holder = KnowledgeHolder(load_knowledge(knowledge_copy))
    version = holder.kb.version
    (knowledge_copy / "cards" / "dosing.yaml").write_text("dose.above-starting-dose: 42\n")
    assert holder.reload_if_changed(knowledge_copy, logging.getLogger("test")) is False
    assert holder.kb.version == version and holder.last_error is not None
    assert "cards/dosing.yaml: dose.above-starting-dose" in caplog.text


def test_a_loader_failure_of_any_kind_still_marks_the_reload_degraded(
    knowledge_copy, monkeypatch, caplog
):
    holder = KnowledgeHolder(load_knowledge(knowledge_copy))
    monkeypatch.setattr("cds_hooks.reload.load_knowledge", lambda root: 1 / 0)
    (knowledge_copy / "facts.yaml").write_text("medication: {drug: a drug key}\n")
    assert holder.reload_if_changed(knowledge_copy, logging.getLogger("test")) is False
    assert holder.last_error == "ZeroDivisionError: division by zero"
    assert "Traceback" in caplog.text


def test_memory_stays_bounded_over_many_reloads():
    """durable-rules' C rulesets of replaced knowledge are freed (they took ~2 MiB a load)."""
    kb = load_knowledge(KNOWLEDGE)
    for _ in range(3):
        kb = load_knowledge(KNOWLEDGE)
    before = resident_mib()
    for _ in range(20):
        kb = load_knowledge(KNOWLEDGE)
    assert kb.services
    assert resident_mib() - before < 20  # ~40 MiB when they were never freed


def resident_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
