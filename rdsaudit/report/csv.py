"""The CSV report: one row per finding, for spreadsheets and ticket imports.

Cells hold attacker-controlled text (resource names, tag values), and a spreadsheet runs a
cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as a formula. Every such
cell (and each value inside the tags cell) is neutralised with a leading `'`, and every cell
is quoted (OWASP "CSV Injection").
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import Any

COLUMNS = (
    "account_id", "region", "resource_type", "resource_id", "resource_arn", "rule_id",
    "severity", "status", "message", "kms_key_arn", "key_state", "remediation_summary",
    "remediation_commands", "tags",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def render_csv(doc: Mapping[str, Any]) -> str:
    import pandas as pd  # imported on use: it adds ~0.5 s to every CLI start

    tags_cells: dict[int, str] = {}  # findings of one resource share its tags dict
    rows = [[neutralise(value) for value in _row(f, tags_cells)]
            for f in doc.get("findings") or []]
    # Collection errors reach this report too, as rows of their own (status "error"), so a
    # spreadsheet of an incomplete scan never looks complete.
    rows += [[neutralise(value) for value in _error_row(e)] for e in doc.get("errors") or []]
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    return frame.to_csv(index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")


def neutralise(value: str) -> str:
    """A cell a spreadsheet would evaluate becomes text: prefix it with a single quote.

    Spreadsheets skip leading blanks (a space, a no-break space) before `=`, and a reader
    that splits the cell's lines would see each line as a cell: any line that starts, after
    blanks, with a formula character makes the whole cell text."""
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    lines = value.splitlines() or [value]
    if any(line.lstrip(" \u00a0\u2007\u202f\u3000").startswith(FORMULA_PREFIXES)
           for line in lines):
        return "'" + "\n".join("'" + line if line.lstrip(" \u00a0\u2007\u202f\u3000")
                                .startswith(FORMULA_PREFIXES) else line for line in lines)
    return value


def _row(finding: Mapping[str, Any], tags_cells: dict[int, str]) -> list[str]:
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
    return [
        _text(resource.get("account_id")),
        _text(resource.get("region")),
        _text(resource.get("type")),
        _text(resource.get("id")),
        _text(resource.get("arn")),
        _text(finding.get("rule_id")),
        _text(finding.get("severity")),
        _text(finding.get("status")),
        _text(finding.get("message")),
        _text(key.get("arn")),
        _text(key.get("state")),
        _text(remediation.get("summary")),
        "\n".join(commands),
        tags_cell,
    ]


def _error_row(error: Mapping[str, Any]) -> list[str]:
    call = f"{_text(error.get('service'))}:{_text(error.get('operation'))}"
    message = (f"{call} failed: {_text(error.get('code'))}: {_text(error.get('message'))}. "
               "The scan is incomplete: what this call would have returned is not in the "
               "report.")
    return [_text(error.get("account_id")), _text(error.get("region")), "collection-error",
            call, "", "collection-error", "", "error", message, "", "", "", "", ""]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
