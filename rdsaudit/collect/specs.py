"""What we list, as a table: one row per resource type, read by one paginator loop.

The same table yields the IAM actions rdsaudit needs (`rdsaudit iam-policy`), so the policy
can never drift from the calls the collectors make.

Size (~480 lines): the table and the field extractors of each row, which read AWS's field
names; they are kept beside the row that uses them so a new field is one edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rdsaudit.arns import Arn
from rdsaudit.keyref import TDE_ENGINES, is_replica_key, rotation_not_applicable
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


# Activity streams that hold a key (ActivityStreamStatus: stopped | starting | started |
# stopping): a stopped stream does not use its key.
_STREAM_LIVE = frozenset({"starting", "started", "stopping"})


def _instance_extras(d: Mapping[str, Any]) -> dict[str, str | None]:
    """An instance's option group (TDE lives in one) and TDE credential."""
    memberships = d.get("OptionGroupMemberships")
    group = None
    if isinstance(memberships, list):
        for m in memberships:
            if isinstance(m, Mapping) and _text(m, "OptionGroupName"):
                group = _text(m, "OptionGroupName")
                break
    return {"option_group": group, "tde_credential_arn": _text(d, "TdeCredentialArn")}


def _replications(d: Mapping[str, Any]) -> tuple[str, ...]:
    """ARNs of the cross-Region replications of an instance's automated backups."""
    listed = d.get("DBInstanceAutomatedBackupsReplications")
    if not isinstance(listed, list):
        return ()
    return tuple(arn for arn in (_text(r, "DBInstanceAutomatedBackupsArn") for r in listed
                                 if isinstance(r, Mapping)) if arn)


def _key_roles(d: Mapping[str, Any]) -> dict[str, str | None]:
    """The keys a database depends on beside its storage key (DESIGN.md, four roles).

    Performance Insights data is KMS-encrypted whenever PI is on (aws-facts §1); the
    master user secret's key is Secrets Manager's (`MasterUserSecret.KmsKeyId`); an activity
    stream's key matters while the stream runs. A key AWS names for a function that is off
    is not a dependency.
    """
    secret = d.get("MasterUserSecret")
    return {
        "performance_insights_kms_key_id": (_text(d, "PerformanceInsightsKMSKeyId")
                                            if d.get("PerformanceInsightsEnabled") is True
                                            else None),
        "master_user_secret_kms_key_id": (_text(secret, "KmsKeyId")
                                          if isinstance(secret, Mapping) else None),
        "activity_stream_kms_key_id": (_text(d, "ActivityStreamKmsKeyId")
                                       if d.get("ActivityStreamStatus") in _STREAM_LIVE
                                       else None),
    }


def _fallback_arn(d: Mapping[str, Any], how: tuple[str, str, str], name: str) -> str | None:
    parent_key, id_key, kind = how
    parent = Arn.parse(_text(d, parent_key) or "")
    resource_id = _text(d, id_key)
    if parent is None or resource_id is None:
        return None
    return f"arn:{parent.partition}:rds:{parent.region}:{parent.account}:{kind}:{resource_id}"


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
    key_roles: bool = False  # instances and clusters: the keys beside the storage key
    # Automated backups: when their own ARN is absent (it is optional in the model), an
    # identity from the database's ARN and resource id, in a kind of its own: it cannot
    # collide with the database's ARN, nor with another backup's (AWS's own are ab-/cab-).
    fallback_arn: tuple[str, str, str] | None = None  # (database ARN key, resource id key, kind)
    # The rest of the record a faithful re-creation needs (see `_config`).
    extract: Callable[[Mapping[str, Any], str], dict[str, Any]] | None = None

    def normalize(self, d: Mapping[str, Any]) -> Resource | None:
        """The record as a Resource (None: not RDS); `MalformedRecord` names what is wrong
        with it and which record it is (its ARN once that is known to be sound)."""
        name = _required(d, self.id_key, _shown(d.get(self.id_key)))
        engine = d.get("Engine")
        if isinstance(engine, str) and engine in NOT_RDS_ENGINES:
            return None
        arn = _text(d, self.arn_key)
        if arn is None and self.fallback_arn is not None:
            arn = _fallback_arn(d, self.fallback_arn, name)
        if arn is None:
            raise MalformedRecord(name, f"response has no {self.arn_key}")
        region, account = _place(arn, name)
        encrypted, enc_type, key = _encryption(d, self.encrypted_key, arn)
        values: dict[str, Any] = {k: _text(d, aws, arn) for k, aws in self.text_fields.items()}
        values.update({k: _int(d, aws, arn) for k, aws in self.int_fields.items()})
        if self.snapshot_type is not None:
            values["snapshot_type"] = self.snapshot_type
        if self.key_roles:
            values.update(_key_roles(d))
        if self.type is ResourceType.DB_INSTANCE:
            values.update(_instance_extras(d))
        if self.type in (ResourceType.DB_INSTANCE, ResourceType.DB_AUTOMATED_BACKUP):
            values["backup_replications"] = _replications(d)
        if self.extract is not None:
            values.update(self.extract(d, arn))
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


