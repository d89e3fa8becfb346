"""Backup replications into regions the scan did not cover, and TDE beside the storage key:
exact AWS shapes (DBInstance, DescribeOptionGroups) through botocore hooks."""

from __future__ import annotations

from typing import Any

import boto3

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.evaluate import evaluate
from rdsaudit.gate import ExitCode, gate
from rdsaudit.model import Severity
from rdsaudit.policy import Policy
from tests.support.aws_hooks import PagedAnswers

ACCOUNT = "123456789012"


def _db(name: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "DBInstanceIdentifier": name, "DBInstanceArn":
        f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}", "Engine": "postgres",
        "DBInstanceStatus": "available", "DBInstanceClass": "db.m6g.large",
        "StorageEncrypted": False, "StorageEncryptionType": "none",
        "DbiResourceId": f"db-{name.upper()}", "BackupRetentionPeriod": 7}
    base.update(fields)
    return base


def test_replication_into_an_unscanned_region_is_not_audited_with_advice(
        session: boto3.Session, paged: PagedAnswers) -> None:
    target = f"arn:aws:rds:ap-southeast-2:{ACCOUNT}:auto-backup:ab-replica0001"
    paged.add("DescribeDBInstances", "DBInstances", [_db("ledger", Engine="mysql", **{
        "DBInstanceAutomatedBackupsReplications": [
            {"DBInstanceAutomatedBackupsArn": target}]})], region="us-east-1")
    inv = scan(session, ScanRequest(regions=["us-east-1", "eu-west-1"], max_attempts=2))
    [error] = [e for e in inv.errors if e.code == "RegionNotScanned"]
    assert error.region == "ap-southeast-2" and error.resource == target
    assert "--regions" in error.message and "ledger" in error.message
    # Not audited is never compliant: the scan is incomplete.
    result = evaluate(inv, Policy())
    assert gate(result, Severity.CRITICAL) is ExitCode.INCOMPLETE
    # Scanned destination: nothing to report.
    paged.add("DescribeDBInstances", "DBInstances", [_db("ledger", **{
        "DBInstanceAutomatedBackupsReplications": [{"DBInstanceAutomatedBackupsArn":
            f"arn:aws:rds:eu-west-1:{ACCOUNT}:auto-backup:ab-replica0002"}]})],
        region="us-east-1")
    inv = scan(session, ScanRequest(regions=["us-east-1", "eu-west-1"], max_attempts=2))
    assert not [e for e in inv.errors if e.code == "RegionNotScanned"]


def _option_groups(options: dict[str, list[str]]) -> Any:
    from botocore.awsrequest import AWSResponse

    def answer(params: Any, **_: Any) -> Any:
        body = params.get("body") or {}
        name = body.get("OptionGroupName") if isinstance(body, dict) else None
        return AWSResponse("https://stub", 200, {}, None), {"OptionGroupsList": [{
            "OptionGroupName": name, "EngineName": "sqlserver-ee", "MajorEngineVersion": "15.00",
            "OptionGroupArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:og:{name}",
            "Options": [{"OptionName": o, "Persistent": True, "Permanent": False}
                        for o in options.get(str(name), [])]}]}
    return answer


def test_tde_is_shown_beside_the_storage_key_and_never_judged(
        session: boto3.Session, paged: PagedAnswers) -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    paged.add("DescribeDBInstances", "DBInstances", [
        _db("sql-tde", Engine="sqlserver-ee", OptionGroupMemberships=[
            {"OptionGroupName": "sql-tde-og", "Status": "in-sync"}]),
        _db("sql-plain", Engine="sqlserver-ee", StorageEncrypted=True,
            StorageEncryptionType="sse-kms", KmsKeyId=key, OptionGroupMemberships=[
                {"OptionGroupName": "sql-plain-og", "Status": "in-sync"}]),
        _db("ora-default", Engine="oracle-ee", OptionGroupMemberships=[
            {"OptionGroupName": "default:oracle-ee-19", "Status": "in-sync"}],
            TdeCredentialArn="arn:aws:rds:us-east-1:123456789012:tde-credential/1"),
    ], region="us-east-1")
    session.events.register_first("before-call.rds.DescribeOptionGroups", _option_groups(
        {"sql-tde-og": ["TDE"], "sql-plain-og": ["SQLSERVER_BACKUP_RESTORE"]}))
    inv = scan(session, ScanRequest(regions=["us-east-1"], max_attempts=2))
    calls = dict(inv.scan.api_calls)
    assert calls["rds:DescribeOptionGroups"] == 2  # the default group is not asked
    findings = {f.resource.id: f for f in evaluate(inv, Policy()).findings
                if f.rule_id == "instance-unencrypted"}
    on = findings["sql-tde"]
    assert on.status.value == "fail" and "TDE is on (option group sql-tde-og" in on.message
    assert "does not replace storage encryption" in on.message
    assert "TDE is off" in findings["sql-plain"].message
    assert findings["sql-plain"].status.value == "pass"
    assert "TDE is on (TdeCredentialArn" in findings["ora-default"].message
