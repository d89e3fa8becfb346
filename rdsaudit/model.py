"""The data that crosses layers: frozen records, nothing else.

Collect produces an `Inventory`; evaluate turns it into `Finding`s; reports render both.
Everything here is plain data with no AWS client in sight, so it can be saved to JSON and
judged again offline (`rdsaudit evaluate`).

Size (~490 lines): every record that crosses a layer, and nothing else; splitting it would
make each layer import several modules for what is one vocabulary.
"""

from __future__ import annotations

import enum
import hashlib
import shlex
from dataclasses import dataclass, field


class ResourceType(enum.StrEnum):
    DB_INSTANCE = "db-instance"
    DB_CLUSTER = "db-cluster"
    DB_SNAPSHOT = "db-snapshot"
    DB_CLUSTER_SNAPSHOT = "db-cluster-snapshot"
    DB_AUTOMATED_BACKUP = "db-automated-backup"
    KMS_KEY = "kms-key"


class Severity(enum.IntEnum):
    """Ordered so that `a >= b` means "at least as bad as"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in sorted(cls, reverse=True))
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


# The severity labels, worst first: the one order every table, chart and list uses.
SEVERITY_LABELS: tuple[str, ...] = tuple(s.label for s in sorted(Severity, reverse=True))


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a finding status, not a password
    FAIL = "fail"
    WAIVED = "waived"


class EncryptionType(enum.StrEnum):
    """RDS `StorageEncryptionType` (botocore >= 1.42.51), or derived from the older fields."""

    NONE = "none"
    SSE_KMS = "sse-kms"  # customer managed or AWS managed KMS key
    SSE_RDS = "sse-rds"  # AWS owned key: not in the account, cannot be described


class KeyLookup(enum.StrEnum):
    """How a DescribeKey look-up ended."""

    OK = "ok"
    NOT_FOUND = "not-found"  # NotFoundException: the key is gone (or never existed)
    ACCESS_DENIED = "access-denied"  # key policy or IAM refused us
    ERROR = "error"  # throttled past retries, 5xx, timeout, malformed answer


class KeyRole(enum.StrEnum):
    """What a KMS key does for a resource (DESIGN.md: a resource depends on up to four)."""

    STORAGE = "storage"  # KmsKeyId: the data at rest
    PERFORMANCE_INSIGHTS = "performance-insights"  # PerformanceInsightsKMSKeyId
    MASTER_USER_SECRET = "master-user-secret"  # noqa: S105 - a role name; MasterUserSecret.KmsKeyId
    ACTIVITY_STREAM = "activity-stream"  # ActivityStreamKmsKeyId

    @property
    def function(self) -> str:
        """What stops working when this key becomes unusable."""
        return _ROLE_FUNCTIONS[self]


_ROLE_FUNCTIONS = {
    KeyRole.STORAGE: "the database storage, its snapshots and backups cannot be decrypted",
    KeyRole.PERFORMANCE_INSIGHTS: "Performance Insights cannot store or show its data",
    KeyRole.MASTER_USER_SECRET: "Secrets Manager cannot decrypt the master user secret, so "
                                "the master password cannot be read or rotated",
    KeyRole.ACTIVITY_STREAM: "the database activity stream cannot encrypt and publish its "
                             "records",
}


class KeyProtection(enum.IntEnum):
    """The key-protection ladder of a storage key, weakest first (DESIGN.md)."""

    AWS_OWNED = 0  # StorageEncryptionType sse-rds: outside the account
    AWS_MANAGED = 1  # aws/rds: in the account, its policy cannot be changed
    CUSTOMER = 2  # a customer managed key (imported material, Origin EXTERNAL, included)
    CUSTOMER_EXTERNAL_STORE = 3  # Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> KeyProtection:
        for rung in cls:
            if rung.label == text.strip():
                return rung
        names = " < ".join(r.label for r in cls)
        raise ValueError(f"unknown key protection {text!r} (expected one of {names})")


class RotationLookup(enum.StrEnum):
    OK = "ok"
    NOT_APPLICABLE = "not-applicable"  # UnsupportedOperation: imported material, custom store
    NOT_CHECKED = "not-checked"  # AWS managed keys (always rotated) or key not described
    ACCESS_DENIED = "access-denied"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Resource:
    """One RDS resource, normalised from whichever Describe* call returned it.

    `encrypted` is None only when the response did not say (malformed data); such a resource
    also has a `CollectionError` and no rule may report it as passing.
    """

    type: ResourceType
    arn: str
    id: str
    region: str
    account_id: str
    encrypted: bool | None
    encryption_type: EncryptionType | None
    kms_key_id: str | None  # as AWS returned it (normally a key ARN)
    engine: str | None = None
    status: str | None = None
    instance_class: str | None = None
    cluster_id: str | None = None  # db-instance: the cluster it belongs to
    replica_source: str | None = None  # id (same region) or ARN (cross region) of the source
    replica_source_cluster: str | None = None  # Multi-AZ cluster a replica instance reads from
    backup_retention: int | None = None
    snapshot_type: str | None = None  # manual | automated | awsbackup (snapshots, backups)
    source_id: str | None = None  # snapshots and backups: the instance or cluster they came from
    tags: tuple[tuple[str, str], ...] = ()
    # DbiResourceId / DbClusterResourceId: the id automated backups and their APIs use
    # (delete-db-cluster-automated-backup takes the cluster's resource id).
    resource_id: str | None = None
    # Keys other than the storage key that the resource depends on (key-health issue).
    performance_insights_kms_key_id: str | None = None
    master_user_secret_kms_key_id: str | None = None
    activity_stream_kms_key_id: str | None = None
    option_group: str | None = None  # db-instance: OptionGroupMemberships[0].OptionGroupName
    tde_credential_arn: str | None = None  # TdeCredentialArn (Oracle / SQL Server TDE)
    # DBInstanceAutomatedBackupsReplications: ARNs of cross-Region replicated backups.
    backup_replications: tuple[str, ...] = ()
    # What a faithful re-creation needs (restore, re-create, Blue/Green): the database's own
    # configuration as Describe* returned it; None where AWS did not say.
    engine_version: str | None = None
    license_model: str | None = None
    db_subnet_group: str | None = None
    vpc_security_group_ids: tuple[str, ...] = ()
    parameter_group: str | None = None  # DB parameter group (cluster: cluster parameter group)
    port: int | None = None
    multi_az: bool | None = None
    storage_type: str | None = None
    allocated_storage: int | None = None
    iops: int | None = None
    storage_throughput: int | None = None
    deletion_protection: bool | None = None
    iam_auth: bool | None = None
    publicly_accessible: bool | None = None
    copy_tags_to_snapshot: bool | None = None
    monitoring_interval: int | None = None
    monitoring_role_arn: str | None = None
    performance_insights_enabled: bool | None = None
    performance_insights_retention: int | None = None
    cloudwatch_logs_exports: tuple[str, ...] = ()
    manages_master_user_secret: bool | None = None
    members: tuple[str, ...] = ()  # db-cluster: its member instance ids


@dataclass(frozen=True, slots=True)
class KmsKey:
    """What we learned about one KMS key, looked up once by ARN in its own region."""

    arn: str
    region: str
    account_id: str
    lookup: KeyLookup
    key_state: str | None = None
    key_manager: str | None = None  # AWS | CUSTOMER
    origin: str | None = None
    description: str | None = None
    deletion_date: str | None = None  # ISO 8601, only for PendingDeletion
    multi_region: bool | None = None
    # MultiRegionConfiguration: rotation of a multi-Region key is set on its primary only.
    primary_key_arn: str | None = None
    replica_key_arns: tuple[str, ...] = ()
    pending_deletion_window_days: int | None = None  # PendingReplicaDeletion: no date yet
    valid_to: str | None = None  # ISO 8601; imported material (Origin EXTERNAL) expiry
    expiration_model: str | None = None  # KEY_MATERIAL_EXPIRES | KEY_MATERIAL_DOES_NOT_EXPIRE
    custom_key_store_type: str | None = None  # AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    rotation: RotationLookup = RotationLookup.NOT_CHECKED
    rotation_enabled: bool | None = None
    note: str | None = None  # why a look-up failed or did not apply
    # kms:GetKeyLastUsage (same account only): the last successful cryptographic use.
    last_used_at: str | None = None  # ISO 8601
    last_used_operation: str | None = None  # e.g. Decrypt, GenerateDataKey
    last_used_event_id: str | None = None  # its CloudTrail event id
    last_usage_note: str | None = None  # why the last use is unknown (AccessDenied, ...)


@dataclass(frozen=True, slots=True)
class Trail:
    """A CloudTrail trail as a scanned account sees it, and whether it audits key use.

    `logs_kms` is whether its event selectors record KMS read management events (Decrypt,
    GenerateDataKey are read events); None when GetEventSelectors failed. `logging` is
    GetTrailStatus.IsLogging; None when that failed.
    """

    arn: str
    account_id: str  # the scanned account that lists it
    home_region: str
    name: str
    multi_region: bool
    organization: bool
    regions: tuple[str, ...] = ()  # scanned regions whose DescribeTrails listed it
    logging: bool | None = None
    logs_kms: bool | None = None
    note: str | None = None  # why logs_kms is False, or what could not be read


@dataclass(frozen=True, slots=True)
class OptionGroup:
    """An option group Oracle or SQL Server instances use, and its options (TDE is one)."""

    name: str
    region: str
    account_id: str
    engine: str | None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KmsAlias:
    name: str  # alias/...
    region: str
    account_id: str
    target_key_id: str | None  # None: predefined AWS alias not yet bound to a key


@dataclass(frozen=True, slots=True)
class SnapshotShare:
    """The `restore` attribute of a manual snapshot: which accounts may restore it."""

    snapshot_arn: str
    restore: tuple[str, ...]  # account ids, or "all" for public


@dataclass(frozen=True, slots=True)
class CollectionError:
    """An AWS call that failed: data we could not read, shown in every report."""

    account_id: str
    region: str
    service: str
    operation: str
    code: str
    message: str
    # What the failed call was about: the key ARN for DescribeKey, the snapshot for an
    # attribute call, the record for a malformed one; None for a whole listing.
    resource: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedRegion:
    """A region the account has not enabled: it cannot hold resources, so it is not an error."""

    account_id: str
    region: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """Which part of a sharded scan an inventory is (`scan --shard INDEX/COUNT`).

    `population` is every account the shards split between them, as this shard saw it, so
    `rdsaudit merge` can tell which accounts no shard scanned.
    """

    index: int  # 1..count
    count: int
    population: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanInfo:
    started_at: str
    finished_at: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    api_calls: tuple[tuple[str, int], ...] = ()  # ("rds:DescribeDBInstances", 3), sorted
    retries: tuple[tuple[str, int], ...] = ()  # extra attempts botocore made, by operation
    skipped_regions: tuple[SkippedRegion, ...] = ()
    shard: ShardInfo | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    scan: ScanInfo
    resources: tuple[Resource, ...] = ()
    keys: tuple[KmsKey, ...] = ()
    aliases: tuple[KmsAlias, ...] = ()
    shares: tuple[SnapshotShare, ...] = ()
    errors: tuple[CollectionError, ...] = ()
    trails: tuple[Trail, ...] = ()
    option_groups: tuple[OptionGroup, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceRef:
    arn: str
    type: ResourceType
    id: str
    region: str
    account_id: str


@dataclass(frozen=True, slots=True)
class KeySummary:
    arn: str | None
    state: str | None
    manager: str | None  # AWS | CUSTOMER | AWS_OWNED | None when unknown


class StepKind(enum.StrEnum):
    COMMAND = "command"  # an AWS CLI call that changes something
    WAIT = "wait"  # `aws rds wait …`: blocks until AWS reports the state the next step needs
    MANUAL = "manual"  # done by a person (cut-over, verification); argv, if any, is a hint
    CHECK = "check"  # a read-only call that verifies something (caller identity, a key)


@dataclass(frozen=True, slots=True)
class Step:
    """One remediation step as data: the AWS CLI argument vector and what it is for.

    `command` (the text every format shows) and `manual` are derived: `command` is
    `shlex.join(argv)`, never edited text. `destructive` steps (deleting what the plan
    replaced) run only after the cut-over, in the runbook's confirmed clean-up section.
    """

    title: str
    argv: tuple[str, ...] = ()
    kind: StepKind = StepKind.COMMAND
    account: str | None = None
    region: str | None = None
    destructive: bool = False
    command: str | None = field(init=False, default=None)
    manual: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", shlex.join(self.argv) if self.argv else None)
        object.__setattr__(self, "manual", self.kind is StepKind.MANUAL)


@dataclass(frozen=True, slots=True)
class Remediation:
    summary: str
    steps: tuple[Step, ...] = ()
    # Resources other than the finding's own that the steps act on: a primary's read
    # replicas, an Aurora cluster's members, a multi-Region key's primary, a backup's
    # resource id. A runbook allows steps on these and on what the plan creates, nothing else.
    related: tuple[str, ...] = ()
    # Why the plan has no commands (no key the policy accepts): one line the runbook repeats.
    blocked: str | None = None
    # What the plan was made with, so `rdsaudit plan` can re-plan from the report without
    # the scan's config: the target key of the resource's account and region (None: none
    # configured), whether the policy forbade the AWS managed key there, and the strategy
    # of a re-creating plan (snapshot | blue-green; None when nothing is re-created).
    target_key: str | None = None
    customer_key_required: bool = False
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class Waiver:
    reason: str
    owner: str
    expires: str


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    title: str
    severity: Severity
    status: Status
    resource: ResourceRef
    message: str
    kms_key: KeySummary | None = None
    remediation: Remediation | None = None
    waiver: Waiver | None = None
    tags: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    baseline: BaselineState | None = None  # against --baseline; None without one


def finding_id(account_id: str, region: str, rule_id: str, resource_arn: str) -> str:
    """The stable id of a finding: the same resource and rule give the same id in every scan.

    JSON v2 findings, baselines, ASFF `Id` and OCSF `finding_info.uid` all reuse it, so a
    finding can be followed across scans and tools. NUL separates the parts, which AWS
    identifiers cannot contain, so two different tuples cannot join into the same text.
    """
    text = "\0".join((account_id, region, rule_id, resource_arn))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class WaiverState(enum.StrEnum):
    ACTIVE = "active"  # applies, and matched at least one failing finding
    STALE = "stale"  # applies, but matched nothing: the exception may be obsolete
    EXPIRED = "expired"  # past its date: no longer applies


class BaselineState(enum.StrEnum):
    """A failing finding against `--baseline`: failed there too, or failing for the first time."""

    NEW = "new"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class WaiverReport:
    """A configured waiver and what became of it in this evaluation."""

    rule: str
    resource: str
    reason: str
    owner: str
    expires: str
    state: WaiverState
    matched: int
    account: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedFinding:
    """A failure of the baseline report that no longer fails."""

    rule_id: str
    resource_arn: str
    resource_id: str
    account_id: str
    region: str
    severity: str


@dataclass(frozen=True, slots=True)
class BaselineReport:
    source: str
    new: int
    unchanged: int
    resolved: tuple[ResolvedFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    """What every report renders: the inventory's facts and the judgement over them."""

    inventory: Inventory
    findings: tuple[Finding, ...]
    # Key ARN -> ARNs of the judged resources that depend on it (the key view).
    key_users: tuple[tuple[str, tuple[str, ...]], ...] = ()
    waivers: tuple[WaiverReport, ...] = ()
    baseline: BaselineReport | None = None
    # Key ARN -> (resource ARN, KeyRole value) for every role a resource depends on it in.
    key_roles: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # Compact pass evidence, (resource ARN, rule id), when evaluate was asked not to keep
    # a verbose pass Finding for each (the report's default: `--evidence failures`).
    passes: tuple[tuple[str, str], ...] = ()

    def pass_count(self) -> int:
        return len(self.passes) + sum(1 for f in self.findings if f.status is Status.PASS)
