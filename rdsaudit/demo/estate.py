"""The built-in demo estate: a small, realistic RDS estate that trips every rule.

`rdsaudit demo` and the end-to-end tests scan this estate through the emulator
(`rdsaudit.demo.emulator.FakeAWS`). It spans us-east-1 and eu-west-1, carries owner /
environment / team tags, and mixes healthy resources (which must pass everything) with one
or more offenders for each rule in DESIGN.md. Nearly all of it is in DEMO_ACCOUNT, the
caller's; a small second account (REGULATED_ACCOUNT, entered through the audit role) has
its own `[[key_protection]]` minimum in the demo's config (DEMO_CONFIG), so that
`key-below-external-store` is judged there and nowhere else.

moto cannot express every state we need (moto-fidelity.md), so seeding goes through boto3
under `mock_aws` and then adjusts moto's backend objects in-process (instance status,
drifted replica encryption, AWS managed key, DocumentDB engine, artefacts moto creates that
AWS would not); what cannot live in moto's state at all (an AWS owned key on a cluster, a
cross-account key that denies DescribeKey, retained cluster automated backups) is applied
to the running emulator by `apply_demo_overlays`.

`DemoEstate` records everything seeded and the `(rule_id, resource)` pairs that must fail,
computed from the seeded facts, so tests can compare a scan against them.

Size (~1,280 lines): one story told once. The seeder (`_Seeder`, ~480 lines), the estate it
builds (`seed_demo_estate`) and the failures those facts must produce (`_expected_failures`)
share the estate's accounts, regions and records; split, a new offender would need three
edits in three files, and the expected failures are computed from the seeded facts rather
than listed, which only reads well beside them.
"""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from rdsaudit.demo.emulator import FakeAWS, Fault, instance_automated_backup_arn
from rdsaudit.keyref import KNOWN_KEY_STATES, NO_ROTATION_ORIGINS, UNUSABLE_KEY_STATES
from rdsaudit.model import KeyProtection, ResourceType
from rdsaudit.policy import Policy, policy_from_mapping

if TYPE_CHECKING:
    from rdsaudit.collect import ScanRequest

DEMO_ACCOUNT: Final = "123456789012"  # moto's default account
DEMO_REGIONS: Final = ("us-east-1", "eu-west-1")
PRIMARY: Final = "us-east-1"
SECONDARY: Final = "eu-west-1"
OTHER_ACCOUNT: Final = "999999999999"  # owns the cross-account key
PARTNER_ACCOUNT: Final = "210987654321"  # a snapshot is shared with it
# A second scanned account, entered through the audit role: the card-payments account, whose
# [[key_protection]] entry (DEMO_CONFIG) requires keys in a custom key store.
REGULATED_ACCOUNT: Final = "444455556666"
DEMO_ACCOUNTS: Final = (DEMO_ACCOUNT, REGULATED_ACCOUNT)
DEMO_ROLE: Final = "rdsaudit-read-only"  # the role `rdsaudit iam-policy --organization` names
# The demo's config, as a user would write it (rdsaudit scan --config): read by the real
# parser (demo_policy). DEMO_ACCOUNT keeps the default minimum (aws-owned).
DEMO_CONFIG: Final = f"""\
# The card-payments account must keep its databases under keys in a custom key store.
[[key_protection]]
account = "{REGULATED_ACCOUNT}"
minimum = "customer-external-store"
"""

# Every rule id in DESIGN.md's catalogue; the estate, scanned as `rdsaudit demo` scans it
# (both accounts, DEMO_CONFIG), trips each of them at least once.
ALL_RULES: Final = frozenset(
    {
        "key-below-external-store",
        "instance-unencrypted",
        "cluster-unencrypted",
        "snapshot-unencrypted",
        "cluster-snapshot-unencrypted",
        "automated-backup-unencrypted",
        "snapshot-public",
        "key-unusable",
        "encryption-credentials-inaccessible",
        "key-unverifiable",
        "encrypted-without-backups",
        "replica-encryption-mismatch",
        "replica-key-mismatch",
        "key-region-mismatch",
        "aws-managed-key",
        "aws-owned-key",
        "key-rotation-disabled",
        "cross-account-key",
        "key-material-expiring",
        "key-usage-not-audited",
    }
)

# KMS key states that make a key unusable for RDS (DESIGN.md, key-unusable), plus "missing"
# for a key that no longer exists (DescribeKey answers NotFoundException).
_UNUSABLE_STATES: Final = UNUSABLE_KEY_STATES
_KNOWN_STATES: Final = KNOWN_KEY_STATES
_NO_ROTATION_ORIGINS: Final = frozenset(NO_ROTATION_ORIGINS)
_CUSTOM_KEY_STORES: Final = frozenset({"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"})
_MASTER_PASSWORD: Final = "demo-only-not-a-secret"  # noqa: S105 - fake database in moto


@dataclass(frozen=True)
class DemoKey:
    """A KMS key the estate uses, as rdsaudit should find it.

    `state` is the KeyState, or `missing` (NotFoundException) or `denied`
    (AccessDeniedException) when DescribeKey fails.
    """

    name: str
    arn: str
    region: str
    account_id: str
    state: str
    manager: str | None  # AWS | CUSTOMER, None when it cannot be described
    rotation: bool | None  # None when not checked / cannot be checked
    alias: str | None = None
    origin: str = "AWS_KMS"
    valid_to_days: float | None = None  # imported material: days from seeding to ValidTo
    never_expires: bool = False  # ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE
    primary_arn: str | None = None  # multi-Region keys: the primary (itself, on the primary)
    replica_arns: tuple[str, ...] = ()

    @property
    def key_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DemoResource:
    """One RDS resource seeded into the estate, with the facts the rules look at."""

    type: ResourceType
    id: str
    arn: str
    region: str
    encrypted: bool
    encryption_type: str  # none | sse-kms | sse-rds
    kms_key_arn: str | None
    engine: str | None = None
    status: str | None = None
    replica_source: str | None = None  # as AWS returns it: id (same region) or ARN
    backup_retention: int | None = None
    cluster_id: str | None = None  # Aurora member instances: judged through their cluster
    snapshot_type: str | None = None  # manual | automated (snapshots); active | retained
    source_id: str | None = None  # snapshots and backups: the instance or cluster
    public: bool = False
    shared_with: tuple[str, ...] = ()
    excluded: bool = False  # DocumentDB / Neptune: rdsaudit must leave it out
    tags: tuple[tuple[str, str], ...] = ()
    # Keys beside the storage key: (role, key ARN), role as rdsaudit's KeyRole values.
    other_keys: tuple[tuple[str, str], ...] = ()

    @property
    def account_id(self) -> str:
        return _account_of(self.arn)


