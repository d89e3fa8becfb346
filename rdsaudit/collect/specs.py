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
from rdsaudit.text import identifier_problem, shown, valid_text

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


def _text(d: Mapping[str, Any], key: str, rid: str | None = None) -> str | None:
    """An identifier-like field (ids, ARNs, engine, status): absent or empty is None; any
    other type, a control character or invalid Unicode makes the record malformed."""
    value = d.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedRecord(rid, f"{key} is not text")
    problem = identifier_problem(value)
    if problem is not None:
        raise MalformedRecord(rid, f"{key} {problem}")
    return value


def _free(value: Any, what: str, rid: str | None) -> str:
    """Free text (tags): any string, made valid Unicode; another type is malformed."""
    if not isinstance(value, str):
        raise MalformedRecord(rid, f"{what} is not text")
    return valid_text(value)


def _required(d: Mapping[str, Any], key: str, rid: str | None) -> str:
    value = _text(d, key, rid)
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
    key = _text(d, "KmsKeyId", rid) if encrypted else None
    if enc_type is None:
        if not encrypted:
            enc_type = EncryptionType.NONE
        elif key is not None:
            enc_type = EncryptionType.SSE_KMS
    return encrypted, enc_type, key


def _tags(d: Mapping[str, Any], rid: str) -> tuple[tuple[str, str], ...]:
    tags = d.get("TagList")
    if tags is None:
        return ()
    if not isinstance(tags, list) or not all(isinstance(t, Mapping) for t in tags):
        raise MalformedRecord(rid, "TagList is not a list of tags")
    return tuple((_free(t.get("Key", ""), "a tag key", rid),
                  _free(t.get("Value", ""), "a tag value", rid)) for t in tags)


def _shown(value: Any) -> str | None:
    return shown(value) if isinstance(value, str) and value else None


def _place(arn: str, rid: str) -> tuple[str, str]:
    parsed = Arn.parse(arn)
    if parsed is None or not parsed.region or not parsed.account:
        raise MalformedRecord(rid, f"ARN {arn!r} is not a regional resource ARN")
    return parsed.region, parsed.account


# Larger than any count or period AWS reports (BackupRetentionPeriod is 0..35 days).
_MAX_INT = 1_000_000


def _int(d: Mapping[str, Any], key: str, rid: str) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
        raise MalformedRecord(rid, f"{key} is not a whole number (0..{_MAX_INT})")
    return value


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

    def normalize(self, d: Mapping[str, Any]) -> Resource | None:
        """The record as a Resource (None: not RDS); `MalformedRecord` names what is wrong
        with it and which record it is (its ARN once that is known to be sound)."""
        name = _required(d, self.id_key, _shown(d.get(self.id_key)))
        engine = d.get("Engine")
        if isinstance(engine, str) and engine in NOT_RDS_ENGINES:
            return None
        arn = _required(d, self.arn_key, name)
        region, account = _place(arn, name)
        encrypted, enc_type, key = _encryption(d, self.encrypted_key, arn)
        values: dict[str, Any] = {k: _text(d, aws, arn) for k, aws in self.text_fields.items()}
        values.update({k: _int(d, aws, arn) for k, aws in self.int_fields.items()})
        if self.snapshot_type is not None:
            values["snapshot_type"] = self.snapshot_type
        return Resource(
            type=self.type,
            arn=arn,
            id=arn.rsplit(":", 1)[-1] if self.id_from_arn else name,
            region=region,
            account_id=account,
            encrypted=encrypted,
            encryption_type=enc_type,
            kms_key_id=key,
            tags=_tags(d, arn),
            **values,
        )


INSTANCE = Shape(
    ResourceType.DB_INSTANCE, "DBInstanceIdentifier", "DBInstanceArn", "StorageEncrypted",
    {"engine": "Engine", "status": "DBInstanceStatus", "instance_class": "DBInstanceClass",
     "cluster_id": "DBClusterIdentifier",
     "replica_source": "ReadReplicaSourceDBInstanceIdentifier",
     "replica_source_cluster": "ReadReplicaSourceDBClusterIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"})
CLUSTER = Shape(
    ResourceType.DB_CLUSTER, "DBClusterIdentifier", "DBClusterArn", "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "instance_class": "DBClusterInstanceClass",
     "replica_source": "ReplicationSourceIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"})
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
    {"backup_retention": "BackupRetentionPeriod"}, id_from_arn=True, snapshot_type="automated")
CLUSTER_BACKUP = Shape(
    ResourceType.DB_AUTOMATED_BACKUP, "DBClusterIdentifier", "DBClusterAutomatedBackupsArn",
    "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "source_id": "DBClusterIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, id_from_arn=True, snapshot_type="automated")


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
