"""`--security-hub` and `--format asff`: ASFF findings imported into moto's Security Hub.

moto stores what it is given and enforces none of Security Hub's limits (batch size, body
size, rate, field lengths) and ignores GetFindings filters, so those are checked on the
requests rdsaudit sends (botocore hooks) and with a fake clock.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.deliver.securityhub import (
    MAX_BYTES,
    Pacer,
    SecurityHubSender,
    batches,
)
from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.model import finding_id
from rdsaudit.report.asff import (
    DESCRIPTION_MAX,
    RECOMMENDATION_MAX,
    TITLE_MAX,
    asff_finding,
    product_arn,
)
from tests.e2e.test_scan import run

ACCOUNT = "123456789012"
MEMBER = "210987654321"
REGION = "us-east-1"
AT = "2026-12-01T12:00:00Z"


def _finding(n: int, *, account: str = ACCOUNT, region: str = REGION,
             rule: str = "instance-unencrypted", status: str = "fail",
             message: str = "StorageEncrypted is false") -> dict[str, Any]:
    arn = f"arn:aws:rds:{region}:{account}:db:db-{n}"
    return {"rule_id": rule, "title": "DB instance is not encrypted", "severity": "high",
            "status": status, "message": message,
            "resource": {"arn": arn, "type": "db-instance", "id": f"db-{n}", "region": region,
                         "account_id": account},
            "remediation": {"summary": "Copy a snapshot encrypted, restore, cut over.",
                            "steps": []},
            "waiver": None}


def _doc(findings: list[dict[str, Any]], *, accounts: tuple[str, ...] = (ACCOUNT,),
         regions: tuple[str, ...] = (REGION,),
         errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"schema_version": 1, "scan": {"finished_at": AT, "accounts": list(accounts),
                                          "regions": list(regions), "skipped_regions": []},
            "findings": findings, "errors": errors or [], "summary": {"exit_code": 1}}


class Recorder:
    """Counts and keeps every BatchImportFindings request, with the fake clock's time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[tuple[float, list[dict[str, Any]], int]] = []
        self.fail_ids: set[str] = set()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def hook(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.securityhub.BatchImportFindings",
                                    self._params)
        client.meta.events.register("before-call.securityhub.BatchImportFindings",
                                    self._answer)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        body = len(json.dumps(params["Findings"]).encode())
        self.calls.append((self.now, params["Findings"], body))

    def _answer(self, params: dict[str, Any], **_: Any) -> Any:
        if not self.fail_ids:
            return None  # moto answers
        findings = json.loads(params["body"])["Findings"]
        failed = [{"Id": f["Id"], "ErrorCode": "InvalidInput",
                   "ErrorMessage": "Finding does not adhere to ASFF"}
                  for f in findings if f["Id"] in self.fail_ids]
        parsed = {"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed),
                  "FailedFindings": failed, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return (_Http(), parsed)


class _Http:
    status_code = 200
    headers: dict[str, str] = {}


def _member_session() -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/audit", RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


@pytest.fixture
def hub(moto: None) -> Iterator[dict[str, boto3.Session]]:
    yield {ACCOUNT: boto3.Session(region_name=REGION), MEMBER: _member_session()}


def _sender(hub: dict[str, boto3.Session], rec: Recorder) -> SecurityHubSender:
    return SecurityHubSender(hub.__getitem__, pacer=Pacer(10, rec.clock, rec.sleep),
                             read_pacer=Pacer(3, rec.clock, rec.sleep), client_hook=rec.hook)


def _stored(session: boto3.Session, region: str = REGION) -> dict[str, dict[str, Any]]:
    found = session.client("securityhub", region_name=region).get_findings()["Findings"]
    return {f["Id"]: f for f in found}


def test_asff_fields_and_stable_id(hub: dict[str, boto3.Session]) -> None:
    rec = Recorder()
    delivery = _sender(hub, rec).send(_doc([_finding(1)]))
    assert delivery.imported == 1 and not delivery.errors
    [(fid, stored)] = _stored(hub[ACCOUNT]).items()
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:db-1"
    assert fid == "rdsaudit/" + finding_id(ACCOUNT, REGION, "instance-unencrypted", arn)
    assert stored["SchemaVersion"] == "2018-10-08"
    assert stored["ProductArn"] == (f"arn:aws:securityhub:{REGION}:{ACCOUNT}:"
                                    f"product/{ACCOUNT}/default")
    assert stored["GeneratorId"] == "instance-unencrypted"
    assert stored["AwsAccountId"] == ACCOUNT
    assert stored["Compliance"] == {"Status": "FAILED"}
    assert stored["RecordState"] == "ACTIVE"
    assert stored["FindingProviderFields"]["Severity"]["Label"] == "HIGH"
    assert stored["FindingProviderFields"]["Types"]
    assert stored["Resources"] == [{"Type": "AwsRdsDbInstance", "Id": arn,
                                    "Partition": "aws", "Region": REGION}]


def test_each_finding_goes_to_its_own_account_and_region(
        hub: dict[str, boto3.Session]) -> None:
    rec = Recorder()
    doc = _doc([_finding(1), _finding(2, account=MEMBER), _finding(3, region="eu-west-1")],
               accounts=(ACCOUNT, MEMBER), regions=(REGION, "eu-west-1"))
    _sender(hub, rec).send(doc)
    assert [f["AwsAccountId"] for f in _stored(hub[MEMBER]).values()] == [MEMBER]
    assert [f["Region"] for f in _stored(hub[ACCOUNT]).values()] == [REGION]
    assert [f["Region"] for f in _stored(hub[ACCOUNT], "eu-west-1").values()] == ["eu-west-1"]


def test_batches_of_at_most_100_and_6_mb_at_most_10_calls_a_second(
        hub: dict[str, boto3.Session]) -> None:
    rec = Recorder()
    delivery = _sender(hub, rec).send(_doc([_finding(n) for n in range(250)]))
    assert delivery.imported == 250
    assert [len(findings) for _, findings, _ in rec.calls] == [100, 100, 50]
    assert all(size <= MAX_BYTES for _, _, size in rec.calls)
    times = [t for t, _, _ in rec.calls]
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))
    # The byte limit cuts batches too (here scaled down, since a real finding is ~2 KB).
    items = [asff_finding(_finding(n), AT) for n in range(10)]
    one = len(json.dumps(items[0]).encode())
    sizes = [len(b) for b in batches(items, max_bytes=3 * one + 10)]
    assert sizes == [3, 3, 3, 1]


