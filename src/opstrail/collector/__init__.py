"""A local Langfuse-compatible receiver. Shares no code with the exporters on purpose, so it
cannot share their bugs."""