@dataclass(frozen=True)
class DemoEstate:
    account_id: str
    regions: tuple[str, ...]
    keys: tuple[DemoKey, ...]
    resources: tuple[DemoResource, ...]
    # (rule_id, resource id): resource ids are DBInstanceIdentifier, DBClusterIdentifier,
    # DBSnapshotIdentifier, DBClusterSnapshotIdentifier, the `ab-…`/`cab-…` id at the end of
    # an automated backup's ARN, and the KeyId of a KMS key. The ARN form is unambiguous.
    expected_failures: frozenset[tuple[str, str]]
    expected_failure_arns: frozenset[tuple[str, str]]
    # Emulator state applied by apply_demo_overlays (moto cannot hold it).
    overlays: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    cluster_automated_backups: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    denied_key_arns: tuple[str, ...] = field(default=())
    # Every account seeded and scanned: account_id (the caller's) first.
    accounts: tuple[str, ...] = ()

    def failure_arns_in(self, *accounts: str) -> frozenset[tuple[str, str]]:
        """The expected failures of resources and keys in these accounts (a scan of only
        some of the demo's accounts finds these)."""
        return frozenset((rule, arn) for rule, arn in self.expected_failure_arns
                         if _account_of(arn) in accounts)

    def resource(self, resource_id: str, type: ResourceType | None = None) -> DemoResource:
        matches = [
            r for r in self.resources if r.id == resource_id and (type is None or r.type == type)
        ]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} demo resources match {resource_id!r} ({type})")
        return matches[0]

    def key(self, name: str) -> DemoKey:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def of_type(self, type: ResourceType) -> tuple[DemoResource, ...]:
        return tuple(r for r in self.resources if r.type == type)

    @property
    def rules_tripped(self) -> frozenset[str]:
        return frozenset(rule for rule, _ in self.expected_failures)

    @property
    def healthy(self) -> tuple[DemoResource, ...]:
        """In-scope resources with no expected failure: they must pass every rule."""
        failing = {arn for _, arn in self.expected_failure_arns}
        return tuple(
            r
            for r in self.resources
            if r.arn not in failing and not r.excluded and r.cluster_id is None
        )


# --------------------------------------------------------------------------- seeding


def _tags(team: str, owner: str, environment: str = "production") -> list[dict[str, str]]:
    return [
        {"Key": "owner", "Value": owner},
        {"Key": "environment", "Value": environment},
        {"Key": "team", "Value": team},
    ]


