"""Who may do what: the policy as Cedar data (opsroom.cedar), behind one decision function."""

from __future__ import annotations

import threading

from policies.engine import Policy, PolicyError
from policies.model import Decision, Principal, PrincipalKind, Resource, RoomRole

__all__ = [
    "Decision", "Policy", "PolicyError", "Principal", "PrincipalKind", "Resource", "RoomRole",
    "default_policy", "evaluate",
]  # fmt: skip

_default: Policy | None = None
_loading = threading.Lock()


def default_policy() -> Policy:
    """The shipped policy, loaded and checked once (a broken one raises PolicyError)."""
    global _default
    if _default is None:
        with _loading:
            if _default is None:
                _default = Policy.load()
    return _default


def evaluate(principal: Principal, action: str, resource: Resource | None = None) -> Decision:
    """Decide one request under the shipped policy: deny by default, forbid beats permit, errors deny."""
    return default_policy().decide(principal, action, resource)
