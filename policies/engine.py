"""The policy as Cedar data (opsroom.cedar), checked against its schema once, then one decision per request.

Deny by default; a forbid beats any permit (Cedar's rule); the deciding rule is the @id of the
first determining policy in file order. Cedar skips a policy whose evaluation errors, which
would let a broken forbid fail open: any error in the diagnostics denies instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy
from cedarpy import pst

from policies import source
from policies.model import Decision, Principal, PrincipalKind, Resource

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "opsroom.cedar"
SCHEMA_PATH = HERE / "opsroom.cedarschema"

ACTION_TYPE = "Opsroom::Action"
USER_TYPE = "Opsroom::User"
TARGET = {"type": "Opsroom::Target", "id": "request"}

DEFAULT_DENY = Decision(False, "default-deny", "no rule allows this")
EVALUATION_ERROR = Decision(False, "evaluation-error", "the policy could not be evaluated")
UNKNOWN_ACTION = Decision(False, "unknown-action", "no rule allows this")

_NO_FACTS = Resource()
_CACHE_LIMIT = 4096
_DECISIONS_LIMIT = 50_000
_LISTS_LIMIT = 4096
_NONE: Mapping[str, Decision] = MappingProxyType({})
"""No decision known (an empty view, never written to)."""
_FOR_POLICY = re.compile(r"^for policy `[^`]*`, ")


class PolicyError(ValueError):
    """A policy file that cannot be used, naming the file and, where known, the line."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        self.path, self.line, self.detail = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Rule:
    """What the engine needs to know about one policy of the file."""

    index: int
    id: str
    effect: str
    reason: str
    line: int


