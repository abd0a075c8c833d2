"""Turtle in canonical form: the file's leading comment block, then rdflib's sorted longturtle."""

from __future__ import annotations

from pathlib import Path

from rdflib import Graph


def header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def canonical(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    body = Graph().parse(data=text, format="turtle").serialize(format="longturtle")
    return header(text) + body


def not_canonical(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.ttl")) if p.read_text(encoding="utf-8") != canonical(p)]


def format_all(root: Path) -> list[Path]:
    changed = not_canonical(root)
    for path in changed:
        path.write_text(canonical(path), encoding="utf-8")
    return changed
