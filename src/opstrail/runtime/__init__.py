"""Runs apps. Imports only ``opstrail.tracing.info``, ``errors`` and ``ids``: no database,
no wire. What a run needs from outside (knowledge retrieval, conversation history) comes in
through the protocols of ``opstrail.runtime.ports``."""
