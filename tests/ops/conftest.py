"""Fixtures of the ops tests: the throw-away PostgreSQL server the store's health is tried on."""

from __future__ import annotations

from tests.pg import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
