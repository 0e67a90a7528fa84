"""Create the demo's knowledge base through the console API."""

from __future__ import annotations

from pathlib import Path

from opstrail.cli.demo.script import ConsoleClient


def create_dataset(console_api: ConsoleClient, *, name: str, dataset_id: str, directory: Path) -> None:
    """Create dataset ``dataset_id`` from the text and markdown files of ``directory``."""
    files = sorted(p for p in directory.iterdir() if p.suffix in {".md", ".txt"})
    console_api.call(
        "POST",
        "/datasets",
        json={
            "id": dataset_id,
            "name": name,
            "documents": [{"name": p.name, "text": p.read_text(encoding="utf-8")} for p in files],
        },
    )
