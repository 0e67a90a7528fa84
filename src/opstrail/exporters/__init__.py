"""Wire formats and HTTP clients for Langfuse: thin serializers plus one client each."""
