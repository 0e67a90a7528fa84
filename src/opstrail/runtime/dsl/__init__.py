"""Dify DSL: parsing and checking app documents."""
