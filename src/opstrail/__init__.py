"""opstrail: runs LLM apps and traces every run into Langfuse.

Importing the package starts nothing; see ``opstrail.cli`` and ``opstrail.api.app``.
"""

__version__ = "0.1.0"