def _tag_tuple(tags: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((t["Key"], t["Value"]) for t in tags)


class _Seeder:
    """Creates one account's share of the estate through boto3 (moto in-process) and records
    what it made. moto serves another account to the credentials of a role assumed in it
    (the audit role the scan assumes there too)."""

    def __init__(self, account: str = DEMO_ACCOUNT) -> None:
        import boto3
        from botocore.config import Config

        self.account = account
        credentials: dict[str, str] = {}
        # Never follow AWS_ENDPOINT_URL while seeding: moto intercepts the real endpoints.
        self._config = Config(ignore_configured_endpoint_urls=True)
        if account != DEMO_ACCOUNT:
            creds = boto3.client("sts", region_name=PRIMARY, config=self._config).assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{DEMO_ROLE}",
                RoleSessionName="demo-seed")["Credentials"]
            credentials = {"aws_access_key_id": creds["AccessKeyId"],
                           "aws_secret_access_key": creds["SecretAccessKey"],
                           "aws_session_token": creds["SessionToken"]}
        self._credentials = credentials
        self.rds = {r: self.client("rds", r) for r in DEMO_REGIONS}
        self.kms = {r: self.client("kms", r) for r in DEMO_REGIONS}
        self.keys: dict[str, DemoKey] = {}
        self.resources: list[DemoResource] = []
        self.overlays: dict[str, dict[str, Any]] = {}
        self.cluster_backups: list[tuple[str, dict[str, Any]]] = []

    def client(self, service: str, region: str) -> Any:
        """A boto3 client acting in this seeder's account."""
        import boto3

        return boto3.client(service, region_name=region, config=self._config,
                            **self._credentials)

    # ---------------------------------------------------------------- moto backends

    def rds_backend(self, region: str) -> Any:
        from moto.rds.models import rds_backends

        return rds_backends[self.account][region]

    def kms_backend(self, region: str) -> Any:
        from moto.kms.models import kms_backends

        return kms_backends[self.account][region]

    # ---------------------------------------------------------------- KMS

    def customer_key(
        self, name: str, region: str, alias: str, description: str, rotation: bool
    ) -> DemoKey:
        kms = self.kms[region]
        meta = kms.create_key(
            Description=description,
            Tags=[{"TagKey": "team", "TagValue": "platform"}],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        if rotation:
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        key = DemoKey(
            name, meta["Arn"], region, self.account, "Enabled", "CUSTOMER", rotation, alias
        )
        self.keys[name] = key
        return key

    def set_key_state(self, name: str, state: str, now: float | None = None) -> DemoKey:
        key = self.keys[name]
        kms = self.kms[key.region]
        # moto's key-state operations crash on key ARNs (moto-fidelity §7): use the bare id.
        if state == "Disabled":
            kms.disable_key(KeyId=key.key_id)
        elif state == "PendingDeletion":
            kms.schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=7)
            if now is not None:
                # AWS dates the deletion from the request (now + the window); moto uses
                # the wall clock, so a pinned scan time (the samples) would read the
                # 7-day window as more or fewer days than 7.
                from moto.kms.models import kms_backends

                moto_key = kms_backends[self.account][key.region].keys[key.key_id]
                moto_key.deletion_date = datetime.fromtimestamp(now + 7 * 86400, UTC).replace(
                    tzinfo=None)  # moto holds naive UTC times
        else:
            raise ValueError(state)
        key = DemoKey(
            key.name,
            key.arn,
            key.region,
            key.account_id,
            state,
            key.manager,
            key.rotation,
            key.alias,
        )
        self.keys[name] = key
        return key

    def aws_managed_rds_key(self, region: str) -> DemoKey:
        # Seeding only: DescribeKey on the predefined alias creates the key (rdsaudit itself
        # never does this). moto then calls it CUSTOMER with rotation off; AWS says AWS and
        # AWS managed keys always rotate.
        meta = self.kms[region].describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
        backend_key = self.kms_backend(region).keys[meta["KeyId"]]
        backend_key.key_manager = "AWS"
        backend_key.key_rotation_status = True
        backend_key.description = (
            "Default key that protects my RDS database volumes when no other key is defined"
        )
        key = DemoKey(
            "aws-rds", meta["Arn"], region, self.account, "Enabled", "AWS", True,
            "alias/aws/rds"
        )
        self.keys[key.name] = key
        return key

    def patched_key(self, name: str, region: str, alias: str, description: str,
                    metadata: Mapping[str, Any], **facts: Any) -> DemoKey:
        """A customer key whose DescribeKey answer carries what moto cannot hold (custom
        key stores, imported-material expiry, multi-Region configuration, newer states):
        `metadata` are KeyMetadata fields the emulator overlays, `facts` the DemoKey's."""
        key = self.customer_key(name, region, alias, description, rotation=False)
        self.overlay(key.arn, dict(metadata))
        state = str(metadata.get("KeyState", key.state))
        key = replace(key, state=state, rotation=None, **facts)
        self.keys[name] = key
        return key

    def phantom_key(self, name: str, region: str, account: str, state: str) -> DemoKey:
        """A key ARN with no key behind it in moto: deleted (`missing`) or another
        account's key that refuses us (`denied`, via a fault)."""
        arn = f"arn:aws:kms:{region}:{account}:key/{uuid.uuid4()}"
        key = DemoKey(name, arn, region, account, state, None, None)
        self.keys[name] = key
        return key

    # ---------------------------------------------------------------- RDS

    def instance(
        self,
        ident: str,
        region: str,
        engine: str,
        key: DemoKey | None,
        tags: list[dict[str, str]],
        retention: int = 7,
        instance_class: str = "db.m6g.large",
        **extra: Any,
    ) -> dict[str, Any]:
        versions = {
            "oracle-ee": "19.0.0.0.ru-2024-01.rur-2024-01.r1",
            "postgres": "16.3",
            "mysql": "8.0.36",
            "sqlserver-ex": "15.00.4365.2.v1",
        }
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": ident,
            "Engine": engine,
            "EngineVersion": versions[engine],
            "DBInstanceClass": instance_class,
            "AllocatedStorage": 100,
            "MasterUsername": "dbadmin",
            "MasterUserPassword": _MASTER_PASSWORD,
            "BackupRetentionPeriod": retention,
            "CopyTagsToSnapshot": True,
            "Tags": tags,
            **extra,
        }
        if key is not None:
            kwargs.update(StorageEncrypted=True, KmsKeyId=key.arn)
        db: dict[str, Any] = self.rds[region].create_db_instance(**kwargs)["DBInstance"]
        self.resources.append(
            DemoResource(
                ResourceType.DB_INSTANCE,
                ident,
                db["DBInstanceArn"],
                region,
                key is not None,
                "sse-kms" if key is not None else "none",
                key.arn if key else None,
                engine=engine,
                status="available",
                backup_retention=retention,
                tags=_tag_tuple(tags),
            )
        )
        return db

    def replica(
        self,
        ident: str,
        source: DemoResource,
        region: str,
        key: DemoKey | None,
        tags: list[dict[str, str]],
    ) -> DemoResource:
        cross_region = region != source.region
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": ident,
            "SourceDBInstanceIdentifier": source.arn if cross_region else source.id,
            "DBInstanceClass": "db.m6g.large",
            "Tags": tags,
        }
        if cross_region:
            kwargs["SourceRegion"] = source.region
        if key is not None:
            kwargs["KmsKeyId"] = key.arn
        db = self.rds[region].create_db_instance_read_replica(**kwargs)["DBInstance"]
        key_arn = db.get("KmsKeyId") if db.get("StorageEncrypted") else None
        record = DemoResource(
            ResourceType.DB_INSTANCE,
            ident,
            db["DBInstanceArn"],
            region,
            bool(db.get("StorageEncrypted")),
            "sse-kms" if db.get("StorageEncrypted") else "none",
            key_arn,
            engine=source.engine,
            status="available",
            replica_source=source.arn if cross_region else source.id,
            backup_retention=int(db.get("BackupRetentionPeriod") or 0),
            tags=_tag_tuple(tags),
        )
        self.resources.append(record)
        return record

    def cluster(
        self,
        ident: str,
        region: str,
        engine: str,
        key: DemoKey | None,
        tags: list[dict[str, str]],
        members: int,
    ) -> DemoResource:
        kwargs: dict[str, Any] = {
            "DBClusterIdentifier": ident,
            "Engine": engine,
            "EngineVersion": {
                "aurora-postgresql": "16.2",
                "aurora-mysql": "8.0.mysql_aurora.3.05.2",
            }[engine],
            "MasterUsername": "dbadmin",
            "MasterUserPassword": _MASTER_PASSWORD,
            "BackupRetentionPeriod": 7,
            "CopyTagsToSnapshot": True,
            "Tags": tags,
        }
        if key is not None:
            kwargs.update(StorageEncrypted=True, KmsKeyId=key.arn)
        rds = self.rds[region]
        cluster = rds.create_db_cluster(**kwargs)["DBCluster"]
        record = DemoResource(
            ResourceType.DB_CLUSTER,
            ident,
            cluster["DBClusterArn"],
            region,
            key is not None,
            "sse-kms" if key is not None else "none",
            key.arn if key else None,
            engine=engine,
            status="available",
            backup_retention=7,
            tags=_tag_tuple(tags),
        )
        self.resources.append(record)
        for n in range(1, members + 1):
            member_id = f"{ident}-{n}"
            db = rds.create_db_instance(
                DBInstanceIdentifier=member_id,
                DBClusterIdentifier=ident,
                Engine=engine,
                DBInstanceClass="db.r6g.large",
                Tags=tags,
            )["DBInstance"]
            self.resources.append(
                DemoResource(
                    ResourceType.DB_INSTANCE,
                    member_id,
                    db["DBInstanceArn"],
                    region,
                    key is not None,
                    "sse-kms" if key is not None else "none",
                    key.arn if key else None,
                    engine=engine,
                    status="available",
                    cluster_id=ident,
                    tags=_tag_tuple(tags),
                )
            )
        # moto reports a new cluster as "creating" exactly once; read it past that.
        rds.describe_db_clusters(DBClusterIdentifier=ident)
        return record

    def snapshot(
        self,
        ident: str,
        source: DemoResource,
        tags: list[dict[str, str]],
        public: bool = False,
        shared_with: tuple[str, ...] = (),
    ) -> DemoResource:
        rds = self.rds[source.region]
        snap = rds.create_db_snapshot(
            DBSnapshotIdentifier=ident, DBInstanceIdentifier=source.id, Tags=tags
        )["DBSnapshot"]
        accounts = (*(("all",) if public else ()), *shared_with)
        if accounts:
            rds.modify_db_snapshot_attribute(
                DBSnapshotIdentifier=ident, AttributeName="restore", ValuesToAdd=list(accounts)
            )
        record = DemoResource(
            ResourceType.DB_SNAPSHOT,
            ident,
            snap["DBSnapshotArn"],
            source.region,
            bool(snap["Encrypted"]),
            "sse-kms" if snap["Encrypted"] else "none",
            snap.get("KmsKeyId") if snap["Encrypted"] else None,
            engine=source.engine,
            status="available",
            snapshot_type="manual",
            source_id=source.id,
            public=public,
            shared_with=shared_with,
            tags=_tag_tuple(tags),
        )
        self.resources.append(record)
        return record

    def cluster_snapshot(
        self, ident: str, source: DemoResource, tags: list[dict[str, str]]
    ) -> DemoResource:
        snap = self.rds[source.region].create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=ident, DBClusterIdentifier=source.id, Tags=tags
        )["DBClusterSnapshot"]
        record = DemoResource(
            ResourceType.DB_CLUSTER_SNAPSHOT,
            ident,
            snap["DBClusterSnapshotArn"],
            source.region,
            bool(snap["StorageEncrypted"]),
            "sse-kms" if snap["StorageEncrypted"] else "none",
            snap.get("KmsKeyId") if snap["StorageEncrypted"] else None,
            engine=source.engine,
            status="available",
            snapshot_type="manual",
            source_id=source.id,
            tags=_tag_tuple(tags),
        )
        self.resources.append(record)
        return record

    def delete_keeping_backups(self, ident: str, region: str) -> None:
        self.rds[region].delete_db_instance(
            DBInstanceIdentifier=ident, SkipFinalSnapshot=True, DeleteAutomatedBackups=False
        )
        self.resources = [
            r for r in self.resources if not (r.type == ResourceType.DB_INSTANCE and r.id == ident)
        ]

    def depends_on(self, ident: str, role: str, key: DemoKey) -> None:
        """Give a database a key beside its storage key, in the fields AWS uses (moto keeps
        none of them: moto-fidelity §11 item 20)."""
        index, r = next((i, r) for i, r in enumerate(self.resources) if r.id == ident
                        and r.type in (ResourceType.DB_INSTANCE, ResourceType.DB_CLUSTER))
        if role == "performance-insights":
            # PerformanceInsightsKMSKeyId: PI data is always KMS-encrypted while PI is on.
            fields: dict[str, Any] = {"PerformanceInsightsEnabled": True,
                                      "PerformanceInsightsKMSKeyId": key.arn,
                                      "PerformanceInsightsRetentionPeriod": 7}
        elif role == "master-user-secret":
            # ManageMasterUserPassword: RDS keeps the password in Secrets Manager under a
            # KMS key, reported as MasterUserSecret {SecretArn, SecretStatus, KmsKeyId}.
            fields = {"MasterUserSecret": {
                "SecretArn": f"arn:aws:secretsmanager:{r.region}:{self.account}:secret:"
                             f"rds!db-{uuid.uuid5(uuid.NAMESPACE_URL, r.arn)}-AbCdEf",
                "SecretStatus": "active", "KmsKeyId": key.arn}}
        elif role == "activity-stream":
            # Database activity streams: ActivityStreamStatus started, records encrypted
            # with ActivityStreamKmsKeyId before they reach Kinesis.
            fields = {"ActivityStreamStatus": "started", "ActivityStreamMode": "async",
                      "ActivityStreamKmsKeyId": key.arn,
                      "ActivityStreamKinesisStreamName": f"aws-rds-das-{r.id}"}
        else:
            raise ValueError(role)
        self.overlay(r.arn, fields)
        self.resources[index] = _replace(r, other_keys=(*r.other_keys, (role, key.arn)))

    def overlay(self, arn: str, fields: Mapping[str, Any]) -> None:
        self.overlays.setdefault(arn, {}).update(fields)

    # ---------------------------------------------------------------- moto artefacts

    def record_automated_artefacts(self) -> None:
        """Record the automated snapshots and backups moto made, after removing the ones
        AWS would not have (Aurora members' instance snapshots, retention-0 instances)."""
        instances = {
            (r.region, r.id): r for r in self.resources if r.type == ResourceType.DB_INSTANCE
        }
        for region in DEMO_REGIONS:
            backend = self.rds_backend(region)
            for snap_id, snap in list(backend.database_snapshots.items()):
                if snap.snapshot_type != "automated":
                    continue
                db = snap.database
                if getattr(db, "db_cluster_identifier", None) or not db.backup_retention_period:
                    del backend.database_snapshots[snap_id]
                    continue
                live = backend.databases.get(snap.db_instance_identifier)
                retained = live is None
                source = instances.get((region, snap.db_instance_identifier))
                tags = source.tags if source else _tag_tuple(snap.tags)
                self.resources.append(
                    DemoResource(
                        ResourceType.DB_SNAPSHOT,
                        snap.db_snapshot_identifier,
                        snap.db_snapshot_arn,
                        region,
                        bool(snap.encrypted),
                        "sse-kms" if snap.encrypted else "none",
                        snap.kms_key_id if snap.encrypted else None,
                        engine=snap.engine,
                        status="available",
                        snapshot_type="automated",
                        source_id=snap.db_instance_identifier,
                        tags=tags,
                    )
                )
                # The automated backup the emulator will list (live facts for active ones).
                facts = live if live is not None else db
                encrypted = bool(facts.storage_encrypted)
                self.resources.append(
                    DemoResource(
                        ResourceType.DB_AUTOMATED_BACKUP,
                        "",
                        instance_automated_backup_arn(
                            region, self.account, snap.db_instance_identifier, facts.created
                        ),
                        region,
                        encrypted,
                        "sse-kms" if encrypted else "none",
                        facts.kms_key_id if encrypted else None,
                        engine=facts.engine,
                        status="retained" if retained else "active",
                        backup_retention=int(facts.backup_retention_period),
                        snapshot_type="retained" if retained else "active",
                        source_id=snap.db_instance_identifier,
                        tags=tags,
                    )
                )
            for snap in list(backend.cluster_snapshots.values()):
                if snap.snapshot_type != "automated":
                    continue
                cluster = next(
                    r
                    for r in self.resources
                    if r.type == ResourceType.DB_CLUSTER and r.id == snap.db_cluster_identifier
                )
                self.resources.append(
                    DemoResource(
                        ResourceType.DB_CLUSTER_SNAPSHOT,
                        snap.db_cluster_snapshot_identifier,
                        snap.db_cluster_snapshot_arn,
                        region,
                        bool(snap.storage_encrypted),
                        "sse-kms" if snap.storage_encrypted else "none",
                        snap.kms_key_id if snap.storage_encrypted else None,
                        engine=snap.engine,
                        status="available",
                        snapshot_type="automated",
                        source_id=snap.db_cluster_identifier,
                        excluded=cluster.excluded,
                        tags=cluster.tags,
                    )
                )
        # Automated backups are named by the `ab-…` id at the end of their ARN.
        self.resources = [
            _replace(r, id=r.arn.rsplit(":", 1)[-1])
            if r.type == ResourceType.DB_AUTOMATED_BACKUP
            else r
            for r in self.resources
        ]


