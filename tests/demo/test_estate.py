"""The demo estate: seeded into moto, served by FakeAWS, read back over HTTP with boto3.

The estate's records (and so its expected failures) are checked against what a client
actually sees, resource by resource, so the expectations cannot drift from the served data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rdsaudit.collect import scan
from rdsaudit.collect.floor import api_floor
from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.demo.estate import (
    ALL_RULES,
    DEMO_ACCOUNT,
    DEMO_REGIONS,
    DEMO_ROLE,
    PARTNER_ACCOUNT,
    REGULATED_ACCOUNT,
    DemoEstate,
    demo_environment,
    demo_policy,
    demo_scan_request,
    seed_demo_estate,
)
from rdsaudit.model import KeyProtection, ResourceType
from rdsaudit.rules import RULES

T = ResourceType


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[FakeAWS, DemoEstate]]:
    with demo_environment() as env:
        yield env


def client(fake: FakeAWS, service: str, region: str, account: str = DEMO_ACCOUNT) -> Any:
    """A client of the caller's account, or of another demo account through the audit
    role, as the scan enters it."""
    config = Config(retries={"total_max_attempts": 1})
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if account != DEMO_ACCOUNT:
        answer = boto3.client("sts", region_name=region, endpoint_url=fake.endpoint_url,
                              config=config, **creds).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{DEMO_ROLE}", RoleSessionName="test")
        c = answer["Credentials"]
        creds = {"aws_access_key_id": c["AccessKeyId"],
                 "aws_secret_access_key": c["SecretAccessKey"],
                 "aws_session_token": c["SessionToken"]}
    return boto3.client(service, region_name=region, endpoint_url=fake.endpoint_url,
                        config=config, **creds)


def listing(fake: FakeAWS, account: str, region: str, operation: str,
            key: str) -> list[dict[str, Any]]:
    paginator = client(fake, "rds", region, account).get_paginator(operation)
    return [item for page in paginator.paginate() for item in page[key]]


# (paginator, result key, ARN field, resource type) of every RDS listing the estate fills.
LISTINGS = (
    ("describe_db_instances", "DBInstances", "DBInstanceArn", T.DB_INSTANCE),
    ("describe_db_clusters", "DBClusters", "DBClusterArn", T.DB_CLUSTER),
    ("describe_db_snapshots", "DBSnapshots", "DBSnapshotArn", T.DB_SNAPSHOT),
    ("describe_db_cluster_snapshots", "DBClusterSnapshots", "DBClusterSnapshotArn",
     T.DB_CLUSTER_SNAPSHOT),
    ("describe_db_instance_automated_backups", "DBInstanceAutomatedBackups",
     "DBInstanceAutomatedBackupsArn", T.DB_AUTOMATED_BACKUP),
    ("describe_db_cluster_automated_backups", "DBClusterAutomatedBackups",
     "DBClusterAutomatedBackupsArn", T.DB_AUTOMATED_BACKUP),
)


def served(fake: FakeAWS, account: str = DEMO_ACCOUNT) -> dict[str, tuple[T, dict[str, Any]]]:
    """Every RDS resource the emulator serves in `account`, by its own ARN."""
    out: dict[str, tuple[T, dict[str, Any]]] = {}
    for region in DEMO_REGIONS:
        for operation, key, arn_field, kind in LISTINGS:
            for item in listing(fake, account, region, operation, key):
                out[item[arn_field]] = (kind, item)
    return out


def test_estate_trips_every_rule_and_has_healthy_resources(
    demo: tuple[FakeAWS, DemoEstate],
) -> None:
    _, estate = demo
    assert estate.rules_tripped == ALL_RULES == set(RULES)
    assert estate.account_id == DEMO_ACCOUNT and estate.regions == ("us-east-1", "eu-west-1")
    assert estate.accounts == (DEMO_ACCOUNT, REGULATED_ACCOUNT)
    # The second account is small: one database, its automated snapshot and backup, and a
    # copy of that snapshot under another key.
    regulated = [r for r in estate.resources if r.account_id == REGULATED_ACCOUNT]
    assert sorted((r.type.value, r.snapshot_type or "") for r in regulated) == [
        ("db-automated-backup", "active"), ("db-instance", ""), ("db-snapshot", "automated"),
        ("db-snapshot", "manual")]
    healthy = {r.id for r in estate.healthy}
    assert {
        "orders-db",
        "orders-db-replica-1",
        "orders-db-replica-eu",
        "billing-aurora",
        "eu-customers-db",
        "orders-db-before-upgrade",
        "billing-aurora-monthly",
        "treasury-byok-db",
        "treasury-hsm-db",
        "treasury-xks-db",
        "treasury-eu-db",
        "erp-oracle-db",
        "treasury-replicated-db",
        "cards-vault-db",
    } <= healthy
    in_scope = [r for r in estate.resources if not r.excluded and r.cluster_id is None]
    assert 40 <= len(in_scope) <= 120
    assert {r.region for r in in_scope} == set(DEMO_REGIONS)
    for resource in in_scope:
        assert {"owner", "environment", "team"} <= {k for k, _ in resource.tags}, resource.id


def test_expected_failures_are_consistent(demo: tuple[FakeAWS, DemoEstate]) -> None:
    _, estate = demo
    by_arn = {r.arn: r for r in estate.resources} | {k.arn: k for k in estate.keys}
    assert len(estate.expected_failures) == len(estate.expected_failure_arns)
    for rule, arn in estate.expected_failure_arns:
        assert rule in ALL_RULES
        item = by_arn[arn]
        assert not getattr(item, "excluded", False)
        assert getattr(item, "cluster_id", None) is None  # Aurora members: judged by cluster
    fails = estate.expected_failures
    # One named offender per rule (the headline cases the demo is built around).
    for pair in [
        ("instance-unencrypted", "legacy-reporting-mysql"),
        ("instance-unencrypted", "legacy-reporting-mysql-ro"),
        ("instance-unencrypted", "legacy-reporting-sqlexpress"),
        ("cluster-unencrypted", "events-aurora"),
        ("snapshot-unencrypted", "legacy-reporting-mysql-partner-share"),
        ("cluster-snapshot-unencrypted", "events-aurora-pre-upgrade"),
        ("snapshot-public", "legacy-reporting-mysql-pre-migration"),
        ("key-unusable", "payments-db"),
        ("key-unusable", "crm-db"),
        ("key-unusable", "inventory-db"),
        ("encryption-credentials-inaccessible", "payments-db"),
        ("key-unverifiable", "partner-feed-db"),
        ("cross-account-key", "partner-feed-db"),
        ("encrypted-without-backups", "ledger-archive-db"),
        ("replica-encryption-mismatch", "analytics-db-eu"),
        ("replica-key-mismatch", "orders-db-replica-bi"),
        ("key-region-mismatch", "marketing-db"),
        ("aws-managed-key", "wiki-db"),
        ("aws-owned-key", "search-aurora"),
        ("key-rotation-disabled", estate.key("analytics").key_id),
        ("automated-backup-unencrypted", "cab-oldeventsaurora2024q1"),
        ("key-material-expiring", "treasury-import-db"),
        ("key-unusable", "treasury-legacy-db"),
        ("key-unverifiable", "treasury-lab-db"),
        ("key-rotation-disabled", estate.key("global-primary").key_id),
        ("key-unusable", "treasury-insights-db"),
        ("key-unusable", "treasury-secret-db"),
        ("key-usage-not-audited", estate.key("eu-orders").key_id),
        ("key-below-external-store", "cards-vault-export"),
    ]:
        assert pair in fails, pair
    # key-below-external-store is judged only where the demo's config requires that rung:
    # the regulated account's key outside a custom key store, never the first account's
    # plain customer keys.
    policy = demo_policy()
    assert policy.minimum_for(REGULATED_ACCOUNT) is KeyProtection.CUSTOMER_EXTERNAL_STORE
    assert policy.minimum_for(DEMO_ACCOUNT) is KeyProtection.AWS_OWNED
    below = {arn for rule, arn in estate.expected_failure_arns
             if rule == "key-below-external-store"}
    assert below == {estate.resource("cards-vault-export").arn}
    assert estate.key("cards-export").origin == "AWS_KMS"
    assert estate.key("cards-hsm").origin == "AWS_CLOUDHSM"
    assert estate.resource("cards-vault-export").kms_key_arn == estate.key("cards-export").arn
    assert estate.resource("cards-vault-db").kms_key_arn == estate.key("cards-hsm").arn
    assert not [p for p in fails if p[1] in {"orders-db", "billing-aurora", "docs-docdb"}]
    retained = [r for r in estate.of_type(T.DB_AUTOMATED_BACKUP) if r.source_id == "old-billing-db"]
    assert [("automated-backup-unencrypted", r.id) in fails for r in retained] == [True]


def test_served_resources_match_the_estate_records(demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, estate = demo
    seen = {arn: item for account in estate.accounts
            for arn, item in served(fake, account).items()}
    assert set(seen) == {r.arn for r in estate.resources}
    assert {r.account_id for r in estate.resources} == set(estate.accounts)
    for resource in estate.resources:
        kind, item = seen[resource.arn]
        assert kind == resource.type, resource.id
        encrypted = item.get("StorageEncrypted", item.get("Encrypted"))
        assert encrypted is resource.encrypted, resource.id
        assert item.get("KmsKeyId") == resource.kms_key_arn or not resource.encrypted, resource.id
        if "StorageEncryptionType" in item:
            assert item["StorageEncryptionType"] == resource.encryption_type, resource.id
        else:
            assert resource.encryption_type == ("sse-kms" if resource.encrypted else "none")
        if resource.type == T.DB_INSTANCE:
            assert item["DBInstanceIdentifier"] == resource.id
            assert item["DBInstanceStatus"] == resource.status
            assert item.get("DBClusterIdentifier") == resource.cluster_id
            assert item.get("ReadReplicaSourceDBInstanceIdentifier") == resource.replica_source
            if resource.cluster_id is None:
                assert item["BackupRetentionPeriod"] == resource.backup_retention
        if resource.type == T.DB_CLUSTER:
            assert item["Status"] == "available"
            assert item["Engine"] == resource.engine
        if resource.type in (T.DB_SNAPSHOT, T.DB_CLUSTER_SNAPSHOT):
            assert item["SnapshotType"] == resource.snapshot_type, resource.id
        if resource.type == T.DB_AUTOMATED_BACKUP:
            assert item["Status"] == resource.status
            assert item["BackupRetentionPeriod"] == resource.backup_retention
            assert item["Region"] == resource.region


def test_headline_field_values_over_http(demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, estate = demo
    rds = client(fake, "rds", "us-east-1")
    (payments,) = rds.describe_db_instances(DBInstanceIdentifier="payments-db")["DBInstances"]
    assert payments["DBInstanceStatus"] == "inaccessible-encryption-credentials-recoverable"
    assert payments["KmsKeyId"] == estate.key("payments").arn
    (sqlexpress,) = rds.describe_db_instances(DBInstanceIdentifier="legacy-reporting-sqlexpress")[
        "DBInstances"
    ]
    assert sqlexpress["Engine"] == "sqlserver-ex" and sqlexpress["StorageEncrypted"] is False
    (marketing,) = rds.describe_db_instances(DBInstanceIdentifier="marketing-db")["DBInstances"]
    assert marketing["KmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
    (partner,) = rds.describe_db_instances(DBInstanceIdentifier="partner-feed-db")["DBInstances"]
    assert ":999999999999:key/" in partner["KmsKeyId"]

    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    search = clusters["search-aurora"]
    assert search["StorageEncrypted"] is True
    assert search["StorageEncryptionType"] == "sse-rds" and "KmsKeyId" not in search
    assert clusters["docs-docdb"]["Engine"] == "docdb"
    assert clusters["events-aurora"]["StorageEncrypted"] is False
    assert sorted(
        m["DBInstanceIdentifier"] for m in clusters["billing-aurora"]["DBClusterMembers"]
    ) == [
        "billing-aurora-1",
        "billing-aurora-2",
    ]

    eu = client(fake, "rds", "eu-west-1")
    (replica_eu,) = eu.describe_db_instances(DBInstanceIdentifier="orders-db-replica-eu")[
        "DBInstances"
    ]
    assert replica_eu["KmsKeyId"] == estate.key("eu-orders").arn
    assert replica_eu["ReadReplicaSourceDBInstanceIdentifier"] == estate.resource("orders-db").arn
    (drifted,) = eu.describe_db_instances(DBInstanceIdentifier="analytics-db-eu")["DBInstances"]
    assert drifted["StorageEncrypted"] is False and "KmsKeyId" not in drifted

    public = rds.describe_db_snapshot_attributes(
        DBSnapshotIdentifier="legacy-reporting-mysql-pre-migration"
    )["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
    assert public == [{"AttributeName": "restore", "AttributeValues": ["all"]}]
    shared = rds.describe_db_snapshot_attributes(
        DBSnapshotIdentifier="legacy-reporting-mysql-partner-share"
    )["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
    assert shared == [{"AttributeName": "restore", "AttributeValues": [PARTNER_ACCOUNT]}]

    (old_events,) = rds.describe_db_cluster_automated_backups()["DBClusterAutomatedBackups"]
    assert old_events["DBClusterIdentifier"] == "old-events-aurora"
    assert old_events["StorageEncrypted"] is False and old_events["Status"] == "retained"
    backups = {
        b["DBInstanceIdentifier"]: b
        for b in rds.describe_db_instance_automated_backups()["DBInstanceAutomatedBackups"]
    }
    assert backups["old-billing-db"]["Status"] == "retained"
    assert backups["old-billing-db"]["Encrypted"] is False
    assert backups["old-audit-db"]["KmsKeyId"] == estate.key("orders").arn
    assert "ledger-archive-db" not in backups  # retention 0: no automated backups
    assert not any(i.startswith("billing-aurora-") for i in backups)  # Aurora members


def test_kms_keys_over_http(demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, estate = demo
    kms = client(fake, "kms", "us-east-1")
    for key in estate.keys:
        # Keys of another account (the partner's, denied) are asked for from the caller's.
        owner = key.account_id if key.account_id in estate.accounts else DEMO_ACCOUNT
        region_kms = client(fake, "kms", key.region, owner)
        if key.state in ("denied", "missing"):
            with pytest.raises(ClientError) as info:
                region_kms.describe_key(KeyId=key.arn)
            code = info.value.response["Error"]["Code"]
            assert (
                code
                == {"denied": "AccessDeniedException", "missing": "NotFoundException"}[key.state]
            )
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            continue
        meta = region_kms.describe_key(KeyId=key.arn)["KeyMetadata"]
        assert (meta["KeyState"], meta["KeyManager"]) == (key.state, key.manager), key.name
        if key.rotation is not None:
            rotation = region_kms.get_key_rotation_status(KeyId=key.arn)["KeyRotationEnabled"]
            assert rotation is key.rotation, key.name
        assert meta.get("Origin", "AWS_KMS") == key.origin, key.name
        if key.primary_arn is not None:
            config = meta["MultiRegionConfiguration"]
            assert config["PrimaryKey"]["Arn"] == key.primary_arn, key.name
        if key.state == "PendingDeletion":
            assert "DeletionDate" in meta
    with pytest.raises(ClientError) as denied:
        kms.get_key_rotation_status(KeyId=estate.key("partner").arn)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    aliases = {
        a["AliasName"]: a.get("TargetKeyId")
        for page in kms.get_paginator("list_aliases").paginate()
        for a in page["Aliases"]
    }
    assert aliases["alias/aws/rds"] == estate.key("aws-rds").key_id
    assert aliases["alias/analytics"] == estate.key("analytics").key_id


def test_the_demo_scan_makes_exactly_its_floor_calls(demo: tuple[FakeAWS, DemoEstate]) -> None:
    """`rdsaudit demo`'s own scan request (both accounts, one AssumeRole) makes the calls
    of its API floor, no more, as the emulator counts them."""
    fake, estate = demo
    fake.reset_calls()
    session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo",
                            region_name=DEMO_REGIONS[0])
    inventory = scan(session, demo_scan_request(fake.endpoint_url))
    assert inventory.scan.accounts == estate.accounts
    floor = api_floor(inventory, caller=estate.account_id)
    assert floor["sts:AssumeRole"] == 1
    assert dict(inventory.scan.api_calls) == floor == fake.call_counts()


def test_seeding_refuses_to_run_without_moto() -> None:
    with pytest.raises(RuntimeError, match="mock_aws"):
        seed_demo_estate()


def test_demo_environment_serves_with_latency_and_cleans_up() -> None:
    from moto.rds.models import rds_backends

    with demo_environment(latency=0.05) as (fake, estate):
        endpoint = fake.endpoint_url
        assert fake.latency == 0.05
        assert client(fake, "rds", "us-east-1").describe_db_instances(
            DBInstanceIdentifier="orders-db"
        )["DBInstances"]
        assert estate.resource("orders-db").encrypted
    with pytest.raises(RuntimeError):
        _ = fake.endpoint_url
    dead = boto3.client(
        "rds",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(Exception):  # noqa: B017 - any connection failure will do
        dead.describe_db_instances()
    # moto's state was wiped on exit (checked without starting a mock, which would reset it)
    assert not rds_backends[DEMO_ACCOUNT]["us-east-1"].databases