def _bool(d: Mapping[str, Any], key: str) -> bool | None:
    value = d.get(key)
    return value if isinstance(value, bool) else None


def _texts(values: Any, key: str | None = None, rid: str | None = None) -> tuple[str, ...]:
    """Identifiers from a list (of structures, by `key`): each held to `_text`'s rule, since
    the runbook passes them to restore and re-create calls (groups, security groups,
    members); an entry that is not text makes the record malformed."""
    if not isinstance(values, list):
        return ()
    items = [v.get(key) if key and isinstance(v, Mapping) else v for v in values]
    out = []
    for item in items:
        if item is None or item == "":
            continue
        if not isinstance(item, str):
            raise MalformedRecord(rid, f"{key or 'an entry'} is not text")
        problem = identifier_problem(item)
        if problem is not None:
            raise MalformedRecord(rid, f"{key or 'an entry'} {problem}")
        out.append(item)
    return tuple(out)


def _config(d: Mapping[str, Any], rid: str) -> dict[str, Any]:
    """What a restore or re-create must pass to land the database where it was: network,
    parameter and option groups, storage, protection, monitoring (DBInstance / DBCluster
    shapes in the botocore RDS model; a field AWS leaves out stays None)."""
    subnet = d.get("DBSubnetGroup")
    groups = d.get("DBParameterGroups")
    options = d.get("OptionGroupMemberships")
    endpoint = d.get("Endpoint")
    secret = d.get("MasterUserSecret")
    return {
        "engine_version": _text(d, "EngineVersion", rid),
        "license_model": _text(d, "LicenseModel", rid),
        "db_subnet_group": (_text(subnet, "DBSubnetGroupName", rid)
                            if isinstance(subnet, Mapping)
                            else _text(d, "DBSubnetGroup", rid)),  # clusters: a name
        "vpc_security_group_ids": _texts(d.get("VpcSecurityGroups"), "VpcSecurityGroupId",
                                         rid),
        "parameter_group": (_texts(groups, "DBParameterGroupName", rid)[:1] or
                            (_text(d, "DBClusterParameterGroup", rid),))[0],
        "option_group": (_texts(options, "OptionGroupName", rid)[:1] or (None,))[0],
        "port": _int(d, "Port", rid) or (_int(endpoint, "Port", rid)
                                         if isinstance(endpoint, Mapping) else None),
        "multi_az": _bool(d, "MultiAZ"),
        "storage_type": _text(d, "StorageType", rid),
        "allocated_storage": _int(d, "AllocatedStorage", rid),
        "iops": _int(d, "Iops", rid),
        "storage_throughput": _int(d, "StorageThroughput", rid),
        "deletion_protection": _bool(d, "DeletionProtection"),
        "iam_auth": _bool(d, "IAMDatabaseAuthenticationEnabled"),
        "publicly_accessible": _bool(d, "PubliclyAccessible"),
        "copy_tags_to_snapshot": _bool(d, "CopyTagsToSnapshot"),
        "monitoring_interval": _int(d, "MonitoringInterval", rid),
        "monitoring_role_arn": _text(d, "MonitoringRoleArn", rid),
        "performance_insights_enabled": _bool(d, "PerformanceInsightsEnabled"),
        "performance_insights_retention": _int(d, "PerformanceInsightsRetentionPeriod", rid),
        "cloudwatch_logs_exports": _texts(d.get("EnabledCloudwatchLogsExports"), None, rid),
        "manages_master_user_secret": isinstance(secret, Mapping) or None,
        "members": _texts(d.get("DBClusterMembers"), "DBInstanceIdentifier", rid),
    }


