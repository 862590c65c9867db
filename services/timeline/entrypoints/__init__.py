"""How the timeline is driven: its HTTP app, the author projection's consumer loop and the
schema migration (the outbox relay lives here too)."""
