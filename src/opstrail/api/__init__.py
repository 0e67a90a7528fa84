"""HTTP: the console API, the Dify-compatible service API, health and metrics."""
