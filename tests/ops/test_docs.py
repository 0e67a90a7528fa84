"""Operator docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from opstrail.cli.commands.settings import settings_table_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_operations_doc_lists_every_setting_when_settings_change() -> None:
    """docs/operations.md carries the current settings table (`opstrail settings --markdown`)."""
    assert settings_table_markdown() in (DOCS / "operations.md").read_text(encoding="utf-8")
