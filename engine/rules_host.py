"""The one module that touches durable-rules.

durable-rules' C engine is not thread-safe (concurrent threads segfault), and its stock Host
starts background dispatch threads that call into the engine. This module uses a Host without
those threads and serialises every call through one process-wide lock. Each evaluation runs in
its own session id, and the session state is deleted afterwards. Every session opens with a
fact that an internal rule handles: deleting a session in which no action ever ran segfaults
the C engine (measured), so each session must have run one.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import durable_rules_engine
import orjson
from durable.engine import Host

_LOCK = threading.Lock()
_NAMES = itertools.count()

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
    """A compiled set of rulesets; `run` asserts facts and returns (rule id, matched facts)."""

    def __init__(self, rulesets: dict[str, dict[str, dict[str, Any]]]):
        self._matches: dict[str, list[Match]] = {}
        self._names = {name: f"{name}#{next(_NAMES)}" for name in rulesets}
        actions, definitions = {}, {}
        for name, rules in rulesets.items():
            compiled = {}
            for rule_id, rule in rules.items():
                action = f"{self._names[name]}|{rule_id}"
                actions[action] = self._recorder(rule_id, rule)
                compiled[rule_id] = {"all": rule["all"], "run": action}
            definitions[self._names[name]] = {
                **compiled,
                "$session-start": {"all": [{"m": dict(SESSION_START)}], "run": "$session-start"},
            }
        with _LOCK:
            self._host = _QuietHost(actions)
            self._host.register_rulesets(definitions)

    def _recorder(self, rule_id: str, rule: dict[str, Any]) -> Callable:
        aliases = [next(iter(pattern)) for pattern in rule["all"]]

        def record(c: Any) -> None:
            matched = {alias: dict(getattr(c, alias)._d) for alias in aliases}
            self._matches[c.s["sid"]].append((rule_id, matched))

        return record

    def run(self, ruleset: str, facts: Iterable[dict[str, Any]]) -> list[Match]:
        """Assert the facts in one batch, run every action they triggered, drop the session.

        The batch goes to the C engine directly: its status is "not handled" whenever any one
        fact matched no pattern, yet the session it returns is valid and its actions must run."""
        name, sid = self._names[ruleset], uuid.uuid4().hex
        facts = [{**SESSION_START, "sid": sid}, *({**f, "sid": sid} for f in facts)]
        batch = orjson.dumps(facts).decode()
        errors: list[BaseException] = []
        with _LOCK:
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
