"""The rule catalogue of DESIGN.md. Ids are the public contract: never rename one.

Each rule is a dozen lines over the inventory and reads like the rule. Sources for the
facts they depend on are in docs/aws-facts.md (section numbers cited as §n).

Size (~580 lines): the whole catalogue, ~30 rules of a dozen lines each, in one file so a
reviewer can read every rule against DESIGN.md in one sitting; the helpers they share
(key views, scope) are in `context` and `registry`.
"""

from __future__ import annotations

from rdsaudit.arns import Arn
from rdsaudit.keyref import (
    KNOWN_KEY_MANAGERS,
    KNOWN_KEY_STATES,
    UNUSABLE_KEY_STATES,
    is_replica_key,
    rotation_not_applicable,
)
from rdsaudit.model import (
    EncryptionType,
    KeyLookup,
    KeyProtection,
    KeyRole,
    KmsKey,
    Resource,
    ResourceType,
    RotationLookup,
    Severity,
)
from rdsaudit.rules.context import Context, KeyView
from rdsaudit.rules.registry import Subject, Verdict, failed, passed, rule

T = ResourceType
ENCRYPTED_TYPES = (T.DB_INSTANCE, T.DB_CLUSTER, T.DB_SNAPSHOT, T.DB_CLUSTER_SNAPSHOT,
                   T.DB_AUTOMATED_BACKUP)

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
    tde = ctx.tde(r)
    if verdict is not None and tde is not None:
        verdict = Verdict(verdict.status, f"{verdict.message}; {tde}", verdict.severity)
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
    or restore it. A pass needs evidence: the attribute call, or KMS encryption (AWS refuses
    to make KMS-encrypted snapshots public, §3). An AWS owned key (sse-rds) is no such
    evidence, so those snapshots are asked like unencrypted ones."""
    r = _as_resource(subject)
    if r.snapshot_type != "manual" or r.encrypted is None:
        return None
    if r.encrypted and r.encryption_type is EncryptionType.SSE_KMS:
        return passed(f"{_label(r)} is KMS-encrypted, and AWS never lets KMS-encrypted "
                      "snapshots be public")
    share = ctx.shares.get(r.arn)
    if share is None:
        return None  # attribute call failed: recorded as an error
    if "all" in share.restore:
        what = "unencrypted" if not r.encrypted else _encryption_text(r)
        return failed(f"{_label(r)} is {what} and public: any AWS account can restore it")
    if share.restore:
        return passed(f"{_label(r)} is not public (shared with {len(share.restore)} "
                      f"account(s): {', '.join(share.restore)})")
    return passed(f"{_label(r)} is not shared")


@rule("key-unusable", title="KMS key is unusable", severity=Severity.CRITICAL,
      applies_to="every resource with a KMS key, in every key role", subjects=ENCRYPTED_TYPES)
def key_unusable(subject: Subject, ctx: Context) -> Verdict | None:
    """A KMS key the resource depends on is Disabled, PendingDeletion, PendingImport,
    PendingReplicaDeletion, Unavailable, or no longer exists. Critical for the storage key
    (RDS loses the data, immediately or at the next key use; after deletion it is gone);
    high for the Performance Insights, master user secret and activity stream keys, naming
    the function that breaks."""
    r = _as_resource(subject)
    if not ctx.judged(r):
        return None
    views = ctx.key_views(r)
    if not views:
        return None
    broken: list[tuple[KeyRole, str]] = []
    healthy = True
    for role, view in views:
        problem = _unusable(view, ctx)
        if problem is not None:
            broken.append((role, problem))
        elif not _usable(view):
            healthy = False
    if broken:
        storage = any(role is KeyRole.STORAGE for role, _ in broken)
        text = "; ".join(f"{_role_text(role)} {problem}: {role.function}"
                         for role, problem in broken)
        return failed(f"{_label(r)} depends on {text}",
                      None if storage else Severity.HIGH)
    if not healthy:
        return None  # a key that could not be described: key-unverifiable says so
    return passed("; ".join(f"{_role_text(role)} {view.arn} is "
                            f"{view.key.key_state if view.key else '?'}"
                            for role, view in views))


def _role_text(role: KeyRole) -> str:
    return _ROLE_TEXTS[role]


_ROLE_TEXTS = {KeyRole.STORAGE: "storage key",
               KeyRole.PERFORMANCE_INSIGHTS: "Performance Insights key",
               KeyRole.MASTER_USER_SECRET: "master user secret key",
               KeyRole.ACTIVITY_STREAM: "activity stream key"}


def _usable(view: KeyView) -> bool:
    key = view.key
    return (key is not None and key.lookup is KeyLookup.OK
            and key.key_state in KNOWN_KEY_STATES - UNUSABLE_KEY_STATES)


def _unusable(view: KeyView, ctx: Context) -> str | None:
    """Why the key of this view is unusable, or None (usable, or not known)."""
    key = view.key
    if key is None:
        return None
    if key.lookup is KeyLookup.NOT_FOUND:
        return (f"KMS key {key.arn}, which does not exist: data under a deleted key cannot "
                "be decrypted")
    if key.lookup is not KeyLookup.OK or key.key_state not in UNUSABLE_KEY_STATES:
        return None
    return f"KMS key {key.arn}, which is {key.key_state}{_deletion_text(key, ctx)}"


def unusable_keys(r: Resource, ctx: Context) -> list[tuple[KeyRole, KmsKey]]:
    """The keys of `r` that make it fail key-unusable, storage first (for the plan)."""
    return [(role, view.key) for role, view in ctx.key_views(r)
            if view.key is not None and _unusable(view, ctx) is not None]


def _deletion_text(key: KmsKey, ctx: Context) -> str:
    if key.key_state == "PendingReplicaDeletion":
        window = (f"its {key.pending_deletion_window_days}-day"
                  if key.pending_deletion_window_days is not None else "its")
        replicas = (f" ({len(key.replica_key_arns)} replica(s) left: "
                    f"{', '.join(key.replica_key_arns)})" if key.replica_key_arns else "")
        return (f" (a multi-Region primary scheduled for deletion: it has no deletion date "
                f"yet; {window} PendingDeletionWindowInDays countdown starts when its last "
                f"replica key is deleted{replicas})")
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
    `inaccessible-encryption-credentials` (terminal: restore from a backup). Cluster
    members are judged at their cluster: the cluster fails if it or a member is in that
    state."""
    r = _as_resource(subject)
    if not ctx.judged(r):
        return None
    members = [m for m in ctx.members_of(r) if m.status in INACCESSIBLE_STATUSES] if (
        r.type is T.DB_CLUSTER) else []
    why = INACCESSIBLE_STATUSES.get(r.status or "")
    if why is not None:
        also = (f" (member(s) {', '.join(m.id for m in members)} too)" if members else "")
        return failed(f"{_label(r)} is {r.status}: {why}{also}")
    if members:
        # Terminal before recoverable: the worse state names the work to do.
        worst = min(members, key=lambda m: m.status != "inaccessible-encryption-credentials")
        assert worst.status is not None
        return failed(f"{_label(r)}: member instance(s) "
                      f"{', '.join(f'{m.id} ({m.status})' for m in members)}: "
                      f"{INACCESSIBLE_STATUSES[worst.status]}")
    if r.status is None:
        return None
    return passed(f"{_label(r)} status is {r.status}")


