"""The database's own configuration reaches its encrypted re-creation.

moto returns few of these fields, so the collector reads exact DescribeDBInstances /
DescribeDBClusters member shapes (botocore RDS model) through a before-call hook; the plan
built from them must pass each field to the call that accepts it (checked against the
botocore model), a modify call for the rest, and a manual step for what none carries.
"""

from __future__ import annotations

from typing import Any

import boto3

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.evaluate import evaluate
from rdsaudit.model import Finding, Inventory
from rdsaudit.plan.awscli import Scope, check_argv
from rdsaudit.policy import Policy
from tests.support.aws_hooks import PagedAnswers

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


def _db(name: str, **kw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "DBInstanceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{name}",
        "DBInstanceClass": "db.r6g.large", "Engine": "postgres", "EngineVersion": "16.3",
        "DBInstanceStatus": "available", "StorageEncrypted": False, "BackupRetentionPeriod": 7,
        "DbiResourceId": f"db-{name.upper()}", "LicenseModel": "postgresql-license",
        "DBSubnetGroup": {"DBSubnetGroupName": "private-a", "VpcId": "vpc-1",
                          "SubnetGroupStatus": "Complete"},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1", "Status": "active"},
                              {"VpcSecurityGroupId": "sg-2", "Status": "active"}],
        "DBParameterGroups": [{"DBParameterGroupName": "pg16-tuned",
                               "ParameterApplyStatus": "in-sync"}],
        "OptionGroupMemberships": [{"OptionGroupName": "default:postgres-16",
                                    "Status": "in-sync"}],
        "Endpoint": {"Address": f"{name}.x.rds.amazonaws.com", "Port": 6543},
        "DbInstancePort": 0, "MultiAZ": True, "StorageType": "gp3", "AllocatedStorage": 400,
        "Iops": 12000, "StorageThroughput": 500, "DeletionProtection": True,
        "IAMDatabaseAuthenticationEnabled": True, "PubliclyAccessible": False,
        "CopyTagsToSnapshot": True, "MonitoringInterval": 30,
        "MonitoringRoleArn": f"arn:aws:iam::{ACCOUNT}:role/rds-monitoring",
        "PerformanceInsightsEnabled": True, "PerformanceInsightsKMSKeyId": KEY,
        "PerformanceInsightsRetentionPeriod": 731,
        "EnabledCloudwatchLogsExports": ["postgresql", "upgrade"],
        "MasterUserSecret": {"SecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x",
                             "SecretStatus": "active", "KmsKeyId": KEY},
        "TagList": [{"Key": "team", "Value": "orders, billing=1"},
                    {"Key": "aws:cloudformation:stack-name", "Value": "s"}],
    }
    record.update(kw)
    return record


def _cluster(name: str) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": name,
        "DBClusterArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{name}",
        "Engine": "aurora-postgresql", "EngineVersion": "15.4", "Status": "available",
        "StorageEncrypted": False, "BackupRetentionPeriod": 5,
        "DbClusterResourceId": "cluster-ABCDEF", "DBSubnetGroup": "private-a",
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-9", "Status": "active"}],
        "DBClusterParameterGroup": "aurora-pg15-tuned", "Port": 5433,
        "DeletionProtection": True, "IAMDatabaseAuthenticationEnabled": True,
        "CopyTagsToSnapshot": True, "EnabledCloudwatchLogsExports": ["postgresql"],
        "DBClusterMembers": [{"DBInstanceIdentifier": f"{name}-a", "IsClusterWriter": True},
                             {"DBInstanceIdentifier": f"{name}-b", "IsClusterWriter": False}],
        "TagList": [],
    }


def _scan(session: boto3.Session, paged: PagedAnswers, instances: list[dict[str, Any]],
          clusters: list[dict[str, Any]] = ()) -> Inventory:  # type: ignore[assignment]
    paged.add("DescribeDBInstances", "DBInstances", instances, region=REGION, page_size=50)
    paged.add("DescribeDBClusters", "DBClusters", list(clusters), region=REGION, page_size=50)
    return scan(session, ScanRequest(regions=[REGION], max_attempts=1))


def _finding(inv: Inventory, rule: str, rid: str, **policy: Any) -> Finding:
    result = evaluate(inv, Policy(target_keys={REGION: KEY}, **policy))
    [f] = [f for f in result.findings if f.rule_id == rule and f.resource.id == rid
           and f.status.value == "fail"]
    return f


def _step(f: Finding, operation: str) -> tuple[str, ...]:
    """The first step of the plan that calls `operation`."""
    assert f.remediation is not None
    return next(s.argv for s in f.remediation.steps if s.argv[2:3] == (operation,))


