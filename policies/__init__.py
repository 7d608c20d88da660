"""Who may do what: policy data and one small, pure evaluator."""

from policies.evaluator import evaluate
from policies.model import Decision, Principal, PrincipalKind, Resource

__all__ = ["Decision", "Principal", "PrincipalKind", "Resource", "evaluate"]
