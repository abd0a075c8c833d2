"""The knowledge YAML files, read and shape-checked first, before the slower Turtle and SHACL
work: each file has a JSON Schema, and a file of the wrong shape (a list where a mapping belongs,
a number where text belongs) fails to load naming the file and the node. Meaning (known ids,
parameters, templates) is checked by the loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .model import KnowledgeError

_TEXT = {"type": "string", "minLength": 1}
_TEXTS = {"type": "array", "items": _TEXT}
# Top-level keys starting x- hold YAML anchors to reuse (services.yaml's x-prefetch).
_ANCHORS = {"^x-": {}}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: several times faster


def _mapping(properties: dict, required: tuple[str, ...] = (), extra: Any = False) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": extra,
    }


_ACTION = _mapping(
    {
        "type": _TEXT,
        "target": _TEXT,
        "description": _TEXT,
        "regimen": _TEXT,
        "dose_mg": _TEXT,
        "service_request": _TEXT,
    },
    ("type", "target", "description"),
)
_SUGGESTION = _mapping(
    {
        "label": _TEXT,
        "recommended": {"type": "boolean"},
        "actions": {"type": "array", "minItems": 1, "items": _ACTION},
    },
    ("label", "actions"),
)
CARDS = {
    "type": "object",
    "additionalProperties": _mapping(
        {
            "indicator": _TEXT,
            "summary": _TEXT,
            "detail": _TEXT,
            "override_reasons": _TEXT,
            "group": _TEXT,
            "suggestions": {"type": "array", "items": _SUGGESTION},
        },
        ("indicator", "summary", "detail"),
    ),
}
_CODING = _mapping(
    {"system": _TEXT, "code": _TEXT, "display": _TEXT}, ("system", "code", "display")
)
SHARED_CARDS = _mapping(
    {
        "source_label": _TEXT,
        "detail_footer": _TEXT,
        "override_reasons": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "items": _CODING},
        },
    },
    ("source_label", "detail_footer", "override_reasons"),
)
SERVICES = {
    **_mapping(
        {
            "services": {
                "type": "array",
                "minItems": 1,
                "items": _mapping(
                    {
                        "id": _TEXT,
                        "hook": _TEXT,
                        "title": _TEXT,
                        "description": _TEXT,
                        "usageRequirements": _TEXT,
                        "rule_files": {**_TEXTS, "minItems": 1},
                        "prefetch": {"type": "object", "additionalProperties": _TEXT},
                    },
                    ("id", "hook", "title", "description", "rule_files"),
                ),
            }
        },
        ("services",),
    ),
    "patternProperties": _ANCHORS,
}
# (glob under knowledge/, schema); a file takes the first pattern it matches.
FILES = (
    ("services.yaml", SERVICES),
    ("cards/_shared.yaml", SHARED_CARDS),
    ("cards/*.yaml", CARDS),
)


def read_documents(root: Path) -> dict[str, Any]:
    """Every knowledge YAML file by its path under root (e.g. rules/dosing.yaml), shape-checked.
    An empty file reads as an empty mapping."""
    documents: dict[str, Any] = {}
    for pattern, schema in FILES:
        paths = sorted(root.glob(pattern))
        if "*" not in pattern and not paths:
            raise KnowledgeError(pattern, "file", "missing")
        for path in paths:
            file = path.relative_to(root).as_posix()
            if file not in documents:
                documents[file] = check(_parse(path, file), schema, file)
    return documents


def _parse(path: Path, file: str) -> Any:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        raise KnowledgeError(file, "yaml", str(error)) from error
    return {} if document is None else document


def check(document: Any, schema: dict, file: str) -> Any:
    """The document when it has the schema's shape; else KnowledgeError naming the node."""
    _text_keys(document, file, ())
    error = best_match(Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
        raise KnowledgeError(file, _node(error.absolute_path), message)
    return document


def _text_keys(node: Any, file: str, where: tuple) -> None:
    """YAML allows numbers, dates and booleans (`on`, `yes`) as keys; knowledge keys are text."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise KnowledgeError(file, _node(where), f"key {key!r} must be text")
            _text_keys(value, file, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _text_keys(value, file, (*where, index))


def _node(path: Any) -> str:
    """A JSON path such as rules[2].when.all[0], or `document` for the whole file."""
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)
    return text.lstrip(".") or "document"
