"""The users processes: the HTTP API (`app`), the outbox relay and the migrations."""
