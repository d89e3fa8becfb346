"""The XLSX workbook (`--format xlsx`): where auditors live.

Sheets: Summary (the verdict), By account and region, Actions (the fix-first list),
Findings (the CSV's rows, with filters and a frozen header), Keys, and Key dependents (one
row per key, dependent and role: a key of thousands of databases would overflow a cell).
Excel holds at most 32,767 characters a cell: a longer text is cut there and says so.
Every cell is written as text or a number, never a formula: openpyxl stores a string that
starts with `=` as a formula, so such strings are neutralised exactly as in the CSV, and
account ids stay text (a 12-digit id must not become 1.11111E+11).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from rdsaudit.report.csv import COLUMNS, finding_rows, neutralise

SHEET_WIDTH_MAX = 80
CELL_MAX = 32_767  # Excel's limit of characters in a cell


def render_xlsx(doc: Mapping[str, Any]) -> bytes:
    import pandas as pd  # imported on use, like the CSV report

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
    sheets: list[tuple[str, Sequence[str], list[list[Any]]]] = [
        ("Summary", ["Item", "Value"], overview),
        ("By account and region", ["Scope", "Name", *GROUP_COUNTS], groups),
        ("Actions", ["Urgency", "Severity", "Kind", "Action", "Deadline", "Days left",
                     "Account", "Region", "Resources", "Findings", "Fix"], actions),
        ("Findings", list(COLUMNS), finding_rows(doc)),
        ("Keys", ["Key ARN", "Aliases", "Account", "Region", "State", "Manager", "Origin",
                  "Rotation", "Deadline", "Dependents"], keys),
        ("Key dependents", ["Key ARN", "Dependent ARN", "Role"], dependents),
    ]
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, columns, rows in sheets:
            frame = pd.DataFrame([[_cell(v) for v in row] for row in rows],
                                 columns=list(columns), dtype=object)
            frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes = "A2"
            if rows:
                sheet.auto_filter.ref = sheet.dimensions
            for i, column in enumerate(columns):
                longest = max([len(str(column))] + [len(str(row[i] or "").split("\n")[0])
                                                    for row in rows[:500]])
                letter = sheet.cell(row=1, column=i + 1).column_letter
                sheet.column_dimensions[letter].width = min(SHEET_WIDTH_MAX, longest + 2)
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
    text = neutralise(str(value))
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