class Policy:
    """A parsed, validated policy set and the schema it was checked against."""

    def __init__(self, text: str, *, source_name: str = "<policy>", schema: cedarpy.Schema | None = None,
                 validate: bool = True) -> None:  # fmt: skip
        """Parse and check `text`; `validate=False` skips the schema check (tests of the engine only)."""
        self.source_name = source_name
        self._schema = schema if schema is not None else load_schema()
        self._policies = _parse(text, source_name)
        statements = source.statements(text)
        tree = self._policies.to_pst()
        if tree.templates:
            raise PolicyError("templates (?principal, ?resource) are not supported", path=source_name,
                              line=_line_of(next(iter(tree.templates)), statements))  # fmt: skip
        self._rules = _rules(tree.static_policies, statements, source_name)
        if validate:
            _validate(text, self._schema, self._rules, statements, source_name)
        self._ancestors = _action_ancestors(self._schema)
        # A group (an action others are `in`) names its members in policies; requests never name it.
        self._groups = frozenset().union(*self._ancestors.values())
        scopes = {a: _in_scope(tree.static_policies, a, groups) for a, groups in self._ancestors.items()}
        self._mentioned = frozenset(a for a, (_, named) in scopes.items() if named)
        # Cedar evaluates every policy of a set; a policy whose action scope excludes the action
        # can neither match nor error, so each action gets the set of only those that can.
        sets: dict[frozenset[str], cedarpy.PolicySet] = {}
        self._sets: dict[str, cedarpy.PolicySet] = {}
        for action, (ids, _) in scopes.items():
            if action in self._groups:
                continue
            if ids not in sets:
                chosen = {i: tree.static_policies[i] for i in sorted(ids, key=_index)}
                sets[ids] = cedarpy.PolicySet.from_pst(pst.PolicySet({}, chosen, ()))
            self._sets[action] = sets[ids]
        self._action_uids = {a: {"type": ACTION_TYPE, "id": a} for a in self._ancestors}
        self._principals: dict[tuple[str, str], tuple[dict[str, str], cedarpy.Entities]] = {}
        # A decision depends only on (kind, agency, action, facts): the principal entity carries nothing
        # else and the facts are the whole context. So decisions are remembered (a /help is a dozen).
        # Two levels, (kind, agency, facts) then action: a request of many actions on the same facts
        # (/help asks about every command) hashes its facts once, not once per action.
        self._decided: dict[tuple[str, str, Resource], dict[str, Decision]] = {}
        self._lists: dict[tuple[str, str, Hashable], tuple[Decision, ...]] = {}
        """Whole lists of decisions a caller names (`decide_list`), per kind and agency."""
        # Facts no policy reads cannot change a decision: they are left out of what is remembered, so a
        # decision about one room serves every room (the default policy never reads `room_key`). A
        # field counts as read if its name appears anywhere in the text (`context.f`, `context["f"]`,
        # `context has f`, even a comment): never wrongly left out.
        unread = {f.name: f.default for f in fields(Resource) if not re.search(rf"\b{f.name}\b", text)}
        self._unread: Mapping[str, Any] = unread
        self.remember = True
        """Keep decisions (off: every decision goes to Cedar, as the benchmark measures it)."""
        self._lock = threading.Lock()
        self._check_facts()

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """The policy in `path` (None: the shipped default), checked against the schema."""
        file = path or DEFAULT_PATH
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read the policy: {exc}", path=str(file)) from exc
        return cls(text, source_name=str(file))

    def __len__(self) -> int:
        return len(self._rules)

    @property
    def rules(self) -> list[Rule]:
        """The policies of the file, in file order."""
        return sorted(self._rules.values(), key=lambda r: r.index)

    @property
    def actions(self) -> frozenset[str]:
        """Every action a request may name: those the schema declares, less the groups."""
        return frozenset(self._sets)

    def check_actions(self, actions: Iterable[str]) -> None:
        """Refuse an action the schema does not declare, or that no policy names in its action scope.

        Naming is `action == A`, or `action in [...]` listing A or a group A is in; a policy for
        every action (`action` alone, e.g. a forbid for anonymous senders) names none.
        """
        for action in sorted(set(actions)):
            if action in self._groups:
                raise PolicyError(f'"{action}" is a group of actions, not one a request can name',
                                  path=self.source_name)  # fmt: skip
            if action not in self._sets:
                raise PolicyError(f'action "{action}" is not declared in the schema', path=self.source_name)
            if action not in self._mentioned:
                raise PolicyError(f'no policy mentions the action "{action}"', path=self.source_name)

    def _key(self, kind: str, agency: str, facts: Resource) -> tuple[str, str, Resource]:
        """What decisions are remembered under: who, and the facts the policy reads."""
        if self._unread:
            facts = replace(facts, **self._unread)
        return (kind, agency, facts)

    def decide(self, principal: Principal, action: str, resource: Resource | None = None) -> Decision:
        """One decision; never raises (an error denies)."""
        facts = resource or _NO_FACTS
        key = self._key(str(principal.kind), principal.agency or "", facts)
        known = (self._decided.get(key) or _NONE).get(action) if self.remember else None
        if known is not None:
            return known
        try:
            policies = self._sets.get(action)
            if policies is None:
                return UNKNOWN_ACTION
            uid, entities = self._principal(principal)
            request = {"principal": uid, "action": self._action_uids[action], "resource": TARGET,
                       "context": facts.facts()}  # fmt: skip
            decision = self._decision(cedarpy.is_authorized(request, policies, entities))
        except Exception:  # a request Cedar cannot take must never allow anything
            return EVALUATION_ERROR
        self._remember(key, action, decision)
        return decision

    def _remember(self, key: tuple[str, str, Resource], action: str, decision: Decision) -> None:
        if decision is EVALUATION_ERROR or not self.remember:
            return  # an error is not worth keeping: it should be retried
        with self._lock:
            known = self._decided.get(key)
            if known is None:
                if len(self._decided) >= _DECISIONS_LIMIT:
                    self._decided.clear()
                known = self._decided[key] = {}
            known[action] = decision

    def decide_many(self, principal: Principal, requests: Sequence[tuple[str, Resource]]) -> list[Decision]:
        """One decision per (action, resource), in order: one call into Cedar per distinct action."""
        decisions: list[Decision] = [UNKNOWN_ACTION] * len(requests)
        by_action: dict[str, list[int]] = {}
        kind, agency = str(principal.kind), principal.agency or ""
        # One key, and one look-up of what is known, per distinct facts object (requests holds them all
        # alive, so their ids are theirs for the whole call).
        keyed: dict[int, tuple[tuple[str, str, Resource], Mapping[str, Decision]]] = {}
        keys: list[tuple[str, str, Resource]] = []
        for i, (action, resource) in enumerate(requests):
            facts = resource or _NO_FACTS
            entry = keyed.get(id(facts))
            if entry is None:
                key = self._key(kind, agency, facts)
                entry = keyed[id(facts)] = (key, (self._decided.get(key) if self.remember else None) or _NONE)
            keys.append(entry[0])
            known = entry[1].get(action)
            if known is not None:
                decisions[i] = known
            elif action in self._sets:
                by_action.setdefault(action, []).append(i)
        for action, positions in by_action.items():
            try:
                uid, entities = self._principal(principal)
                base = {"principal": uid, "action": self._action_uids[action], "resource": TARGET}
                asked = [{**base, "context": (requests[i][1] or _NO_FACTS).facts()} for i in positions]
                results = cedarpy.is_authorized_batch(asked, self._sets[action], entities)
                if len(results) != len(asked):
                    raise ValueError("Cedar answered a different number of requests")
                for i, result in zip(positions, results, strict=True):
                    decisions[i] = self._decision(result)
                    self._remember(keys[i], action, decisions[i])
            except Exception:
                for i in positions:
                    decisions[i] = EVALUATION_ERROR
        return decisions

    def decide_list(self, principal: Principal, name: Hashable,
                    requests: Callable[[], Sequence[tuple[str, Resource]]]) -> list[Decision]:  # fmt: skip
        """`decide_many(principal, requests())`, the list remembered per (kind, agency, name): for a list
        asked about again and again (`/help` asks about every command on the request's facts). `name`
        must determine the requests exactly: the same name, the same actions on the same facts.
        A list holding an evaluation error is not remembered (it should be retried)."""
        if not self.remember:
            return self.decide_many(principal, requests())
        key = (str(principal.kind), principal.agency or "", name)
        known = self._lists.get(key)
        if known is None:
            decisions = self.decide_many(principal, requests())
            if any(d is EVALUATION_ERROR for d in decisions):
                return decisions
            with self._lock:
                if len(self._lists) >= _LISTS_LIMIT:
                    self._lists.clear()
                known = self._lists[key] = tuple(decisions)
        return list(known)

    def _check_facts(self) -> None:
        """Requests skip the schema (it costs more than the decision): check their shape against it once."""
        uid, entities = self._principal(Principal(None, None, PrincipalKind.ANONYMOUS))
        for action in sorted(self._sets):
            request = {"principal": uid, "action": self._action_uids[action], "resource": TARGET,
                       "context": _NO_FACTS.facts()}  # fmt: skip
            result = cedarpy.is_authorized(request, self._policies, entities, schema=self._schema)
            if result.decision is cedarpy.Decision.NoDecision:
                errors = "; ".join(result.diagnostics.errors)
                raise PolicyError(f'the schema does not fit the requests made for "{action}": {errors}',
                                  path=self.source_name)  # fmt: skip

    def _principal(self, principal: Principal) -> tuple[dict[str, str], cedarpy.Entities]:
        """The principal's uid and entities (with the schema's actions), built once per kind and agency."""
        kind, agency = str(principal.kind), principal.agency or ""
        key = (kind, agency)
        found = self._principals.get(key)
        if found is None:
            uid = {"type": USER_TYPE, "id": f"{kind}/{agency}"}
            entity = {"uid": uid, "attrs": {"kind": kind, "agency": agency}, "parents": []}
            target = {"uid": TARGET, "attrs": {}, "parents": []}
            entities = cedarpy.Entities.from_json_str(json.dumps([entity, target]), schema=self._schema)
            found = (uid, entities)
            with self._lock:
                if len(self._principals) >= _CACHE_LIMIT:
                    self._principals.clear()
                self._principals[key] = found
        return found

    def _decision(self, result: cedarpy.AuthzResult) -> Decision:
        diagnostics = result.diagnostics
        if diagnostics.errors or result.decision is cedarpy.Decision.NoDecision:
            return EVALUATION_ERROR
        rules = [self._rules[policy_id] for policy_id in diagnostics.reasons]
        if not rules:
            return EVALUATION_ERROR if result.allowed else DEFAULT_DENY
        rule = min(rules, key=lambda r: r.index)
        if (rule.effect == "permit") is not result.allowed:
            return EVALUATION_ERROR
        return Decision(result.allowed, rule.id, rule.reason)


