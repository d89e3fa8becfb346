"""Exit codes: the contract CI pipelines gate on (DESIGN.md)."""

from __future__ import annotations

import enum

from rdsaudit.model import Result, Severity, Status


class ExitCode(enum.IntEnum):
    COMPLIANT = 0
    FAILED = 1  # an unwaived fail at or above --fail-on
    USAGE = 2  # bad flags, config, credentials, input: nothing scanned
    INCOMPLETE = 3  # collection errors, and nothing else failed the gate
    INTERNAL = 4
    INTERRUPTED = 130


def gate(result: Result, fail_on: Severity, only_new: bool = False) -> ExitCode:
    """Waived findings never fail the gate; with `only_new`, nor do baseline ones."""
    if any(f.status is Status.FAIL and f.severity >= fail_on
           and (not only_new or f.baseline != "unchanged")
           for f in result.findings):
        return ExitCode.FAILED
    if result.inventory.errors:
        return ExitCode.INCOMPLETE
    return ExitCode.COMPLIANT
