"""Render the remediation steps of a JSON report as a reviewed shell runbook.

The runbook is for a person to read and run step by step; rdsaudit never runs it. Manual
steps (cut-over, verification, deleting the old resource) stay comments. A command that an
earlier finding already issued (two findings on one instance share the re-encryption path)
is not repeated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rdsaudit.reportfile import ReportProblem, load_report

__all__ = ["ReportProblem", "load_report", "render_runbook"]

SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]


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
