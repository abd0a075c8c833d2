"""Settings are checked at start-up: a bad one stops the process with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cds_hooks import ConfigError, create_app
from cds_hooks.config import load_config
from conftest import ROOT


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LABELWISE_NOW", "tomorrow"),
        ("LABELWISE_JWT_ISSUERS", "{not json"),
        ("LABELWISE_JWT_ISSUERS", '["https://ehr.example.org"]'),
        ("LABELWISE_JWT_ISSUERS", '{"https://ehr.example.org": {}}'),
        ("LABELWISE_FHIR_TIMEOUT", "-1"),
        ("LABELWISE_FHIR_SERVERS", "ftp://ehr.example.org/fhir"),
        ("LABELWISE_FHIR_SERVERS", "https://ehr.example.org/fhir?x=1"),
        ("LABELWISE_MAX_CONTENT_LENGTH", "lots"),
        ("LABELWISE_KNOWLEDGE_DIR", "/no/such/folder"),
        ("LABELWISE_FHIR_SERVER", "https://ehr.example.org/fhir"),
        ("DATABASE_URL", "mysql://db/labelwise"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(raised.value).startswith(f"{variable}: ")


def test_jwt_issuers_need_the_external_audience_base():
    issuers = {"https://ehr.example.org": {"jwks_url": "https://ehr.example.org/jwks.json"}}
    with pytest.raises(ConfigError, match="^LABELWISE_JWT_AUDIENCE_BASE: required"):
        create_app({"RELOAD_SECONDS": 0, "JWT_ISSUERS": issuers})


def test_good_settings_are_parsed_into_typed_values(monkeypatch):
    monkeypatch.setenv("LABELWISE_NOW", "2026-11-01")
    monkeypatch.setenv("LABELWISE_FHIR_SERVERS", "https://a.example.org/fhir/, http://b:8080/r4")
    monkeypatch.setenv("LABELWISE_FHIR_TIMEOUT", "1.5")
    config = load_config()
    assert config["NOW"] == "2026-11-01"
    assert config["FHIR_SERVERS"] == ["https://a.example.org/fhir", "http://b:8080/r4"]
    assert config["FHIR_TIMEOUT"] == 1.5


def test_serve_refuses_to_start_with_one_line_naming_the_setting(monkeypatch):
    monkeypatch.setenv("LABELWISE_NOW", "tomorrow")
    done = subprocess.run(
        [sys.executable, "-m", "labelwise", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("labelwise: refusing to start: LABELWISE_NOW: ")