def _backup_ids(d: Mapping[str, Any], rid: str) -> dict[str, Any]:
    # delete-db-cluster-automated-backup takes the cluster's resource id (DbClusterResourceId).
    return {"resource_id": _text(d, "DbiResourceId") or _text(d, "DbClusterResourceId")}


INSTANCE = Shape(
    ResourceType.DB_INSTANCE, "DBInstanceIdentifier", "DBInstanceArn", "StorageEncrypted",
    {"engine": "Engine", "status": "DBInstanceStatus", "instance_class": "DBInstanceClass",
     "cluster_id": "DBClusterIdentifier",
     "replica_source": "ReadReplicaSourceDBInstanceIdentifier",
     "replica_source_cluster": "ReadReplicaSourceDBClusterIdentifier",
     "resource_id": "DbiResourceId"},
    {"backup_retention": "BackupRetentionPeriod"}, key_roles=True,
    extract=_config)
CLUSTER = Shape(
    ResourceType.DB_CLUSTER, "DBClusterIdentifier", "DBClusterArn", "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "instance_class": "DBClusterInstanceClass",
     "replica_source": "ReplicationSourceIdentifier",
     "resource_id": "DbClusterResourceId"},
    {"backup_retention": "BackupRetentionPeriod"}, key_roles=True,
    extract=_config)
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
    fallback_arn=("DBInstanceArn", "DbiResourceId", "auto-backup"), extract=_backup_ids)
CLUSTER_BACKUP = Shape(
    ResourceType.DB_AUTOMATED_BACKUP, "DBClusterIdentifier", "DBClusterAutomatedBackupsArn",
    "StorageEncrypted",
    {"engine": "Engine", "status": "Status", "source_id": "DBClusterIdentifier"},
    {"backup_retention": "BackupRetentionPeriod"}, id_from_arn=True, snapshot_type="automated",
    fallback_arn=("DBClusterArn", "DbClusterResourceId", "cluster-auto-backup"),
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
# CloudTrail coverage of key use: DescribeTrails once per region, then per distinct trail
# its status and event selectors (operation, boto3 method, parameter naming the trail).
TRAIL_CALLS = {
    "status": ("GetTrailStatus", "get_trail_status", "Name"),
    "selectors": ("GetEventSelectors", "get_event_selectors", "TrailName"),
}
OTHER_ACTIONS = (
    "sts:GetCallerIdentity",
    "ec2:DescribeRegions",
    "kms:ListAliases",
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
    "kms:GetKeyLastUsage",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
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


OPTION_GROUP_CALL = ("DescribeOptionGroups", "describe_option_groups", "OptionGroupName")


def option_group_to_describe(resource: Resource) -> str | None:
    """The option group of an Oracle / SQL Server instance, described once per distinct
    group (scanner and floor ask this). Default groups cannot hold options you add (AWS:
    default option groups cannot be modified), so they are not asked."""
    if (resource.type is not ResourceType.DB_INSTANCE or resource.option_group is None
            or not (resource.engine or "").startswith(TDE_ENGINES)
            or resource.option_group.startswith("default:")):
        return None
    return resource.option_group


def needs_last_usage_call(key: KmsKey, account_id: str) -> bool:
    """GetKeyLastUsage works in the key's own account only (aws-facts §0): asked of the
    scanned account's described customer managed keys."""
    return (key.lookup is KeyLookup.OK and key.key_manager == "CUSTOMER"
            and key.account_id == account_id)


def primary_to_look_up(key: KmsKey) -> str | None:
    """The primary key of a multi-Region replica: described too (once), in its own region,
    because rotation of a multi-Region key is a property of the primary."""
    return key.primary_key_arn if key.lookup is KeyLookup.OK and is_replica_key(key) else None


def required_actions() -> list[str]:
    actions = {spec.action for spec in LISTINGS}
    actions |= {f"rds:{op}" for op, *_ in SNAPSHOT_SHARE_CALLS.values()}
    actions.add(f"rds:{OPTION_GROUP_CALL[0]}")
    actions |= set(OTHER_ACTIONS)
    return sorted(actions)