def load_schema(path: Path | None = None) -> cedarpy.Schema:
    """The shipped schema (or the one in `path`), parsed."""
    file = path or SCHEMA_PATH
    try:
        return cedarpy.Schema.from_str(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PolicyError(f"cannot use the schema: {exc}", path=str(file)) from exc


def _parse(text: str, name: str) -> cedarpy.PolicySet:
    try:
        return cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        found = source.parse_error_line(text, cedarpy.PolicySet.from_str)
        line, message = found if found is not None else (None, str(exc))
        raise PolicyError(message, path=name, line=line) from exc


def _index(policy_id: str) -> int:
    return int(policy_id.removeprefix("policy"))


def _line_of(policy_id: str, statements: list[source.Statement]) -> int | None:
    index = _index(policy_id) if policy_id.startswith("policy") else -1
    return statements[index].line if 0 <= index < len(statements) else None


def _rules(
    policies: Mapping[str, pst.Template], statements: list[source.Statement], name: str
) -> dict[str, Rule]:
    """Each policy's @id, effect and @reason; refuses a missing @id or @reason and duplicate @ids."""
    rules: dict[str, Rule] = {}
    seen: dict[str, Rule] = {}
    for policy_id in sorted(policies, key=_index):
        policy, index = policies[policy_id], _index(policy_id)
        statement = statements[index] if index < len(statements) else None
        line = statement.line if statement else None
        rule_id, reason = policy.annotations.get("id", ""), policy.annotations.get("reason", "")
        if not rule_id:
            raise PolicyError(f"a {policy.effect} without @id(\"...\") (the rule named in the audit)",
                              path=name, line=line)  # fmt: skip
        if not reason:
            raise PolicyError(f'@id("{rule_id}") has no @reason("...") (the text shown to the user)',
                              path=name, line=line)  # fmt: skip
        if rule_id in seen:
            raise PolicyError(f'duplicate @id("{rule_id}"), first used on line {seen[rule_id].line}',
                              path=name, line=line)  # fmt: skip
        rule = Rule(index, rule_id, policy.effect, reason, line or 0)
        rules[policy_id] = seen[rule_id] = rule
    return rules


def _validate(text: str, schema: cedarpy.Schema, rules: Mapping[str, Rule],
              statements: list[source.Statement], name: str) -> None:  # fmt: skip
    """Strict validation against the schema; the first error (in file order) refuses the file."""
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    errors = sorted(result.errors, key=lambda e: rules[e.policy_id].index if e.policy_id in rules else -1)
    if not errors:
        raise PolicyError("the policy does not match the schema", path=name)
    first = errors[0]
    message = _FOR_POLICY.sub("", first.error)
    rule = rules.get(first.policy_id)
    if rule is None:
        raise PolicyError(message, path=name)
    statement = statements[rule.index]
    line = source.mention_line(statement, message, skip=frozenset({first.policy_id})) or statement.line
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise PolicyError(f'@id("{rule.id}"): {message}{more}', path=name, line=line)


def _action_ancestors(schema: cedarpy.Schema) -> dict[str, frozenset[str]]:
    """Every action the schema declares, with the groups it is in (transitively)."""
    declared = json.loads(str(cedarpy.Entities.from_json_str("[]", schema=schema)))
    parents = {e["uid"]["id"]: [p["id"] for p in e["parents"] if p["type"] == ACTION_TYPE]
               for e in declared if e["uid"]["type"] == ACTION_TYPE}  # fmt: skip
    ancestors: dict[str, frozenset[str]] = {}
    for action in parents:
        seen: set[str] = set()
        stack = list(parents[action])
        while stack:
            group = stack.pop()
            if group not in seen:
                seen.add(group)
                stack.extend(parents.get(group, ()))
        ancestors[action] = frozenset(seen)
    return ancestors


def _in_scope(
    policies: Mapping[str, pst.Template], action: str, groups: frozenset[str]
) -> tuple[frozenset[str], bool]:
    """The policies whose action scope takes in `action`, and whether one names it (or its group)."""
    ids: set[str] = set()
    named = False
    for policy_id, policy in policies.items():
        scope = policy.action
        if isinstance(scope, pst.ActionEq):
            hit = scope.entity.id == action
        elif isinstance(scope, pst.ActionIn):
            hit = any(e.id == action or e.id in groups for e in scope.entities)
        else:
            ids.add(policy_id)
            continue
        if hit:
            ids.add(policy_id)
            named = True
    return frozenset(ids), named