@rule("key-unverifiable", title="KMS key could not be verified", severity=Severity.MEDIUM,
      applies_to="every resource with a KMS key, in every key role", subjects=ENCRYPTED_TYPES)
def key_unverifiable(subject: Subject, ctx: Context) -> Verdict | None:
    """A key the resource depends on (storage, Performance Insights, master user secret,
    activity stream) could not be described (AccessDenied, throttling, an error, or a
    KmsKeyId that resolves to no key ARN), or DescribeKey answered a KeyState or KeyManager
    rdsaudit does not know: nothing about that key can be vouched for."""
    r = _as_resource(subject)
    if not ctx.judged(r):
        return None
    views = ctx.key_views(r)
    if not views:
        return None
    problems = [(role, why) for role, view in views
                if (why := unverifiable_reason(view)) is not None]
    if problems:
        return failed(f"{_label(r)}: " + "; ".join(
            f"{_role_text(role)}: {why}" + ("" if role is KeyRole.STORAGE
                                             else f" (if it is unusable, {role.function})")
            for role, why in problems))
    return passed("; ".join(f"{_role_text(role)} {view.arn} was described"
                            for role, view in views))


def unverifiable_reason(view: KeyView) -> str | None:
    """Why the key of a view cannot be vouched for, or None."""
    if view.arn is None:
        return view.reason or "the key could not be resolved"
    key = view.key
    if key is None:
        return f"KMS key {view.arn} was not looked up"
    if key.lookup is KeyLookup.NOT_FOUND:
        return None
    if key.lookup is not KeyLookup.OK:
        return f"KMS key {key.arn} could not be described ({key.note})"
    if key.key_state not in KNOWN_KEY_STATES:
        return (f"KMS key {key.arn} has KeyState {key.key_state!r}, which rdsaudit does not "
                "know: its usability cannot be judged")
    if key.key_manager not in KNOWN_KEY_MANAGERS:
        return (f"KMS key {key.arn} has KeyManager {key.key_manager!r}, which rdsaudit does "
                "not know: who manages it cannot be judged")
    return None


