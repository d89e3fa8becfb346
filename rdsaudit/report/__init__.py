"""Report formats: every one renders the same JSON document (the contract)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rdsaudit.report.document import report_document
from rdsaudit.report.json import render_json

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    render: Callable[[Document], str]


FORMATS: dict[str, Format] = {
    "json": Format("json", "json", render_json),
}

__all__ = ["FORMATS", "Document", "Format", "report_document"]