def _replace(resource: DemoResource, **changes: Any) -> DemoResource:
    from dataclasses import replace

    return replace(resource, **changes)


def _require_moto_mock() -> None:
    from moto.core.models import botocore_stubber

    if not botocore_stubber.enabled:
        raise RuntimeError(
            "seed_demo_estate() must run inside moto's mock_aws (it would otherwise call AWS)"
        )


def seed_demo_estate(now: float | None = None) -> DemoEstate:
    """Seed the demo estate into moto. Must be called while moto's `mock_aws` is active.

    `now` (epoch seconds; default the clock) is what dates relative to the scan (the expiry
    of imported key material) count from: samples pin it with the scan time."""
    _require_moto_mock()
    s = _Seeder()

    # ---- KMS -------------------------------------------------------------------------
    orders_key = s.customer_key(
        "orders", PRIMARY, "alias/orders-db", "Orders platform databases", rotation=True
    )
    eu_key = s.customer_key(
        "eu-orders", SECONDARY, "alias/orders-db", "Orders platform databases (EU)", rotation=True
    )
    analytics_key = s.customer_key(
        "analytics", PRIMARY, "alias/analytics", "Analytics warehouse feeds", rotation=False
    )
    payments_key = s.customer_key(
        "payments", PRIMARY, "alias/payments", "Payments ledger", rotation=True
    )
    crm_key = s.customer_key(
        "crm", PRIMARY, "alias/crm-retiring", "CRM (being decommissioned)", rotation=False
    )
    payments_key = s.set_key_state("payments", "Disabled")
    crm_key = s.set_key_state("crm", "PendingDeletion", now)
    managed_key = s.aws_managed_rds_key(PRIMARY)
    partner_key = s.phantom_key("partner", PRIMARY, OTHER_ACCOUNT, "denied")
    deleted_key = s.phantom_key("deleted", PRIMARY, DEMO_ACCOUNT, "missing")
    lifecycle_keys = _lifecycle_keys(s, time.time() if now is None else now)
    _trails()

    # ---- instances -------------------------------------------------------------------
    orders_tags = _tags("orders", "alice@example.com")
    s.instance("orders-db", PRIMARY, "postgres", orders_key, orders_tags, MultiAZ=True)
    orders = s.resources[-1]
    s.replica("orders-db-replica-1", orders, PRIMARY, None, orders_tags)
    s.replica("orders-db-replica-eu", orders, SECONDARY, eu_key, orders_tags)
    s.snapshot("orders-db-before-upgrade", orders, orders_tags)

    analytics_tags = _tags("data", "dana@example.com")
    # A BI replica of orders-db that someone created with the analytics key.
    s.replica("orders-db-replica-bi", orders, PRIMARY, analytics_key, analytics_tags)
    s.instance("analytics-db", PRIMARY, "postgres", analytics_key, analytics_tags)
    analytics = s.resources[-1]
    # Cross-region replica that drifted to unencrypted (backend mutation: AWS forbids it).
    s.replica("analytics-db-eu", analytics, SECONDARY, eu_key, analytics_tags)
    drifted = s.rds_backend(SECONDARY).databases["analytics-db-eu"]
    drifted.storage_encrypted = False
    drifted.kms_key_id = None
    s.resources[-1] = _replace(
        s.resources[-1], encrypted=False, encryption_type="none", kms_key_arn=None
    )

    reporting_tags = _tags("finance", "frank@example.com")
    s.instance("legacy-reporting-mysql", PRIMARY, "mysql", None, reporting_tags)
    reporting = s.resources[-1]
    s.replica("legacy-reporting-mysql-ro", reporting, PRIMARY, None, reporting_tags)
    s.snapshot("legacy-reporting-mysql-pre-migration", reporting, reporting_tags, public=True)
    s.snapshot(
        "legacy-reporting-mysql-partner-share",
        reporting,
        reporting_tags,
        shared_with=(PARTNER_ACCOUNT,),
    )
    s.instance(
        "legacy-reporting-sqlexpress",
        PRIMARY,
        "sqlserver-ex",
        None,
        reporting_tags,
        instance_class="db.t3.medium",
        LicenseModel="license-included",
    )

    s.instance(
        "ledger-archive-db",
        PRIMARY,
        "postgres",
        orders_key,
        _tags("finance", "frank@example.com"),
        retention=0,
    )
    s.instance(
        "payments-db", PRIMARY, "postgres", payments_key, _tags("payments", "paul@example.com")
    )
    s.rds_backend(PRIMARY).databases[
        "payments-db"
    ].status = "inaccessible-encryption-credentials-recoverable"
    s.resources[-1] = _replace(
        s.resources[-1], status="inaccessible-encryption-credentials-recoverable"
    )
    s.instance("crm-db", PRIMARY, "mysql", crm_key, _tags("sales", "sam@example.com"))
    s.instance(
        "wiki-db",
        PRIMARY,
        "mysql",
        managed_key,
        _tags("it", "ivan@example.com", "internal"),
        instance_class="db.t3.medium",
    )
    s.instance("marketing-db", PRIMARY, "postgres", eu_key, _tags("marketing", "mia@example.com"))
    s.instance(
        "partner-feed-db", PRIMARY, "postgres", partner_key, _tags("partners", "pat@example.com")
    )
    s.instance("inventory-db", PRIMARY, "postgres", deleted_key, _tags("supply", "sue@example.com"))
    s.instance(
        "eu-customers-db", SECONDARY, "postgres", eu_key, _tags("orders", "alice@example.com")
    )
    s.instance(
        "eu-newsletter-db",
        SECONDARY,
        "mysql",
        None,
        _tags("marketing", "mia@example.com", "staging"),
        instance_class="db.t3.medium",
    )

    # One database per key lifecycle (imported material, custom key stores, multi-Region,
    # a KeyState newer than rdsaudit): see _lifecycle_keys.
    for ident, key_name, region in _LIFECYCLE_DATABASES:
        s.instance(ident, region, "postgres", lifecycle_keys[key_name],
                   _tags("treasury", "tara@example.com"))

    # Oracle with Transparent Data Encryption: the TDE option of its option group (shown
    # beside the storage key; TDE keys are managed by the database, not KMS).
    s.rds[PRIMARY].create_option_group(
        OptionGroupName="erp-oracle-tde", EngineName="oracle-ee", MajorEngineVersion="19",
        OptionGroupDescription="Oracle TDE for the ERP database")
    s.rds[PRIMARY].modify_option_group(OptionGroupName="erp-oracle-tde",
                                       OptionsToInclude=[{"OptionName": "TDE"}],
                                       ApplyImmediately=True)
    s.instance("erp-oracle-db", PRIMARY, "oracle-ee", orders_key,
               _tags("erp", "erin@example.com"), OptionGroupName="erp-oracle-tde",
               LicenseModel="bring-your-own-license")
    # Backups replicated to the other demo region (scanned, so audited there).
    s.instance("treasury-replicated-db", PRIMARY, "postgres", orders_key,
               _tags("treasury", "tara@example.com"))
    s.overlay(s.resources[-1].arn, {"DBInstanceAutomatedBackupsReplications": [
        {"DBInstanceAutomatedBackupsArn":
         f"arn:aws:rds:{SECONDARY}:{DEMO_ACCOUNT}:auto-backup:ab-treasuryreplicated0001"}]})

    # Keys beside the storage key (DESIGN.md: four roles), healthy and broken.
    s.depends_on("orders-db", "performance-insights", orders_key)
    s.instance("treasury-insights-db", PRIMARY, "postgres", orders_key,
               _tags("treasury", "tara@example.com"))
    s.depends_on("treasury-insights-db", "performance-insights", payments_key)  # Disabled
    s.instance("treasury-secret-db", PRIMARY, "postgres", orders_key,
               _tags("treasury", "tara@example.com"))
    s.depends_on("treasury-secret-db", "master-user-secret", crm_key)  # PendingDeletion

    # Deleted instances whose automated backups were kept (retained backups).
    s.instance("old-billing-db", PRIMARY, "mysql", None, _tags("finance", "frank@example.com"))
    s.delete_keeping_backups("old-billing-db", PRIMARY)
    s.instance(
        "old-audit-db", PRIMARY, "postgres", orders_key, _tags("security", "sec@example.com")
    )
    s.delete_keeping_backups("old-audit-db", PRIMARY)

    # ---- clusters --------------------------------------------------------------------
    billing_tags = _tags("billing", "bob@example.com")
    billing = s.cluster("billing-aurora", PRIMARY, "aurora-postgresql", orders_key, billing_tags, 2)
    s.cluster_snapshot("billing-aurora-monthly", billing, billing_tags)
    s.depends_on("billing-aurora", "activity-stream", orders_key)
    events_tags = _tags("platform", "pia@example.com")
    events = s.cluster("events-aurora", PRIMARY, "aurora-mysql", None, events_tags, 1)
    s.cluster_snapshot("events-aurora-pre-upgrade", events, events_tags)
    # Created with a key in moto; the emulator rewrites it to an AWS owned key (sse-rds).
    search_tags = _tags("search", "sid@example.com")
    search = s.cluster("search-aurora", PRIMARY, "aurora-postgresql", orders_key, search_tags, 1)
    # DocumentDB shows up in the RDS API and must be left out (moto rejects the engine).
    docs = s.cluster(
        "docs-docdb", PRIMARY, "aurora-postgresql", orders_key, _tags("docs", "dan@example.com"), 0
    )
    backend = s.rds_backend(PRIMARY)
    backend.clusters["docs-docdb"].engine = "docdb"
    for snap in backend.cluster_snapshots.values():
        if snap.db_cluster_identifier == "docs-docdb":
            snap.engine = snap.cluster.engine = "docdb"
    s.resources = [
        _replace(r, engine="docdb", excluded=True) if r.arn == docs.arn else r for r in s.resources
    ]

    s.record_automated_artefacts()

    sse_rds = {"StorageEncryptionType": "sse-rds", "KmsKeyId": None}
    for r in list(s.resources):
        if (
            r.id == "search-aurora"
            or r.cluster_id == "search-aurora"
            or (r.type == ResourceType.DB_CLUSTER_SNAPSHOT and r.source_id == "search-aurora")
        ):
            s.overlay(r.arn, sse_rds)
            s.resources[s.resources.index(r)] = _replace(
                r, encryption_type="sse-rds", kms_key_arn=None
            )
    del search

    # A retained automated backup of a deleted, unencrypted Aurora cluster (layer state).
    old_events_arn = (
        f"arn:aws:rds:{PRIMARY}:{DEMO_ACCOUNT}:cluster-auto-backup:cab-oldeventsaurora2024q1"
    )
    s.cluster_backups.append(
        (
            PRIMARY,
            {
                "DBClusterIdentifier": "old-events-aurora",
                "DBClusterAutomatedBackupsArn": old_events_arn,
                "DbClusterResourceId": "cluster-OLDEVENTSAURORA2024Q1XYZ",
                "Engine": "aurora-mysql",
                "EngineVersion": "8.0.mysql_aurora.3.04.1",
                "StorageEncrypted": False,
                "StorageEncryptionType": "none",
                "BackupRetentionPeriod": 14,
                "Status": "retained",
                "TagList": events_tags,
            },
        )
    )
    s.resources.append(
        DemoResource(
            ResourceType.DB_AUTOMATED_BACKUP,
            old_events_arn.rsplit(":", 1)[-1],
            old_events_arn,
            PRIMARY,
            False,
            "none",
            None,
            engine="aurora-mysql",
            status="retained",
            backup_retention=14,
            snapshot_type="retained",
            source_id="old-events-aurora",
            tags=_tag_tuple(events_tags),
        )
    )

    regulated = _regulated_account()
    s.overlays.update(regulated.overlays)
    keys = (*s.keys.values(), *regulated.keys.values())
    resources = (*s.resources, *regulated.resources)
    failures = _expected_failures(resources, keys)
    by_arn = {r.arn: r for r in resources} | {k.arn: k for k in keys}
    return DemoEstate(
        account_id=DEMO_ACCOUNT,
        accounts=DEMO_ACCOUNTS,
        regions=DEMO_REGIONS,
        keys=keys,
        resources=resources,
        expected_failures=frozenset((rule, _resource_id(by_arn[arn])) for rule, arn in failures),
        expected_failure_arns=frozenset(failures),
        overlays=tuple((arn, tuple(sorted(fields.items()))) for arn, fields in s.overlays.items()),
        cluster_automated_backups=tuple(
            (region, tuple(fields.items())) for region, fields in s.cluster_backups
        ),
        denied_key_arns=(partner_key.arn,),
    )


