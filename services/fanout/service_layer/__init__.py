"""Fan-out's use cases (one handler per event type, and the processing of one record)
and the ports they need."""
