"""Key lifecycles through the collector: DescribeKey answers in AWS's exact shapes (the KMS
model's KeyMetadata and the AWS CLI `describe-key` examples), given by a botocore hook where
moto has no such key (multi-Region, imported material, custom key stores, newer enums)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.evaluate import evaluate
from rdsaudit.model import Inventory, KeyLookup, RotationLookup, Severity
from rdsaudit.policy import Policy
from tests.support.aws_hooks import KeyAnswers, PagedAnswers

ACCOUNT = "123456789012"  # moto's account
MRK = "mrk-1234abcd12ab34cd56ef1234567890ab"
PRIMARY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{MRK}"
REPLICA = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK}"
REPLICA2 = f"arn:aws:kms:ap-northeast-1:{ACCOUNT}:key/{MRK}"


def _arn(n: int, region: str = "us-east-1") -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{n}234abcd-12ab-34cd-56ef-1234567890ab"


def _meta(arn: str, **fields: Any) -> dict[str, Any]:
    """KeyMetadata as in the AWS CLI describe-key example (symmetric customer key)."""
    base: dict[str, Any] = {
        "AWSAccountId": ACCOUNT, "KeyId": arn.rsplit("/", 1)[1], "Arn": arn,
        "CreationDate": datetime(2026, 1, 5, tzinfo=UTC), "Enabled": True,
        "Description": "", "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled",
        "Origin": "AWS_KMS", "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
    }
    base.update(fields)
    return base


MR_CONFIG = {"PrimaryKey": {"Arn": PRIMARY, "Region": "us-east-1"},
             "ReplicaKeys": [{"Arn": REPLICA, "Region": "eu-west-1"},
                             {"Arn": REPLICA2, "Region": "ap-northeast-1"}]}


def _db(region: str, name: str, key: str) -> None:
    boto3.client("rds", region_name=region).create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
        MasterUsername="admin", MasterUserPassword="correct-horse-9", StorageEncrypted=True,
        KmsKeyId=key)


@pytest.fixture
def keys(session: boto3.Session) -> KeyAnswers:
    return KeyAnswers().install(session)


def _scan(session: boto3.Session) -> Inventory:
    return scan(session, ScanRequest(regions=["us-east-1", "eu-west-1"], max_attempts=2))


def _findings(inv: Inventory, rule: str) -> dict[str, Any]:
    return {f.resource.id: f for f in evaluate(inv, Policy()).findings if f.rule_id == rule}


def test_multi_region_replica_looks_up_its_primary_once_and_judges_rotation_there(
        session: boto3.Session, keys: KeyAnswers) -> None:
    keys.metadata[REPLICA] = _meta(REPLICA, MultiRegion=True, MultiRegionConfiguration={
        "MultiRegionKeyType": "REPLICA", **MR_CONFIG})
    keys.metadata[PRIMARY] = _meta(PRIMARY, MultiRegion=True, MultiRegionConfiguration={
        "MultiRegionKeyType": "PRIMARY", **MR_CONFIG})
    keys.rotation[PRIMARY] = False
    _db("eu-west-1", "eu-app", REPLICA)
    _db("eu-west-1", "eu-app-2", REPLICA)
    inv = _scan(session)
    assert inv.errors == ()
    by_arn = {k.arn: k for k in inv.keys}
    assert by_arn[REPLICA].primary_key_arn == PRIMARY
    assert by_arn[PRIMARY].replica_key_arns == (REPLICA, REPLICA2)
    # The replica's DescribeKey in eu-west-1, the primary's once, in us-east-1; rotation
    # asked of the primary only.
    assert sorted(keys.calls) == [("DescribeKey", "eu-west-1", REPLICA),
                                  ("DescribeKey", "us-east-1", PRIMARY),
                                  ("GetKeyRotationStatus", "us-east-1", PRIMARY)]
    calls = dict(inv.scan.api_calls)
    assert calls["kms:DescribeKey"] == 2 and calls["kms:GetKeyRotationStatus"] == 1
    rotation = _findings(inv, "key-rotation-disabled")
    assert set(rotation) == {MRK} and rotation[MRK].resource.arn == PRIMARY
    finding = rotation[MRK]
    assert finding.status.value == "fail" and REPLICA2 in finding.message
    assert "eu-app" in finding.message and "eu-app-2" in finding.message
    assert finding.remediation is not None
    assert "--region us-east-1" in (finding.remediation.steps[0].command or "")


@pytest.mark.parametrize(("origin", "extra"), [
    ("EXTERNAL", {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    ("AWS_CLOUDHSM", {"CustomKeyStoreId": "cks-1234567890abcdef0",
                      "CloudHsmClusterId": "cluster-1a23b4cdefg"}),
    ("EXTERNAL_KEY_STORE", {"CustomKeyStoreId": "cks-0fedcba0987654321",
                            "XksKeyConfiguration": {"Id": "ext-key-1"}}),
])
def test_rotation_not_applicable_by_origin_is_never_asked(
        session: boto3.Session, keys: KeyAnswers, origin: str, extra: dict[str, Any]) -> None:
    arn = _arn(1)
    keys.metadata[arn] = _meta(arn, Origin=origin, **extra)
    _db("us-east-1", "app", arn)
    inv = _scan(session)
    [key] = [k for k in inv.keys if k.arn == arn]
    assert key.origin == origin and key.rotation is RotationLookup.NOT_APPLICABLE
    assert origin in (key.note or "")
    assert key.custom_key_store_type == (origin if origin != "EXTERNAL" else None)
    assert ("GetKeyRotationStatus", "us-east-1", arn) not in keys.calls
    assert "kms:GetKeyRotationStatus" not in dict(inv.scan.api_calls)
    assert _findings(inv, "key-rotation-disabled") == {}


@pytest.mark.parametrize(("days", "status", "severity"), [
    (3, "fail", Severity.CRITICAL), (20, "fail", Severity.HIGH), (200, "pass", None)])
def test_imported_material_valid_to(session: boto3.Session, keys: KeyAnswers, days: int,
                                    status: str, severity: Severity | None) -> None:
    arn = _arn(2)
    valid_to = datetime.now(UTC) + timedelta(days=days)
    keys.metadata[arn] = _meta(arn, Origin="EXTERNAL", ValidTo=valid_to,
                               ExpirationModel="KEY_MATERIAL_EXPIRES")
    _db("us-east-1", "imported", arn)
    inv = _scan(session)
    [key] = [k for k in inv.keys if k.arn == arn]
    assert key.valid_to is not None and key.valid_to.startswith(valid_to.date().isoformat())
    assert key.expiration_model == "KEY_MATERIAL_EXPIRES"
    finding = _findings(inv, "key-material-expiring")["imported"]
    assert finding.status.value == status
    if severity is not None:
        assert finding.severity is severity


def test_pending_replica_deletion_has_a_window_and_no_date(session: boto3.Session,
                                                          keys: KeyAnswers) -> None:
    keys.metadata[PRIMARY] = _meta(PRIMARY, Enabled=False, KeyState="PendingReplicaDeletion",
                                   PendingDeletionWindowInDays=30, MultiRegion=True,
                                   MultiRegionConfiguration={"MultiRegionKeyType": "PRIMARY",
                                                             **MR_CONFIG})
    _db("us-east-1", "retiring", PRIMARY)
    inv = _scan(session)
    [key] = [k for k in inv.keys if k.arn == PRIMARY]
    assert key.pending_deletion_window_days == 30 and key.deletion_date is None
    finding = _findings(inv, "key-unusable")["retiring"]
    assert finding.status.value == "fail" and finding.severity is Severity.CRITICAL
    assert "no deletion date" in finding.message and "30-day" in finding.message
    assert finding.remediation is not None
    assert "cancel-key-deletion" in (finding.remediation.steps[0].command or "")


@pytest.mark.parametrize(("field", "value"), [("KeyState", "Hibernating"),
                                              ("KeyManager", "PARTNER")])
def test_unknown_enum_values_are_unverifiable_never_healthy(
        session: boto3.Session, keys: KeyAnswers, field: str, value: str) -> None:
    arn = _arn(3)
    keys.metadata[arn] = _meta(arn, **{field: value})
    _db("us-east-1", "odd", arn)
    inv = _scan(session)
    [key] = [k for k in inv.keys if k.arn == arn]
    assert key.lookup is KeyLookup.OK and getattr(
        key, {"KeyState": "key_state", "KeyManager": "key_manager"}[field]) == value
    findings = evaluate(inv, Policy()).findings
    mine = {f.rule_id: f for f in findings if f.resource.id == "odd"}
    assert mine["key-unverifiable"].status.value == "fail" and repr(value) in (
        mine["key-unverifiable"].message)
    assert mine["key-unverifiable"].remediation is not None
    # The field that is unknown never yields a pass of the rule that reads it.
    rule = {"KeyState": "key-unusable", "KeyManager": "aws-managed-key"}[field]
    assert rule not in mine, mine.get(rule)


def _db_shape(name: str, **fields: Any) -> dict[str, Any]:
    """A DBInstance as DescribeDBInstances returns it (the fields rdsaudit reads)."""
    base: dict[str, Any] = {
        "DBInstanceIdentifier": name, "DBInstanceArn":
        f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}", "Engine": "postgres",
        "DBInstanceStatus": "available", "DBInstanceClass": "db.m6g.large",
        "StorageEncrypted": True, "StorageEncryptionType": "sse-kms", "KmsKeyId": _arn(1),
        "DbiResourceId": f"db-{name.upper()}ABCDEFGHIJKLMNOP", "BackupRetentionPeriod": 7}
    base.update(fields)
    return base


def test_every_key_role_is_looked_up_once_and_judged(session: boto3.Session,
                                                     keys: KeyAnswers,
                                                     paged: PagedAnswers) -> None:
    storage, insights, secret, stream = _arn(1), _arn(4), _arn(5), _arn(6)
    keys.metadata[storage] = _meta(storage)
    keys.metadata[insights] = _meta(insights, KeyState="Disabled", Enabled=False)
    keys.metadata[secret] = _meta(secret, KeyState="PendingDeletion", Enabled=False,
                                  DeletionDate=datetime.now(UTC) + timedelta(days=6))
    keys.metadata[stream] = _meta(stream)
    paged.add("DescribeDBInstances", "DBInstances", [
        _db_shape("pi", PerformanceInsightsEnabled=True, PerformanceInsightsKMSKeyId=insights,
                  PerformanceInsightsRetentionPeriod=7),
        _db_shape("secret", MasterUserSecret={
            "SecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds!db-1-AbC",
            "SecretStatus": "active", "KmsKeyId": secret}),
        _db_shape("stream", ActivityStreamStatus="started", ActivityStreamMode="async",
                  ActivityStreamKmsKeyId=stream, ActivityStreamKinesisStreamName="aws-rds-das-1"),
        # PI off: a key AWS still names is no dependency; a stopped stream neither.
        _db_shape("off", PerformanceInsightsEnabled=False, PerformanceInsightsKMSKeyId=insights,
                  ActivityStreamStatus="stopped", ActivityStreamKmsKeyId=secret),
    ], region="us-east-1", page_size=100)
    inv = _scan(session)
    by_id = {r.id: r for r in inv.resources if r.type.value == "db-instance"}
    assert by_id["pi"].performance_insights_kms_key_id == insights
    assert by_id["secret"].master_user_secret_kms_key_id == secret
    assert by_id["stream"].activity_stream_kms_key_id == stream
    assert by_id["pi"].resource_id == "db-PIABCDEFGHIJKLMNOP"
    off = by_id["off"]
    assert off.performance_insights_kms_key_id is None and off.activity_stream_kms_key_id is None
    described = [k for op, _, k in keys.calls if op == "DescribeKey"]
    assert sorted(described) == sorted({storage, insights, secret, stream})  # once each
    unusable = _findings(inv, "key-unusable")
    assert unusable["pi"].status.value == "fail" and unusable["pi"].severity is Severity.HIGH
    assert "Performance Insights" in unusable["pi"].message
    assert unusable["secret"].severity is Severity.HIGH and "6 day(s) left" in (
        unusable["secret"].message)
    assert unusable["stream"].status.value == "pass" and unusable["off"].status.value == "pass"
    result = evaluate(inv, Policy())
    assert set(dict(result.key_users)[insights]) == {by_id["pi"].arn}


def test_sse_rds_cluster_snapshot_shared_with_all_is_asked_and_fails(
        session: boto3.Session, paged: PagedAnswers, keys: KeyAnswers) -> None:
    arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:owned-manual"
    paged.add("DescribeDBClusterSnapshots", "DBClusterSnapshots", [{
        "DBClusterSnapshotIdentifier": "owned-manual", "DBClusterSnapshotArn": arn,
        "DBClusterIdentifier": "owned", "SnapshotType": "manual", "Status": "available",
        "Engine": "aurora-postgresql", "StorageEncrypted": False,
        "StorageEncryptionType": "sse-rds"}], region="us-east-1")
    session.events.register_first(
        "before-call.rds.DescribeDBClusterSnapshotAttributes", _shared_with_all)
    inv = _scan(session)
    calls = dict(inv.scan.api_calls)
    assert calls["rds:DescribeDBClusterSnapshotAttributes"] == 1
    public = _findings(inv, "snapshot-public")["owned-manual"]
    assert public.status.value == "fail" and public.severity is Severity.CRITICAL


def _shared_with_all(**_: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse("https://stub", 200, {}, None), {"DBClusterSnapshotAttributesResult": {
        "DBClusterSnapshotIdentifier": "owned-manual", "DBClusterSnapshotAttributes": [
            {"AttributeName": "restore", "AttributeValues": ["all"]}]}}


def test_automated_backup_without_its_arn_keeps_a_non_colliding_identity(
        session: boto3.Session, paged: PagedAnswers) -> None:
    db_arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:gone"
    paged.add("DescribeDBInstanceAutomatedBackups", "DBInstanceAutomatedBackups", [{
        "DBInstanceIdentifier": "gone", "DBInstanceArn": db_arn, "DbiResourceId": "db-GONE1",
        "Encrypted": False, "Status": "retained", "Region": "us-east-1"}], region="us-east-1")
    inv = _scan(session)
    [backup] = [r for r in inv.resources if r.type.value == "db-automated-backup"]
    assert backup.arn == f"arn:aws:rds:us-east-1:{ACCOUNT}:auto-backup:db-GONE1"
    assert backup.arn != db_arn and backup.id == "db-GONE1"
    assert not inv.errors
