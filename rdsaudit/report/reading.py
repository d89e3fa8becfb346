"""Read a JSON report written by rdsaudit (for `plan` and `--baseline`), strictly.

A report is user input here: anything that is not a schema_version 1 or 2 report with
well-formed findings is refused with one line naming the file and the first bad finding.
Both versions carry the failing and waived findings in the same shape (version 1 also
lists the passes), which is all that planning and a baseline need.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdsaudit.errors import UsageProblem
from rdsaudit.text import identifier_problem, valid_text
from rdsaudit.userfile import UserFileProblem, read_user_file

READABLE_VERSIONS = (1, 2)


class ReportProblem(UsageProblem, ValueError):
    """A report file we cannot plan from (exit 2)."""


def load_report(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(read_user_file(path, "report"))
    except UserFileProblem as exc:
        raise ReportProblem(str(exc)) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ReportProblem(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(doc, dict):
        raise ReportProblem(f"{path}: not an rdsaudit JSON report (schema_version 1 or 2)")
    version = doc.get("schema_version")
    if type(version) is not int or version not in READABLE_VERSIONS \
            or not isinstance(doc.get("findings"), list):
        raise ReportProblem(f"{path}: not an rdsaudit JSON report (schema_version 1 or 2)")
    scan = doc.get("scan", {})
    if not isinstance(scan, dict):
        raise ReportProblem(f"{path}: scan is not an object")
    for name in ("accounts", "regions"):
        listed = scan.get(name, [])
        if not isinstance(listed, list) or not all(
                isinstance(v, str) and identifier_problem(v) is None for v in listed):
            raise ReportProblem(f"{path}: scan.{name} is not a list of names")
    for i, finding in enumerate(doc["findings"]):
        problem = _finding_problem(finding)
        if problem:
            raise ReportProblem(f"{path}: findings[{i}]{problem}")
    try:
        valid: dict[str, Any] = _valid_unicode(doc, "")
    except _NotUnicode as exc:
        raise ReportProblem(f"{path}: {exc} is not valid Unicode") from None
    return valid


class _NotUnicode(ValueError):
    pass


# What the runbook executes: never "cleaned" into another command (the identifiers of a
# finding's resource and the scan's names were checked above, before any cleaning).
_COMMAND_FIELDS = frozenset({"argv", "command"})


def _valid_unicode(value: Any, where: str) -> Any:
    """The report with its free text made valid Unicode (a lone surrogate, legal in JSON,
    becomes U+FFFD) so no writer fails on it; a command that is not valid Unicode is refused."""
    if isinstance(value, str):
        if valid_text(value) == value:
            return value
        if where.rsplit(".", 1)[-1].split("[", 1)[0] in _COMMAND_FIELDS:
            raise _NotUnicode(where.lstrip("."))
        return valid_text(value)
    if isinstance(value, list):
        return [_valid_unicode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {valid_text(k) if isinstance(k, str) else k: _valid_unicode(v, f"{where}.{k}")
                for k, v in value.items()}
    return value


def _finding_problem(finding: Any) -> str | None:
    """What is wrong with one finding of a report, or None."""
    if not isinstance(finding, dict):
        return " is not a finding"
    for name in ("rule_id", "status", "severity", "message"):
        if not isinstance(finding.get(name), str):
            return f".{name} is not a string"
    resource = finding.get("resource")
    if not isinstance(resource, dict) or not all(
            isinstance(resource.get(k), str) for k in ("arn", "type", "id", "region",
                                                       "account_id")):
        return ".resource is not a resource"
    for k in ("arn", "id", "region", "account_id"):
        # Never "cleaned": a control character or invalid Unicode is refused, as it is in
        # an AWS answer (rdsaudit/text.py); a runbook never acts on such a name.
        problem = identifier_problem(resource[k])
        if problem is not None:
            return f".resource.{k} {problem}"
    remediation = finding.get("remediation")
    if remediation is None:
        return None
    if not isinstance(remediation, dict) or not isinstance(remediation.get("summary"), str):
        return ".remediation is not a remediation"
    steps = remediation.get("steps", [])
    if not isinstance(steps, list) or not all(
            isinstance(s, dict) and isinstance(s.get("title"), str)
            and isinstance(s.get("command"), str | None)
            and isinstance(s.get("manual", False), bool) for s in steps):
        return ".remediation.steps is malformed"
    return None


