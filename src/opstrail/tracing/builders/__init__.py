"""Builders: one module per trace kind, each a pure function from a record to tree parts.

``opstrail.tracing.build`` is the public face; these modules are its internals.
"""
