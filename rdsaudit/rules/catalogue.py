"""The rule catalogue of DESIGN.md. Ids are the public contract: never rename one.

Each rule is a dozen lines over the inventory and reads like the rule. Sources for the
facts they depend on are in docs/aws-facts.md (section numbers cited as §n).
"""

from __future__ import annotations

from rdsaudit.arns import Arn
from rdsaudit.model import (
    EncryptionType,
    KeyLookup,
    KmsKey,
    Resource,
    ResourceType,
    RotationLookup,
    Severity,
)
from rdsaudit.rules.context import Context
from rdsaudit.rules.registry import Subject, Verdict, failed, passed, rule

T = ResourceType
ENCRYPTED_TYPES = (T.DB_INSTANCE, T.DB_CLUSTER, T.DB_SNAPSHOT, T.DB_CLUSTER_SNAPSHOT,
                   T.DB_AUTOMATED_BACKUP)

# Key states in which RDS cannot use the key (§5 key-state table).
UNUSABLE_KEY_STATES = frozenset(
    {"Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion", "Unavailable"}
)
INACCESSIBLE_STATUSES = {
    "inaccessible-encryption-credentials-recoverable": (
        "the KMS key cannot be accessed; RDS keeps it recoverable for seven days: make the "
        "key usable again, then start it within that window"
    ),
    "inaccessible-encryption-credentials": (
        "the KMS key could not be accessed and the database is in the terminal state: it can "
        "only be restored from a backup once the key is usable"
    ),
}
# Classes the RDS guide lists as never supporting encryption at rest (§8.6 item 11).
NO_ENCRYPTION_CLASSES = ("db.m1.", "db.m2.", "db.t2.micro")


def _label(r: Resource) -> str:
    return f"{r.type.value} {r.id}"


def _encryption_text(r: Resource) -> str:
    if r.encryption_type is EncryptionType.SSE_RDS:
        return "encrypted with an AWS owned key (SSE-RDS)"
    return f"encrypted with KMS key {r.kms_key_id}" if r.kms_key_id else "encrypted"


def _as_resource(subject: Subject) -> Resource:
    assert isinstance(subject, Resource)
    return subject


def _unencrypted(r: Resource, what: str) -> Verdict | None:
    if r.encrypted is None:
        return None
    if r.encrypted:
        return passed(f"{_label(r)} is {_encryption_text(r)}")
    return failed(f"{_label(r)} {what} is not encrypted at rest")


@rule("instance-unencrypted", title="DB instance storage is not encrypted",
      severity=Severity.HIGH, applies_to="db-instance (not a cluster member)",
      subjects=(T.DB_INSTANCE,))
def instance_unencrypted(subject: Subject, ctx: Context) -> Verdict | None:
    """A DB instance whose `StorageEncrypted` is false. Encryption is chosen at creation, so
    the fix is a new encrypted instance from an encrypted snapshot copy. SQL Server Express
    cannot be encrypted at all: its fix is an edition change."""
    r = _as_resource(subject)
    if not ctx.judged(r):
        return None
    verdict = _unencrypted(r, f"({r.engine or 'unknown engine'})")
    if verdict is None or verdict.status.value == "pass":
        return verdict
    extra = ""
    if r.engine == "sqlserver-ex":
        extra = "; SQL Server Express does not support encryption at rest: change the edition"
    elif r.instance_class and r.instance_class.startswith(NO_ENCRYPTION_CLASSES):
        extra = f"; class {r.instance_class} does not support encryption: choose another class"
    return failed(verdict.message + extra)


@rule("cluster-unencrypted", title="DB cluster storage is not encrypted",
      severity=Severity.HIGH, applies_to="db-cluster", subjects=(T.DB_CLUSTER,))
def cluster_unencrypted(subject: Subject, ctx: Context) -> Verdict | None:
    """An Aurora or Multi-AZ DB cluster whose `StorageEncrypted` is false; its member
    instances are judged here, not one by one."""
    r = _as_resource(subject)
    return _unencrypted(r, f"({r.engine or 'unknown engine'})")


@rule("snapshot-unencrypted", title="DB snapshot is not encrypted",
      severity=Severity.HIGH, applies_to="db-snapshot (manual, automated, awsbackup)",
      subjects=(T.DB_SNAPSHOT,))
