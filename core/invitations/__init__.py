"""Invitations of partner-agency guests into rooms, bound to the person on their first activity there."""