TRAIL_BUCKET: Final = "demo-cloudtrail-logs"


def _trails() -> None:
    """CloudTrail: us-east-1 has a trail logging all management events (key use audited);
    eu-west-1's trail logs only WriteOnly events, so RDS's Decrypt calls on its keys are
    not audited (key-usage-not-audited). moto answers GetEventSelectors with no selectors
    for a trail left at the default; AWS returns the default selector (All, management
    events), so the selectors are set explicitly."""
    import boto3
    from botocore.config import Config

    config = Config(ignore_configured_endpoint_urls=True)
    boto3.client("s3", region_name=PRIMARY, config=config).create_bucket(Bucket=TRAIL_BUCKET)
    for region, name, kind in ((PRIMARY, "security-audit", "All"),
                               (SECONDARY, "eu-change-log", "WriteOnly")):
        trail = boto3.client("cloudtrail", region_name=region, config=config)
        trail.create_trail(Name=name, S3BucketName=TRAIL_BUCKET)
        trail.put_event_selectors(TrailName=name, EventSelectors=[
            {"ReadWriteType": kind, "IncludeManagementEvents": True}])
        trail.start_logging(Name=name)


# (account, region) pairs whose trails log KMS read events (see _trails and
# _regulated_account).
_AUDITED: Final = frozenset({(DEMO_ACCOUNT, PRIMARY), (REGULATED_ACCOUNT, PRIMARY),
                             (REGULATED_ACCOUNT, SECONDARY)})


