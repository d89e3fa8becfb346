"""Where reports go besides local files: Security Hub, S3, notifications.

These are rdsaudit's only writes, each made only under its own flag (DESIGN.md, opt-in
writes). A delivery that fails is recorded as an error of the report (exit 3) and never
loses the local reports, which are written first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from rdsaudit.gate import ExitCode
from rdsaudit.model import CollectionError
from rdsaudit.report.contract import ErrorEntry, ReportDocument
from rdsaudit.serialize import to_data


def with_delivery_errors(doc: ReportDocument,
                         errors: Sequence[CollectionError]) -> ReportDocument:
    """The report document with failed deliveries added as errors: the run is incomplete."""
    if not errors:
        return doc
    summary = doc["summary"].copy()
    summary["errors"] += len(errors)
    summary["complete"] = False
    if summary["exit_code"] == ExitCode.COMPLIANT:
        summary["exit_code"] = int(ExitCode.INCOMPLETE)
    added = cast(list[ErrorEntry], to_data(tuple(errors)))
    return {**doc, "errors": [*doc["errors"], *added], "summary": summary}