def test_field_limits_are_kept_on_the_wire(hub: dict[str, boto3.Session]) -> None:
    long = _finding(1, message="m" * 5000)
    long["title"] = "t" * 900
    long["remediation"]["summary"] = "r" * 3000
    rec = Recorder()
    _sender(hub, rec).send(_doc([long]))
    [(_, [sent], _)] = rec.calls
    assert len(sent["Title"]) == TITLE_MAX
    assert len(sent["Description"]) == DESCRIPTION_MAX
    assert len(sent["Remediation"]["Recommendation"]["Text"]) == RECOMMENDATION_MAX


def test_partial_failure_is_recorded_per_finding(hub: dict[str, boto3.Session]) -> None:
    rec = Recorder()
    bad = asff_finding(_finding(2), AT)["Id"]
    rec.fail_ids = {bad}
    delivery = _sender(hub, rec).send(_doc([_finding(1), _finding(2), _finding(3)]))
    assert delivery.imported == 2
    [error] = delivery.errors
    assert (error.service, error.operation, error.code, error.resource) == (
        "securityhub", "BatchImportFindings", "InvalidInput", bad)


def test_fixed_finding_is_archived_only_where_the_scan_read_everything(
        hub: dict[str, boto3.Session]) -> None:
    rec = Recorder()
    sender = _sender(hub, rec)
    sender.send(_doc([_finding(1), _finding(2)]))
    fixed = asff_finding(_finding(2), AT)["Id"]
    # The region could not be read this time: db-2 may still fail; nothing is archived.
    error = {"account_id": ACCOUNT, "region": REGION, "service": "rds",
             "operation": "DescribeDBInstances", "code": "Throttling", "message": "x"}
    again = _sender(hub, Recorder()).send(_doc([_finding(1)], errors=[error]))
    assert again.archived == 0
    assert _stored(hub[ACCOUNT])[fixed]["RecordState"] == "ACTIVE"
    # Read completely: db-2 passes now, its finding is archived; db-1 stays active.
    third = _sender(hub, Recorder()).send(_doc([_finding(1)]))
    assert third.archived == 1
    stored = _stored(hub[ACCOUNT])
    assert stored[fixed]["RecordState"] == "ARCHIVED"
    assert stored[fixed]["Compliance"] == {"Status": "PASSED"}
    assert stored[asff_finding(_finding(1), AT)["Id"]]["RecordState"] == "ACTIVE"


