"""Dify-compatible service API routers (``/v1``). Every module here that defines ``router``
is included by ``create_app``."""
