"""The condition language: a mistake in a rule file stops loading with a message naming the
file, the rule (or named condition), line and column, with the source line and a caret."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import KNOWLEDGE
from engine import KnowledgeError, load_knowledge
from engine.compile_rules import Contract, compile_pattern
from engine.conditions import parse
from engine.knowledge import vocabulary_keys
from engine.rules_host import RuleHost
from engine.rulesets import load_rules
from labelwise.__main__ import main

BP = "rules/blood-pressure.yaml"
STARTING = "voclosporin: medication where drug == voclosporin and status == draft"


@pytest.fixture(scope="module")
def contract(kb) -> Contract:
    return Contract(kb.fact_kinds, kb.params, vocabulary_keys(kb.vocabulary, kb.monitoring))


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    shutil.copytree(KNOWLEDGE / "rules", tmp_path / "rules")
    return tmp_path


def load_after_edit(root: Path, kb, contract, file: str, old: str, new: str) -> KnowledgeError:
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError) as error:
        load_rules(root, contract, set(kb.statements))
    return error.value


def caret_column(message: str) -> int:
    *_, source, caret = message.split("\n")
    assert caret.strip() == "^"
    return len(caret) - len("    ^") + 1


def test_a_typo_in_a_field_points_at_file_rule_line_and_column_with_a_caret(
    rules_dir, kb, contract
):
    error = load_after_edit(rules_dir, kb, contract, BP, "or diastolic >", "or diastolc >")
    assert (error.file, error.node) == (BP, "bp.do-not-initiate")
    first_line, source, _ = error.message.split("\n")
    assert first_line == (
        "line 9, column 46: unknown blood-pressure field 'diastolc'; did you mean 'diastolic'?"
        " (see knowledge/facts.yaml)"
    )
    assert source.strip().startswith("and (systolic > bp-systolic-max or diastolc")
    assert source[4 + 46 - 1 :].startswith("diastolc")
    assert caret_column(error.message) == 46


ERRORS = [
    (
        BP,
        "bp: blood-pressure where",
        "bp: blood-presure where",
        "unknown fact kind 'blood-presure'",
    ),
    (BP, "age_days <= recent", "age_days =< recent", "unexpected character '='"),
    (BP, "age_days <= recent", "age_days = recent", "unexpected character '=' (compare with ==)"),
    (
        BP,
        "or diastolic >",
        "or bp.diastolic >",
        "unexpected character '.' (write the field alone: a pattern tests one fact",
    ),
    (BP, "diastolic > bp-diastolic-max)", "diastolic > bp-diastolic-max", "ends too early"),
    (BP, "> bp-systolic-max", "> bp-systolic-maxx", "unknown parameter 'bp-systolic-maxx'"),
    (BP, "> bp-systolic-max", "> 165", "number 165 written in a rule: name a parameter"),
    (BP, "> bp-systolic-max", '> "165"', "compare blood-pressure.systolic with a parameter"),
    ("rules/_shared.yaml", "status == draft", "status == drafted", "unknown value 'drafted'"),
    ("rules/_shared.yaml", "status == draft", "status < draft", "compare it with == or != only"),
    (
        "rules/interactions.yaml",
        "contains strong-cyp3a4-inhibitor",
        "contains strong-cyp3a4",
        "unknown drug-class 'strong-cyp3a4'; did you mean 'strong-cyp3a4-inhibitor'?",
    ),
    ("rules/interactions.yaml", "classes contains", "drug contains", "drug is not a list"),
    (
        "rules/interactions.yaml",
        "where classes contains strong",
        "where not classes contains strong",
        "`not … contains` cannot be checked",
    ),
    (
        "rules/interactions.yaml",
        "where classes contains strong",
        "where classes == strong",
        "medication.classes is a list: use `contains`",
    ),
    ("rules/populations.yaml", "complete == false", "complete == no", "is true or false, not 'no'"),
    ("rules/populations.yaml", "complete == false", "missing", "is not yes/no: compare it"),
    ("rules/vaccines.yaml", "liveness == live", "liveness == alive", "one of live, not-live"),
    (
        BP,
        "      - starting-voclosporin\n      - emergency",
        "      - starting-voclosporine\n      - emergency",
        "unknown condition 'starting-voclosporine'; did you mean 'starting-voclosporin'?",
    ),
    (
        BP,
        "      - emergency: condition",
        "      - therapy: condition",
        "alias 'therapy' is bound twice in this rule",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), ERRORS)
def test_each_kind_of_mistake_stops_loading_with_a_pointed_message(
    rules_dir, kb, contract, file, old, new, expected
):
    error = load_after_edit(rules_dir, kb, contract, file, old, new)
    assert error.file == file
    assert expected in error.message
    assert error.message.startswith("line ") and caret_column(error.message) >= 1


def test_a_mistake_in_a_shared_condition_names_the_condition(rules_dir, kb, contract):
    shared = "rules/_shared.yaml"
    error = load_after_edit(rules_dir, kb, contract, shared, "status == draft", "status == drafted")
    assert error.node == "starting-voclosporin"
    line = error.message.split("\n")[1]
    assert line[4 + caret_column(error.message) - 1 :].startswith("drafted")


def test_a_rule_file_that_breaks_the_schema_names_the_rule(rules_dir, kb, contract):
    error = load_after_edit(rules_dir, kb, contract, BP, "    cites: bp-discontinue\n", "")
    assert (error.file, error.node) == (BP, "bp.discontinue")
    assert "'cites' is a required property" in error.message


def test_a_condition_defined_twice_stops_loading(rules_dir, kb, contract):
    path = rules_dir / BP
    path.write_text("conditions:\n  voclosporin:\n    - x: medication\n" + path.read_text())
    with pytest.raises(KnowledgeError, match="condition 'voclosporin' is already defined"):
        load_rules(rules_dir, contract, set(kb.statements))


def test_a_condition_may_span_several_lines_in_any_yaml_style(rules_dir, kb, contract):
    path = rules_dir / BP
    text = path.read_text().replace(
        "      - emergency: condition where topic == hypertensive-emergency",
        "      - emergency: >-\n          condition\n"
        "          where topic == hypertensive-emergence",
        1,
    )
    path.write_text(text)
    with pytest.raises(KnowledgeError) as error:
        load_rules(rules_dir, contract, set(kb.statements))
    first, source, _ = error.value.message.split("\n")
    assert first.startswith("line 17, column 26: unknown code-set 'hypertensive-emergence'")
    assert source[4 + caret_column(error.value.message) - 1 :] == "hypertensive-emergence"


def test_labelwise_check_prints_the_caret_under_the_mistake(knowledge_copy, capsys):
    path = knowledge_copy / "rules" / "_shared.yaml"
    path.write_text(path.read_text().replace("status == draft", "status == drafted", 1))
    assert main(["check", str(knowledge_copy)]) == 1
    out = capsys.readouterr().out
    assert (
        "error: rules/_shared.yaml: starting-voclosporin: line 5, column 71: unknown value" in out
    )
    assert "\n    " + " " * 70 + "^" in out


def test_an_unknown_type_in_the_fact_contract_stops_loading(knowledge_copy):
    facts = knowledge_copy / "facts.yaml"
    facts.write_text(
        facts.read_text().replace("{type: number, about: latest eGFR}", "{type: numbr, about: x}")
    )
    with pytest.raises(KnowledgeError, match="unknown field type 'numbr'") as error:
        load_knowledge(knowledge_copy)
    assert (error.value.file, error.value.node) == ("facts.yaml", "egfr-course.current")


def compiled(contract: Contract, text: str) -> dict:
    return compile_pattern(parse(text), contract)


def test_not_turns_comparisons_round_and_and_into_or(contract, kb):
    adult = kb.params["adult-age-years"]
    assert compiled(contract, "patient where not (age < adult-age-years and sex == female)") == {
        "$and": [
            {"kind": "patient"},
            {"$or": [{"$gte": {"age": adult}}, {"$neq": {"sex": "female"}}]},
        ]
    }
    assert compiled(contract, "patient where not not age < adult-age-years") == {
        "$and": [{"kind": "patient"}, {"$lt": {"age": adult}}]
    }


def test_a_yes_no_field_alone_means_true_and_with_not_means_false(contract):
    assert compiled(contract, "monitoring where is_due") == {
        "$and": [{"kind": "monitoring"}, {"is_due": True}]
    }
    assert compiled(contract, "monitoring where not is_due") == {
        "$and": [{"kind": "monitoring"}, {"is_due": False}]
    }


def test_enum_values_that_read_like_booleans_stay_the_text_the_adapter_sends(contract):
    assert compiled(contract, "potassium where above_range == true") == {
        "$and": [{"kind": "potassium"}, {"above_range": "true"}]
    }


def test_and_binds_tighter_than_or(contract):
    assert compiled(contract, "child-pugh where class == A or class == B and name == x") == {
        "$and": [
            {"kind": "child-pugh"},
            {"$or": [{"class": "A"}, {"$and": [{"class": "B"}, {"name": "x"}]}]},
        ]
    }


def test_existence_tests_match_facts_with_and_without_the_field(contract):
    rules = {
        "has-dose": {"all": [{"m": compiled(contract, "medication where dose_mg is defined")}]},
        "no-dose": {"all": [{"m": compiled(contract, "medication where not dose_mg is defined")}]},
    }
    host = RuleHost({"s": rules})
    with_dose = {"kind": "medication", "drug": "voclosporin", "dose_mg": 7.9}
    without = {"kind": "medication", "drug": "voclosporin", "dose_known": False}
    assert [rule for rule, _ in host.run("s", [with_dose])] == ["has-dose"]
    assert [rule for rule, _ in host.run("s", [without])] == ["no-dose"]


def test_check_compiled_prints_every_rule_as_written_and_compiled(kb, capsys):
    assert main(["check", "--compiled"]) == 0
    out = capsys.readouterr().out
    assert out.count("compiled (durable-rules JSON):") == len(kb.rules)
    assert "precaution.hyperkalemia (rules/interactions.yaml, cites hyperkalemia)" in out


def test_explain_compiled_names_close_rules_when_the_id_is_unknown(capsys):
    assert main(["explain", "--compiled", "bp.do-not-initiat"]) == 1
    assert "did you mean: bp.do-not-initiate" in capsys.readouterr().err
    assert main(["explain"]) == 2
