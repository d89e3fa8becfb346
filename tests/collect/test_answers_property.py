"""Property tests over AWS answers: random type-correct and type-wrong records, parsed by
the same botocore parsers a scan uses, never crash the scan. Each record either becomes a
Resource or is refused as a `MalformedRecord` (a recorded error); nothing else escapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
import pytest
from botocore.parsers import ResponseParserError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdsaudit.collect.answers import LenientParserFactory, key_metadata_problem
from rdsaudit.collect.specs import LISTINGS, MalformedRecord
from rdsaudit.model import Resource

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
anything: Any = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6)
ARN = "arn:aws:rds:us-east-1:123456789012:db:x"


def record(extra: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "DBInstanceIdentifier": "x", "DBInstanceArn": ARN, "StorageEncrypted": True,
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k", "Engine": "postgres",
        "BackupRetentionPeriod": 7, "TagList": [{"Key": "a", "Value": "b"}],
        "DBClusterIdentifier": "c", "DBSnapshotIdentifier": "s", "DBSnapshotArn": ARN,
        "DBClusterArn": ARN, "DBClusterSnapshotIdentifier": "cs",
        "DBClusterSnapshotArn": ARN, "DBInstanceAutomatedBackupsArn": ARN,
        "DBClusterAutomatedBackupsArn": ARN, "Encrypted": False, "SnapshotType": "manual",
    }
    base.update(extra)
    return base


FIELDS = st.sampled_from(["DBInstanceIdentifier", "DBInstanceArn", "StorageEncrypted",
                          "KmsKeyId", "Engine", "BackupRetentionPeriod", "TagList",
                          "StorageEncryptionType", "DBInstanceStatus", "Encrypted",
                          "SnapshotType", "DBSnapshotArn", "DBClusterArn",
                          "ReadReplicaSourceDBInstanceIdentifier"])


@SETTINGS
@given(st.dictionaries(FIELDS, anything, max_size=4))
def test_any_record_is_a_resource_or_a_malformed_record(changes: dict[str, Any]) -> None:
    for spec in LISTINGS:
        try:
            resource = spec.normalize(record(changes))
        except MalformedRecord:
            continue
        assert resource is None or isinstance(resource, Resource)
        if isinstance(resource, Resource):
            assert isinstance(resource.arn, str) and isinstance(resource.tags, tuple)
            assert resource.backup_retention is None or isinstance(resource.backup_retention,
                                                                   int)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["KeyState", "KeyManager", "Origin", "Description",
                                        "DeletionDate", "MultiRegion", "ValidTo",
                                        "PendingDeletionWindowInDays", "CreationDate"]),
                       anything, max_size=4))
def test_any_key_metadata_is_judged_without_raising(changes: dict[str, Any]) -> None:
    meta: dict[str, Any] = {"KeyState": "Enabled", "KeyManager": "CUSTOMER",
                            "CreationDate": datetime(2026, 1, 1, tzinfo=UTC), **changes}
    problem = key_metadata_problem(meta)
    assert problem is None or isinstance(problem, str)


SCALARS = st.one_of(st.integers(-10, 10**6).map(str), st.just("seven"), st.just("1e20"),
                    st.just("true"), st.just("maybe"), st.just("2026-12-01T00:00:00Z"),
                    st.just("not-a-date"), text)


@SETTINGS
@given(retention=SCALARS, encrypted=SCALARS, created=SCALARS, identifier=SCALARS)
def test_any_xml_scalar_parses_and_is_judged(retention: str, encrypted: str, created: str,
                                             identifier: str) -> None:
    """The XML of DescribeDBInstances with any text in typed fields, through the scan's own
    parser factory, then the record check: a Resource or a MalformedRecord, never a crash."""
    body = (
        '<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        "<DescribeDBInstancesResult><DBInstances><DBInstance>"
        f"<DBInstanceIdentifier>{escape(identifier)}</DBInstanceIdentifier>"
        f"<DBInstanceArn>{ARN}</DBInstanceArn>"
        f"<StorageEncrypted>{escape(encrypted)}</StorageEncrypted>"
        f"<BackupRetentionPeriod>{escape(retention)}</BackupRetentionPeriod>"
        f"<InstanceCreateTime>{escape(created)}</InstanceCreateTime>"
        "<Engine>postgres</Engine>"
        "</DBInstance></DBInstances></DescribeDBInstancesResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
        "</DescribeDBInstancesResponse>").encode()
    model = botocore.session.get_session().get_service_model("rds")
    operation = model.operation_model("DescribeDBInstances")
    parser = LenientParserFactory().create_parser("query")
    try:
        parsed = parser.parse({"status_code": 200, "headers": {}, "body": body},
                              operation.output_shape)
    except ResponseParserError:
        return  # not XML (a control character): the scan records MalformedResponse
    (item,) = parsed["DBInstances"]
    try:
        resource = LISTINGS[0].normalize(item)
    except MalformedRecord:
        return
    assert resource is not None and isinstance(resource.encrypted, bool)


CARRIED = {
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1\nrm -rf ~", "Status": "active"}],
    "DBSubnetGroup": {"DBSubnetGroupName": "net\x1b[2J"},
    "DBParameterGroups": [{"DBParameterGroupName": "pg\u202e"}],
    "OptionGroupMemberships": [{"OptionGroupName": 7}],
    "EnabledCloudwatchLogsExports": ["error\r"],
}


@pytest.mark.parametrize("field", sorted(CARRIED))
def test_carried_configuration_is_held_to_the_identifier_rule(field: str) -> None:
    """What a runbook passes to a restore (groups, security groups, log types) is an
    identifier: a control character or a wrong type makes the record malformed, never a
    name a runbook would quote into a restore call."""
    [spec] = [s for s in LISTINGS if s.action == "rds:DescribeDBInstances"]
    assert isinstance(spec.normalize(record({})), Resource)
    with pytest.raises(MalformedRecord):
        spec.normalize(record({field: CARRIED[field]}))
