"""`--security-hub`: import the ASFF findings into each finding's own account and region.

What AWS documents and this module keeps to (docs/aws-facts.md):
* BatchImportFindings takes at most 100 findings and 6 MB a call; its quota is 10 calls a
  second (burst 30) per account and Region; GetFindings is 3 a second.
* A finding provider archives its own finding by importing it again with `RecordState:
  ARCHIVED`; findings are matched by `Id` (and ProductArn).
* A partial failure is a 200 answer with `FailedFindings`, not an exception.

Previously imported findings (ProductArn of the account's default product, GeneratorId one
of our rule ids, ACTIVE) that this scan no longer reports as failing are archived, but only
in an account and Region the scan read completely: unknown is never compliant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from rdsaudit.collect.clients import AwsClients
from rdsaudit.collect.failures import AWS_FAILURES, Failure, describe_failure
from rdsaudit.collect.readonly import OPT_IN_WRITES
from rdsaudit.model import CollectionError
from rdsaudit.report.asff import asff_findings, product_arn
from rdsaudit.rules import RULES
from rdsaudit.timestamps import utcnow

MAX_FINDINGS = 100
MAX_BYTES = 6 * 1024 * 1024
IMPORT_RATE = 10.0  # calls a second, per account and Region
READ_RATE = 3.0
# Operations that fail a whole account (nothing in it was read).
ACCOUNT_WIDE = frozenset({"AssumeRole", "DescribeRegions"})

# The required fields of an imported finding, and what identifies it (BatchImportFindings).
ARCHIVE_FIELDS = ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId",
                  "Region", "Types", "CreatedAt", "Severity", "FindingProviderFields",
                  "Title", "Description", "Resources", "ProductName", "CompanyName")

# What --security-hub adds to the policy: importing under the account's own default product,
# and reading back (GetFindings is authorised on the hub).
IAM_STATEMENTS: list[dict[str, Any]] = [
    {"Sid": "RdsauditSecurityHubImport", "Effect": "Allow",
     "Action": ["securityhub:BatchImportFindings"],
     "Resource": "arn:*:securityhub:*:*:product/*/default"},
    {"Sid": "RdsauditSecurityHubRead", "Effect": "Allow",
     "Action": ["securityhub:GetFindings"], "Resource": "arn:*:securityhub:*:*:hub/default"},
]

SessionFor = Callable[[str], boto3.Session | Failure]


class Pacer:
    """At most `rate` calls a second per key; clock and sleep injectable for tests."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next: dict[object, float] = {}

    def wait(self, key: object) -> None:
        now = self._clock()
        due = self._next.get(key, now)
        if due > now:
            self._sleep(due - now)
            now = due
        self._next[key] = now + self.interval


def batches(findings: Sequence[Mapping[str, Any]], max_count: int = MAX_FINDINGS,
            max_bytes: int = MAX_BYTES) -> Iterator[list[Mapping[str, Any]]]:
    """Consecutive batches within both limits (the request body is the JSON list)."""
    batch: list[Mapping[str, Any]] = []
    size = 2  # []
    for finding in findings:
        cost = len(json.dumps(finding, ensure_ascii=False).encode("utf-8")) + 1
        if batch and (len(batch) >= max_count or size + cost > max_bytes):
            yield batch
            batch, size = [], 2
        batch.append(finding)
        size += cost
    if batch:
        yield batch


@dataclass
class Delivery:
    imported: int = 0
    archived: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    errors: list[CollectionError] = field(default_factory=list)

    def count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1


