"""Gradual adoption: compare a result with a previous JSON report.

Each failing finding is `new` or `unchanged`; failures of the baseline that no longer fail
are listed as resolved. With --fail-on-new only new failures fail the gate, so a team can
adopt rdsaudit in CI without first fixing everything it already had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rdsaudit.model import BaselineReport, BaselineState, ResolvedFinding, Result, Status

FAILING = ("fail", "waived")


def _key(rule_id: str, arn: str) -> tuple[str, str]:
    return rule_id, arn


def apply_baseline(result: Result, previous: Mapping[str, Any], source: str) -> Result:
    before: dict[tuple[str, str], Mapping[str, Any]] = {
        _key(f["rule_id"], f["resource"]["arn"]): f
        for f in previous["findings"] if f.get("status") in FAILING
    }
    now: set[tuple[str, str]] = set()
    findings = []
    new = unchanged = 0
    for finding in result.findings:
        if finding.status in (Status.FAIL, Status.WAIVED):
            key = _key(finding.rule_id, finding.resource.arn)
            now.add(key)
            if key in before:
                unchanged += 1
                finding = replace(finding, baseline=BaselineState.UNCHANGED)
            else:
                new += 1
                finding = replace(finding, baseline=BaselineState.NEW)
        findings.append(finding)
    resolved = tuple(
        ResolvedFinding(rule_id=f["rule_id"], resource_arn=f["resource"]["arn"],
                        resource_id=f["resource"]["id"], account_id=f["resource"]["account_id"],
                        region=f["resource"]["region"], severity=f["severity"])
        for key, f in sorted(before.items()) if key not in now
    )
    return replace(result, findings=tuple(findings),
                   baseline=BaselineReport(source, new, unchanged, resolved))
