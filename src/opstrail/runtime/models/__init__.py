"""Model clients: the offline model, OpenAI-compatible endpoints, and the registry."""
