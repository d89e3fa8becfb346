"""The CSV report: one row per finding, for spreadsheets and ticket imports.

Cells hold attacker-controlled text (resource names, tag values), and a spreadsheet runs a
cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as a formula. Every such
cell (and each value inside the tags cell) is neutralised with a leading `'`, and every cell
is quoted (OWASP "CSV Injection").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from typing import Any

COLUMNS = (
    "account_id", "region", "resource_type", "resource_id", "resource_arn", "rule_id",
    "rule_title", "severity", "status", "message", "kms_key_arn", "key_state",
    "remediation_summary", "remediation_commands", "tags", "waiver_reason", "waiver_owner",
    "waiver_expires", "baseline", "finding_id", "scan_time",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def render_csv(doc: Mapping[str, Any]) -> str:
    return "".join(iter_csv(doc))


def iter_csv(doc: Mapping[str, Any], batch: int = 1000) -> Iterator[str]:
    """The CSV, `batch` rows at a time, for writing straight to the file (the standard
    library's writer: every cell quoted, LF line ends, as pandas' to_csv wrote it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(COLUMNS)
    for n, row in enumerate(iter_finding_rows(doc), 1):
        writer.writerow(row)
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def finding_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    """The rows of the CSV (and of the XLSX Findings sheet), as a list."""
    return list(iter_finding_rows(doc))


def iter_finding_rows(doc: Mapping[str, Any]) -> Iterator[list[str]]:
    """One row per finding in the document (failing and waived; every pass too with
    --evidence full), then one per collection error. Every cell is text: account ids stay
    12 digits, never a number."""
    tags_cells: dict[int, str] = {}  # findings of one resource share its tags dict
    scan_time = _text((doc.get("scan") or {}).get("finished_at"))
    for f in doc.get("findings") or []:
        yield [neutralise(value) for value in _row(f, tags_cells, scan_time)]
    # Collection errors reach this report too, as rows of their own (status "error"), so a
    # spreadsheet of an incomplete scan never looks complete.
    for e in doc.get("errors") or []:
        yield [neutralise(value) for value in _error_row(e, scan_time)]


def neutralise(value: str) -> str:
    """A cell a spreadsheet would evaluate becomes text: prefix it with a single quote.

    Spreadsheets skip leading blanks (a space, a no-break space) before `=`, and a reader
    that splits the cell's lines would see each line as a cell: any line that starts, after
    blanks, with a formula character makes the whole cell text."""
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    # The patterns below need a line break, or a blank first: most cells have neither.
    if not value.startswith(_BLANK_CHARS) and "\n" not in value and "\r" not in value:
        return value
    if _LINE_FORMULA.search(value) or _BLANK_FORMULA.match(value):
        # Every line break is kept as it was; a quote goes before each formula line.
        return "'" + _LINE_FORMULA.sub(lambda m: m.group(1) + "'" + m.group(2), value)
    return value


_BLANK_CHARS = (" ", "\u00a0", "\u2007", "\u202f", "\u3000")
_BLANKS = "[" + "".join(_BLANK_CHARS) + "]*"
_LINE_FORMULA = re.compile(f"(\r\n|\r|\n)({_BLANKS}(?=[=+\\-@\t]))")
_BLANK_FORMULA = re.compile(f"{_BLANKS}[=+\\-@]")


def _row(finding: Mapping[str, Any], tags_cells: dict[int, str], scan_time: str) -> list[str]:
    resource = finding.get("resource") or {}
    key = finding.get("kms_key") or {}
    remediation = finding.get("remediation") or {}
    commands = [step["command"] for step in remediation.get("steps") or []
                if step.get("command")]
    tags = finding.get("tags") or {}
    tags_cell = tags_cells.get(id(tags))
    if tags_cell is None:
        # Each tag is neutralised too, so no formula survives even if a reader splits it.
        tags_cell = tags_cells[id(tags)] = "; ".join(
            f"{neutralise(str(k))}={neutralise(str(v))}" for k, v in tags.items())
    waiver = finding.get("waiver") or {}
    return [
        _text(resource.get("account_id")),
        _text(resource.get("region")),
        _text(resource.get("type")),
        _text(resource.get("id")),
        _text(resource.get("arn")),
        _text(finding.get("rule_id")),
        _text(finding.get("title")),
        _text(finding.get("severity")),
        _text(finding.get("status")),
        _text(finding.get("message")),
        _text(key.get("arn")),
        _text(key.get("state")),
        _text(remediation.get("summary")),
        "\n".join(commands),
        tags_cell,
        _text(waiver.get("reason")),
        _text(waiver.get("owner")),
        _text(waiver.get("expires")),
        _text(finding.get("baseline")),
        _text(finding.get("id")),
        scan_time,
    ]


def _error_row(error: Mapping[str, Any], scan_time: str) -> list[str]:
    call = f"{_text(error.get('service'))}:{_text(error.get('operation'))}"
    message = (f"{call} failed: {_text(error.get('code'))}: {_text(error.get('message'))}. "
               "The scan is incomplete: what this call would have returned is not in the "
               "report.")
    return [_text(error.get("account_id")), _text(error.get("region")), "collection-error",
            call, _text(error.get("resource")), "collection-error", "", "", "error", message,
            "", "", "", "", "", "", "", "", "", "", scan_time]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