def readable_places(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(account, Region) pairs the scan read completely: the only places to archive in."""
    scan: Mapping[str, Any] = doc.get("scan") or {}
    errors: Sequence[Mapping[str, Any]] = doc.get("errors") or []
    skipped = {(s.get("account_id"), s.get("region")) for s in scan.get("skipped_regions") or ()}
    broken_accounts = {e.get("account_id") for e in errors
                       if e.get("operation") in ACCOUNT_WIDE}
    broken = {(e.get("account_id"), e.get("region")) for e in errors}
    return {(a, r) for a in scan.get("accounts") or () for r in scan.get("regions") or ()
            if a not in broken_accounts and (a, r) not in broken and (a, r) not in skipped}


class SecurityHubSender:
    def __init__(self, sessions: SessionFor, endpoint_url: str | None = None, *,
                 pacer: Pacer | None = None, read_pacer: Pacer | None = None,
                 client_hook: Callable[[Any], None] | None = None) -> None:
        self._sessions = sessions
        self._endpoint_url = endpoint_url
        self._pacer = pacer or Pacer(IMPORT_RATE)
        self._read_pacer = read_pacer or Pacer(READ_RATE)
        self._client_hook = client_hook  # tests: botocore event hooks on each client
        self.delivery = Delivery()

    def send(self, doc: Mapping[str, Any]) -> Delivery:
        current: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for finding in asff_findings(doc):
            current.setdefault((finding["AwsAccountId"], finding["Region"]), []).append(finding)
        readable = readable_places(doc)
        for account, region in sorted(set(current) | readable):
            self._place(account, region, current.get((account, region), []),
                        (account, region) in readable)
        return self.delivery

    def _error(self, account: str, region: str, operation: str, failure: Failure,
               resource: str | None = None) -> None:
        self.delivery.errors.append(CollectionError(account, region, "securityhub", operation,
                                                    failure.code, failure.message, resource))

    def _place(self, account: str, region: str, findings: list[dict[str, Any]],
               readable: bool) -> None:
        session = self._sessions(account)
        if isinstance(session, Failure):
            self._error(account, region, "BatchImportFindings", Failure(
                session.code, f"no session in the account to import its findings: "
                              f"{session.message}"))
            return
        clients = AwsClients(session, endpoint_url=self._endpoint_url, max_attempts=5,
                             allowed_writes=OPT_IN_WRITES["--security-hub"])
        client = clients.client("securityhub", region)
        if self._client_hook is not None:
            self._client_hook(client)
        archive: list[dict[str, Any]] = []
        if readable:
            try:
                archive = self._resolved(clients, account, region, {f["Id"] for f in findings})
            except AWS_FAILURES as exc:
                # Cannot tell what was imported before: archive nothing, still import.
                self._error(account, region, "GetFindings", describe_failure(exc))
        for batch in batches([*findings, *archive]):
            self._import(clients, account, region, batch)

    def _resolved(self, clients: AwsClients, account: str, region: str,
                  failing: set[str]) -> list[dict[str, Any]]:
        """Our ACTIVE findings of this place that are not failing any more, archived."""
        product = product_arn(account, region)
        filters = {
            "ProductArn": [{"Value": product, "Comparison": "EQUALS"}],
            "AwsAccountId": [{"Value": account, "Comparison": "EQUALS"}],
            "Region": [{"Value": region, "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": rule_id, "Comparison": "EQUALS"} for rule_id in RULES],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        }
        now = utcnow()
        archived: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            self._read_pacer.wait((account, region))
            params: dict[str, Any] = {"Filters": filters, "MaxResults": 100}
            if token:
                params["NextToken"] = token
            self.delivery.count("GetFindings")
            answer = clients.call("securityhub", region, "GetFindings", "get_findings",
                                  **params)
            for old in _ours(answer.get("Findings") or (), product, account, region):
                if old["Id"] not in failing:
                    # Only input fields: what GetFindings adds (ProcessedAt, aws/… product
                    # fields) is Security Hub's own and not ours to send back.
                    kept = {k: old[k] for k in ARCHIVE_FIELDS if k in old}
                    archived.append({**kept, "RecordState": "ARCHIVED", "UpdatedAt": now,
                                     "Compliance": {"Status": "PASSED"}})
            token = answer.get("NextToken")
            if not token:
                return archived

    def _import(self, clients: AwsClients, account: str, region: str,
                batch: list[Mapping[str, Any]]) -> None:
        self._pacer.wait((account, region))
        self.delivery.count("BatchImportFindings")
        try:
            answer = clients.call("securityhub", region, "BatchImportFindings",
                                  "batch_import_findings", Findings=list(batch))
        except AWS_FAILURES as exc:
            failure = describe_failure(exc)
            self._error(account, region, "BatchImportFindings", Failure(
                failure.code, f"{len(batch)} finding(s) not imported: {failure.message}"))
            return
        failed = {str(f.get("Id")): f for f in answer.get("FailedFindings") or ()}
        for finding_id, failure in failed.items():
            self._error(account, region, "BatchImportFindings", Failure(
                str(failure.get("ErrorCode") or "FailedFinding"),
                str(failure.get("ErrorMessage") or "")[:500]), finding_id)
        for finding in batch:
            if str(finding["Id"]) in failed:
                continue
            if finding.get("RecordState") == "ARCHIVED":
                self.delivery.archived += 1
            else:
                self.delivery.imported += 1


def _ours(found: Iterable[Mapping[str, Any]], product: str, account: str,
          region: str) -> Iterator[dict[str, Any]]:
    """Checked again here: filters are advisory on emulators (moto ignores them)."""
    for f in found:
        if (f.get("ProductArn") == product and f.get("AwsAccountId") == account
                and f.get("Region", region) == region and f.get("GeneratorId") in RULES
                and f.get("RecordState", "ACTIVE") == "ACTIVE" and isinstance(f.get("Id"), str)):
            yield dict(f)
