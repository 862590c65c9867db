"""The gateway's own refusals, as plain exceptions (entrypoints/errors.py maps them to HTTP)."""

from __future__ import annotations


class Unauthenticated(Exception):
    """The caller did not prove who they are: no token, a malformed one, or one not valid."""