@rule("key-material-expiring", title="Imported key material expires soon",
      severity=Severity.HIGH, applies_to="every resource whose key has imported material",
      subjects=ENCRYPTED_TYPES)
def key_material_expiring(subject: Subject, ctx: Context) -> Verdict | None:
    """A key the resource depends on has imported material (`Origin` EXTERNAL) whose
    `ValidTo` is within `key_material_expiry_days` (default 30): critical within 7 days.
    When it expires KMS deletes the material and the key becomes PendingImport: unusable.
    `ExpirationModel` KEY_MATERIAL_DOES_NOT_EXPIRE passes."""
    r = _as_resource(subject)
    if not ctx.judged(r):
        return None
    limit = ctx.policy.key_material_expiry_days
    expiring: list[tuple[int, str]] = []
    lasting: list[str] = []
    for role, view in ctx.key_views(r):
        key = view.key
        if key is None or key.lookup is not KeyLookup.OK or key.origin != "EXTERNAL":
            continue
        if key.expiration_model == "KEY_MATERIAL_DOES_NOT_EXPIRE":
            lasting.append(f"{_role_text(role)} {key.arn}: imported material does not expire")
            continue
        days = ctx.days_until(key.valid_to)
        if days is None:
            continue  # material pending import, or no ValidTo: nothing to count from
        if days <= limit:
            expiring.append((days, f"{_role_text(role)} {key.arn}: imported key material "
                                   f"expires on {key.valid_to} ({days} day(s) left); then "
                                   f"{role.function}"))
        else:
            lasting.append(f"{_role_text(role)} {key.arn}: imported material valid until "
                           f"{key.valid_to} ({days} days)")
    if expiring:
        soonest = min(days for days, _ in expiring)
        return failed(f"{_label(r)}: " + "; ".join(text for _, text in sorted(expiring)),
                      Severity.CRITICAL if soonest <= 7 else None)
    if lasting:
        return passed("; ".join(lasting))
    return None


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
      raised_by="minimum_key_protection above aws-managed")
