"""document-extractor: text out of files (plain text, markdown, PDF via pypdf).

A file value is a mapping with ``data`` (base64 content) or ``text``, plus ``filename`` /
``extension`` / ``mime_type``. Files are never read from the server's own disk by path.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from typing import Any, Final

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.variables import MISSING

TEXT_EXTENSIONS: Final = frozenset({"txt", "md", "markdown", "csv", "json", "html", "htm",
                                    "xml", "yaml", "yml", "log"})


def _extension(file: Mapping[str, Any]) -> str:
    ext = str(file.get("extension") or "").lower().lstrip(".")
    if not ext and file.get("filename"):
        ext = str(file["filename"]).rsplit(".", 1)[-1].lower() if "." in str(
            file["filename"]) else ""
    if not ext and file.get("mime_type") == "application/pdf":
        ext = "pdf"
    return ext


def extract_text(ctx: NodeContext, file: Any) -> str:
    """The text of one file."""
    if not isinstance(file, Mapping):
        raise ctx.fail("a file value must be a mapping with data or text")
    if isinstance(file.get("text"), str):
        return str(file["text"])
    raw = file.get("data")
    if not isinstance(raw, str):
        raise ctx.fail(f"file {file.get('filename')!r} has no content (data or text)")
    try:
        content = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ctx.fail(f"file {file.get('filename')!r}: data is not base64") from exc
    ext = _extension(file)
    if ext == "pdf":
        try:
            reader = PdfReader(io.BytesIO(content))
            return "\n".join(page.extract_text() or "" for page in reader.pages)
        except (PyPdfError, ValueError, OSError) as exc:
            raise ctx.fail(f"file {file.get('filename')!r} is not a readable PDF: {exc}") \
                from exc
    if ext in TEXT_EXTENSIONS or str(file.get("mime_type") or "").startswith("text/"):
        return content.decode("utf-8", errors="replace")
    raise ctx.fail(f"file {file.get('filename')!r}: extension {ext!r} is not supported "
                   "(text, markdown and PDF are)")


def handle(ctx: NodeContext) -> NodeResult:
    """Outputs ``text``: a string, or a list of strings for a file array."""
    value = ctx.pool.lookup(ctx.data.get("variable_selector") or [])
    if value is MISSING or value is None:
        raise ctx.fail("the document extractor's input file is missing")
    if isinstance(value, list):
        texts = [extract_text(ctx, f) for f in value]
        return NodeResult(outputs={"text": texts}, inputs={"files": len(value)})
    return NodeResult(outputs={"text": extract_text(ctx, value)}, inputs={"files": 1})
