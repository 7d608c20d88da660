"""Misuse monitoring: rules over the audit trail, evaluated as events are appended (DESIGN.md, oversight)."""