def snapshot_unencrypted(subject: Subject, ctx: Context) -> Verdict | None:
    """A DB snapshot whose `Encrypted` is false."""
    r = _as_resource(subject)
    return _unencrypted(r, f"({r.snapshot_type or 'unknown'} snapshot of {r.source_id})")


@rule("cluster-snapshot-unencrypted", title="DB cluster snapshot is not encrypted",
      severity=Severity.HIGH, applies_to="db-cluster-snapshot",
      subjects=(T.DB_CLUSTER_SNAPSHOT,))
def cluster_snapshot_unencrypted(subject: Subject, ctx: Context) -> Verdict | None:
    """A DB cluster snapshot whose `StorageEncrypted` is false."""
    r = _as_resource(subject)
    return _unencrypted(r, f"({r.snapshot_type or 'unknown'} snapshot of {r.source_id})")


@rule("automated-backup-unencrypted", title="Automated backup is not encrypted",
      severity=Severity.MEDIUM, applies_to="db-automated-backup (incl. retained, replicated)",
      subjects=(T.DB_AUTOMATED_BACKUP,))
def automated_backup_unencrypted(subject: Subject, ctx: Context) -> Verdict | None:
    """An instance or cluster automated backup, including retained backups of deleted
    databases, whose `Encrypted` / `StorageEncrypted` is false."""
    r = _as_resource(subject)
    return _unencrypted(r, f"({r.status or 'unknown'} backup of {r.source_id})")


@rule("snapshot-public", title="Snapshot is public", severity=Severity.CRITICAL,
      applies_to="manual db / cluster snapshot", subjects=(T.DB_SNAPSHOT, T.DB_CLUSTER_SNAPSHOT))
def snapshot_public(subject: Subject, ctx: Context) -> Verdict | None:
    """A manual snapshot whose `restore` attribute contains `all`: any AWS account can copy
    or restore it. Encrypted snapshots cannot be made public (§3), so only unencrypted ones
    are asked."""
    r = _as_resource(subject)
    if r.snapshot_type != "manual" or r.encrypted is None:
        return None
    if r.encrypted:
        return passed(f"{_label(r)} is encrypted, and AWS never lets encrypted snapshots "
                      "be public")
    share = ctx.shares.get(r.arn)
    if share is None:
        return None  # attribute call failed: recorded as an error
    if "all" in share.restore:
        return failed(f"{_label(r)} is unencrypted and public: any AWS account can restore it")
    if share.restore:
        return passed(f"{_label(r)} is not public (shared with {len(share.restore)} "
                      f"account(s): {', '.join(share.restore)})")
    return passed(f"{_label(r)} is not shared")


@rule("key-unusable", title="KMS key is unusable", severity=Severity.CRITICAL,
      applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES)
