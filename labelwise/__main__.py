"""The `labelwise` command: check, test, explain, format and serve the knowledge."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cds_hooks.config import ConfigError, load_config
from cds_hooks.store import upgrade
from engine import KnowledgeError, load_knowledge

from . import canonical
from .cases import run_cases
from .check import check
from .explain import explain

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelwise", description=__doc__)
    commands = parser.add_subparsers(required=True)
    cmd = commands.add_parser("check", help="validate the knowledge; list unverified codes")
    cmd.add_argument("dir", nargs="?", type=Path, default=KNOWLEDGE)
    cmd.set_defaults(run=_check)
    cmd = commands.add_parser("test", help="run the YAML cases")
    cmd.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    cmd.add_argument("--cases", type=Path, default=CASES)
    cmd.add_argument("--coverage", action="store_true", help="print per-rule case counts")
    cmd.set_defaults(run=_test)
    cmd = commands.add_parser("explain", help="evaluate a hook request offline, with the trace")
    cmd.add_argument("request", help="request JSON file, or - for stdin")
    cmd.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    cmd.add_argument("--service", help="service id (default: the one for the request's hook)")
    cmd.add_argument("--now", type=date.fromisoformat, help="evaluation date (default today)")
    cmd.set_defaults(run=_explain)
    cmd = commands.add_parser("format", help="rewrite Turtle files in canonical form")
    cmd.add_argument("dir", nargs="?", type=Path, default=KNOWLEDGE)
    cmd.set_defaults(run=_format)
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
    text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text()
    print(explain(load_knowledge(args.knowledge), json.loads(text), args.service, args.now))
    return 0


def _format(args) -> int:
    for path in canonical.format_all(args.dir):
        print(f"formatted {path}")
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
