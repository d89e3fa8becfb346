"""Render the remediation steps of a JSON report as a reviewed shell runbook.

The runbook is for a person to read and run step by step; rdsaudit never runs it. Manual
steps (cut-over, verification, deleting the old resource) stay comments. A command that an
earlier finding already issued (two findings on one instance share the re-encryption path)
is not repeated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]


class ReportProblem(ValueError):
    """A report file we cannot plan from (exit 2)."""


def load_report(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportProblem(f"{path}: cannot read report: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReportProblem(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(
            doc.get("findings"), list):
        raise ReportProblem(f"{path}: not an rdsaudit JSON report (schema_version 1)")
    if not isinstance(doc.get("scan", {}), dict):
        raise ReportProblem(f"{path}: scan is not an object")
    for i, finding in enumerate(doc["findings"]):
        problem = _finding_problem(finding)
        if problem:
            raise ReportProblem(f"{path}: findings[{i}]{problem}")
    return doc


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


def _comment(text: str) -> str:
    return "\n".join("# " + line if line else "#" for line in text.splitlines() or [""])


def _wanted(finding: Mapping[str, Any], resources: Sequence[str]) -> bool:
    if finding.get("status") != "fail" or not finding.get("remediation"):
        return False
    if not resources:
        return True
    res = finding["resource"]
    return res.get("id") in resources or res.get("arn") in resources


def render_runbook(doc: Mapping[str, Any], resources: Sequence[str] = (),
                   source: str = "report") -> str:
    findings = [f for f in doc["findings"] if _wanted(f, resources)]
    findings.sort(key=lambda f: SEVERITY_ORDER.index(f.get("severity", "info"))
                  if f.get("severity") in SEVERITY_ORDER else len(SEVERITY_ORDER))
    scan = doc.get("scan", {})
    out = [
        "#!/usr/bin/env bash",
        "# rdsaudit remediation runbook",
        f"# From {source}: scan finished {scan.get('finished_at', '?')}, accounts "
        f"{', '.join(scan.get('accounts', [])) or '?'}.",
        "# Review every step before running it. rdsaudit never runs this script.",
        "# Steps marked MANUAL are comments: do them by hand when the step before is verified.",
        "set -euo pipefail",
        "",
    ]
    body_text = json.dumps(findings)
    if "${TARGET_KEY_ARN}" in body_text:
        out += [": \"${TARGET_KEY_ARN:?set TARGET_KEY_ARN to a customer managed KMS key ARN}\"",
                ""]
    if not findings:
        out.append("# Nothing to remediate: no failing finding matched.")
    issued: set[str] = set()
    for f in findings:
        res = f["resource"]
        rem = f["remediation"]
        out.append(f"# ── [{f.get('severity')}] {f.get('rule_id')} · {res.get('type')} "
                   f"{res.get('id')} ({res.get('region')}, account {res.get('account_id')})")
        out.append(_comment(str(f.get("message", ""))))
        out.append(_comment(str(rem.get("summary", ""))))
        for n, step in enumerate(rem.get("steps") or [], start=1):
            command = step.get("command")
            manual = bool(step.get("manual"))
            label = f"Step {n}{' (MANUAL)' if manual else ''}: {step['title']}"
            out.append(_comment(label))
            if command is None:
                continue
            if manual:
                out.append(_comment(command))
            elif command in issued:
                out.append(_comment(f"already done above: {command}"))
            else:
                issued.add(command)
                out.append(command)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
