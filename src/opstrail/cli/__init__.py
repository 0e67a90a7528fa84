"""The ``opstrail`` command line (Typer)."""
