"""The SARIF 2.1.0 report: for code-scanning dashboards (GitHub, Azure DevOps, IDEs).

Rules come from the catalogue; failing findings are results, waived ones are results with
an accepted suppression; passes are left out (SARIF lists problems). Cloud resources have
no file, so a result's logical location is the resource ARN and its type; GitHub code
scanning refuses a result without a `physicalLocation`, so each also names a stable
pseudo-path, `aws/<account>/<region>/<type>/<id>`, at line 1 (docs/ci.md).
Collection errors are tool execution notifications, and `executionSuccessful` is false when
the scan was incomplete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from rdsaudit.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
          "info": "note"}
# GitHub code scanning maps this 0-10 score to critical/high/medium/low; it documents the
# value as a number in a string.
SECURITY_SEVERITY = {"critical": "9.5", "high": "7.5", "medium": "5.0", "low": "3.0",
                     "info": "0.0"}


def render_sarif(doc: Mapping[str, Any]) -> str:
    return "".join(iter_sarif(doc))


def iter_sarif(doc: Mapping[str, Any], batch: int = 500) -> Iterator[str]:
    """The SARIF log in chunks of `batch` results, for writing straight to the file.

    Compact: an indented dump runs json's pure-Python encoder, ~10x slower on 100k results;
    SARIF is read by tools, not people. The log is dumped with a marker where the results
    go, and each result on its own: the same text as one dump of the whole log, without
    ever holding every result as objects or the log as one string. The log is one line, so
    a chunk ends between two results (never inside a value: redaction sees whole values).
    """
    marker = "\x00rdsaudit-results\x00"
    log = sarif_log(doc, results=marker)
    # The last occurrence: only identifiers (accounts, regions: no control character) and a
    # flag follow the results, while an error message before them could hold the marker.
    head, tail = _dump(log).rsplit(_dump(marker), 1)
    chunk = [head, "["]
    for n, result in enumerate(_results(doc, log)):
        chunk.append("," + _dump(result) if n else _dump(result))
        if len(chunk) >= batch:
            yield "".join(chunk)
            chunk = []
    chunk += ["]", tail, "\n"]
    yield "".join(chunk)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _results(doc: Mapping[str, Any], log: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    index = {r["id"]: i for i, r in enumerate(rules)}
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    return (_result(f, index) for f in findings if f.get("status") in ("fail", "waived"))


def sarif_log(doc: Mapping[str, Any], results: Any = None) -> dict[str, Any]:
    """The SARIF log as objects; `results`, when given, stands in for the results list."""
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    errors: Sequence[Mapping[str, Any]] = doc.get("errors") or []
    scan: Mapping[str, Any] = doc.get("scan") or {}
    summary: Mapping[str, Any] = doc.get("summary") or {}
    tool: Mapping[str, Any] = doc.get("tool") or {}

    rules = [_catalogue_rule(rule_id) for rule_id in RULES]
    index = {r["id"]: i for i, r in enumerate(rules)}
    for f in findings:  # a rule the catalogue does not know still needs a descriptor
        rule_id = str(f.get("rule_id"))
        if rule_id not in index:
            index[rule_id] = len(rules)
            rules.append(_finding_rule(f))

    if results is None:
        results = [_result(f, index) for f in findings
                   if f.get("status") in ("fail", "waived")]
    invocation: dict[str, Any] = {
        "executionSuccessful": not errors and bool(summary.get("complete", True)),
        "toolExecutionNotifications": [_notification(e) for e in errors],
    }
    if scan.get("started_at"):
        invocation["startTimeUtc"] = scan["started_at"]
    if scan.get("finished_at"):
        invocation["endTimeUtc"] = scan["finished_at"]
    if "exit_code" in summary:
        invocation["exitCode"] = summary["exit_code"]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": str(tool.get("name") or "rdsaudit"),
            "version": str(tool.get("version") or ""),
            "rules": rules,
        }},
        "invocations": [invocation],
        "results": results,
        "properties": {
            "accounts": list(scan.get("accounts") or []),
            "regions": list(scan.get("regions") or []),
            "complete": invocation["executionSuccessful"],
        },
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def _catalogue_rule(rule_id: str) -> dict[str, Any]:
    rule = RULES[rule_id]
    severity = rule.severity.label
    return {
        "id": rule.id,
        "name": _pascal(rule.id),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": f"Applies to: {rule.applies_to}. Severity: {rule.severity_text}."},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[severity],
            "severity": severity,
            "tags": ["security", "aws", "rds", "encryption"],
        },
    }


def _finding_rule(f: Mapping[str, Any]) -> dict[str, Any]:
    rule_id = str(f.get("rule_id"))
    severity = str(f.get("severity"))
    title = str(f.get("title") or rule_id)
    return {
        "id": rule_id,
        "name": _pascal(rule_id),
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "defaultConfiguration": {"level": LEVELS.get(severity, "warning")},
        "properties": {"security-severity": SECURITY_SEVERITY.get(severity, "5.0"),
                       "severity": severity},
    }


def _result(f: Mapping[str, Any], index: Mapping[str, int]) -> dict[str, Any]:
    rule_id = str(f.get("rule_id"))
    severity = str(f.get("severity"))
    resource = f.get("resource") or {}
    arn = str(resource.get("arn") or resource.get("id") or "")
    properties: dict[str, Any] = {
        "severity": severity,
        "security-severity": SECURITY_SEVERITY.get(severity, "5.0"),
        "accountId": resource.get("account_id"),
        "region": resource.get("region"),
        "resourceId": resource.get("id"),
    }
    key = f.get("kms_key")
    if key:
        properties["kmsKey"] = dict(key)
    if f.get("tags"):
        properties["tags"] = dict(f["tags"])
    remediation = f.get("remediation")
    if remediation:
        properties["remediation"] = remediation
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        "level": LEVELS.get(severity, "warning"),
        "message": {"text": str(f.get("message") or f.get("title") or rule_id)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": resource_uri(resource)},
                "region": {"startLine": 1},
            },
            "logicalLocations": [{
                "fullyQualifiedName": arn,
                "name": str(resource.get("id") or arn),
                "kind": str(resource.get("type") or "resource"),
            }],
        }],
        "partialFingerprints": {
            "rdsauditFinding/v1": hashlib.sha256(f"{rule_id}\n{arn}".encode()).hexdigest(),
            **({"rdsauditFindingId/v2": str(f["id"])} if f.get("id") else {}),
        },
        "properties": properties,
    }
    if f.get("status") == "waived":
        waiver = f.get("waiver") or {}
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted"}
        if waiver.get("reason"):
            suppression["justification"] = str(waiver["reason"])
        if waiver:
            suppression["properties"] = dict(waiver)
        result["suppressions"] = [suppression]
    return result


def resource_uri(resource: Mapping[str, Any]) -> str:
    """A relative URI that names the resource: code scanning shows it as the alert's path."""
    parts = [str(resource.get(k) or "unknown") for k in ("account_id", "region", "type", "id")]
    return "aws/" + "/".join(quote(p, safe="") for p in parts)


def _notification(e: Mapping[str, Any]) -> dict[str, Any]:
    call = f"{e.get('service')}:{e.get('operation')}"
    return {
        "level": "error",
        "message": {"text": f"{call} failed in account {e.get('account_id')}, region "
                            f"{e.get('region')}: {e.get('code')}: {e.get('message')}"},
        "descriptor": {"id": str(e.get("code") or "CollectionError")},
        "properties": {k: e.get(k) for k in ("account_id", "region", "service", "operation",
                                              "code")},
    }


def _pascal(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))
