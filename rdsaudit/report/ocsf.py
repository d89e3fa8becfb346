"""OCSF 1.5 Compliance Finding events (class_uid 2003): for SIEMs and security lakes.

One event per failing or waived finding, and per passing finding when the document holds
the pass evidence (`scan.evidence == "full"`). The `cloud` attribute comes from OCSF's cloud
profile, named in `metadata.profiles`. `finding_info.uid` is `rdsaudit.model.finding_id`,
the id the JSON report, baselines and ASFF use, so one finding can be followed across tools.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from rdsaudit.arns import partition_of_region
from rdsaudit.model import finding_id
from rdsaudit.report.asff import DOCS_URL, RESOURCE_TYPES
from rdsaudit.timestamps import parse_time

OCSF_VERSION = "1.5.0"
CLASS_UID, CATEGORY_UID = 2003, 2  # Compliance Finding, Findings
ACTIVITY_CREATE = 1
SEVERITY_IDS = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"),
                "high": (4, "High"), "critical": (5, "Critical")}
# finding status_id: New, Suppressed, Resolved; compliance status_id: Fail, Pass.
FINDING_STATUS = {"fail": (1, "New"), "waived": (3, "Suppressed"), "pass": (4, "Resolved")}
COMPLIANCE_STATUS = {"fail": (3, "Fail"), "waived": (3, "Fail"), "pass": (1, "Pass")}
AWS_ACCOUNT_TYPE_ID = 10


def ocsf_event(f: Mapping[str, Any], tool_version: str, at_ms: int) -> dict[str, Any]:
    resource: Mapping[str, Any] = f["resource"]
    account, region = str(resource["account_id"]), str(resource["region"])
    rule_id, arn, status = str(f["rule_id"]), str(resource["arn"]), str(f["status"])
    uid = finding_id(account, region, rule_id, arn)
    severity_id, severity = SEVERITY_IDS.get(str(f.get("severity")), (0, "Unknown"))
    status_id, status_name = FINDING_STATUS[status]
    compliance_id, compliance_name = COMPLIANCE_STATUS[status]
    title = str(f.get("title") or rule_id)
    message = str(f.get("message") or title)
    event: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Compliance Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status_name,
        "time": at_ms,
        "message": message,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "rdsaudit", "vendor_name": "rdsaudit",
                        "version": tool_version},
            "profiles": ["cloud"],
            "event_code": rule_id,
            "uid": uid,
        },
        "finding_info": {
            "uid": uid,
            "title": title,
            "desc": message,
            "types": ["Amazon RDS encryption at rest"],
            "created_time": at_ms,
        },
        "compliance": {
            "control": rule_id,
            "status_id": compliance_id,
            "standards": ["rdsaudit rule catalogue"],
            "checks": [{"uid": rule_id, "name": title, "status": compliance_name,
                        "status_id": compliance_id, "severity": severity,
                        "severity_id": severity_id}],
        },
        "resources": [{
            "uid": arn,
            "name": str(resource.get("id") or arn),
            "type": RESOURCE_TYPES.get(str(resource.get("type")), "Other"),
            "region": region,
            "cloud_partition": partition_of_region(region),
        }],
        "cloud": {
            "provider": "AWS",
            "region": region,
            "account": {"uid": account, "name": account, "type_id": AWS_ACCOUNT_TYPE_ID,
                        "type": "AWS Account"},
        },
    }
    remediation: Mapping[str, Any] = f.get("remediation") or {}
    if remediation.get("summary"):
        event["remediation"] = {"desc": str(remediation["summary"]), "references": [DOCS_URL]}
    return event


def ocsf_events(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(_events(doc))


def _events(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    scan: Mapping[str, Any] = doc.get("scan") or {}
    tool: Mapping[str, Any] = doc.get("tool") or {}
    when = parse_time(scan.get("finished_at")) or parse_time(scan.get("started_at"))
    at_ms = int(when.timestamp() * 1000) if when else 0
    statuses = {"fail", "waived"} | ({"pass"} if scan.get("evidence") == "full" else set())
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    version = str(tool.get("version") or "")
    return (ocsf_event(f, version, at_ms) for f in findings if f.get("status") in statuses)


def render_ocsf(doc: Mapping[str, Any]) -> str:
    """A JSON array of OCSF events, one per line."""
    return "".join(iter_ocsf(doc))


def iter_ocsf(doc: Mapping[str, Any]) -> Iterator[str]:
    """The OCSF array a line (an event) at a time, for writing straight to the file."""
    return json_array_lines(_events(doc))


def json_array_lines(items: Iterable[Any]) -> Iterator[str]:
    """A JSON array with one compact item per line: `[`, the items, `]` (`[]` if none);
    every chunk ends a line."""
    def dump(item: Any) -> str:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"))

    rest = iter(items)
    previous = next(rest, _NONE)
    if previous is _NONE:
        yield "[]\n"
        return
    yield "[\n"
    for item in rest:
        yield dump(previous) + ",\n"
        previous = item
    yield dump(previous) + "\n"
    yield "]\n"


_NONE = object()
