"""AWS Security Finding Format (ASFF): the findings Security Hub imports.

One ASFF finding per failing or waived rdsaudit finding (passes are not imported; a
finding imported earlier that now passes is archived by `rdsaudit.securityhub`). The `Id`
is `rdsaudit.model.finding_id`, so the same resource and rule update the same Security Hub
finding in every scan. Field limits are Security Hub's (BatchImportFindings rejects longer
values): Title 256, Description 1,024, Remediation.Recommendation.Text 512 characters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rdsaudit.arns import partition_of_region
from rdsaudit.model import finding_id

SCHEMA_VERSION = "2018-10-08"
TITLE_MAX = 256
DESCRIPTION_MAX = 1024
RECOMMENDATION_MAX = 512
ID_PREFIX = "rdsaudit/"
DOCS_URL = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.Encryption.html"

# rdsaudit resource types to ASFF resource types (ASFF has no automated-backup type).
RESOURCE_TYPES = {
    "db-instance": "AwsRdsDbInstance",
    "db-cluster": "AwsRdsDbCluster",
    "db-snapshot": "AwsRdsDbSnapshot",
    "db-cluster-snapshot": "AwsRdsDbClusterSnapshot",
    "db-automated-backup": "Other",
    "kms-key": "AwsKmsKey",
}
SEVERITY_LABELS = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW",
                   "info": "INFORMATIONAL"}
TYPES = ("Software and Configuration Checks/AWS Security Best Practices",
         "Effects/Data Exposure")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def product_arn(account_id: str, region: str) -> str:
    """The account's own default product: what a custom integration imports under."""
    return (f"arn:{partition_of_region(region)}:securityhub:{region}:{account_id}:"
            f"product/{account_id}/default")


def asff_id(account_id: str, region: str, rule_id: str, resource_arn: str) -> str:
    return ID_PREFIX + finding_id(account_id, region, rule_id, resource_arn)


def asff_finding(f: Mapping[str, Any], at: str) -> dict[str, Any]:
    """One report finding (v1 or v2 shape) as an ASFF finding, observed at `at`."""
    resource: Mapping[str, Any] = f["resource"]
    account, region = str(resource["account_id"]), str(resource["region"])
    rule_id, arn = str(f["rule_id"]), str(resource["arn"])
    severity = SEVERITY_LABELS.get(str(f.get("severity")), "INFORMATIONAL")
    waived = f.get("status") == "waived"
    remediation: Mapping[str, Any] = f.get("remediation") or {}
    recommendation = str(remediation.get("summary") or "See the rdsaudit report for the "
                         "remediation steps.")
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": asff_id(account, region, rule_id, arn),
        "ProductArn": product_arn(account, region),
        "ProductName": "rdsaudit",
        "CompanyName": "rdsaudit",
        "GeneratorId": rule_id,
        "AwsAccountId": account,
        "Region": region,
        "Types": list(TYPES),
        "CreatedAt": at,
        "UpdatedAt": at,
        "Severity": {"Label": severity, "Original": str(f.get("severity"))},
        "FindingProviderFields": {
            "Severity": {"Label": severity, "Original": str(f.get("severity"))},
            "Types": list(TYPES),
        },
        "Title": clip(str(f.get("title") or rule_id), TITLE_MAX),
        "Description": clip(str(f.get("message") or f.get("title") or rule_id),
                            DESCRIPTION_MAX),
        "Remediation": {"Recommendation": {"Text": clip(recommendation, RECOMMENDATION_MAX),
                                           "Url": DOCS_URL}},
        "ProductFields": {"rdsaudit/RuleId": rule_id,
                          "rdsaudit/ResourceType": str(resource.get("type"))},
        "Resources": [{
            "Type": RESOURCE_TYPES.get(str(resource.get("type")), "Other"),
            "Id": arn,
            "Partition": partition_of_region(region),
            "Region": region,
        }],
        "Compliance": {"Status": "FAILED"},
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "SUPPRESSED" if waived else "NEW"},
    }
    if waived:
        waiver: Mapping[str, Any] = f.get("waiver") or {}
        finding["Note"] = {
            "Text": clip(f"Waived until {waiver.get('expires')}: {waiver.get('reason')}", 512),
            "UpdatedBy": clip(str(waiver.get("owner") or "rdsaudit"), 512),
            "UpdatedAt": at,
        }
    return finding


def asff_findings(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(_asff(doc))


def _asff(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    scan: Mapping[str, Any] = doc.get("scan") or {}
    at = str(scan.get("finished_at") or scan.get("started_at"))
    findings: Sequence[Mapping[str, Any]] = doc.get("findings") or []
    return (asff_finding(f, at) for f in findings if f.get("status") in ("fail", "waived"))


def render_asff(doc: Mapping[str, Any]) -> str:
    """A JSON list of ASFF findings (what `aws securityhub batch-import-findings` takes),
    one finding per line."""
    return "".join(iter_asff(doc))


def iter_asff(doc: Mapping[str, Any]) -> Iterator[str]:
    """The ASFF list a line (a finding) at a time, for writing straight to the file. One
    compact finding a line, as OCSF: an indented dump ran json's pure-Python encoder."""
    from rdsaudit.report.ocsf import json_array_lines

    return json_array_lines(_asff(doc))
