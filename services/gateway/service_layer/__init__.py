"""The gateway's use cases, one per public operation, and the ports they need."""
