"""Typed clients of the downstream services (one module per service)."""