def _options(argv: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for token in argv[3:]:
        if token.startswith("--"):
            current = token
            out[current] = []
        else:
            out[current].append(token)
    return out


def _all_checked(f: Finding) -> None:
    assert f.remediation is not None
    scope = Scope(own={f.resource.id, f.resource.arn, *f.remediation.related}, keys={KEY})
    for step in f.remediation.steps:
        if step.argv:
            check_argv(step.argv, scope)  # every option exists for its operation


def test_instance_restore_carries_the_configuration(session: boto3.Session,
                                                    paged: PagedAnswers) -> None:
    inv = _scan(session, paged, [_db("orders")])
    [r] = [r for r in inv.resources if r.id == "orders"]
    assert (r.db_subnet_group, r.port, r.iops, r.resource_id) == ("private-a", 6543, 12000,
                                                                    "db-ORDERS")
    f = _finding(inv, "instance-unencrypted", "orders")
    _all_checked(f)
    restore = _options(_step(f, "restore-db-instance-from-db-snapshot"))
    assert restore["--db-subnet-group-name"] == ["private-a"]
    assert restore["--vpc-security-group-ids"] == ["sg-1", "sg-2"]
    assert restore["--db-parameter-group-name"] == ["pg16-tuned"]
    assert "--option-group-name" not in restore  # the default group is the restore's default
    assert restore["--port"] == ["6543"]
    assert restore["--db-instance-class"] == ["db.r6g.large"]
    for flag in ("--multi-az", "--deletion-protection", "--enable-iam-database-authentication",
                 "--copy-tags-to-snapshot", "--no-publicly-accessible"):
        assert flag in restore, flag
    assert restore["--storage-type"] == ["gp3"] and restore["--iops"] == ["12000"]
    assert restore["--storage-throughput"] == ["500"]
    assert restore["--enable-cloudwatch-logs-exports"] == ["postgresql", "upgrade"]
    assert restore["--backup-retention-period"] == ["7"]
    assert restore["--tags"] == ['[{"Key":"team","Value":"orders, billing=1"}]']
    # What RestoreDBInstanceFromDBSnapshot lacks is set by modify-db-instance right after.
    modify = _options(_step(f, "modify-db-instance"))
    assert modify["--monitoring-interval"] == ["30"]
    assert modify["--monitoring-role-arn"] == [f"arn:aws:iam::{ACCOUNT}:role/rds-monitoring"]
    assert "--enable-performance-insights" in modify
    assert modify["--performance-insights-retention-period"] == ["731"]
    assert modify["--performance-insights-kms-key-id"] == [KEY]
    assert "--apply-immediately" in modify
    assert modify.get("--db-instance-identifier") == ["orders-enc"]
    # What no call carries is a manual step that names it.
    assert f.remediation is not None
    manual = " ".join(s.title for s in f.remediation.steps if s.manual)
    assert "Secrets Manager" in manual and "rotation schedule" in manual


def test_cluster_restore_carries_the_configuration_and_member_classes(
        session: boto3.Session, paged: PagedAnswers) -> None:
    members = [_db("pg-a", DBClusterIdentifier="pg", Engine="aurora-postgresql",
                   DBInstanceClass="db.r6g.2xlarge", MultiAZ=False),
               _db("pg-b", DBClusterIdentifier="pg", Engine="aurora-postgresql",
                   DBInstanceClass="db.r6g.xlarge", MultiAZ=False, MonitoringInterval=0,
                   PerformanceInsightsEnabled=False)]
    inv = _scan(session, paged, members, [_cluster("pg")])
    f = _finding(inv, "cluster-unencrypted", "pg")
    _all_checked(f)
    restore = _options(_step(f, "restore-db-cluster-from-snapshot"))
    assert restore["--kms-key-id"] == [KEY] and restore["--engine-version"] == ["15.4"]
    assert restore["--db-subnet-group-name"] == ["private-a"]
    assert restore["--vpc-security-group-ids"] == ["sg-9"]
    assert restore["--db-cluster-parameter-group-name"] == ["aurora-pg15-tuned"]
    assert restore["--port"] == ["5433"] and "--deletion-protection" in restore
    assert restore["--backup-retention-period"] == ["5"]
    assert f.remediation is not None
    creates = [_options(s.argv) for s in f.remediation.steps
               if s.argv[2:3] == ("create-db-instance",)]
    assert [c["--db-instance-class"] for c in creates] == [["db.r6g.2xlarge"], ["db.r6g.xlarge"]]
    assert creates[0]["--monitoring-interval"] == ["30"] and "--monitoring-interval" not in \
        creates[1]
    assert creates[0]["--db-parameter-group-name"] == ["pg16-tuned"]
    manual = " ".join(s.title for s in f.remediation.steps if s.manual)
    assert "custom endpoints" in manual
    # Clean-up deletes the old members before the old cluster (Aurora refuses otherwise).
    deletes = [s.argv for s in f.remediation.steps if s.destructive and s.argv[2:3] in (
        ("delete-db-instance",), ("delete-db-cluster",))]
    assert [d[2] for d in deletes] == ["delete-db-instance", "delete-db-instance",
                                       "delete-db-cluster"]
    # Deletion protection of the old cluster is turned off first.
    assert any(s.argv[2:3] == ("modify-db-cluster",) and "--no-deletion-protection" in s.argv
               for s in f.remediation.steps)