def key_unusable(subject: Subject, ctx: Context) -> Verdict | None:
    """The resource's KMS key is Disabled, PendingDeletion, PendingImport,
    PendingReplicaDeletion, Unavailable, or no longer exists. RDS loses access to the data
    (immediately or at the next key use); after a key is deleted the data is gone."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    key = ctx.key_of(r).key
    if key is None:
        return None
    if key.lookup is KeyLookup.NOT_FOUND:
        return failed(f"{_label(r)} is encrypted with KMS key {key.arn}, which does not "
                      "exist: data under a deleted key cannot be decrypted")
    if key.lookup is not KeyLookup.OK or key.key_state is None:
        return None
    if key.key_state in UNUSABLE_KEY_STATES:
        return failed(f"{_label(r)} depends on KMS key {key.arn}, which is "
                      f"{key.key_state}{_deletion_text(key, ctx)}")
    return passed(f"KMS key {key.arn} is {key.key_state}")


def _deletion_text(key: KmsKey, ctx: Context) -> str:
    if key.key_state != "PendingDeletion" or not key.deletion_date:
        return ""
    days = ctx.deletion_days_left(key)
    return (f": it will be deleted on {key.deletion_date} ({days} day(s) left); cancel the "
            "deletion before then or the data is lost")


@rule("encryption-credentials-inaccessible",
      title="Database cannot reach its encryption key", severity=Severity.CRITICAL,
      applies_to="db-instance, db-cluster", subjects=(T.DB_INSTANCE, T.DB_CLUSTER))
def encryption_credentials_inaccessible(subject: Subject, ctx: Context) -> Verdict | None:
    """The status is `inaccessible-encryption-credentials-recoverable` (seven days to
    recover with start-db-instance / start-db-cluster once the key is usable) or
    `inaccessible-encryption-credentials` (terminal: restore from a backup)."""
    r = _as_resource(subject)
    if r.status is None:
        return None
    why = INACCESSIBLE_STATUSES.get(r.status)
    if why is None:
        return passed(f"{_label(r)} status is {r.status}")
    return failed(f"{_label(r)} is {r.status}: {why}")


@rule("key-unverifiable", title="KMS key could not be verified", severity=Severity.MEDIUM,
      applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES)
def key_unverifiable(subject: Subject, ctx: Context) -> Verdict | None:
    """The resource's key could not be described (AccessDenied, throttling, an error, or a
    KmsKeyId that resolves to no key ARN), so nothing about the key can be vouched for."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    view = ctx.key_of(r)
    if view.arn is None:
        return failed(f"{_label(r)}: {view.reason}")
    key = view.key
    if key is None:
        return failed(f"{_label(r)}: KMS key {view.arn} was not looked up")
    if key.lookup in (KeyLookup.OK, KeyLookup.NOT_FOUND):
        return passed(f"KMS key {key.arn} was described")
    return failed(f"{_label(r)}: KMS key {key.arn} could not be described ({key.note})")


@rule("encrypted-without-backups", title="Encrypted instance has no automated backups",
      severity=Severity.HIGH, applies_to="encrypted db-instance that is not a replica",
      subjects=(T.DB_INSTANCE,))
def encrypted_without_backups(subject: Subject, ctx: Context) -> Verdict | None:
    """An encrypted instance whose `BackupRetentionPeriod` is below the policy minimum
    (default 1). If the key is lost, a backup is the only way back (RDS User Guide)."""
    r = _as_resource(subject)
    if not ctx.judged(r) or not r.encrypted or r.replica_source or r.replica_source_cluster:
        return None
    if r.backup_retention is None:
        return None
    minimum = ctx.policy.min_backup_retention_days
    if r.backup_retention < minimum:
        return failed(f"{_label(r)} is encrypted but keeps {r.backup_retention} day(s) of "
                      f"automated backups (policy minimum {minimum})")
    return passed(f"{_label(r)} keeps {r.backup_retention} day(s) of automated backups")


@rule("replica-encryption-mismatch", title="Read replica encryption differs from its source",
      severity=Severity.HIGH, applies_to="read replica (instance)", subjects=(T.DB_INSTANCE,))
def replica_encryption_mismatch(subject: Subject, ctx: Context) -> Verdict | None:
    """A read replica whose encrypted state differs from its source's."""
    r = _as_resource(subject)
    source = ctx.replica_source(r)
    if source is None or r.encrypted is None or source.encrypted is None:
        return None
    if r.encrypted == source.encrypted:
        state = "encrypted" if r.encrypted else "unencrypted"
        return passed(f"replica {r.id} and source {source.id} are both {state}")
    return failed(f"replica {r.id} is {'en' if r.encrypted else 'un'}crypted but its source "
                  f"{source.id} is {'en' if source.encrypted else 'un'}crypted")


@rule("replica-key-mismatch", title="Same-region read replica uses another key than its source",
      severity=Severity.HIGH, applies_to="same-region read replica", subjects=(T.DB_INSTANCE,))
def replica_key_mismatch(subject: Subject, ctx: Context) -> Verdict | None:
    """A read replica in its source's region must use the source's key. Cross-region
    replicas must use a key of their own region, so they are never mismatched."""
    r = _as_resource(subject)
    source = ctx.replica_source(r)
    if source is None or source.region != r.region:
        return None
    if not (ctx.kms_encrypted(r) and ctx.kms_encrypted(source)):
        return None
    mine, theirs = ctx.key_of(r).arn, ctx.key_of(source).arn
    if mine is None or theirs is None:
        return None
    if mine == theirs:
        return passed(f"replica {r.id} uses its source's key {mine}")
    return failed(f"replica {r.id} uses KMS key {mine} but its source {source.id} uses {theirs}")