def aws_managed_key(subject: Subject, ctx: Context) -> Verdict | None:
    """The key is AWS managed (`KeyManager` AWS, alias `aws/rds`): its policy cannot be
    changed, snapshots under it cannot be shared, and access cannot be revoked per team. A
    verdict of the key-protection ladder: high below the account's
    `minimum_key_protection`, low otherwise (the gap to a customer key stays visible)."""
    r = _as_resource(subject)
    if not (ctx.judged(r) and ctx.kms_encrypted(r)):
        return None
    view = ctx.key_of(r)
    if view.aws_managed is None:
        return None
    if not view.aws_managed:
        return passed(f"KMS key {view.arn} is customer managed")
    names = f" ({', '.join(view.aliases)})" if view.aliases else ""
    return failed(f"{_label(r)} is encrypted with the AWS managed key {view.arn}{names}"
                  f"{_ladder_text(r, ctx, KeyProtection.AWS_MANAGED)}",
                  _below(r, ctx, KeyProtection.AWS_MANAGED))


@rule("aws-owned-key", title="Encrypted with an AWS owned key (SSE-RDS)",
      severity=Severity.LOW, applies_to="every encrypted resource", subjects=ENCRYPTED_TYPES,
      raised_by="minimum_key_protection above aws-owned")
def aws_owned_key(subject: Subject, ctx: Context) -> Verdict | None:
    """`StorageEncryptionType` is `sse-rds`: the key is owned by AWS, outside the account;
    it cannot be described, audited in CloudTrail, or controlled. A verdict of the
    key-protection ladder: high below the account's `minimum_key_protection`, low
    otherwise."""
    r = _as_resource(subject)
    if not ctx.judged(r) or not r.encrypted or r.encryption_type is None:
        return None
    if r.encryption_type is EncryptionType.SSE_RDS:
        return failed(f"{_label(r)} is encrypted with an AWS owned key (SSE-RDS), which the "
                      "account cannot see or control"
                      f"{_ladder_text(r, ctx, KeyProtection.AWS_OWNED)}",
                      _below(r, ctx, KeyProtection.AWS_OWNED))
    return passed(f"{_label(r)} is encrypted with a KMS key in an AWS account")


@rule("key-below-external-store", title="Customer key is not in a custom key store",
      severity=Severity.HIGH, applies_to="every resource encrypted with a customer managed "
      "key, where minimum_key_protection is customer-external-store",
      subjects=ENCRYPTED_TYPES)
def key_below_external_store(subject: Subject, ctx: Context) -> Verdict | None:
    """The account's `minimum_key_protection` is `customer-external-store` and the storage
    key is customer managed but not in a custom key store (`Origin` AWS_CLOUDHSM or
    EXTERNAL_KEY_STORE); imported material (EXTERNAL) counts as a plain customer key. AWS
    managed and AWS owned keys fail their own rules."""
    r = _as_resource(subject)
    if not ctx.judged(r) or ctx.policy.minimum_for(r.account_id) < (
            KeyProtection.CUSTOMER_EXTERNAL_STORE):
        return None
    rung = ctx.protection(r)
    if rung is None or rung < KeyProtection.CUSTOMER:
        return None
    key = ctx.key_of(r).key
    if rung is KeyProtection.CUSTOMER_EXTERNAL_STORE:
        return passed(f"KMS key {ctx.key_of(r).arn} is in a custom key store "
                      f"({key.origin if key else '?'})")
    if key is None or key.lookup is not KeyLookup.OK:
        return None  # the origin is not known: key-unverifiable says so
    return failed(f"{_label(r)} is encrypted with customer key {key.arn} (Origin "
                  f"{key.origin}), but account {r.account_id} requires a key in a custom key "
                  "store (AWS_CLOUDHSM or EXTERNAL_KEY_STORE)")


def _below(r: Resource, ctx: Context, rung: KeyProtection) -> Severity | None:
    return Severity.HIGH if rung < ctx.policy.minimum_for(r.account_id) else None


def _ladder_text(r: Resource, ctx: Context, rung: KeyProtection) -> str:
    minimum = ctx.policy.minimum_for(r.account_id)
    if rung < minimum:
        return f"; below the required key protection {minimum.label}"
    return ""


