"""Use cases: the only layer that opens transactions (run -> persist -> outbox, in one)."""
