"""Errors the domain raises for the user to read."""

from __future__ import annotations


class Refused(Exception):
    """An action that cannot be done as asked; the message is safe to show to the person who asked.

    Raised inside a request's unit of work it undoes that request's staged writes (not its audit
    event, which records the refusal).
    """
