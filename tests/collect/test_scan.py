"""Collectors on moto in-process, with exact AWS error shapes from botocore hooks."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from rdsaudit.collect import CredentialsProblem, RegionProblem, ScanRequest, scan
from rdsaudit.collect.specs import LISTINGS, required_actions
from rdsaudit.evaluate import evaluate
from rdsaudit.gate import ExitCode, gate
from rdsaudit.model import EncryptionType, Inventory, KeyLookup, ResourceType, RotationLookup
from rdsaudit.policy import Policy
from tests.support.aws_hooks import FaultHook, PagedAnswers

REGIONS = ["us-east-1", "eu-west-1"]
PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}


def _key(region: str, rotate: bool = False) -> str:
    kms = boto3.client("kms", region_name=region)
    meta = kms.create_key(Description=f"rds {region}")["KeyMetadata"]
    if rotate:
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return str(meta["Arn"])


def _instance(region: str, name: str, key: str | None = None, **kw: Any) -> None:
    rds = boto3.client("rds", region_name=region)
    extra: dict[str, Any] = {"StorageEncrypted": True, "KmsKeyId": key} if key else {}
    rds.create_db_instance(DBInstanceIdentifier=name, Engine=kw.pop("Engine", "postgres"),
                           DBInstanceClass="db.t3.micro", **PW, **extra, **kw)


@pytest.fixture
def estate(session: boto3.Session) -> dict[str, str]:
    """Two regions: encrypted and plain instances, a shared key, a manual public snapshot."""
    keys = {r: _key(r, rotate=(r == "us-east-1")) for r in REGIONS}
    _instance("us-east-1", "orders", keys["us-east-1"])
    _instance("us-east-1", "orders-replica-src", keys["us-east-1"])
    _instance("us-east-1", "legacy", Engine="mysql")
    _instance("eu-west-1", "billing", keys["eu-west-1"])
    rds = boto3.client("rds", region_name="us-east-1")
    rds.create_db_snapshot(DBInstanceIdentifier="legacy", DBSnapshotIdentifier="legacy-snap")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="legacy-snap",
                                     AttributeName="restore", ValuesToAdd=["all"])
    rds.create_db_snapshot(DBInstanceIdentifier="orders", DBSnapshotIdentifier="orders-snap")
    return keys


def _scan(session: boto3.Session, regions: list[str] | None = None, **kw: Any) -> Inventory:
    kw.setdefault("max_attempts", 3)
    return scan(session, ScanRequest(regions=regions or REGIONS, **kw))


def _fails(inv: Inventory) -> set[tuple[str, str]]:
    return {(f.rule_id, f.resource.id) for f in evaluate(inv, Policy()).findings
            if f.status.value == "fail"}


def test_happy_path_reads_every_type_and_each_key_once(session: boto3.Session,
                                                       estate: dict[str, str]) -> None:
    inv = _scan(session)
    assert inv.errors == ()
    ids = {(r.type, r.id) for r in inv.resources}
    assert {(ResourceType.DB_INSTANCE, n) for n in ("orders", "legacy", "billing")} <= ids
    assert (ResourceType.DB_SNAPSHOT, "legacy-snap") in ids
    calls = dict(inv.scan.api_calls)
    # One DescribeKey per distinct key, in its own region; rotation only for customer keys.
    assert calls["kms:DescribeKey"] == 2
    assert calls["kms:GetKeyRotationStatus"] == 2
    assert calls["kms:ListAliases"] == 2
    # Attributes only for unencrypted manual snapshots: legacy-snap, not orders-snap.
    assert calls["rds:DescribeDBSnapshotAttributes"] == 1
    assert calls["rds:DescribeDBInstances"] == 2
    assert calls["rds:DescribeDBSnapshots"] == 4  # default + awsbackup, per region
    assert calls["sts:GetCallerIdentity"] == 1
    keys = {k.arn: k for k in inv.keys}
    assert set(keys) == set(estate.values())
    assert keys[estate["us-east-1"]].rotation_enabled is True
    assert keys[estate["eu-west-1"]].rotation_enabled is False
    assert {k.region for k in inv.keys} == set(REGIONS)
    fails = _fails(inv)
    assert ("snapshot-public", "legacy-snap") in fails
    assert ("instance-unencrypted", "legacy") in fails
    assert ("key-rotation-disabled", estate["eu-west-1"].rsplit("/", 1)[1]) in fails
    assert ("instance-unencrypted", "orders") not in fails


def test_every_call_is_read_only_and_in_the_iam_policy(session: boto3.Session,
                                                       estate: dict[str, str]) -> None:
    seen: list[str] = []
    session.events.register("before-parameter-build",
                            lambda event_name, **_: seen.append(event_name))
    _scan(session)
    actions = {f"{e.split('.')[1]}:{e.split('.')[2]}" for e in seen}
    assert actions, "the recorder saw no call"
    for action in actions:
        assert action.split(":")[1].startswith(("Describe", "List", "Get")), action
    assert actions <= set(required_actions())
    assert "kms:DescribeKey" in actions


def test_never_describes_the_aws_rds_alias(session: boto3.Session, faults: FaultHook) -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    target = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]  # seeding only
    _instance("us-east-1", "default-key", target)
    _scan(session, ["us-east-1"])
    assert ("kms", "us-east-1", "DescribeKey") in faults.sent
    alias_lookups = [f for f in faults.faults if f.match]
    assert not alias_lookups
    # The only DescribeKey request names the key by ARN.
    guard = faults.add("kms", "DescribeKey", match="alias/", code="Forbidden", status=400)
    _scan(session, ["us-east-1"])
    assert guard.seen == 0


def test_throttled_then_success_is_retried(session: boto3.Session, estate: dict[str, str],
                                           faults: FaultHook) -> None:
    faults.add("rds", "DescribeDBInstances", "eu-west-1", code="Throttling",
               message="Rate exceeded", status=400, times=2)
    inv = _scan(session)
    assert inv.errors == ()
    assert dict(inv.scan.retries)["rds:DescribeDBInstances"] == 2
    assert "billing" in {r.id for r in inv.resources}


def test_throttled_until_retries_run_out_is_recorded(session: boto3.Session,
                                                     estate: dict[str, str],
                                                     faults: FaultHook) -> None:
    fault = faults.add("rds", "DescribeDBInstances", "eu-west-1", code="Throttling",
                       message="Rate exceeded", status=400)
    inv = _scan(session)
    assert fault.fired == 3  # --max-attempts 3, first attempt included
    [error] = inv.errors
    assert (error.region, error.service, error.operation, error.code) == (
        "eu-west-1", "rds", "DescribeDBInstances", "Throttling")
    assert "billing" not in {r.id for r in inv.resources}
    assert {"orders", "legacy"} <= {r.id for r in inv.resources}
    result = evaluate(inv, Policy())
    assert not any(f.resource.id == "billing" for f in result.findings)
    assert gate(result, Policy().fail_on) is ExitCode.FAILED  # legacy still fails


def test_access_denied_in_one_region_leaves_others_complete(session: boto3.Session,
                                                            estate: dict[str, str],
                                                            faults: FaultHook) -> None:
    fault = faults.add("rds", "DescribeDBSnapshots", "us-east-1")
    inv = _scan(session)
    assert fault.fired == 2  # both snapshot listings, not retried
    assert {(e.region, e.operation, e.code) for e in inv.errors} == {
        ("us-east-1", "DescribeDBSnapshots", "AccessDenied")}
    snapshots = {r.id for r in inv.resources if r.type is ResourceType.DB_SNAPSHOT}
    assert not any(s.startswith(("legacy", "orders")) for s in snapshots)
    assert any("billing" in s for s in snapshots)  # eu-west-1's automated snapshot
    assert ("instance-unencrypted", "legacy") in _fails(inv)


def test_region_not_enabled_is_skipped_not_an_error(session: boto3.Session,
                                                    estate: dict[str, str],
                                                    faults: FaultHook) -> None:
    for service, code, status in (("rds", "InvalidClientTokenId", 403),
                                  ("kms", "UnrecognizedClientException", 400)):
        for op in {s.operation for s in LISTINGS if s.service == service} | {"ListAliases"}:
            faults.add(service, op, "eu-west-1", code=code, status=status,
                       message="The security token included in the request is invalid")
    inv = _scan(session)
    assert inv.errors == ()
    assert [(s.region, s.code) for s in inv.scan.skipped_regions] in (
        [("eu-west-1", "InvalidClientTokenId")], [("eu-west-1", "UnrecognizedClientException")])
    assert not any(r.region == "eu-west-1" for r in inv.resources)
    assert gate(evaluate(inv, Policy()), Policy().fail_on) is ExitCode.FAILED


def test_cross_account_key_access_denied_is_unverifiable(session: boto3.Session,
                                                         faults: FaultHook) -> None:
    foreign = "arn:aws:kms:us-east-1:999999999999:key/0b7b2c49-6d1c-4d5f-9a43-2f1d6e6f2b11"
    _instance("us-east-1", "shared-key-db", foreign)
    faults.add("kms", "DescribeKey", match="999999999999", code="AccessDeniedException",
               status=400, message="User: arn:aws:iam::123456789012:user/audit is not "
               "authorized to perform: kms:DescribeKey on resource: " + foreign)
    inv = _scan(session, ["us-east-1"])
    [key] = inv.keys
    assert key.lookup is KeyLookup.ACCESS_DENIED and key.region == "us-east-1"
    assert [(e.operation, e.code) for e in inv.errors] == [("DescribeKey",
                                                           "AccessDeniedException")]
    fails = _fails(inv)
    assert ("key-unverifiable", "shared-key-db") in fails
    assert ("cross-account-key", "shared-key-db") in fails
    assert not any(rule == "key-unusable" for rule, _ in fails)


def test_deleted_key_is_unusable_not_an_error(session: boto3.Session) -> None:
    gone = "arn:aws:kms:us-east-1:123456789012:key/6a1d7c2e-0000-4000-8000-000000000000"
    _instance("us-east-1", "orphan", gone)
    inv = _scan(session, ["us-east-1"])
    assert inv.errors == ()
    assert inv.keys[0].lookup is KeyLookup.NOT_FOUND
    assert ("key-unusable", "orphan") in _fails(inv)


def test_rotation_unsupported_is_not_applicable(session: boto3.Session,
                                                estate: dict[str, str],
                                                faults: FaultHook) -> None:
    faults.add("kms", "GetKeyRotationStatus", "eu-west-1", code="UnsupportedOperationException",
               status=400, message="origin is EXTERNAL which is not valid for this operation")
    inv = _scan(session)
    assert inv.errors == ()
    key = {k.region: k for k in inv.keys}["eu-west-1"]
    assert key.rotation is RotationLookup.NOT_APPLICABLE and "EXTERNAL" in (key.note or "")
    assert not any(r == "key-rotation-disabled" for r, _ in _fails(inv))


PAGED = {
    "DescribeDBClusters": ("DBClusters", lambda i: {
        "DBClusterIdentifier": f"c{i}", "DBClusterArn":
        f"arn:aws:rds:us-east-1:123456789012:cluster:c{i}", "StorageEncrypted": False,
        "Engine": "aurora-mysql", "Status": "available"}),
    "DescribeDBSnapshots": ("DBSnapshots", lambda i: {
        "DBSnapshotIdentifier": f"s{i}", "DBSnapshotArn":
        f"arn:aws:rds:us-east-1:123456789012:snapshot:s{i}", "Encrypted": True,
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/6a1d7c2e-0000-4000-8000-00000000000"
        f"{i}", "SnapshotType": "automated"}),
    "DescribeDBClusterSnapshots": ("DBClusterSnapshots", lambda i: {
        "DBClusterSnapshotIdentifier": f"cs{i}", "DBClusterSnapshotArn":
        f"arn:aws:rds:us-east-1:123456789012:cluster-snapshot:cs{i}", "StorageEncrypted": True,
        "StorageEncryptionType": "sse-rds", "SnapshotType": "automated"}),
    "DescribeDBInstanceAutomatedBackups": ("DBInstanceAutomatedBackups", lambda i: {
        "DBInstanceIdentifier": f"gone{i}", "DBInstanceAutomatedBackupsArn":
        f"arn:aws:rds:us-east-1:123456789012:auto-backup:ab-{i}", "Encrypted": False,
        "Status": "retained"}),
    "DescribeDBClusterAutomatedBackups": ("DBClusterAutomatedBackups", lambda i: {
        "DBClusterIdentifier": f"cgone{i}", "DBClusterAutomatedBackupsArn":
        f"arn:aws:rds:us-east-1:123456789012:cluster-auto-backup:cab-{i}",
        "StorageEncrypted": False, "Status": "retained"}),
    "ListAliases": ("Aliases", lambda i: {"AliasName": f"alias/a{i}", "TargetKeyId": f"k{i}"}),
}


@pytest.mark.parametrize("operation", sorted(PAGED))
def test_multi_page_listing_reads_every_page(session: boto3.Session, paged: PagedAnswers,
                                             operation: str) -> None:
    result_key, make = PAGED[operation]
    items = [make(i) for i in range(5)]
    paged.add(operation, result_key, items, region="us-east-1", page_size=2)
    inv = _scan(session, ["us-east-1"])
    markers = [m for op, _, m in paged.calls if op == operation]
    # Every listing of the operation (DescribeDBSnapshots has two, run concurrently) reads
    # all three pages, each page once.
    listings = max(1, sum(1 for s in LISTINGS if s.operation == operation))
    assert sorted(markers, key=str) == sorted([None, "2", "4"] * listings, key=str)
    assert dict(inv.scan.api_calls)[("kms:" if operation == "ListAliases" else "rds:")
                                    + operation] >= 3
    if operation == "ListAliases":
        assert {a.name for a in inv.aliases} >= {f"alias/a{i}" for i in range(5)}
    else:
        assert len([r for r in inv.resources if r.arn in {
            next(v for k, v in it.items() if k.endswith("Arn")) for it in items}]) == 5


def test_sse_rds_without_key_id_is_aws_owned(session: boto3.Session,
                                             paged: PagedAnswers) -> None:
    paged.add("DescribeDBClusterSnapshots", "DBClusterSnapshots",
              [PAGED["DescribeDBClusterSnapshots"][1](0)], region="us-east-1")
    inv = _scan(session, ["us-east-1"])
    [snap] = [r for r in inv.resources if r.type is ResourceType.DB_CLUSTER_SNAPSHOT]
    assert snap.encryption_type is EncryptionType.SSE_RDS and snap.kms_key_id is None
    assert "kms:DescribeKey" not in dict(inv.scan.api_calls)
    assert ("aws-owned-key", "cs0") in _fails(inv)


def test_malformed_record_is_an_error_never_a_pass(session: boto3.Session,
                                                   paged: PagedAnswers) -> None:
    paged.add("DescribeDBClusters", "DBClusters", [
        {"DBClusterIdentifier": "odd", "DBClusterArn":
         "arn:aws:rds:us-east-1:123456789012:cluster:odd", "Engine": "aurora-mysql"}],
        region="us-east-1")
    inv = _scan(session, ["us-east-1"])
    assert [(e.operation, e.code) for e in inv.errors] == [("DescribeDBClusters",
                                                           "MalformedResponse")]
    assert "odd" in inv.errors[0].message
    assert not any(f.resource.id == "odd" for f in evaluate(inv, Policy()).findings)


def test_timeout_and_truncated_body_are_recorded(session: boto3.Session,
                                                 estate: dict[str, str],
                                                 faults: FaultHook) -> None:
    faults.add("rds", "DescribeDBClusters", "us-east-1", kind="timeout")
    faults.add("rds", "DescribeDBClusterSnapshots", "eu-west-1", kind="malformed")
    inv = _scan(session)
    codes = {(e.region, e.operation): e.code for e in inv.errors}
    assert codes[("us-east-1", "DescribeDBClusters")] == "Timeout"
    assert codes[("eu-west-1", "DescribeDBClusterSnapshots")] in ("MalformedResponse",
                                                                 "ResponseParserError")
    assert {"orders", "billing"} <= {r.id for r in inv.resources}


def test_failure_on_second_page_keeps_first_page_and_records_error(
        session: boto3.Session, faults: FaultHook) -> None:
    for i in range(3):
        _instance("us-east-1", f"db{i}", Engine="mysql")
    faults.add("rds", "DescribeDBInstances", "us-east-1", nth=2, code="InternalFailure",
               status=500, times=None)
    # moto pages DescribeDBInstances itself; force 2 pages with a tiny page size.
    import rdsaudit.collect.specs as specs
    spec = next(s for s in specs.LISTINGS if s.operation == "DescribeDBInstances")
    object.__setattr__(spec, "params", {"MaxRecords": 2})
    try:
        inv = _scan(session, ["us-east-1"], max_attempts=1)
    finally:
        object.__setattr__(spec, "params", {"MaxRecords": 100})
    assert [(e.operation, e.code) for e in inv.errors] == [("DescribeDBInstances",
                                                           "InternalFailure")]
    assert len([r for r in inv.resources if r.type is ResourceType.DB_INSTANCE]) == 2


def test_docdb_and_neptune_are_left_out(session: boto3.Session, paged: PagedAnswers) -> None:
    make = PAGED["DescribeDBClusters"][1]
    paged.add("DescribeDBClusters", "DBClusters", [
        {**make(0), "Engine": "docdb"}, {**make(1), "Engine": "neptune"}, make(2)],
        region="us-east-1")
    paged.add("DescribeDBInstances", "DBInstances", [{
        "DBInstanceIdentifier": "docs-1", "Engine": "docdb", "StorageEncrypted": False,
        "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:docs-1"}], region="us-east-1")
    inv = _scan(session, ["us-east-1"])
    assert {r.id for r in inv.resources} == {"c2"}
    assert inv.errors == ()


def test_no_credentials_is_a_credentials_problem(aws_env: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CredentialsProblem, match="no AWS credentials"):
        scan(boto3.Session(region_name="us-east-1"), ScanRequest(regions=["us-east-1"]))


def test_unknown_region_is_refused(session: boto3.Session) -> None:
    # Not shaped like an aws-partition region (botocore's regionRegex), nor a known one.
    for bad in ("xx-fake-1", "cn-north-1", "us-east-1.evil.example", "us-east-\x1b-1"):
        with pytest.raises(RegionProblem, match="unknown region"):
            _scan(session, ["us-east-1", bad])


def test_a_region_newer_than_botocore_is_accepted_when_the_partition_says_so(
        session: boto3.Session) -> None:
    from rdsaudit.collect import resolve_regions

    assert resolve_regions(session, ["us-east-1", "us-middle-7"], "aws") == [
        "us-east-1", "us-middle-7"]


def test_default_regions_are_the_enabled_ones(session: boto3.Session) -> None:
    inv = scan(session, ScanRequest(regions=None, max_attempts=2))
    # moto lists not-opted-in regions and other partitions; neither may be scanned.
    assert "us-east-1" in inv.scan.regions and "ap-east-1" not in inv.scan.regions
    assert not any(r.startswith(("cn-", "us-gov-")) for r in inv.scan.regions)
    assert dict(inv.scan.api_calls)["ec2:DescribeRegions"] == 1
