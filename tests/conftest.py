from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_hooks import create_app
from engine import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
SHARED = ROOT.parent / "shared"
EXTERNAL = SHARED / "fixtures" / "external"
PINNED_NOW = "2026-11-01"  # the date the examples and cases are written against


@pytest.fixture(scope="session")
def kb():
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="session")
def app():
    return create_app({"TESTING": True, "NOW": PINNED_NOW, "RELOAD_SECONDS": 0})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def knowledge_copy(tmp_path: Path) -> Path:
    """A private copy of knowledge/ that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def external(*parts: str) -> dict:
    return json.loads((EXTERNAL.joinpath(*parts)).read_text(encoding="utf-8"))
