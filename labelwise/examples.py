"""`labelwise examples`: the example requests with their dates moved to a given day.

`examples/requests/` is written against REFERENCE. Every FHIR date and dateTime in it moves by
the same number of days, so ages, intervals and therefore the cards stay the same on any day."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "requests"
REFERENCE = date(2026, 11, 1)  # the day examples/requests and tests/cases are written for
FHIR_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")


def moved(value: Any, days: int) -> Any:
    """`value` with every FHIR date or dateTime string in it moved by `days`."""
    if isinstance(value, dict):
        return {k: moved(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [moved(v, days) for v in value]
    found = FHIR_DATE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return value
    day = date.fromisoformat(found.group(1)) + timedelta(days=days)
    return day.isoformat() + (found.group(2) or "")


def write_examples(now: date, out: Path) -> list[Path]:
    """Write each example request, moved from REFERENCE to `now`, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(EXAMPLES.glob("*.json")):
        body = moved(json.loads(path.read_text(encoding="utf-8")), (now - REFERENCE).days)
        target = out / path.name
        target.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
