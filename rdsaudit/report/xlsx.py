"""The XLSX workbook (`--format xlsx`): where auditors live.

Sheets: Summary (the verdict), By account and region, Actions (the fix-first list),
Findings (the CSV's rows, with filters and a frozen header), Keys, and Key dependents (one
row per key, dependent and role: a key of thousands of databases would overflow a cell).
Excel holds at most 32,767 characters a cell: a longer text is cut there and says so.
Every cell is written as text or a number, never a formula (xlsxwriter's write_string):
strings that start with `=` are still neutralised exactly as in the CSV, since a user who
re-saves or copies the cell would make it live, and account ids stay text (a 12-digit id
must not become 1.11111E+11).
"""

from __future__ import annotations

import io
import itertools
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rdsaudit.report.csv import COLUMNS, iter_finding_rows, neutralise

SHEET_WIDTH_MAX = 80
CELL_MAX = 32_767  # Excel's limit of characters in a cell
WIDTH_SAMPLE = 500  # rows read to size each column
# Control characters a worksheet cannot hold (XML 1.0 has no place for them); AWS text (tags,
# messages) may carry them, so they are shown as U+FFFD rather than abort the workbook.
_NOT_IN_SHEET = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def render_xlsx(doc: Mapping[str, Any]) -> bytes:
    summary = doc.get("summary") or {}
    scan = doc.get("scan") or {}
    overview: list[list[Any]] = [
        ["Verdict", summary.get("verdict")],
        ["Exit code", summary.get("exit_code")],
        ["Scan started", scan.get("started_at")],
        ["Scan finished", scan.get("finished_at")],
        ["Accounts", ", ".join(scan.get("accounts") or [])],
        ["Regions", ", ".join(scan.get("regions") or [])],
        ["Resources", summary.get("resources_total")],
        *[[f"Findings: {k}", v] for k, v in (summary.get("findings") or {}).items()],
        *[[f"Failures: {k}", v] for k, v in (summary.get("failures_by_severity") or {}).items()],
        ["Collection errors", summary.get("errors")],
        ["Complete", "yes" if summary.get("complete") else "no"],
    ]
    groups: list[list[Any]] = []
    for kind, table in (("account", summary.get("by_account") or {}),
                        ("region", summary.get("by_region") or {})):
        for name, counts in table.items():
            groups.append([kind, name, *(counts.get(c, 0) for c in GROUP_COUNTS)])
    actions = [[a.get("urgency"), a.get("severity"), a.get("kind"), a.get("title"),
                a.get("deadline"), a.get("days_left"), a.get("account_id"), a.get("region"),
                len(a.get("resources") or []), len(a.get("finding_ids") or []),
                (a.get("remediation") or {}).get("summary")]
               for a in summary.get("actions") or []]
    keys = [[k.get("arn"), ", ".join(k.get("aliases") or []), k.get("account_id"),
             k.get("region"), k.get("key_state"), k.get("key_manager"), k.get("origin"),
             _rotation(k), k.get("deadline"), len(k.get("dependents") or [])]
            for k in doc.get("keys") or []]
    dependents = [[k.get("arn"), d.get("arn"), d.get("role")]
                  for k in doc.get("keys") or [] for d in _roles(k)]
    sheets: list[tuple[str, Sequence[str], Iterable[list[Any]]]] = [
        ("Summary", ["Item", "Value"], overview),
        ("By account and region", ["Scope", "Name", *GROUP_COUNTS], groups),
        ("Actions", ["Urgency", "Severity", "Kind", "Action", "Deadline", "Days left",
                     "Account", "Region", "Resources", "Findings", "Fix"], actions),
        ("Findings", list(COLUMNS), iter_finding_rows(doc)),
        ("Keys", ["Key ARN", "Aliases", "Account", "Region", "State", "Manager", "Origin",
                  "Rotation", "Deadline", "Dependents"], keys),
        ("Key dependents", ["Key ARN", "Dependent ARN", "Role"], dependents),
    ]
    # xlsxwriter's constant_memory mode writes each row to the sheet's file as soon as the
    # next one starts: a 100k-resource estate's workbook is never held as cells, and it is
    # several times faster than openpyxl's write-only mode (which built an XML element per
    # cell). Every value is written with an explicit type: text never becomes a formula.
    import xlsxwriter  # imported on use: only this format needs it

    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="rdsaudit-xlsx-") as scratch:
        book = xlsxwriter.Workbook(buffer, {"constant_memory": True, "tmpdir": scratch,
                                            "strings_to_numbers": False,
                                            "strings_to_formulas": False,
                                            "strings_to_urls": False})
        bold = book.add_format({"bold": True})
        for name, columns, rows in sheets:
            sheet = book.add_worksheet(name)
            rows = iter(rows)
            # The Findings rows are the CSV's, neutralised already: only made sheet-safe.
            cell = _sheet_text if name == "Findings" else _cell
            first = [[cell(v) for v in row] for row in itertools.islice(rows, WIDTH_SAMPLE)]
            for i, column in enumerate(columns):  # widths go before the rows in the file
                longest = max([len(str(column))] + [len(str(row[i]).split("\n")[0])
                                                    for row in first])
                sheet.set_column(i, i, min(SHEET_WIDTH_MAX, longest + 2))
            sheet.freeze_panes(1, 0)
            for i, column in enumerate(columns):
                sheet.write_string(0, i, column, bold)
            count = 0
            text, number = sheet.write_string, sheet.write_number
            for row in itertools.chain(first, ([cell(v) for v in r] for r in rows)):
                count += 1
                for i, value in enumerate(row):
                    if type(value) is str:
                        if value:
                            text(count, i, value)
                    else:
                        number(count, i, value)
            if count:
                sheet.autofilter(0, 0, count, len(columns) - 1)
        book.close()
    return buffer.getvalue()


GROUP_COUNTS = ("resources", "fail", "waived", "pass", "critical", "high", "medium", "low",
                "info", "errors")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    return _sheet_text(neutralise(str(value)))


def _sheet_text(text: str) -> str:
    """Text a cell can hold: no control character, at most CELL_MAX characters."""
    if not text.isprintable():  # a cheap test first: most cells are plain text
        text = _NOT_IN_SHEET.sub("\ufffd", text)
    if len(text) > CELL_MAX:
        note = f" … [cut at Excel's {CELL_MAX:,}-character cell limit: see the JSON report]"
        text = text[:CELL_MAX - len(note)] + note
    return text


def _roles(key: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The key's dependents with their roles (a version 1 document: storage, by ARN)."""
    roles = [d for d in key.get("roles") or () if isinstance(d, Mapping) and d.get("arn")]
    listed = {d["arn"] for d in roles}
    return roles + [{"arn": arn, "role": "storage"} for arn in key.get("dependents") or ()
                    if arn not in listed]


def _rotation(key: Mapping[str, Any]) -> str:
    if key.get("rotation") == "ok":
        return "enabled" if key.get("rotation_enabled") else "disabled"
    return str(key.get("rotation") or "unknown")
