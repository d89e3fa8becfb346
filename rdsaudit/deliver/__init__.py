"""Where reports go besides local files: Security Hub, S3, notifications.

These are rdsaudit's only writes, each made only under its own flag (DESIGN.md, opt-in
writes). A delivery that fails is recorded as an error of the report (exit 3) and never
loses the local reports, which are written first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rdsaudit.gate import ExitCode
from rdsaudit.model import CollectionError
from rdsaudit.serialize import to_data


def with_delivery_errors(doc: dict[str, Any],
                         errors: Sequence[CollectionError]) -> dict[str, Any]:
    """The report document with failed deliveries added as errors: the run is incomplete."""
    if not errors:
        return doc
    summary = dict(doc.get("summary") or {})
    summary["errors"] = int(summary.get("errors") or 0) + len(errors)
    summary["complete"] = False
    if summary.get("exit_code") == ExitCode.COMPLIANT:
        summary["exit_code"] = int(ExitCode.INCOMPLETE)
    return {**doc, "errors": [*(doc.get("errors") or []), *to_data(tuple(errors))],
            "summary": summary}
