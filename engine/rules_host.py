"""The one module that touches durable-rules.

durable-rules' C engine is not thread-safe (concurrent threads segfault), and its stock Host
starts background dispatch threads that call into the engine. This module uses a Host without
those threads and serialises every call through one process-wide lock. Each evaluation runs in
its own session id, and the session state is deleted afterwards. Every session opens with a
fact that an internal rule handles: deleting a session in which no action ever ran segfaults
the C engine (measured), so each session must have run one.

A RuleHost's C rulesets live outside Python's heap (about 2 MiB per knowledge load, measured):
when the host is garbage-collected its handles are retired, and freed under the lock by the
next call into the engine, never from inside a finalizer.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import durable_rules_engine
import orjson
from durable.engine import Host

_LOCK = threading.Lock()
_NAMES = itertools.count()
_RETIRED: list[int] = []  # C ruleset handles of collected hosts, waiting to be freed

Match = tuple[str, dict[str, dict[str, Any]]]
SESSION_START = {"kind": "$session-start"}


class _QuietHost(Host):
    """A Host with no timer threads; actions are looked up in a given table."""

    def __init__(self, actions: dict[str, Callable]):
        self._actions_by_name = {**actions, "$session-start": lambda c: None}
        super().__init__()

    def _run(self) -> None:  # the stock Host starts dispatch threads here
        return None

    def get_action(self, action_name: str) -> Callable:
        return self._actions_by_name[action_name]


class RuleHost:
    """A compiled set of rulesets; `run` asserts facts and returns (rule id, matched facts).

    Raises ValueError when durable-rules refuses a ruleset."""

    def __init__(self, rulesets: dict[str, dict[str, dict[str, Any]]]):
        self._matches: dict[str, list[Match]] = {}
        self._names = {name: f"{name}#{next(_NAMES)}" for name in rulesets}
        actions, definitions = {}, {}
        for name, rules in rulesets.items():
            compiled = {}
            for rule_id, rule in rules.items():
                action = f"{self._names[name]}|{rule_id}"
                actions[action] = _recorder(self._matches, rule_id, rule)
                compiled[rule_id] = {"all": rule["all"], "run": action}
            definitions[self._names[name]] = {
                **compiled,
                "$session-start": {"all": [{"m": dict(SESSION_START)}], "run": "$session-start"},
            }
        with _LOCK:
            _free_retired()
            self._host = _QuietHost(actions)
            try:
                self._host.register_rulesets(definitions)
            except durable_rules_engine.error as error:
                raise ValueError(f"durable-rules refused the rules: {error}") from error
            handles = [self._host.get_ruleset(n)._handle for n in self._names.values()]
        weakref.finalize(self, _RETIRED.extend, handles)

    def run(self, ruleset: str, facts: Iterable[dict[str, Any]]) -> list[Match]:
        """Assert the facts in one batch, run every action they triggered, drop the session.

        The batch goes to the C engine directly: its status is "not handled" whenever any one
        fact matched no pattern, yet the session it returns is valid and its actions must run."""
        name, sid = self._names[ruleset], uuid.uuid4().hex
        facts = [{**SESSION_START, "sid": sid}, *({**f, "sid": sid} for f in facts)]
        batch = orjson.dumps(facts).decode()
        errors: list[BaseException] = []
        with _LOCK:
            _free_retired()
            self._matches[sid] = []
            rules = self._host.get_ruleset(name)
            try:
                _, state = durable_rules_engine.assert_facts(rules._handle, batch)
                rules.do_actions(state, lambda error, _: errors.append(error) if error else None)
                if errors:
                    raise errors[0]
                return self._matches[sid]
            finally:
                self._host.delete_state(name, sid)
                del self._matches[sid]


def _recorder(matches: dict[str, list[Match]], rule_id: str, rule: dict[str, Any]) -> Callable:
    """The action of one rule: record its matched facts (no reference back to the host, so a
    dropped host is freed at once rather than by the cycle collector)."""
    aliases = [next(iter(pattern)) for pattern in rule["all"]]

    def record(c: Any) -> None:
        matches[c.s["sid"]].append(
            (rule_id, {alias: dict(getattr(c, alias)._d) for alias in aliases})
        )

    return record


def _free_retired() -> None:
    """Free the C rulesets of collected hosts; the caller holds _LOCK."""
    while _RETIRED:
        durable_rules_engine.delete_ruleset(_RETIRED.pop())
