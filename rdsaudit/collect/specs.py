"""What we list, as a table: one row per resource type, read by one paginator loop.

The same table yields the IAM actions rdsaudit needs (`rdsaudit iam-policy`), so the policy
can never drift from the calls the collectors make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rdsaudit.arns import Arn
from rdsaudit.keyref import is_replica_key, rotation_not_applicable
from rdsaudit.model import EncryptionType, KeyLookup, KmsKey, Resource, ResourceType

# DescribeDBInstances/DescribeDBClusters also return Neptune and DocumentDB (aws-facts §0):
# they are not RDS and are left out.
NOT_RDS_ENGINES = frozenset({"docdb", "neptune"})

PAGE_SIZE = 100  # the largest page RDS allows (MaxRecords 20..100)


class MalformedRecord(ValueError):
    """A record AWS returned without a field we cannot judge without."""

    def __init__(self, resource_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.resource_id = resource_id


Normalizer = Callable[[Mapping[str, Any]], Resource | None]


@dataclass(frozen=True)
class ListingSpec:
    resource_type: ResourceType
    service: str
    operation: str  # API name, as in IAM and CloudTrail
    method: str  # boto3 paginator name
    result_key: str
    normalize: Normalizer
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


def _text(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) and value else None


def _required(d: Mapping[str, Any], key: str, rid: str | None) -> str:
    value = _text(d, key)
    if value is None:
        raise MalformedRecord(rid, f"response has no {key}")
    return value


def _encryption(
    d: Mapping[str, Any], flag: str, rid: str
) -> tuple[bool, EncryptionType | None, str | None]:
    """(encrypted, encryption type, key id) from StorageEncryptionType or the older fields.

    StorageEncryptionType (Feb 2026) is preferred; `sse-rds` means an AWS owned key, which may
    come with no KmsKeyId. A KmsKeyId on an unencrypted resource is ignored (emulators return
    one), never read as proof of encryption.
    """
    raw_type = d.get("StorageEncryptionType")
    raw_flag = d.get(flag)
    enc_type: EncryptionType | None = None
    if raw_type is not None:
        try:
            enc_type = EncryptionType(raw_type)
        except ValueError:
            raise MalformedRecord(rid, f"unknown StorageEncryptionType {raw_type!r}") from None
        encrypted = enc_type is not EncryptionType.NONE
    elif isinstance(raw_flag, bool):
        encrypted = raw_flag
    else:
        raise MalformedRecord(rid, f"response has no boolean {flag}")
    key = _text(d, "KmsKeyId") if encrypted else None
    if enc_type is None:
        if not encrypted:
            enc_type = EncryptionType.NONE
        elif key is not None:
            enc_type = EncryptionType.SSE_KMS
    return encrypted, enc_type, key


def _tags(d: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    tags = d.get("TagList") or ()
    return tuple(
        (str(t.get("Key", "")), str(t.get("Value", "")))
        for t in tags
        if isinstance(t, Mapping)
    )


def _place(arn: str, rid: str) -> tuple[str, str]:
    parsed = Arn.parse(arn)
    if parsed is None or not parsed.region or not parsed.account:
        raise MalformedRecord(rid, f"ARN {arn!r} is not a regional resource ARN")
    return parsed.region, parsed.account


def _int(d: Mapping[str, Any], key: str) -> int | None:
    value = d.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Shape:
    """How one Describe* member maps onto a `Resource`: AWS field names per record field.

    `id_key` names the resource (for automated backups, the database they back up; their own
    id is the tail of their ARN, unique even when a database is re-created under its name).
    """

    type: ResourceType
    id_key: str
    arn_key: str
    encrypted_key: str  # StorageEncrypted, or Encrypted on DB snapshots and instance backups
    text_fields: Mapping[str, str] = field(default_factory=dict)  # Resource field -> AWS field
    int_fields: Mapping[str, str] = field(default_factory=dict)
    id_from_arn: bool = False
    snapshot_type: str | None = None  # fixed value, for automated backups
    # The rest of the record a faithful re-creation needs (see `_config`).
    extract: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def normalize(self, d: Mapping[str, Any]) -> Resource | None:
        name = _required(d, self.id_key, None)
        if d.get("Engine") in NOT_RDS_ENGINES:
            return None
        arn = _required(d, self.arn_key, name)
        region, account = _place(arn, name)
        encrypted, enc_type, key = _encryption(d, self.encrypted_key, name)
        values: dict[str, Any] = {k: _text(d, aws) for k, aws in self.text_fields.items()}
        values.update({k: _int(d, aws) for k, aws in self.int_fields.items()})
        if self.snapshot_type is not None:
            values["snapshot_type"] = self.snapshot_type
        if self.extract is not None:
            values.update(self.extract(d))
        return Resource(
            type=self.type,
            arn=arn,
            id=arn.rsplit(":", 1)[-1] if self.id_from_arn else name,
            region=region,
            account_id=account,
            encrypted=encrypted,
            encryption_type=enc_type,
            kms_key_id=key,
            tags=_tags(d),
            **values,
        )


def _bool(d: Mapping[str, Any], key: str) -> bool | None:
    value = d.get(key)
    return value if isinstance(value, bool) else None


def _texts(values: Any, key: str | None = None) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    items = [v.get(key) if key and isinstance(v, Mapping) else v for v in values]
    return tuple(v for v in items if isinstance(v, str))


def _config(d: Mapping[str, Any]) -> dict[str, Any]:
    """What a restore or re-create must pass to land the database where it was: network,
    parameter and option groups, storage, protection, monitoring (DBInstance / DBCluster
    shapes in the botocore RDS model; a field AWS leaves out stays None)."""
    subnet = d.get("DBSubnetGroup")
    groups = d.get("DBParameterGroups")
    options = d.get("OptionGroupMemberships")
    endpoint = d.get("Endpoint")
    secret = d.get("MasterUserSecret")
    return {
        "resource_id": _text(d, "DbiResourceId") or _text(d, "DbClusterResourceId"),
        "engine_version": _text(d, "EngineVersion"),
        "license_model": _text(d, "LicenseModel"),
        "db_subnet_group": (subnet.get("DBSubnetGroupName") if isinstance(subnet, Mapping)
                            else subnet if isinstance(subnet, str) else None),
        "vpc_security_group_ids": _texts(d.get("VpcSecurityGroups"), "VpcSecurityGroupId"),
        "parameter_group": (_texts(groups, "DBParameterGroupName")[:1] or
                            (_text(d, "DBClusterParameterGroup"),))[0],
        "option_group": (_texts(options, "OptionGroupName")[:1] or (None,))[0],
        "port": _int(d, "Port") or (_int(endpoint, "Port") if isinstance(endpoint, Mapping)
                                    else None),
        "multi_az": _bool(d, "MultiAZ"),
        "storage_type": _text(d, "StorageType"),
        "allocated_storage": _int(d, "AllocatedStorage"),
        "iops": _int(d, "Iops"),
        "storage_throughput": _int(d, "StorageThroughput"),
        "deletion_protection": _bool(d, "DeletionProtection"),
        "iam_auth": _bool(d, "IAMDatabaseAuthenticationEnabled"),
        "publicly_accessible": _bool(d, "PubliclyAccessible"),
        "copy_tags_to_snapshot": _bool(d, "CopyTagsToSnapshot"),
        "monitoring_interval": _int(d, "MonitoringInterval"),
        "monitoring_role_arn": _text(d, "MonitoringRoleArn"),
        "performance_insights_enabled": _bool(d, "PerformanceInsightsEnabled"),
        "performance_insights_retention": _int(d, "PerformanceInsightsRetentionPeriod"),
        "performance_insights_kms_key_id": _text(d, "PerformanceInsightsKMSKeyId"),
        "cloudwatch_logs_exports": _texts(d.get("EnabledCloudwatchLogsExports")),
        "manages_master_user_secret": isinstance(secret, Mapping) or None,
        "members": _texts(d.get("DBClusterMembers"), "DBInstanceIdentifier"),
    }


def _backup_ids(d: Mapping[str, Any]) -> dict[str, Any]:
    # delete-db-cluster-automated-backup takes the cluster's resource id (DbClusterResourceId).
    return {"resource_id": _text(d, "DbiResourceId") or _text(d, "DbClusterResourceId")}


INSTANCE = Shape(
    ResourceType.DB_INSTANCE, "DBInstanceIdentifier", "DBInstanceArn", "StorageEncrypted",
    {"engine": "Engine", "status": "DBInstanceStatus", "instance_class": "DBInstanceClass",
     "cluster_id": "DBClusterIdentifier",
     "replica_source": "ReadReplicaSourceDBInstanceIdentifier",
     "replica_source_cluster": "ReadReplicaSourceDBClusterIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, extract=_config)
CLUSTER = Shape(
    ResourceType.DB_CLUSTER, "DBClusterIdentifier", "DBClusterArn", "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "instance_class": "DBClusterInstanceClass",
     "replica_source": "ReplicationSourceIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, extract=_config)
SNAPSHOT = Shape(
    ResourceType.DB_SNAPSHOT, "DBSnapshotIdentifier", "DBSnapshotArn", "Encrypted",
    {"engine": "Engine", "status": "Status", "snapshot_type": "SnapshotType",
     "source_id": "DBInstanceIdentifier"})
CLUSTER_SNAPSHOT = Shape(
    ResourceType.DB_CLUSTER_SNAPSHOT, "DBClusterSnapshotIdentifier", "DBClusterSnapshotArn",
    "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "snapshot_type": "SnapshotType",
     "source_id": "DBClusterIdentifier"})
INSTANCE_BACKUP = Shape(
    ResourceType.DB_AUTOMATED_BACKUP, "DBInstanceIdentifier", "DBInstanceAutomatedBackupsArn",
    "Encrypted", {"engine": "Engine", "status": "Status", "source_id": "DBInstanceIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, id_from_arn=True, snapshot_type="automated",
    extract=_backup_ids)
CLUSTER_BACKUP = Shape(
    ResourceType.DB_AUTOMATED_BACKUP, "DBClusterIdentifier", "DBClusterAutomatedBackupsArn",
    "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "source_id": "DBClusterIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, id_from_arn=True, snapshot_type="automated",
    extract=_backup_ids)


_PAGE = {"MaxRecords": PAGE_SIZE}

LISTINGS: tuple[ListingSpec, ...] = (
    ListingSpec(ResourceType.DB_INSTANCE, "rds", "DescribeDBInstances",
                "describe_db_instances", "DBInstances", INSTANCE.normalize, _PAGE),
    ListingSpec(ResourceType.DB_CLUSTER, "rds", "DescribeDBClusters",
                "describe_db_clusters", "DBClusters", CLUSTER.normalize, _PAGE),
    # No SnapshotType: manual and automated, the account's own (not shared, not public).
    ListingSpec(ResourceType.DB_SNAPSHOT, "rds", "DescribeDBSnapshots",
                "describe_db_snapshots", "DBSnapshots", SNAPSHOT.normalize, _PAGE),
    # AWS Backup snapshots are listed only when asked for by type.
    ListingSpec(ResourceType.DB_SNAPSHOT, "rds", "DescribeDBSnapshots",
                "describe_db_snapshots", "DBSnapshots", SNAPSHOT.normalize,
                {**_PAGE, "SnapshotType": "awsbackup"}),
    ListingSpec(ResourceType.DB_CLUSTER_SNAPSHOT, "rds", "DescribeDBClusterSnapshots",
                "describe_db_cluster_snapshots", "DBClusterSnapshots",
                CLUSTER_SNAPSHOT.normalize, _PAGE),
    # Active, retained (instance deleted) and replicated backups alike.
    ListingSpec(ResourceType.DB_AUTOMATED_BACKUP, "rds", "DescribeDBInstanceAutomatedBackups",
                "describe_db_instance_automated_backups", "DBInstanceAutomatedBackups",
                INSTANCE_BACKUP.normalize, _PAGE),
    ListingSpec(ResourceType.DB_AUTOMATED_BACKUP, "rds", "DescribeDBClusterAutomatedBackups",
                "describe_db_cluster_automated_backups", "DBClusterAutomatedBackups",
                CLUSTER_BACKUP.normalize, _PAGE),
)

# The other calls a scan makes, by IAM action. Kept beside LISTINGS so the policy printed by
# `rdsaudit iam-policy` is derived from what the code calls.
SNAPSHOT_SHARE_CALLS = {
    ResourceType.DB_SNAPSHOT: ("DescribeDBSnapshotAttributes", "describe_db_snapshot_attributes",
                               "DBSnapshotIdentifier", "DBSnapshotAttributesResult",
                               "DBSnapshotAttributes"),
    ResourceType.DB_CLUSTER_SNAPSHOT: ("DescribeDBClusterSnapshotAttributes",
                                       "describe_db_cluster_snapshot_attributes",
                                       "DBClusterSnapshotIdentifier",
                                       "DBClusterSnapshotAttributesResult",
                                       "DBClusterSnapshotAttributes"),
}
OTHER_ACTIONS = (
    "sts:GetCallerIdentity",
    "ec2:DescribeRegions",
    "kms:ListAliases",
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
)


def needs_share_call(resource: Resource) -> bool:
    """Whether a snapshot needs its attribute call: the scanner and the API floor both ask
    this. Only KMS-encrypted snapshots are known not to be public (AWS refuses `all` for
    them, aws-facts §3); an AWS owned key (sse-rds cluster snapshots report
    StorageEncrypted false) or an unknown encryption is no evidence, so those are asked."""
    if resource.type not in SNAPSHOT_SHARE_CALLS or resource.snapshot_type != "manual":
        return False
    return not (resource.encrypted and resource.encryption_type is EncryptionType.SSE_KMS)


def needs_rotation_call(key: KmsKey) -> bool:
    """GetKeyRotationStatus is asked of described customer managed keys that can rotate:
    AWS managed keys always rotate (aws-facts §5); see `rotation_not_applicable`."""
    return (key.lookup is KeyLookup.OK and key.key_manager == "CUSTOMER"
            and rotation_not_applicable(key) is None)


def primary_to_look_up(key: KmsKey) -> str | None:
    """The primary key of a multi-Region replica: described too (once), in its own region,
    because rotation of a multi-Region key is a property of the primary."""
    return key.primary_key_arn if key.lookup is KeyLookup.OK and is_replica_key(key) else None


def required_actions() -> list[str]:
    actions = {spec.action for spec in LISTINGS}
    actions |= {f"rds:{op}" for op, *_ in SNAPSHOT_SHARE_CALLS.values()}
    actions |= set(OTHER_ACTIONS)
    return sorted(actions)
