"""evaluate(principal, action, resource) -> Decision: deny by default, forbid beats permit."""

from __future__ import annotations

from collections.abc import Sequence

from policies.model import Decision, Principal, Resource, Rule
from policies.rules import DEFAULT_RULES


def evaluate(
    principal: Principal,
    action: str,
    resource: Resource | None = None,
    rules: Sequence[Rule] = DEFAULT_RULES,
) -> Decision:
    """Decide one request. Any error while evaluating denies."""
    target = resource or Resource()
    try:
        permit: Rule | None = None
        for rule in rules:
            if not rule.covers(action) or not rule.when(principal, target):
                continue
            if rule.effect == "forbid":
                return Decision(False, rule.id, rule.reason or "not allowed")
            if rule.effect == "permit" and permit is None:
                permit = rule
        if permit is not None:
            return Decision(True, permit.id, permit.reason or "allowed")
        return Decision(False, "default-deny", "no rule allows this")
    except Exception:  # a broken rule must never allow anything
        return Decision(False, "evaluation-error", "the policy could not be evaluated")
