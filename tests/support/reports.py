"""Reading any report file back as text, for tests that hunt through every output."""

from __future__ import annotations

import zipfile
from pathlib import Path


def report_text(path: Path) -> str:
    """The text of a report file; an XLSX workbook (a zip of XML parts) as its parts' text."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return "\n".join(book.read(name).decode("utf-8") for name in book.namelist())
    return path.read_text(encoding="utf-8")
