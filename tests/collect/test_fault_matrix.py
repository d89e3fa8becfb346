"""The fault matrix: every operation the collectors call by every failure AWS can produce.

A compliant-at-`critical` estate in two regions is served by the emulator with one item per
page, so every listing is multi-page. For each (operation, fault) in eu-west-1 the scan must
finish, name the operation and region in an error, report every other region and operation
exactly as without the fault, never report as `pass` what it could not read, and gate with
exit code 3 (incomplete) since nothing else fails at `critical`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.collect.specs import LISTINGS
from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.evaluate import evaluate
from rdsaudit.gate import ExitCode, gate
from rdsaudit.model import Inventory, Result, Severity, Status
from rdsaudit.policy import Policy

REGIONS = ["us-east-1", "eu-west-1"]
FAULT_REGION = "eu-west-1"
POLICY = Policy(fail_on=Severity.CRITICAL)
PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}

PAGINATED = sorted({(s.service, s.operation) for s in LISTINGS} | {("kms", "ListAliases")})
OTHERS = [("rds", "DescribeDBSnapshotAttributes"), ("rds", "DescribeDBClusterSnapshotAttributes"),
          ("kms", "DescribeKey"), ("kms", "GetKeyRotationStatus"), ("ec2", "DescribeRegions"),
          ("kms", "GetKeyLastUsage"), ("rds", "DescribeOptionGroups"),
          ("cloudtrail", "DescribeTrails"), ("cloudtrail", "GetTrailStatus"),
          ("cloudtrail", "GetEventSelectors")]
# GetKeyLastUsage is shown, never judged: refused, it leaves the key's last use unknown
# (said on the key) without making the scan incomplete.
# Every other failure of it, a deadline cut included (drip: like hang, an unread call), is a
# collection error as for any call.
NOT_AN_ERROR = {("kms", "GetKeyLastUsage", "access-denied")}

FAULTS = {
    "throttled": dict(kind="error", code="Throttling", status=400, message="Rate exceeded"),
    "access-denied": dict(kind="error", code="AccessDenied", status=403,
                          message="not authorized"),
    "internal-500": dict(kind="error", code="InternalFailure", status=500,
                         message="internal failure"),
    "timeout": dict(kind="timeout", delay=1.5),
    "malformed": dict(kind="malformed"),
    "second-page": dict(kind="error", code="AccessDenied", status=403, page=2,
                        message="denied on page 2"),
    # Hostile answers (issue 12). drip/hang are ended by the scan's deadline.
    # A byte every 0.5 s: never the 1 s read timeout, so only the deadline ends it.
    "drip": dict(kind="drip", delay=0.5),
    "hang": dict(kind="hang"),
    "cycle-marker": dict(kind="cycle-marker"),
    "wrong-type": dict(kind="wrong-type"),
    "surrogate": dict(kind="surrogate"),
    "escape": dict(kind="escape"),
}
DEADLINE_KINDS = {"drip", "hang"}
# Only listings have markers; GetKeyRotationStatus answers hold no text to taint.
ONLY_PAGINATED = {"second-page", "cycle-marker"}
NO_TEXT = {("kms", "GetKeyRotationStatus")}
JSON_SERVICES = {"kms"}
DEADLINE = 8.0  # seconds, for the drip and hang cases (the rest of the scan must fit)


def _kms_shape(service: str, fault: dict[str, object]) -> dict[str, object]:
    if service != "kms" or fault.get("kind") != "error":
        return fault
    code = {"Throttling": "ThrottlingException", "AccessDenied": "AccessDeniedException",
            "InternalFailure": "KMSInternalException"}[str(fault["code"])]
    return {**fault, "code": code, "status": 400 if code != "KMSInternalException" else 500}


CASES = [(svc, op, name) for svc, op in PAGINATED + OTHERS for name in FAULTS
         if (name not in ONLY_PAGINATED or (svc, op) in PAGINATED)
         and not (name in ("surrogate", "escape") and (svc, op) in NO_TEXT)]


def _spec(service: str, name: str) -> dict[str, object]:
    spec = _kms_shape(service, dict(FAULTS[name]))
    if name == "wrong-type":
        # An XML answer without its …Result element; a JSON answer that is a list.
        spec["mode"] = "list" if service in JSON_SERVICES else "no-result"
    return spec


@dataclass
class Served:
    fake: FakeAWS
    keys: dict[str, str]
    baseline: Result


def _seed() -> dict[str, str]:
    keys = {}
    for region in REGIONS:
        kms = boto3.client("kms", region_name=region)
        rds = boto3.client("rds", region_name=region)
        meta = kms.create_key(Description=f"rds {region}")["KeyMetadata"]
        kms.enable_key_rotation(KeyId=meta["KeyId"])
        kms.create_alias(AliasName=f"alias/rds-{region}", TargetKeyId=meta["KeyId"])
        keys[region] = meta["Arn"]
        for i in range(2):
            rds.create_db_instance(DBInstanceIdentifier=f"db{i}-{region}", Engine="postgres",
                                   DBInstanceClass="db.t3.micro", StorageEncrypted=True,
                                   KmsKeyId=meta["Arn"], **PW)
            rds.create_db_snapshot(DBInstanceIdentifier=f"db{i}-{region}",
                                   DBSnapshotIdentifier=f"manual{i}-{region}")
        rds.create_db_cluster(DBClusterIdentifier=f"aur-{region}", Engine="aurora-postgresql",
                              StorageEncrypted=True, KmsKeyId=meta["Arn"], **PW)
        rds.create_db_cluster(DBClusterIdentifier=f"plain-aur-{region}",
                              Engine="aurora-postgresql", **PW)
        rds.create_db_cluster_snapshot(DBClusterIdentifier=f"plain-aur-{region}",
                                       DBClusterSnapshotIdentifier=f"plain-csnap-{region}")
        # Unencrypted manual snapshots: high, not critical, and the only ones whose
        # attributes are asked for.
        rds.create_db_instance(DBInstanceIdentifier=f"legacy-{region}", Engine="mysql",
                               DBInstanceClass="db.t3.micro", **PW)
        # Oracle with TDE in an option group of its own (DescribeOptionGroups).
        rds.create_option_group(OptionGroupName=f"tde-{region}", EngineName="oracle-ee",
                                MajorEngineVersion="19", OptionGroupDescription="TDE")
        rds.modify_option_group(OptionGroupName=f"tde-{region}", ApplyImmediately=True,
                                OptionsToInclude=[{"OptionName": "TDE"}])
        rds.create_db_instance(DBInstanceIdentifier=f"erp-{region}", Engine="oracle-ee",
                               EngineVersion="19.0.0.0.ru-2024-01.rur-2024-01.r1",
                               DBInstanceClass="db.m5.large", StorageEncrypted=True,
                               KmsKeyId=meta["Arn"], OptionGroupName=f"tde-{region}",
                               LicenseModel="bring-your-own-license", **PW)
        # A trail logging every management event in each region (key use audited).
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=f"trail-{region}")
        trail = boto3.client("cloudtrail", region_name=region)
        trail.create_trail(Name=f"audit-{region}", S3BucketName=f"trail-{region}")
        trail.put_event_selectors(TrailName=f"audit-{region}", EventSelectors=[
            {"ReadWriteType": "All", "IncludeManagementEvents": True}])
        trail.start_logging(Name=f"audit-{region}")
        rds.create_db_snapshot(DBInstanceIdentifier=f"legacy-{region}",
                               DBSnapshotIdentifier=f"legacy-snap-{region}")
    return keys


def _scan(fake: FakeAWS, regions: list[str] | None = REGIONS,
          timeout: float = 3600) -> Inventory:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    return scan(session, ScanRequest(regions=regions, endpoint_url=fake.endpoint_url,
                                     max_attempts=2, read_timeout=1, workers=8,
                                     timeout=timeout))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        keys = _seed()
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS(page_size_cap=1)
    fake.start()
    try:
        for region in REGIONS:
            for i in range(2):
                fake.register_cluster_automated_backup(region, {
                    "DBClusterIdentifier": f"gone{i}-{region}", "StorageEncrypted": True,
                    "KmsKeyId": keys[region]})
        baseline = evaluate(_scan(fake), POLICY)
        yield Served(fake, keys, baseline)
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def test_baseline_is_complete_and_passes_at_critical(served: Served) -> None:
    inv = served.baseline.inventory
    assert inv.errors == ()
    assert gate(served.baseline, POLICY.fail_on) is ExitCode.COMPLIANT
    types = {r.type.value for r in inv.resources}
    assert types == {"db-instance", "db-cluster", "db-snapshot", "db-cluster-snapshot",
                     "db-automated-backup"}
    calls = dict(inv.scan.api_calls)
    for service, operation in PAGINATED + OTHERS[:4]:
        assert calls.get(f"{service}:{operation}", 0) >= 1, operation
    assert calls["rds:DescribeDBInstances"] >= 2 * 3  # one item per page: every page read


def _facts(result: Result) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.resource.arn, f.status.value) for f in result.findings}


@pytest.mark.parametrize(("service", "operation", "fault_name"), CASES,
                         ids=[f"{s}:{o}:{f}" for s, o, f in CASES])
def test_fault(served: Served, service: str, operation: str, fault_name: str) -> None:
    fake = served.fake
    fake.clear_faults()
    spec = _spec(service, fault_name)
    deadline_case = fault_name in DEADLINE_KINDS
    match = served.keys[FAULT_REGION] if operation == "DescribeKey" else None
    fake.inject_fault(Fault(service=service, action=operation, region=FAULT_REGION, match=match,
                         **spec))  # type: ignore[arg-type]
    try:
        regions = None if operation == "DescribeRegions" else REGIONS
        if regions is None:
            # DescribeRegions is asked in the home region; fail it there.
            fake.clear_faults()
            fake.inject_fault(Fault(service=service, action=operation, region="us-east-1",
                                 **spec))  # type: ignore[arg-type]
        inventory = _scan(fake, regions, DEADLINE if deadline_case else 3600)
    finally:
        fake.clear_faults()
    result = evaluate(inventory, POLICY)
    base = served.baseline

    if (service, operation, fault_name) in NOT_AN_ERROR:
        # By design not a collection error: the refusal is said on the key, and only there.
        key = next(k for k in inventory.keys if k.arn == served.keys[FAULT_REGION])
        note = key.last_usage_note or ""
        assert note.startswith("last use unknown: ") and "AccessDenied" in note, note
        assert key.last_used_at is None, key
        assert not inventory.errors, inventory.errors
        other = next(k for k in inventory.keys if k.arn != served.keys[FAULT_REGION])
        assert "AccessDenied" not in (other.last_usage_note or ""), other
        assert _facts(result) == _facts(base)
        assert gate(result, POLICY.fail_on) is ExitCode.COMPLIANT
        return
    # The error names the operation and the region.
    where = "us-east-1" if operation == "DescribeRegions" else FAULT_REGION
    named = any(e.operation == operation and e.region == where and e.service == service
                for e in inventory.errors)
    # On a loaded machine the deadline may end the scan before the call was even due:
    # then what it left unread is named (DeadlineExceeded), not necessarily this call.
    assert named or deadline_case, inventory.errors
    if deadline_case:
        # Whatever the deadline cut short is an error; what was read stays true.
        # A hung call may hit the read timeout first (1 s here); a dripping one never does.
        codes = {e.code for e in inventory.errors}
        assert "DeadlineExceeded" in codes or (fault_name == "hang" and "Timeout" in codes)
        passes = {f for f in _facts(result) if f[2] == "pass"}
        assert passes <= _facts(base)
        assert gate(result, POLICY.fail_on) is ExitCode.INCOMPLETE
        return
    # Nothing we could not read is reported as passing: no pass that the baseline lacks.
    passes = {f for f in _facts(result) if f[2] == "pass"}
    assert passes <= _facts(base)
    # Every other region is reported exactly as without the fault.
    other = [r for r in REGIONS if r != FAULT_REGION]
    if operation != "DescribeRegions":
        def in_other(res: Result) -> set[tuple[str, str, str]]:
            return {f for f in _facts(res) if any(f":{r}:" in f[1] for r in other)
                    and not (operation == "DescribeKey" and f[0] in ("key-rotation-disabled",))}
        assert in_other(result) == in_other(base)
    # Resources and facts the failed call did not touch are all still there.
    lost = {r.arn for r in base.inventory.resources} - {r.arn for r in inventory.resources}
    for arn in lost:
        assert f":{FAULT_REGION}:" in arn
    if operation == "DescribeKey":
        key = served.keys[FAULT_REGION]
        unverifiable = {f.resource.arn for f in result.findings
                        if f.rule_id == "key-unverifiable" and f.status is Status.FAIL}
        users = dict(base.key_users)[key]
        assert unverifiable == set(users)  # only that key's resources
    # Incomplete, and nothing else fails the gate at critical.
    assert gate(result, POLICY.fail_on) is ExitCode.INCOMPLETE