def test_other_products_findings_are_never_archived(hub: dict[str, boto3.Session]) -> None:
    foreign = {**asff_finding(_finding(9), AT), "Id": "guardduty/1",
               "ProductArn": product_arn(ACCOUNT, REGION).replace("default", "guardduty"),
               "GeneratorId": "guardduty-check"}
    hub[ACCOUNT].client("securityhub").batch_import_findings(Findings=[foreign])
    delivery = _sender(hub, Recorder()).send(_doc([]))
    assert delivery.archived == 0
    assert _stored(hub[ACCOUNT])["guardduty/1"]["RecordState"] == "ACTIVE"


# -- through the CLI, against the emulator -----------------------------------------------

@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[FakeAWS, str]]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key()["KeyMetadata"]  # rotation off: key-rotation-disabled fails
        boto3.client("rds", region_name=REGION).create_db_instance(
            DBInstanceIdentifier="orders", Engine="postgres", DBInstanceClass="db.t3.micro",
            StorageEncrypted=True, KmsKeyId=key["Arn"], MasterUsername="admin",
            MasterUserPassword="correct-horse-9")
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    try:
        yield fake, str(key["KeyId"])
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def _client(fake: FakeAWS, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=fake.endpoint_url,
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_cli_imports_then_archives_after_the_fix(estate: tuple[FakeAWS, str],
                                                 tmp_path: Path) -> None:
    fake, key_id = estate
    proc = run(fake, "scan", "--regions", REGION, "--security-hub", "--format", "json,asff",
               "--output-dir", tmp_path / "one", "--no-history")
    assert proc.returncode == 1, proc.stderr
    assert "0 archived, 0 failed" in proc.stderr
    written = json.loads((tmp_path / "one" / "rdsaudit-report.asff.json").read_text())
    hub = _client(fake, "securityhub")
    stored_all = {f["Id"]: f for f in hub.get_findings()["Findings"]}
    assert set(stored_all) == {w["Id"] for w in written}
    [stored] = [f for f in stored_all.values() if f["GeneratorId"] == "key-rotation-disabled"]
    assert stored["Resources"][0]["Type"] == "AwsKmsKey"

    _client(fake, "kms").enable_key_rotation(KeyId=key_id)
    proc = run(fake, "scan", "--regions", REGION, "--security-hub", "--output-dir",
               tmp_path / "two", "--no-history")
    assert "1 archived, 0 failed" in proc.stderr, proc.stderr
    stored = {f["Id"]: f for f in hub.get_findings()["Findings"]}[stored["Id"]]
    assert stored["RecordState"] == "ARCHIVED"


def test_cli_send_failure_is_exit_3_and_keeps_the_reports(estate: tuple[FakeAWS, str],
                                                          tmp_path: Path) -> None:
    fake, _ = estate
    fake.inject_fault(Fault("securityhub", "*", code="AccessDeniedException",
                            message="not authorized to perform securityhub:BatchImportFindings"))
    try:
        # Only critical failures gate here, so the failed send alone decides: exit 3.
        proc = run(fake, "scan", "--regions", REGION, "--security-hub", "--fail-on",
                   "critical", "--output-dir", tmp_path, "--no-history")
    finally:
        fake.clear_faults()
    assert proc.returncode == 3, proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    assert {e["service"] for e in doc["errors"]} == {"securityhub"}
    assert doc["summary"]["complete"] is False and doc["summary"]["exit_code"] == 3


def test_iam_policy_security_hub_adds_only_its_statement(estate: tuple[FakeAWS, str]) -> None:
    fake, _ = estate
    base = json.loads(run(fake, "iam-policy").stdout)
    extended = json.loads(run(fake, "iam-policy", "--security-hub").stdout)
    added = extended["Statement"][len(base["Statement"]):]
    assert extended["Statement"][:len(base["Statement"])] == base["Statement"]
    assert sorted(a for s in added for a in s["Action"]) == [
        "securityhub:BatchImportFindings", "securityhub:GetFindings"]