def _regulated_account() -> _Seeder:
    """REGULATED_ACCOUNT, whose policy (DEMO_CONFIG) requires keys in a custom key store:
    the card vault database on a key in an AWS CloudHSM key store passes
    key-below-external-store (so do its automated snapshot and backup); a copy of its
    automated snapshot re-encrypted for exports under an ordinary customer key (Origin
    AWS_KMS) fails it. Otherwise healthy: the export key rotates, and a multi-region trail
    logs every management event, so key use is audited."""
    s = _Seeder(REGULATED_ACCOUNT)
    tags = _tags("cards", "carla@example.com")
    vault_key = s.patched_key(
        "cards-hsm", PRIMARY, "alias/cards-vault", "Card vault (CloudHSM key store)",
        # Keys in an AWS CloudHSM key store: Origin AWS_CLOUDHSM, with the store's ids
        # (moto creates every key with Origin AWS_KMS and has no custom key stores).
        {"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": "cks-0a1b2c3d4e5f67890",
         "CloudHsmClusterId": "cluster-2b34c5defgh"},
        origin="AWS_CLOUDHSM")
    export_key = s.customer_key("cards-export", PRIMARY, "alias/cards-export",
                                "Card data exports", rotation=True)
    s.instance("cards-vault-db", PRIMARY, "postgres", vault_key, tags)
    s.record_automated_artefacts()
    (automated,) = (r for r in s.resources
                    if r.type == ResourceType.DB_SNAPSHOT and r.source_id == "cards-vault-db")
    copy = s.rds[PRIMARY].copy_db_snapshot(
        SourceDBSnapshotIdentifier=automated.id, TargetDBSnapshotIdentifier="cards-vault-export",
        KmsKeyId=export_key.arn, Tags=tags)["DBSnapshot"]
    s.resources.append(replace(automated, id="cards-vault-export", arn=copy["DBSnapshotArn"],
                               kms_key_arn=copy["KmsKeyId"], snapshot_type="manual",
                               tags=_tag_tuple(tags)))
    name = "cards-audit"
    s.client("s3", PRIMARY).create_bucket(Bucket=name)
    trail = s.client("cloudtrail", PRIMARY)
    trail.create_trail(Name=name, S3BucketName=name, IsMultiRegionTrail=True)
    trail.put_event_selectors(TrailName=name, EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    trail.start_logging(Name=name)
    return s


# (instance, key, region): each key lifecycle carries one database.
_LIFECYCLE_DATABASES: Final = (
    ("treasury-import-db", "imported-expiring", PRIMARY),  # key-material-expiring (critical)
    ("treasury-byok-db", "imported-forever", PRIMARY),  # healthy: material never expires
    ("treasury-hsm-db", "cloudhsm", PRIMARY),  # healthy: rotation not applicable
    ("treasury-xks-db", "xks", PRIMARY),  # healthy: rotation not applicable
    ("treasury-eu-db", "global-replica", SECONDARY),  # rotation fails on the us primary
    ("treasury-legacy-db", "legacy-global", PRIMARY),  # key-unusable: PendingReplicaDeletion
    ("treasury-lab-db", "future-state", PRIMARY),  # key-unverifiable: unknown KeyState
)


def _lifecycle_keys(s: _Seeder, now: float) -> dict[str, DemoKey]:
    """Keys in the lifecycles moto does not model, patched into DescribeKey's answer. Each
    patch restores an AWS fact (aws-facts §5 KeyMetadata, moto-fidelity §11)."""
    day = 86400.0
    expiring = s.patched_key(
        "imported-expiring", PRIMARY, "alias/treasury-import", "Treasury (imported material)",
        # Imported key material: Origin EXTERNAL; with KEY_MATERIAL_EXPIRES, ValidTo is when
        # KMS deletes the material (the key then becomes PendingImport).
        {"Origin": "EXTERNAL", "ExpirationModel": "KEY_MATERIAL_EXPIRES",
         "ValidTo": now + 5 * day},
        origin="EXTERNAL", valid_to_days=5.0)
    forever = s.patched_key(
        "imported-forever", PRIMARY, "alias/treasury-byok", "Treasury BYOK (no expiry)",
        {"Origin": "EXTERNAL", "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"},
        origin="EXTERNAL", never_expires=True)
    hsm = s.patched_key(
        "cloudhsm", PRIMARY, "alias/treasury-hsm", "Treasury (CloudHSM key store)",
        # Keys in an AWS CloudHSM key store: Origin AWS_CLOUDHSM, with the store's ids.
        {"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": "cks-1234567890abcdef0",
         "CloudHsmClusterId": "cluster-1a23b4cdefg"},
        origin="AWS_CLOUDHSM")
    xks = s.patched_key(
        "xks", PRIMARY, "alias/treasury-xks", "Treasury (external key store)",
        # Keys in an external key store: Origin EXTERNAL_KEY_STORE and XksKeyConfiguration.
        {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": "cks-0fedcba0987654321",
         "XksKeyConfiguration": {"Id": "demo-external-key-1"}},
        origin="EXTERNAL_KEY_STORE")
    # Multi-Region: a primary in us-east-1 (rotation off) and its replica in eu-west-1.
    # DescribeKey of either names both in MultiRegionConfiguration (moto omits it).
    primary = s.customer_key("global-primary", PRIMARY, "alias/treasury-global",
                             "Treasury (multi-Region primary)", rotation=False)
    replica = s.customer_key("global-replica", SECONDARY, "alias/treasury-global",
                             "Treasury (multi-Region replica)", rotation=False)
    config = {"PrimaryKey": {"Arn": primary.arn, "Region": PRIMARY},
              "ReplicaKeys": [{"Arn": replica.arn, "Region": SECONDARY}]}
    s.overlay(primary.arn, {"MultiRegion": True, "MultiRegionConfiguration": {
        "MultiRegionKeyType": "PRIMARY", **config}})
    s.overlay(replica.arn, {"MultiRegion": True, "MultiRegionConfiguration": {
        "MultiRegionKeyType": "REPLICA", **config}})
    s.keys["global-primary"] = replace(primary, primary_arn=primary.arn,
                                       replica_arns=(replica.arn,))
    s.keys["global-replica"] = replace(replica, rotation=None, primary_arn=primary.arn)
    # A multi-Region primary scheduled for deletion while a replica lives: no DeletionDate,
    # only PendingDeletionWindowInDays, counting from the last replica's deletion.
    legacy_replica = f"arn:aws:kms:{SECONDARY}:{DEMO_ACCOUNT}:key/{uuid.uuid4()}"
    legacy = s.patched_key(
        "legacy-global", PRIMARY, "alias/treasury-legacy", "Treasury (retiring, multi-Region)",
        {"KeyState": "PendingReplicaDeletion", "Enabled": False,
         "PendingDeletionWindowInDays": 30, "MultiRegion": True,
         "MultiRegionConfiguration": {
             "MultiRegionKeyType": "PRIMARY",
             "PrimaryKey": {"Arn": "", "Region": PRIMARY},
             "ReplicaKeys": [{"Arn": legacy_replica, "Region": SECONDARY}]}})
    legacy_arn = legacy.arn
    s.overlays[legacy_arn]["MultiRegionConfiguration"]["PrimaryKey"]["Arn"] = legacy_arn
    legacy = s.keys["legacy-global"] = replace(legacy, primary_arn=legacy_arn,
                                               replica_arns=(legacy_replica,))
    # A KeyState this botocore does not know (AWS adds states: Creating and Updating came
    # with multi-Region keys): rdsaudit must call it unverifiable, never healthy.
    future = s.patched_key("future-state", PRIMARY, "alias/treasury-lab", "Treasury lab",
                           {"KeyState": "Hibernating", "Enabled": False})
    return {"imported-expiring": expiring, "imported-forever": forever, "cloudhsm": hsm,
            "xks": xks, "global-replica": s.keys["global-replica"], "legacy-global": legacy,
            "future-state": future}


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _resource_id(item: DemoResource | DemoKey) -> str:
    return item.key_id if isinstance(item, DemoKey) else item.id


def _expected_failures(
    resources: tuple[DemoResource, ...], keys: tuple[DemoKey, ...]
) -> set[tuple[str, str]]:
    """The (rule_id, ARN) pairs DESIGN.md's rules must fail on the seeded facts, every demo
    account scanned under the demo's policy (DEMO_CONFIG)."""
    policy = demo_policy()
    key_by_arn = {k.arn: k for k in keys}
    instances = {(r.region, r.id): r for r in resources if r.type == ResourceType.DB_INSTANCE}
    instances_by_arn = {r.arn: r for r in instances.values()}
    unencrypted_rule = {
        ResourceType.DB_INSTANCE: "instance-unencrypted",
        ResourceType.DB_CLUSTER: "cluster-unencrypted",
        ResourceType.DB_SNAPSHOT: "snapshot-unencrypted",
        ResourceType.DB_CLUSTER_SNAPSHOT: "cluster-snapshot-unencrypted",
        ResourceType.DB_AUTOMATED_BACKUP: "automated-backup-unencrypted",
    }
    out: set[tuple[str, str]] = set()
    used_keys: set[str] = set()
    named_keys: set[str] = set()  # keys a judged resource names (not only primaries)
    for r in resources:
        if r.excluded or r.cluster_id is not None:
            continue

        def fail(rule: str, resource: DemoResource = r) -> None:
            out.add((rule, resource.arn))

        for _, arn in r.other_keys:
            used_keys.add(arn)
            named_keys.add(arn)
            other = key_by_arn[arn]
            if other.state in _UNUSABLE_STATES or other.state == "missing":
                fail("key-unusable")
            if other.state == "denied" or other.state not in _KNOWN_STATES | {"missing"}:
                fail("key-unverifiable")
        if not r.encrypted:
            fail(unencrypted_rule[r.type])
        if r.public:
            fail("snapshot-public")
        if r.type in (ResourceType.DB_INSTANCE, ResourceType.DB_CLUSTER) and (
            r.status or ""
        ).startswith("inaccessible-encryption-credentials"):
            fail("encryption-credentials-inaccessible")
        if r.type == ResourceType.DB_INSTANCE:
            if r.encrypted and r.replica_source is None and (r.backup_retention or 0) < 1:
                fail("encrypted-without-backups")
            if r.replica_source is not None:
                source = instances_by_arn.get(r.replica_source) or instances.get(
                    (r.region, r.replica_source)
                )
                assert source is not None, r.replica_source
                if source.encrypted != r.encrypted:
                    fail("replica-encryption-mismatch")
                same_region = source.region == r.region
                if same_region and r.encrypted and source.encrypted:
                    if source.kms_key_arn != r.kms_key_arn:
                        fail("replica-key-mismatch")
        if not r.encrypted:
            continue
        if r.encryption_type == "sse-rds":
            fail("aws-owned-key")
            continue
        if r.kms_key_arn is None:
            continue
        used_keys.add(r.kms_key_arn)
        named_keys.add(r.kms_key_arn)
        key = key_by_arn[r.kms_key_arn]
        if key.state in _UNUSABLE_STATES or key.state == "missing":
            fail("key-unusable")
        if key.state == "denied" or (key.state not in _KNOWN_STATES
                                     and key.state != "missing"):
            fail("key-unverifiable")
        if key.valid_to_days is not None and key.valid_to_days <= 30:
            fail("key-material-expiring")
        if key.primary_arn is not None and key.primary_arn != key.arn:
            used_keys.add(key.primary_arn)  # rotation is judged on the primary
        if key.region != r.region:
            fail("key-region-mismatch")
        if key.manager == "AWS":
            fail("aws-managed-key")
        if key.account_id != r.account_id:
            fail("cross-account-key")
        if (policy.minimum_for(r.account_id) >= KeyProtection.CUSTOMER_EXTERNAL_STORE
                and key.manager == "CUSTOMER" and key.origin not in _CUSTOM_KEY_STORES):
            fail("key-below-external-store")
    for arn in used_keys:
        key = key_by_arn[arn]
        if (key.manager == "CUSTOMER" and key.account_id in DEMO_ACCOUNTS
                and (key.account_id, key.region) not in _AUDITED and arn in named_keys):
            out.add(("key-usage-not-audited", key.arn))
        # A key pending deletion always reads "rotation off" (aws-facts §5): no signal, so
        # rdsaudit does not judge its rotation.
        if (key.manager == "CUSTOMER" and key.rotation is False
                and key.state not in ("PendingDeletion", "PendingReplicaDeletion")
                and key.origin not in _NO_ROTATION_ORIGINS):
            out.add(("key-rotation-disabled", key.arn))
    return out


def demo_policy() -> Policy:
    """The policy `rdsaudit demo` judges with: DEMO_CONFIG through the config parser."""
    return policy_from_mapping(tomllib.loads(DEMO_CONFIG), "the demo's config")


def demo_scan_request(endpoint_url: str) -> ScanRequest:
    """What `rdsaudit demo` scans: both demo accounts (REGULATED_ACCOUNT through the audit
    role, as `--accounts … --role-name` would) in the demo's regions."""
    from rdsaudit.collect import AccountsRequest, ScanRequest

    return ScanRequest(regions=list(DEMO_REGIONS), endpoint_url=endpoint_url,
                       accounts=AccountsRequest(accounts=DEMO_ACCOUNTS, role_name=DEMO_ROLE))


def apply_demo_overlays(fake: FakeAWS, estate: DemoEstate) -> None:
    """Put into the running emulator what moto cannot hold as state."""
    for arn, fields in estate.overlays:
        fake.overlay(arn, dict(fields))
    for region, fields in estate.cluster_automated_backups:
        fake.register_cluster_automated_backup(region, dict(fields), account_id=estate.account_id)
    for arn in estate.denied_key_arns:
        # The key's owner never granted us kms:DescribeKey (or anything else) on it.
        fake.inject_fault(
            Fault(
                service="kms",
                action="*",
                code="AccessDeniedException",
                status=400,
                match=arn,
                message=(
                    f"User: arn:aws:iam::{estate.account_id}:user/rdsaudit is not authorized to "
                    f"perform: kms:DescribeKey on resource: {arn} because no resource-based "
                    "policy allows the kms:DescribeKey action"
                ),
            )
        )


@contextmanager
def demo_environment(latency: float = 0.0,
                     now: float | None = None) -> Iterator[tuple[FakeAWS, DemoEstate]]:
    """Seed the estate, serve it on 127.0.0.1, and wipe moto's state afterwards."""
    from moto import mock_aws

    mock = mock_aws()
    mock.start()  # resets moto's backends
    try:
        estate = seed_demo_estate(now)
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS(latency=latency)
    try:
        fake.start()
        apply_demo_overlays(fake, estate)
        yield fake, estate
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()  # remove_data=True: reset every backend