@rule("key-region-mismatch", title="KMS key is in another region than the resource",
      severity=Severity.MEDIUM, applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES)
def key_region_mismatch(subject: Subject, ctx: Context) -> Verdict | None:
    """The key ARN's region differs from the resource's region."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    arn = Arn.parse(ctx.key_of(r).arn or "")
    if arn is None:
        return None
    if arn.region == r.region:
        return passed(f"KMS key is in {arn.region}, like the resource")
    return failed(f"{_label(r)} in {r.region} uses KMS key {arn} from {arn.region}")


@rule("aws-managed-key", title="Encrypted with the AWS managed key (aws/rds)",
      severity=Severity.LOW, applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES,
      raised_by="require_customer_managed_key")
def aws_managed_key(subject: Subject, ctx: Context) -> Verdict | None:
    """The key is AWS managed (`KeyManager` AWS, alias `aws/rds`): its policy cannot be
    changed, snapshots under it cannot be shared, and access cannot be revoked per team."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    view = ctx.key_of(r)
    if view.aws_managed is None:
        return None
    if not view.aws_managed:
        return passed(f"KMS key {view.arn} is customer managed")
    names = f" ({', '.join(view.aliases)})" if view.aliases else ""
    return failed(f"{_label(r)} is encrypted with the AWS managed key {view.arn}{names}",
                  _raised(ctx))


@rule("aws-owned-key", title="Encrypted with an AWS owned key (SSE-RDS)",
      severity=Severity.LOW, applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES,
      raised_by="require_customer_managed_key")
def aws_owned_key(subject: Subject, ctx: Context) -> Verdict | None:
    """`StorageEncryptionType` is `sse-rds`: the key is owned by AWS, outside the account;
    it cannot be described, audited in CloudTrail, or controlled."""
    r = _as_resource(subject)
    if not ctx.judged(r) or not r.encrypted or r.encryption_type is None:
        return None
    if r.encryption_type is EncryptionType.SSE_RDS:
        return failed(f"{_label(r)} is encrypted with an AWS owned key (SSE-RDS), which the "
                      "account cannot see or control", _raised(ctx))
    return passed(f"{_label(r)} is encrypted with a KMS key in an AWS account")


def _raised(ctx: Context) -> Severity | None:
    return Severity.HIGH if ctx.policy.require_customer_managed_key else None


@rule("key-rotation-disabled", title="Customer managed key does not rotate",
      severity=Severity.MEDIUM, applies_to="kms-key that is customer managed and used by RDS",
      subjects=(T.KMS_KEY,))
def key_rotation_disabled(subject: Subject, ctx: Context) -> Verdict | None:
    """Automatic rotation is off for a customer managed key that RDS resources use. Keys
    with imported material or in a custom key store cannot rotate automatically: no
    finding, and the reason is shown with the key."""
    assert isinstance(subject, KmsKey)
    key = subject
    if key.lookup is not KeyLookup.OK or key.key_manager != "CUSTOMER":
        return None
    if key.key_state == "PendingDeletion":
        return None  # rotation reads false while deletion is pending (§5): no signal
    if key.rotation is not RotationLookup.OK or key.rotation_enabled is None:
        return None
    users = len(ctx.keys_in_use.get(key.arn, ()))
    if key.rotation_enabled:
        return passed(f"KMS key {key.arn} rotates automatically")
    return failed(f"KMS key {key.arn} does not rotate automatically "
                  f"({users} RDS resource(s) use it)")


@rule("cross-account-key", title="KMS key belongs to another account",
      severity=Severity.LOW, applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES)
def cross_account_key(subject: Subject, ctx: Context) -> Verdict | None:
    """The key belongs to another AWS account: that account can disable or delete it and so
    take this database down."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    arn = Arn.parse(ctx.key_of(r).arn or "")
    if arn is None:
        return None
    if arn.account == r.account_id:
        return passed("KMS key belongs to the resource's account")
    return failed(f"{_label(r)} uses KMS key {arn} owned by account {arn.account}")
