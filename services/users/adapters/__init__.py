"""Adapters of the users service, one per backing store."""
