"""The `labelwise` command: check, test, explain, format and serve the knowledge, and write
the example requests for a given day."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from difflib import get_close_matches
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cds_hooks.config import ConfigError, load_config
from cds_hooks.pages import write_review
from cds_hooks.store import upgrade
from engine import KnowledgeBase, KnowledgeError, load_knowledge

from . import canonical, conformance
from .cases import run_cases
from .check import check
from .examples import write_examples
from .explain import compiled, explain
from .review import review_sheet

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
CASES = ROOT / "tests" / "cases"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KnowledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"labelwise: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelwise", description=__doc__)
    commands = parser.add_subparsers(required=True)
    cmd = commands.add_parser("check", help="validate the knowledge; list unverified codes")
    cmd.add_argument("dir", nargs="?", type=Path, default=KNOWLEDGE)
    cmd.add_argument("--compiled", action="store_true", help="print every rule's compiled form")
    cmd.set_defaults(run=_check)
    cmd = commands.add_parser("test", help="run the YAML cases")
    cmd.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    cmd.add_argument("--cases", type=Path, default=CASES)
    cmd.add_argument("--coverage", action="store_true", help="print per-rule case counts")
    cmd.set_defaults(run=_test)
    cmd = commands.add_parser("explain", help="evaluate a hook request offline, with the trace")
    cmd.add_argument("request", nargs="?", help="request JSON file, or - for stdin")
    cmd.add_argument("--compiled", metavar="RULE", help="show one rule's compiled form instead")
    cmd.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    cmd.add_argument("--service", help="service id (default: the one for the request's hook)")
    cmd.add_argument(
        "--now", type=date.fromisoformat, help="evaluation date (default LABELWISE_NOW)"
    )
    cmd.set_defaults(run=_explain)
    cmd = commands.add_parser("examples", help="write the example requests dated for a day")
    cmd.add_argument("--now", type=date.fromisoformat, help="their day (default LABELWISE_NOW)")
    cmd.add_argument("--out", type=Path, default=ROOT / "var" / "requests")
    cmd.set_defaults(run=_examples)
    cmd = commands.add_parser("format", help="rewrite Turtle files in canonical form")
    cmd.add_argument("dir", nargs="?", type=Path, default=KNOWLEDGE)
    cmd.set_defaults(run=_format)
    cmd = commands.add_parser("conformance", help="write the CDS Hooks conformance matrix")
    cmd.add_argument("--out", type=Path, default=ROOT / "docs" / "conformance.md")
    cmd.set_defaults(run=_conformance)
    cmd = commands.add_parser("review", help="write the clinical review sheet as static HTML")
    cmd.add_argument("--out", type=Path, default=ROOT / "var" / "review")
    cmd.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    cmd.set_defaults(run=_review)
    cmd = commands.add_parser("db", help="database schema (DATABASE_URL)")
    cmd.add_argument("action", choices=["upgrade"], help="migrate to the newest schema")
    cmd.set_defaults(run=_db)
    cmd = commands.add_parser("serve", help="serve with gunicorn (what `make run` starts)")
    cmd.add_argument("--bind", default=f"127.0.0.1:{os.environ.get('PORT', '8080')}")
    cmd.set_defaults(run=_serve)
    return parser


def _check(args) -> int:
    report = check(args.dir)
    for error in report.errors:
        print(f"error: {error}")
    print(f"{len(report.unverified)} entries still marked unverified:")
    for line in report.unverified:
        print(f"  {line}")
    if args.compiled and report.ok:
        print("\n\n".join(compiled(rule) for rule in report.rules.values()))
    print("knowledge OK" if report.ok else f"{len(report.errors)} problem(s)")
    return 0 if report.ok else 1


def _test(args) -> int:
    report = run_cases(load_knowledge(args.knowledge), args.cases)
    if args.coverage:
        print(f"{'rule':50} {'fires':>5} {'silent':>6}")
        for rule, (fires, silent) in report.counts.items():
            print(f"{rule:50} {fires:5} {silent:6}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    passed = sum(not r.problems for r in report.results)
    print(f"{passed} passed, {len(report.results) - passed} failed")
    return 0 if not report.problems else 1


def _explain(args) -> int:
    if args.compiled:
        return _compiled(load_knowledge(args.knowledge), args.compiled)
    if args.request is None:
        print("labelwise explain: give a request file (or -), or --compiled RULE", file=sys.stderr)
        return 2
    text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text()
    now = args.now or _configured_now()
    print(explain(load_knowledge(args.knowledge), json.loads(text), args.service, now))
    return 0


def _compiled(kb: KnowledgeBase, rule_id: str) -> int:
    if rule_id not in kb.rules:
        close = get_close_matches(rule_id, list(kb.rules), n=3)
        print(f"unknown rule {rule_id!r}; did you mean: {', '.join(close)}?", file=sys.stderr)
        return 1
    print(compiled(kb.rules[rule_id]))
    return 0


def _examples(args) -> int:
    for path in write_examples(args.now or _configured_now(), args.out):
        print(path)
    return 0


def _configured_now() -> date:
    """LABELWISE_NOW as the service reads it, else today (UTC)."""
    pinned = load_config()["NOW"]
    return date.fromisoformat(pinned) if pinned else datetime.now(UTC).date()


def _format(args) -> int:
    for path in canonical.format_all(args.dir):
        print(f"formatted {path}")
    return 0


def _conformance(args) -> int:
    if not conformance.RESULTS.is_file():
        print("no test results yet: run `make conformance` (pytest -m req first)", file=sys.stderr)
        return 1
    print(conformance.write_matrix(args.out))
    print(f"wrote {args.out}")
    return 0


def _review(args) -> int:
    for path in write_review(review_sheet(load_knowledge(args.knowledge), CASES), args.out):
        print(f"wrote {path}")
    return 0


def _db(args) -> int:
    """`db upgrade`: idempotent; concurrent runs wait for each other."""
    try:
        url = load_config()["DATABASE_URL"]
        upgrade(url)
    except ConfigError as error:
        print(f"labelwise: {error}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:
        print(f"labelwise: database upgrade failed: {type(error).__name__}", file=sys.stderr)
        return 1
    print("database schema is at the newest migration")
    return 0


def _serve(args) -> int:
    try:
        load_config()
    except ConfigError as error:
        print(f"labelwise: refusing to start: {error}", file=sys.stderr)
        return 2
    conf = str(ROOT / "cds_hooks" / "gunicorn_conf.py")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(
        gunicorn, [str(gunicorn), "--config", conf, "--bind", args.bind, "cds_hooks:create_app()"]
    )


if __name__ == "__main__":
    sys.exit(main())
