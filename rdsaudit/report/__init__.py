"""Report formats: every one renders the same JSON document (the contract)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rdsaudit.report.asff import iter_asff, render_asff
from rdsaudit.report.contract import ReportDocument
from rdsaudit.report.csv import iter_csv, render_csv
from rdsaudit.report.document import report_document
from rdsaudit.report.html import render_html
from rdsaudit.report.json import iter_json, render_json
from rdsaudit.report.junit import iter_junit, render_junit
from rdsaudit.report.ocsf import iter_ocsf, render_ocsf
from rdsaudit.report.sarif import iter_sarif, render_sarif
from rdsaudit.report.table import render_table
from rdsaudit.report.xlsx import render_xlsx

Document = ReportDocument


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    render: Callable[[Document], str | bytes]  # bytes: a binary format (xlsx)
    # The same text in chunks (whole lines, or whole items of a one-line format: SARIF),
    # written to the file as they come: the large formats are never held as one string
    # (Deliver 8 of the reports issue); no chunk ends inside a value, so redaction, which
    # works a chunk at a time, sees every value whole.
    stream: Callable[[Document], Iterator[str]] | None = None


FORMATS: dict[str, Format] = {
    "json": Format("json", "json", render_json, iter_json),
    "html": Format("html", "html", render_html),
    "csv": Format("csv", "csv", render_csv, iter_csv),
    "junit": Format("junit", "xml", render_junit, iter_junit),
    "sarif": Format("sarif", "sarif", render_sarif, iter_sarif),
    "asff": Format("asff", "asff.json", render_asff, iter_asff),
    "ocsf": Format("ocsf", "ocsf.json", render_ocsf, iter_ocsf),
    "table": Format("table", "txt", render_table),
    "xlsx": Format("xlsx", "xlsx", render_xlsx),
}

__all__ = ["FORMATS", "Document", "Format", "report_document"]
