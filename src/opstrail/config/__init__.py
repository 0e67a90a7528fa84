"""Per-app tracing configuration: credentials, validation, states, policy."""