@rule("key-rotation-disabled", title="Customer managed key does not rotate",
      severity=Severity.MEDIUM, applies_to="kms-key that is customer managed and used by RDS",
      subjects=(T.KMS_KEY,))
def key_rotation_disabled(subject: Subject, ctx: Context) -> Verdict | None:
    """Automatic rotation is off for a customer managed key that RDS resources use. Keys
    with imported material (Origin EXTERNAL) or in a custom key store (AWS_CLOUDHSM,
    EXTERNAL_KEY_STORE) cannot rotate automatically: no finding, and the reason is shown
    with the key. A multi-Region key is judged (and fixed) on its primary key, in the
    primary's region, listing its replicas and the resources that use any of them."""
    assert isinstance(subject, KmsKey)
    key = subject
    if key.lookup is not KeyLookup.OK or key.key_manager != "CUSTOMER":
        return None
    if key.key_state in ("PendingDeletion", "PendingReplicaDeletion"):
        return None  # rotation reads false while deletion is pending (§5): no signal
    if key.key_state not in KNOWN_KEY_STATES:
        return None  # key-unverifiable names the state
    if is_replica_key(key) or rotation_not_applicable(key) is not None:
        return None
    if key.rotation is not RotationLookup.OK or key.rotation_enabled is None:
        return None
    users = ctx.dependents(key.arn)
    names = ", ".join(sorted(f"{r.type.value} {r.id}" for r in users)[:10])
    more = f" and {len(users) - 10} more" if len(users) > 10 else ""
    replicas = (f"; multi-Region primary with replica(s) {', '.join(key.replica_key_arns)}"
                if key.replica_key_arns else "")
    if key.rotation_enabled:
        return passed(f"KMS key {key.arn} rotates automatically{replicas}")
    return failed(f"KMS key {key.arn} does not rotate automatically{replicas} "
                  f"({len(users)} RDS resource(s) use it: {names}{more})")


@rule("key-usage-not-audited", title="Use of the KMS key is not audited in CloudTrail",
      severity=Severity.MEDIUM, applies_to="kms-key that is customer managed and used by RDS",
      subjects=(T.KMS_KEY,))
def key_usage_not_audited(subject: Subject, ctx: Context) -> Verdict | None:
    """No trail that is logging covers the key's region (a multi-region or organization
    trail, or one homed there) with event selectors that record KMS read management events:
    RDS's Decrypt and GenerateDataKey calls on the key leave no audit trail. A selector that
    excludes `kms.amazonaws.com`, or logs only WriteOnly events, does not count."""
    assert isinstance(subject, KmsKey)
    key = subject
    if key.lookup is not KeyLookup.OK or key.key_manager != "CUSTOMER":
        return None
    if key.arn not in ctx.keys_in_use:
        return None
    seen = ctx.trails_seen.get((key.account_id, key.region))
    if seen is None:
        return None  # trails not listed there (another account's key, or an error)
    covering = [t for t in seen if t.multi_region or t.home_region == key.region]
    good = [t for t in covering if t.logging is True and t.logs_kms is True]
    if good:
        names = ", ".join(sorted(t.name for t in good))
        return passed(f"KMS key {key.arn}: use in {key.region} is logged by trail(s) {names}")
    if any(t.logging is None or t.logs_kms is None for t in covering):
        return None  # a trail's status or selectors could not be read: recorded as errors
    why = "; ".join(
        f"trail {t.name}: " + ("not logging" if t.logging is False else (t.note or "?"))
        for t in sorted(covering, key=lambda t: t.name)) or "no trail covers the region"
    users = len(ctx.keys_in_use.get(key.arn, ()))
    return failed(f"KMS key {key.arn} ({users} RDS resource(s) use it): no active CloudTrail "
                  f"trail logs KMS read events in {key.region} of account {key.account_id}, so "
                  f"RDS's use of the key is not audited ({why})")


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
