"""CSV report: exact columns, one row per finding, no cell a spreadsheet would evaluate."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest

from rdsaudit.report.csv import render_csv
from tests.report.test_formats import HYPERLINK, IMG_XSS, sample_document

COLUMNS = ["account_id", "region", "resource_type", "resource_id", "resource_arn", "rule_id",
           "rule_title", "severity", "status", "message", "kms_key_arn", "key_state",
           "remediation_summary", "remediation_commands", "tags", "waiver_reason",
           "waiver_owner", "waiver_expires", "baseline", "finding_id", "scan_time"]
DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]


def _read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _finding(prefix: str) -> dict[str, Any]:
    """A finding whose every text field starts with `prefix`."""
    p = prefix
    return {
        "rule_id": p + "rule", "title": p + "title", "severity": p + "high", "status": p + "fail",
        "resource": {"arn": p + "arn", "type": p + "type", "id": p + "id", "region": p + "region",
                     "account_id": p + "123"},
        "message": p + "message", "kms_key": {"arn": p + "key", "state": p + "state",
                                              "manager": "CUSTOMER"},
        "remediation": {"summary": p + "summary",
                        "steps": [{"title": "t", "command": p + "cmd", "manual": False}]},
        "waiver": {"reason": p + "reason", "owner": p + "owner", "expires": p + "2026"},
        "tags": {p + "key": p + "value"}, "baseline": p + "new", "id": p + "0123",
    }


def test_columns_are_exactly_the_contract_and_one_row_per_finding() -> None:
    doc = sample_document()
    frame = _read(render_csv(doc))
    assert list(frame.columns) == COLUMNS
    # One row per finding, then one per collection error.
    assert len(frame) == len(doc["findings"]) + len(doc.get("errors") or [])
    first = doc["findings"][0]
    row = frame.iloc[0]
    assert row["resource_arn"] == first["resource"]["arn"]
    assert row["rule_id"] == first["rule_id"]
    assert row["severity"] == first["severity"] and row["status"] == first["status"]
    assert row["kms_key_arn"] == first["kms_key"]["arn"]
    assert row["key_state"] == first["kms_key"]["state"]


def test_remediation_commands_are_newline_joined_and_survive_a_round_trip() -> None:
    doc = sample_document()
    frame = _read(render_csv(doc))
    failing = [f for f in doc["findings"] if f["status"] == "fail" and f["remediation"]]
    assert failing
    for f in failing:
        row = frame[(frame["rule_id"] == f["rule_id"])
                    & (frame["resource_arn"] == f["resource"]["arn"])].iloc[0]
        commands = [s["command"] for s in f["remediation"]["steps"] if s["command"]]
        assert row["remediation_commands"] == "\n".join(commands)
        assert row["remediation_summary"] == f["remediation"]["summary"]
    passing = frame[frame["status"] == "pass"]
    assert (passing["remediation_commands"] == "").all()


def test_tags_are_key_equals_value_pairs() -> None:
    doc = sample_document()
    frame = _read(render_csv(doc))
    row = frame[(frame["resource_type"] == "db-instance") & (frame["resource_id"] == "doomed")]
    assert set(row["tags"]) == {"environment=production"}


def test_hyperlink_formula_in_a_tag_is_neutralised() -> None:
    text = render_csv(sample_document())
    assert IMG_XSS in text  # plain text in a CSV is harmless and kept as is
    assert "='HYPERLINK" not in text
    frame = _read(text)
    tags = frame[frame["resource_id"] == "plain"]["tags"].iloc[0]
    assert "env='" + HYPERLINK in tags
    # A tag *key* that is a formula leads the cell: the whole cell is neutralised too.
    doc = sample_document()
    doc["findings"][0]["tags"] = {HYPERLINK: "x"}
    cell = _read(render_csv(doc))["tags"].iloc[0]
    assert cell.startswith("'=HYPERLINK")


@pytest.mark.parametrize("prefix", DANGEROUS, ids=["eq", "plus", "minus", "at", "tab", "cr"])
def test_every_column_neutralises_formula_prefixes(prefix: str) -> None:
    doc = {"findings": [_finding(prefix)], "scan": {"finished_at": prefix + "2026"}}
    text = render_csv(doc)
    with io.StringIO(text, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == COLUMNS and len(rows) == 2
    for column, cell in zip(COLUMNS, rows[1], strict=True):
        assert cell.startswith("'" + prefix), (column, cell)


def test_safe_cells_are_left_alone_and_every_cell_is_quoted() -> None:
    doc = {"findings": [_finding("")]}
    text = render_csv(doc)
    line = text.splitlines()[1]
    assert line.startswith('"123","region","type"')
    assert "'" not in line


def test_no_findings_gives_just_the_header() -> None:
    text = render_csv({"findings": []})
    assert _read(text).columns.tolist() == COLUMNS
    assert text.count("\n") == 1


def test_collection_errors_are_rows_so_an_incomplete_csv_never_looks_complete() -> None:
    import csv as csv_module
    import io

    from rdsaudit.report.csv import render_csv

    doc = {"findings": [], "errors": [{
        "account_id": "111122223333", "region": "eu-west-1", "service": "rds",
        "operation": "DescribeDBSnapshots", "code": "AccessDenied", "message": "=denied"}]}
    rows = list(csv_module.DictReader(io.StringIO(render_csv(doc))))
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "error" and row["rule_id"] == "collection-error"
    assert row["resource_id"] == "rds:DescribeDBSnapshots" and row["region"] == "eu-west-1"
    assert "AccessDenied" in row["message"] and "incomplete" in row["message"]
