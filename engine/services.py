"""services.yaml: the CDS services, their hooks, prefetch templates and rule files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import KnowledgeError
from .rulesets import Rule
from .vocabulary import CodeSet

HOOKS = {"order-select", "order-sign", "patient-view"}
CODE_PLACEHOLDER = re.compile(r"\$\{([a-z0-9-]+)\}")
FILE = "services.yaml"


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    rule_ids: tuple[str, ...]
    usage_requirements: str | None = None

    @property
    def evaluates_orders(self) -> bool:
        return self.hook in ("order-select", "order-sign")


def load_services(
    documents: dict[str, Any], rules: dict[str, Rule], code_sets: dict[str, CodeSet]
) -> dict[str, Service]:
    raw = documents[FILE]
    services: dict[str, Service] = {}
    for entry in raw.get("services", []):
        service = _service(entry, rules, code_sets)
        if service.id in services:
            raise KnowledgeError(FILE, service.id, "service id defined twice")
        services[service.id] = service
    if not services:
        raise KnowledgeError(FILE, "services", "declare at least one service")
    return services


def _service(entry: dict, rules: dict[str, Rule], code_sets: dict[str, CodeSet]) -> Service:
    sid = entry.get("id", "?")
    if entry.get("hook") not in HOOKS:
        raise KnowledgeError(FILE, sid, f"hook must be one of {sorted(HOOKS)}")
    for field in ("id", "title", "description"):
        if not isinstance(entry.get(field), str):
            raise KnowledgeError(FILE, sid, f"missing {field}")
    files = entry.get("rule_files", [])
    rule_ids = tuple(r.id for r in rules.values() if Path(r.file).stem in files)
    unknown = set(files) - {Path(r.file).stem for r in rules.values()}
    if unknown or not rule_ids:
        raise KnowledgeError(FILE, sid, f"rule_files name no known rule file: {sorted(unknown)}")
    prefetch = {k: _expand(v, code_sets, sid) for k, v in (entry.get("prefetch") or {}).items()}
    return Service(
        id=sid,
        hook=entry["hook"],
        title=entry["title"],
        description=entry["description"],
        prefetch=prefetch,
        rule_ids=rule_ids,
        usage_requirements=entry.get("usageRequirements"),
    )


def _expand(template: str, code_sets: dict[str, CodeSet], sid: str) -> str:
    """Replace ${code-set} with the set's codes as a FHIR token list."""

    def codes(match: re.Match) -> str:
        found = code_sets.get(match.group(1))
        if found is None:
            raise KnowledgeError(FILE, sid, f"prefetch names unknown code set {match.group(1)!r}")
        return ",".join(f"{found.system}|{c}" for c in sorted(found.codes))

    return CODE_PLACEHOLDER.sub(codes, template)
