"""Durability: the outbox, the dispatcher and its workers."""
