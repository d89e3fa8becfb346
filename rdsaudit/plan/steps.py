"""Remediation: for each failing finding, the ordered steps that fix it, with real names.

Steps are data (model.Step: the AWS CLI argument vector, title, account, region, kind); the
command text is `shlex.join(argv)`. They respect what AWS allows (docs/aws-facts.md §8):
encryption is chosen only at creation, so an instance is re-created from an encrypted
snapshot copy and an Aurora cluster is restored from its snapshot with a key, carrying the
database's own configuration (network, groups, storage, protection, monitoring); cross-region
copies need a destination-region key; a key pending deletion is cancelled, then enabled.
Deletions of what the plan replaced are `destructive` steps: the runbook runs them only after
the cut-over and only when confirmed. rdsaudit never runs any of it.

Size (~840 lines): one planner per rule, each a short function over the same step builders
(`_aws`, `_run`, `_wait`, `_manual`, `_key_step`) and key choice (`_key_for`); they are read
and reviewed together, as the rules are (Blue/Green, a whole strategy, is its own module).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from rdsaudit.arns import Arn
from rdsaudit.model import (
    Finding,
    KeyLookup,
    KeyProtection,
    KmsKey,
    Remediation,
    Resource,
    ResourceType,
    Step,
    StepKind,
)
from rdsaudit.plan.carry import carried
from rdsaudit.rules.catalogue import NO_ENCRYPTION_CLASSES, unusable_keys
from rdsaudit.rules.context import Context

DEFAULT_KEY = "alias/aws/rds"
# A class that supports encryption, for instances whose own class never did.
ENCRYPTABLE_CLASS = "db.t3.micro"


# -- step builders -----------------------------------------------------------------------

def _aws(service: str, operation: str, region: str, *args: str) -> tuple[str, ...]:
    return ("aws", service, operation, "--region", region, *args)


def _run(title: str, r: Resource, argv: tuple[str, ...], *, region: str | None = None,
         destructive: bool = False) -> Step:
    return Step(title, argv, StepKind.COMMAND, r.account_id, region or r.region, destructive)


def _wait(waiter: str, flag: str, ident: str, r: Resource, *, region: str | None = None,
          destructive: bool = False) -> Step:
    where = region or r.region
    what = "deleted" if waiter.endswith("-deleted") else "available"
    return Step(f"Wait until {ident} is {what}",
                ("aws", "rds", "wait", waiter, "--region", where, flag, ident),
                StepKind.WAIT, r.account_id, where, destructive)


def _manual(title: str, r: Resource, argv: tuple[str, ...] = ()) -> Step:
    return Step(title, argv, StepKind.MANUAL, r.account_id, r.region)


def _key_step(title: str, key_arn: str, operation: str, *,
              kind: StepKind = StepKind.COMMAND) -> Step:
    arn = Arn.parse(key_arn)
    region = arn.region if arn and arn.region else "us-east-1"
    return Step(title, _aws("kms", operation, region, "--key-id", key_arn), kind,
                arn.account if arn else None, region)


# -- target keys -------------------------------------------------------------------------

def target_key(ctx: Context, account: str, region: str) -> str | None:
    """The key to encrypt `account`'s resources of `region` with, from --target-key /
    target_keys: `ACCOUNT:REGION` entries (ACCOUNT=ARN), then the region's own key when it
    belongs to that account."""
    return key_from(ctx.policy.target_keys, account, region)


def key_from(keys: Mapping[str, str], account: str, region: str) -> str | None:
    explicit = keys.get(f"{account}:{region}")
    if explicit:
        return explicit
    key = keys.get(region)
    arn = Arn.parse(key) if key else None
    if key and arn is not None and arn.account in (account, None, ""):
        return key
    return None


def _strict(ctx: Context, account: str) -> bool:
    """A policy under which alias/aws/rds would fail the next scan (require_customer_managed_key,
    or a minimum_key_protection of customer or above for the account)."""
    return ctx.policy.require_customer_managed_key or (
        ctx.policy.minimum_for(account) >= KeyProtection.CUSTOMER)


class _NoKey(Exception):
    def __init__(self, remediation: Remediation) -> None:
        self.remediation = remediation


def _key_for(r: Resource, ctx: Context, region: str, *, customer_managed: bool,
             own_account: bool = False) -> tuple[str, str]:
    """(key, note): the key to encrypt with; raises _NoKey when the policy forbids the
    default key and none is configured."""
    key = target_key(ctx, r.account_id, region)
    if key and own_account and (Arn.parse(key) or Arn("", "", "", r.account_id, "")).account \
            != r.account_id:
        key = None
    if key:
        return key, f"Target key {key} (from --target-key or target_keys)."
    if customer_managed or _strict(ctx, r.account_id):
        example = f"arn:aws:kms:{region}:{r.account_id}:key/KEY-ID"
        line = (f"No customer managed key for account {r.account_id} in {region}: refusing to "
                f"plan with {DEFAULT_KEY}; pass --target-key {example} (or target_keys).")
        raise _NoKey(Remediation(line, (_manual(line, r),), blocked=line))
    return (DEFAULT_KEY,
            f"No target key is configured for {region}: the plan uses the account's default "
            f"RDS key ({DEFAULT_KEY}); pass --target-key to use a customer managed key.")


def _retention(r: Resource, ctx: Context) -> tuple[str, str, int]:
    # The new database keeps its backups (at least the policy's minimum, and at least one
    # day: an encrypted database without backups fails encrypted-without-backups).
    days = max(r.backup_retention or 0, ctx.policy.min_backup_retention_days, 1)
    return ("backup retention", "BackupRetentionPeriod", days)


# -- instances ---------------------------------------------------------------------------

def _replace_instance_cleanup(r: Resource, key: str, ctx: Context, replicas: list[Resource],
                              what: str) -> list[Step]:
    """Delete the old instance after the cut-over, its read replicas first, keeping its final
    snapshot only as an encrypted copy."""
    name, region = r.id, r.region
    final, final_enc = f"{name}-final", f"{name}-final-encrypted"
    steps: list[Step] = []
    for replica in replicas:
        steps += _delete_replica(replica)
    if r.deletion_protection:
        steps.append(_run(f"Turn off deletion protection on the old {name}", r, _aws(
            "rds", "modify-db-instance", region, "--db-instance-identifier", name,
            "--no-deletion-protection", "--apply-immediately"), destructive=True))
        steps.append(_wait("db-instance-available", "--db-instance-identifier", name, r,
                           destructive=True))
    steps += [
        _run(f"Delete the old {what} {name}, keeping a final snapshot {final}", r,
             _aws("rds", "delete-db-instance", region, "--db-instance-identifier", name,
                  "--final-db-snapshot-identifier", final), destructive=True),
        _wait("db-instance-deleted", "--db-instance-identifier", name, r, destructive=True),
        _wait("db-snapshot-available", "--db-snapshot-identifier", final, r, destructive=True),
        _run(f"Keep the final snapshot only as an encrypted copy {final_enc} ({key})", r,
             _aws("rds", "copy-db-snapshot", region, "--source-db-snapshot-identifier", final,
                  "--target-db-snapshot-identifier", final_enc, "--kms-key-id", key,
                  "--copy-tags"), destructive=True),
        _wait("db-snapshot-available", "--db-snapshot-identifier", final_enc, r,
              destructive=True),
        _run(f"Delete the final snapshot {final} now that its encrypted copy exists", r,
             _aws("rds", "delete-db-snapshot", region, "--db-snapshot-identifier", final),
             destructive=True),
    ]
    return steps


def _delete_replica(replica: Resource) -> list[Step]:
    # A read replica's data lives on its source: it is deleted without a final snapshot.
    return [
        _run(f"Delete the old read replica {replica.id}", replica,
             _aws("rds", "delete-db-instance", replica.region, "--db-instance-identifier",
                  replica.id, "--skip-final-snapshot"), destructive=True),
        _wait("db-instance-deleted", "--db-instance-identifier", replica.id, replica,
              destructive=True),
    ]


def _reencrypt_instance(r: Resource, ctx: Context, *, customer_managed: bool, why: str,
                        engine: str | None = None, instance_class: str | None = None,
                        own_account: bool = False) -> Remediation:
    region, name = r.region, r.id
    try:
        key, note = _key_for(r, ctx, region, customer_managed=customer_managed,
                             own_account=own_account)
    except _NoKey as no_key:
        return no_key.remediation
    snap, enc_snap, new = f"{name}-pre-encryption", f"{name}-encrypted", f"{name}-enc"
    steps: list[Step] = []
    cls = instance_class or r.instance_class
    if cls and cls.startswith(NO_ENCRYPTION_CLASSES):
        steps.append(_manual(f"{cls} does not support encryption: the new instance uses "
                             f"{ENCRYPTABLE_CLASS}; choose another class if it is too small", r))
        cls = ENCRYPTABLE_CLASS
    restore = ["--db-instance-identifier", new, "--db-snapshot-identifier", enc_snap]
    if engine:
        restore += ["--engine", engine]
    if cls:
        restore += ["--db-instance-class", cls]
    plan = carried(r, "RestoreDBInstanceFromDBSnapshot", "ModifyDBInstance",
                   extra=[_retention(r, ctx)])
    steps += [
        _run(f"Snapshot {name} (the snapshot inherits its encryption state)", r,
             _aws("rds", "create-db-snapshot", region, "--db-instance-identifier", name,
                  "--db-snapshot-identifier", snap)),
        _wait("db-snapshot-available", "--db-snapshot-identifier", snap, r),
        _run(f"Copy the snapshot, encrypting it with {key}", r,
             _aws("rds", "copy-db-snapshot", region, "--source-db-snapshot-identifier", snap,
                  "--target-db-snapshot-identifier", enc_snap, "--kms-key-id", key,
                  "--copy-tags")),
        _wait("db-snapshot-available", "--db-snapshot-identifier", enc_snap, r),
        _run(f"Restore a new encrypted instance {new} from the encrypted copy, with {name}'s "
             f"configuration ({plan.summary})", r,
             _aws("rds", "restore-db-instance-from-db-snapshot", region, *restore,
                  *plan.create)),
        _wait("db-instance-available", "--db-instance-identifier", new, r),
    ]
    if plan.modify:
        steps += [
            _run(f"Set on {new} what the restore cannot ({plan.modify_summary})", r,
                 _aws("rds", "modify-db-instance", region, "--db-instance-identifier", new,
                      *plan.modify, "--apply-immediately")),
            _wait("db-instance-available", "--db-instance-identifier", new, r),
        ]
    steps += [_manual(text, r) for text in plan.manual]
    new_arn = r.arn.rsplit(":", 1)[0] + ":" + new
    replicas = ctx.replicas_of(r)
    for replica in replicas:
        steps += _recreate_replica(replica, new, new_arn, region, ctx)
    steps.append(_manual(f"Cut applications over to {new} (or rename: modify-db-instance "
                         "--new-db-instance-identifier) and verify the data", r))
    steps.append(_run(f"Delete the intermediate snapshot {snap} (unencrypted copy of {name})"
                      if not r.encrypted else f"Delete the intermediate snapshot {snap}", r,
                      _aws("rds", "delete-db-snapshot", region, "--db-snapshot-identifier",
                           snap), destructive=True))
    what = "unencrypted instance" if not r.encrypted else "instance (old key)"
    steps += _replace_instance_cleanup(r, key, ctx, replicas, what)
    related = tuple(x for rep in replicas for x in (rep.id, rep.arn))
    return Remediation(f"{why} {note}", tuple(steps), related=related)


def _recreate_replica(replica: Resource, new_source: str, new_source_arn: str,
                      source_region: str, ctx: Context, name: str | None = None) -> list[Step]:
    name = name or f"{replica.id}-enc"
    plan = carried(replica, "CreateDBInstanceReadReplica", "ModifyDBInstance",
                   skip=("MultiAZ",) if replica.engine == "sqlserver-ex" else ())
    cls = ["--db-instance-class", replica.instance_class] if replica.instance_class and \
        not replica.instance_class.startswith(NO_ENCRYPTION_CLASSES) else []
    if replica.region == source_region:
        steps = [
            _run(f"Re-create read replica {replica.id} as {name} from {new_source} (same "
                 "region: it uses the source's key)", replica,
                 _aws("rds", "create-db-instance-read-replica", replica.region,
                      "--db-instance-identifier", name, "--source-db-instance-identifier",
                      new_source, *cls, *plan.create)),
            _wait("db-instance-available", "--db-instance-identifier", name, replica),
        ]
    else:
        try:
            key, note = _key_for(replica, ctx, replica.region, customer_managed=False,
                                 own_account=True)
        except _NoKey as no_key:
            return list(no_key.remediation.steps)
        steps = [
            _run(f"Re-create cross-region read replica {replica.id} as {name} in "
                 f"{replica.region} from {new_source}, with a key of {replica.region}. {note}",
                 replica,
                 _aws("rds", "create-db-instance-read-replica", replica.region,
                      "--db-instance-identifier", name, "--source-db-instance-identifier",
                      new_source_arn, "--source-region", source_region, "--kms-key-id", key,
                      *cls, *plan.create)),
            _wait("db-instance-available", "--db-instance-identifier", name, replica),
        ]
    if plan.modify:
        steps += [
            _run(f"Set on {name} what the replica call cannot ({plan.modify_summary})", replica,
                 _aws("rds", "modify-db-instance", replica.region, "--db-instance-identifier",
                      name, *plan.modify, "--apply-immediately")),
            _wait("db-instance-available", "--db-instance-identifier", name, replica),
        ]
    return steps + [_manual(text, replica) for text in plan.manual]


def _sqlserver_express(r: Resource, ctx: Context) -> Remediation:
    # One pass where AWS allows it: the Express snapshot is copied with the key and the
    # encrypted copy restored on an edition that supports encryption at rest (aws-facts §8.6
    # item 10: Express itself never does).
    rem = _reencrypt_instance(
        r, ctx, customer_managed=False, engine="sqlserver-web",
        instance_class=r.instance_class if r.instance_class and not r.instance_class.startswith(
            ("db.t2.", "db.t3.micro", "db.t3.small")) else "db.m5.large",
        why="SQL Server Express does not support encryption at rest: the plan changes the "
            "edition and encrypts in one pass (the snapshot copy is encrypted, the copy is "
            "restored as sqlserver-web). If RDS refuses the encrypted restore on the new "
            "edition, restore the unencrypted snapshot as sqlserver-web first, then rerun "
            "rdsaudit for that instance.")
    if rem.blocked:
        return rem
    check = _manual("Confirm the edition (sqlserver-web, -se or -ee), its licence and the "
                    "instance class (describe-orderable-db-instance-options "
                    "SupportsStorageEncryption)", r)
    return Remediation(rem.summary, (check, *rem.steps), related=rem.related)


# -- clusters ----------------------------------------------------------------------------

def _reencrypt_cluster(r: Resource, ctx: Context, *, customer_managed: bool,
                       why: str, own_account: bool = False) -> Remediation:
    region, name = r.region, r.id
    try:
        key, note = _key_for(r, ctx, region, customer_managed=customer_managed,
                             own_account=own_account)
    except _NoKey as no_key:
        return no_key.remediation
    snap, new = f"{name}-pre-encryption", f"{name}-enc"
    engine = r.engine or "aurora-mysql"
    restore = ["--db-cluster-identifier", new, "--snapshot-identifier", snap,
               "--engine", engine, "--kms-key-id", key]
    if r.engine_version:
        restore += ["--engine-version", r.engine_version]
    if r.instance_class:  # Multi-AZ DB clusters carry a cluster instance class
        restore += ["--db-cluster-instance-class", r.instance_class]
    plan = carried(r, "RestoreDBClusterFromSnapshot", "ModifyDBCluster", cluster=True,
                   extra=[_retention(r, ctx)])
    steps = [
        _run(f"Snapshot cluster {name}", r,
             _aws("rds", "create-db-cluster-snapshot", region, "--db-cluster-identifier", name,
                  "--db-cluster-snapshot-identifier", snap)),
        _wait("db-cluster-snapshot-available", "--db-cluster-snapshot-identifier", snap, r),
        _run(f"Restore an encrypted cluster {new} from the snapshot with {key}, with {name}'s "
             f"configuration ({plan.summary}); a cluster snapshot cannot be copied with a new "
             "key, the restore encrypts it", r,
             _aws("rds", "restore-db-cluster-from-snapshot", region, *restore, *plan.create)),
        _wait("db-cluster-available", "--db-cluster-identifier", new, r),
    ]
    if plan.modify:
        steps.append(_run(f"Set on {new} what the restore cannot ({plan.modify_summary})", r,
                          _aws("rds", "modify-db-cluster", region, "--db-cluster-identifier",
                               new, *plan.modify, "--apply-immediately")))
        steps.append(_wait("db-cluster-available", "--db-cluster-identifier", new, r))
    members = ctx.members_of(r)
    if not r.instance_class:  # Multi-AZ DB clusters create their own instances
        for i, member in enumerate(members, start=1):
            member_name = f"{new}-{i}"
            member_plan = carried(member, "CreateDBInstance", "ModifyDBInstance", member=True)
            steps += [
                _run(f"Re-create member {member.id} as {member_name} (the restore creates the "
                     f"cluster only) with its class {member.instance_class or 'db.r6g.large'}",
                     r, _aws("rds", "create-db-instance", region, "--db-instance-identifier",
                             member_name, "--db-cluster-identifier", new, "--engine", engine,
                             "--db-instance-class", member.instance_class or "db.r6g.large",
                             *member_plan.create)),
                _wait("db-instance-available", "--db-instance-identifier", member_name, r),
            ]
        if not members and r.members:
            steps.append(_manual(f"Re-create the members {', '.join(r.members)} of {name} "
                                 "(create-db-instance --db-cluster-identifier "
                                 f"{new}): they were not in the scan", r))
    steps += [_manual(text, r) for text in plan.manual]
    steps += [
        _manual(f"Re-create any custom endpoints of {name} on {new} "
                "(describe-db-cluster-endpoints, create-db-cluster-endpoint): they cannot be "
                "carried by a restore", r),
        _manual(f"Cut applications over to the endpoints of {new} and verify", r),
        # An unencrypted cluster snapshot cannot be encrypted by copying (aws-facts §8.2):
        # the encrypted cluster holds the data, so neither snapshot is kept.
        _run(f"Delete the intermediate cluster snapshot {snap}", r,
             _aws("rds", "delete-db-cluster-snapshot", region,
                  "--db-cluster-snapshot-identifier", snap), destructive=True),
    ]
    member_ids = [m.id for m in members] or list(r.members)
    for member_id in member_ids:
        # Aurora refuses to delete a cluster that still has instances.
        steps += [
            _run(f"Delete the old member {member_id}", r,
                 _aws("rds", "delete-db-instance", region, "--db-instance-identifier",
                      member_id, "--skip-final-snapshot"), destructive=True),
            _wait("db-instance-deleted", "--db-instance-identifier", member_id, r,
                  destructive=True),
        ]
    if r.deletion_protection:
        steps.append(_run(f"Turn off deletion protection on the old {name}", r, _aws(
            "rds", "modify-db-cluster", region, "--db-cluster-identifier", name,
            "--no-deletion-protection", "--apply-immediately"), destructive=True))
    what = "unencrypted cluster" if not r.encrypted else "cluster (old key)"
    steps += [
        _run(f"Delete the old {what} {name} (its data now lives in {new}; an unencrypted "
             "cluster snapshot could not be encrypted by copying)", r,
             _aws("rds", "delete-db-cluster", region, "--db-cluster-identifier", name,
                  "--skip-final-snapshot"), destructive=True),
        _wait("db-cluster-deleted", "--db-cluster-identifier", name, r, destructive=True),
    ]
    return Remediation(f"{why} {note}", tuple(steps), related=tuple(member_ids))


# -- snapshots ---------------------------------------------------------------------------

def _copy_snapshot(r: Resource, ctx: Context, *, customer_managed: bool,
                   why: str, own_account: bool = False) -> Remediation:
    region = r.region
    try:
        key, note = _key_for(r, ctx, region, customer_managed=customer_managed,
                             own_account=own_account)
    except _NoKey as no_key:
        return no_key.remediation
    if r.type is ResourceType.DB_CLUSTER_SNAPSHOT:
        temp = f"{_plain(r.id)}-enc-restore"
        new_snap = f"{_plain(r.id)}-encrypted"
        engine = r.engine or "aurora-mysql"
        steps: list[Step] = [
            _run(f"Restore a temporary encrypted cluster {temp} from {r.id} with {key} "
                 "(copying an unencrypted cluster snapshot with a key is an error)", r,
                 _aws("rds", "restore-db-cluster-from-snapshot", region,
                      "--db-cluster-identifier", temp, "--snapshot-identifier", r.id,
                      "--engine", engine, "--kms-key-id", key)),
            _wait("db-cluster-available", "--db-cluster-identifier", temp, r),
            _run(f"Snapshot the encrypted cluster as {new_snap}", r,
                 _aws("rds", "create-db-cluster-snapshot", region, "--db-cluster-identifier",
                      temp, "--db-cluster-snapshot-identifier", new_snap)),
            _wait("db-cluster-snapshot-available", "--db-cluster-snapshot-identifier",
                  new_snap, r),
            _run(f"Delete the temporary cluster {temp} (it has no instances)", r,
                 _aws("rds", "delete-db-cluster", region, "--db-cluster-identifier", temp,
                      "--skip-final-snapshot")),
            _wait("db-cluster-deleted", "--db-cluster-identifier", temp, r),
        ]
        if r.snapshot_type == "manual":
            steps.append(_run(f"Delete the old snapshot {r.id} now that {new_snap} exists", r,
                              _aws("rds", "delete-db-cluster-snapshot", region,
                                   "--db-cluster-snapshot-identifier", r.id),
                              destructive=True))
        else:
            steps.append(_expires(r))
        return Remediation(f"{why} {note}", tuple(steps))
    new_snap = f"{_plain(r.id)}-encrypted"
    steps = [
        _run(f"Copy {r.id} to {new_snap}, encrypted with {key}", r,
             _aws("rds", "copy-db-snapshot", region, "--source-db-snapshot-identifier", r.id,
                  "--target-db-snapshot-identifier", new_snap, "--kms-key-id", key,
                  "--copy-tags")),
        _wait("db-snapshot-available", "--db-snapshot-identifier", new_snap, r),
    ]
    if r.snapshot_type == "manual":
        what = "unencrypted snapshot" if not r.encrypted else "snapshot (old key)"
        steps.append(_run(f"Delete the {what} {r.id} now that {new_snap} exists", r,
                          _aws("rds", "delete-db-snapshot", region,
                               "--db-snapshot-identifier", r.id), destructive=True))
    else:
        steps.append(_expires(r))
    return Remediation(f"{why} {note}", tuple(steps))


def _expires(r: Resource) -> Step:
    return _manual(f"{r.snapshot_type} snapshots cannot be deleted by hand; they expire with "
                   f"their retention (or go with {r.source_id} when it is deleted): encrypt "
                   f"{r.source_id} so new ones are encrypted", r)


def _plain(snapshot_id: str) -> str:
    # Automated snapshots are named "rds:<db>-<date>"; a copy's name may not contain ":".
    return snapshot_id.replace("rds:", "").replace(":", "-")


def _reencrypt(r: Resource, ctx: Context, *, customer_managed: bool, why: str,
               own_account: bool = False) -> Remediation:
    if r.type is ResourceType.DB_INSTANCE:
        source = ctx.replica_source(r)
        if source is not None or r.replica_source:
            return _replica_follows(r, ctx, source)
        return _reencrypt_instance(r, ctx, customer_managed=customer_managed, why=why,
                                   own_account=own_account)
    if r.type is ResourceType.DB_CLUSTER:
        return _reencrypt_cluster(r, ctx, customer_managed=customer_managed, why=why,
                                  own_account=own_account)
    if r.type in (ResourceType.DB_SNAPSHOT, ResourceType.DB_CLUSTER_SNAPSHOT):
        return _copy_snapshot(r, ctx, customer_managed=customer_managed, why=why,
                              own_account=own_account)
    return Remediation(f"{why} Automated backups follow their database: re-encrypt "
                       f"{r.source_id}; this backup expires with its retention period.")


def _replica_follows(r: Resource, ctx: Context, source: Resource | None) -> Remediation:
    if source is not None:
        return Remediation(f"{r.id} is a read replica of {source.id}: encrypt the source; the "
                           "replica is re-created from the encrypted source and this one "
                           "deleted (see the source's finding).")
    where = Arn.parse(r.replica_source or "")
    region = where.region if where and where.region else "a region outside the scan"
    return Remediation(
        f"{r.id} is a read replica of {r.replica_source}, in {region}, outside the scan: "
        "encrypt the source first, then re-create this replica from it.",
        (_manual(f"Encrypt the source {r.replica_source} in {region} (scan that region with "
                 "rdsaudit for its exact plan)", r),
         _manual(f"Re-create {r.id} from the encrypted source (create-db-instance-read-replica "
                 f"--source-db-instance-identifier <new source ARN> --source-region {region} "
                 f"--kms-key-id <key of {r.region}>), cut readers over, then delete {r.id}",
                 r)))


# -- per rule ----------------------------------------------------------------------------

def _instance_unencrypted(r: Resource, ctx: Context) -> Remediation:
    source = ctx.replica_source(r)
    if source is not None or r.replica_source:
        return _replica_follows(r, ctx, source)
    if r.engine == "sqlserver-ex":
        return _sqlserver_express(r, ctx)
    return _reencrypt_instance(r, ctx, customer_managed=False,
                               why="Encryption can only be chosen at creation: re-create the "
                               "instance from an encrypted snapshot copy.")


def _cluster_unencrypted(r: Resource, ctx: Context) -> Remediation:
    return _reencrypt_cluster(r, ctx, customer_managed=False,
                              why="An unencrypted cluster cannot be encrypted in place: restore "
                              "its snapshot into a new cluster with a KMS key.")


def _snapshot_unencrypted(r: Resource, ctx: Context) -> Remediation:
    return _copy_snapshot(r, ctx, customer_managed=False,
                          why="Make an encrypted copy; snapshots of an unencrypted database "
                          "stay unencrypted.")


def _backup_unencrypted(r: Resource, ctx: Context) -> Remediation:
    steps: list[Step] = []
    if r.status == "retained":
        cluster = r.arn.split(":")[5:6] == ["cluster-auto-backup"] or (
            r.resource_id or "").startswith("cluster-")
        if cluster:
            # Cluster automated backups have their own API, keyed by the cluster's resource id.
            rid = r.resource_id or r.id
            argv = _aws("rds", "delete-db-cluster-automated-backup", r.region,
                        "--db-cluster-resource-id", rid)
        else:
            argv = _aws("rds", "delete-db-instance-automated-backup", r.region,
                        "--db-instance-automated-backups-arn", r.arn)
        steps.append(_manual(f"If the retained backup of deleted {r.source_id} is still "
                             "needed, restore it to a point in time under a KMS key first",
                             r))
        steps.append(_run(f"Delete the retained unencrypted backup of deleted {r.source_id}", r,
                          argv, destructive=True))
        return Remediation(f"{r.source_id} was deleted and its automated backups are retained "
                           "unencrypted: delete them once they are no longer needed.",
                           tuple(steps), related=(r.resource_id,) if r.resource_id else ())
    return Remediation(f"Automated backups inherit the encryption of {r.source_id}: encrypt "
                       "the database (see its finding); new backups are then encrypted, and "
                       "these go with the old database.")


def _snapshot_public(r: Resource, ctx: Context) -> Remediation:
    if r.type is ResourceType.DB_CLUSTER_SNAPSHOT:
        argv = _aws("rds", "modify-db-cluster-snapshot-attribute", r.region,
                    "--db-cluster-snapshot-identifier", r.id, "--attribute-name", "restore",
                    "--values-to-remove", "all")
    else:
        argv = _aws("rds", "modify-db-snapshot-attribute", r.region, "--db-snapshot-identifier",
                    r.id, "--attribute-name", "restore", "--values-to-remove", "all")
    return Remediation("Stop sharing the snapshot publicly, then encrypt it (see its "
                       "unencrypted-snapshot finding).",
                       (_run(f"Remove public access from {r.id}", r, argv),))


def _restart(r: Resource) -> Step:
    if r.type is ResourceType.DB_CLUSTER:
        return _run(f"Start {r.id} within the seven-day recoverable window", r,
                    _aws("rds", "start-db-cluster", r.region, "--db-cluster-identifier", r.id))
    return _run(f"Start {r.id} within the seven-day recoverable window", r,
                _aws("rds", "start-db-instance", r.region, "--db-instance-identifier", r.id))


def _key_steps(key_arn: str, key: KmsKey | None) -> list[Step]:
    state = key.key_state if key else None
    arn = Arn.parse(key_arn)
    where = f" (in account {arn.account}, which owns the key)" if arn else ""
    enable = _key_step(f"Enable the key{where}", key_arn, "enable-key")
    # While deletion is pending the rotation status reads false; cancelled, it returns to
    # its own value, which the scan could not see (aws-facts §5): turn it on again, where
    # automatic rotation applies (a customer managed symmetric key in KMS, on the primary).
    rotate = [_key_step(f"Turn automatic rotation on again{where} (its setting could not be "
                        "read while deletion was pending)", key_arn, "enable-key-rotation")
              ] if key is not None and key.key_manager == "CUSTOMER" and key.origin in (
                  None, "AWS_KMS") and key.custom_key_store_type is None and (
                  key.primary_key_arn in (None, key_arn)) else []
    if state == "PendingDeletion":
        return [_key_step(f"Cancel the scheduled deletion before its date{where}; the key "
                          "becomes Disabled", key_arn, "cancel-key-deletion"), enable, *rotate]
    if state == "PendingReplicaDeletion":
        days = key.pending_deletion_window_days if key else None
        window = f"{days}-day " if days else ""
        return [_key_step(f"Cancel the deletion of this multi-Region primary key{where}: it "
                          "waits for its replica keys to be deleted, and its "
                          f"{window}PendingDeletionWindowInDays countdown starts when the last "
                          "replica is deleted; cancelled, the key becomes Disabled",
                          key_arn, "cancel-key-deletion"), enable, *rotate]
    if state == "Disabled":
        return [enable]
    if state == "PendingImport":
        return [Step(f"Import the key material again{where} (aws kms get-parameters-for-import, "
                     "then import-key-material)", (), StepKind.MANUAL,
                     arn.account if arn else None, arn.region if arn else None)]
    if state == "Unavailable":
        return [Step(f"Reconnect the custom key store that holds the key{where} "
                     "(aws kms connect-custom-key-store)", (), StepKind.MANUAL,
                     arn.account if arn else None, arn.region if arn else None)]
    return [Step(f"Bring the key back to Enabled{where}", (), StepKind.MANUAL,
                 arn.account if arn else None, arn.region if arn else None)]


def _restore_elsewhere(r: Resource, why: str) -> Step:
    api = ("restore-db-cluster-to-point-in-time or restore-db-cluster-from-snapshot"
           if r.type is ResourceType.DB_CLUSTER else
           "restore-db-instance-to-point-in-time or restore-db-instance-from-db-snapshot")
    return _manual(f"{why}: restore {r.id} from a backup or snapshot under a usable key "
                   f"({api}), cut over, then delete {r.id}", r)


def _key_unusable(r: Resource, ctx: Context) -> Remediation:
    broken = unusable_keys(r, ctx)
    assert broken
    if len(broken) > 1 or broken[0][1].lookup is not KeyLookup.NOT_FOUND:
        steps = [step for _, k in broken for step in (
            _key_steps(k.arn, k) if k.lookup is not KeyLookup.NOT_FOUND else
            [_manual(f"Key {k.arn} no longer exists: configure {r.id} to use another key for "
                     "that function", r)])]
        if r.status == "inaccessible-encryption-credentials-recoverable":
            steps.append(_restart(r))
        elif r.status == "inaccessible-encryption-credentials":
            steps.append(_restore_elsewhere(r, "The database is in the terminal state"))
        names = ", ".join(f"{k.arn} ({role.value})" for role, k in broken)
        return Remediation(f"Make KMS key(s) {names} usable again before RDS loses access "
                           "for good.", tuple(steps),
                           related=tuple(k.arn for _, k in broken))
    key = broken[0][1]
    if key.lookup is KeyLookup.NOT_FOUND:
        return Remediation(
            "The key no longer exists: data encrypted under it cannot be decrypted, and there "
            "is no key to enable. Restore from a backup or snapshot encrypted under another key.",
            (_restore_elsewhere(r, "The key is gone"),))
    steps = _key_steps(key.arn, key)
    if r.status == "inaccessible-encryption-credentials-recoverable":
        steps.append(_restart(r))
    elif r.status == "inaccessible-encryption-credentials":
        steps.append(_restore_elsewhere(r, "The database is in the terminal state"))
    return Remediation(f"Make KMS key {key.arn} usable again before RDS loses access for good.",
                       tuple(steps))


def _credentials_inaccessible(r: Resource, ctx: Context) -> Remediation:
    view = ctx.key_of(r)
    if view.key is not None and view.key.lookup is KeyLookup.NOT_FOUND:
        return Remediation(
            "The database lost access to a key that no longer exists: it cannot be recovered "
            "with that key. Restore from a backup or snapshot encrypted under another key.",
            (_restore_elsewhere(r, "The key is gone"),))
    steps = _key_steps(view.arn, view.key) if view.arn else [
        _manual("Restore RDS's access to the KMS key (key state, key policy, grants)", r)]
    if r.status == "inaccessible-encryption-credentials-recoverable":
        steps.append(_restart(r))
        return Remediation("Restore access to the key, then start the database within seven "
                           "days of losing access.", tuple(steps))
    steps.append(_restore_elsewhere(r, "The terminal state cannot be left by starting the "
                                       "database, even once the key is usable again"))
    return Remediation("The database is in the terminal state: make the key usable, then "
                       "restore from a backup.", tuple(steps))


def _key_unverifiable(r: Resource, ctx: Context) -> Remediation:
    view = ctx.key_of(r)
    if view.arn is None:
        return Remediation(f"Find which key {r.id} uses ({view.reason}) and rerun rdsaudit.")
    arn = Arn.parse(view.arn)
    owner = arn.account if arn else "the key's account"
    return Remediation(
        f"Allow the auditing role kms:DescribeKey and kms:GetKeyRotationStatus on {view.arn} "
        f"in the key policy (account {owner}), then rerun rdsaudit.",
        (_key_step(f"Check the key and its policy from account {owner}", view.arn,
                   "describe-key", kind=StepKind.CHECK),))


def _material_expiring(r: Resource, ctx: Context) -> Remediation:
    keys = sorted({view.key.arn for _, view in ctx.key_views(r)
                   if view.key is not None and view.key.origin == "EXTERNAL"})
    steps = tuple(Step(f"Re-import the same key material into {arn} with a later ValidTo, or "
                       "with --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE (aws kms "
                       "get-parameters-for-import, then import-key-material)", (),
                       StepKind.MANUAL, (Arn.parse(arn) or Arn("", "", "", r.account_id, "")
                                         ).account, r.region)
                  for arn in keys)
    return Remediation("Re-import the key material before it expires: once it does, KMS "
                       "deletes it and every resource under the key loses access.", steps)


def _without_backups(r: Resource, ctx: Context) -> Remediation:
    days = max(7, ctx.policy.min_backup_retention_days)
    op, flag = (("modify-db-cluster", "--db-cluster-identifier")
                if r.type is ResourceType.DB_CLUSTER
                else ("modify-db-instance", "--db-instance-identifier"))
    return Remediation(
        "Turn on automated backups: if the key is ever lost, a backup is the only way back.",
        (_run(f"Keep {days} days of automated backups for {r.id}", r,
              _aws("rds", op, r.region, flag, r.id, "--backup-retention-period", str(days),
                   "--apply-immediately")),))


def _replica_mismatch(r: Resource, ctx: Context) -> Remediation:
    source = ctx.replica_source(r)
    assert source is not None
    new = f"{r.id}-new"
    steps = _recreate_replica(r, source.id if source.region == r.region else source.arn,
                              source.arn, source.region, ctx, name=new)
    steps += [_manual(f"Point readers at {new}", r), *_delete_replica(r)]
    return Remediation("A replica's encryption and key follow its source only when it is "
                       "created: re-create it from the source.", tuple(steps),
                       related=(source.id, source.arn))


def _rotation(key_arn: str, ctx: Context) -> Remediation:
    key = ctx.keys.get(key_arn)
    primary = key.primary_key_arn if key and key.primary_key_arn else key_arn
    if primary != key_arn:
        # Rotation of a multi-Region key is set on its primary, in the primary's region.
        return Remediation(
            f"{key_arn} is a multi-Region replica key: its rotation follows the primary key "
            f"{primary}; turn on automatic yearly rotation there.",
            (_key_step(f"Enable automatic rotation on the primary key {primary}", primary,
                       "enable-key-rotation"),), related=(primary,))
    return Remediation("Turn on automatic yearly rotation of the key.",
                       (_key_step("Enable automatic rotation", key_arn,
                                  "enable-key-rotation"),))


def _wrong_key(why: str, *, customer_managed: bool, own_account: bool = False) -> Planner:
    def planner(r: Resource, ctx: Context) -> Remediation:
        return _reencrypt(r, ctx, customer_managed=customer_managed, why=why,
                          own_account=own_account)
    return planner


Planner = Callable[[Resource, Context], Remediation]

PLANNERS: dict[str, Planner] = {
    "instance-unencrypted": _instance_unencrypted,
    "cluster-unencrypted": _cluster_unencrypted,
    "snapshot-unencrypted": _snapshot_unencrypted,
    "cluster-snapshot-unencrypted": _snapshot_unencrypted,
    "automated-backup-unencrypted": _backup_unencrypted,
    "snapshot-public": _snapshot_public,
    "key-unusable": _key_unusable,
    "encryption-credentials-inaccessible": _credentials_inaccessible,
    "key-unverifiable": _key_unverifiable,
    "encrypted-without-backups": _without_backups,
    "key-material-expiring": _material_expiring,
    "replica-encryption-mismatch": _replica_mismatch,
    "replica-key-mismatch": _replica_mismatch,
    "key-region-mismatch": _wrong_key(
        "Re-encrypt under a key of the resource's region: the key of a resource cannot "
        "change in place.", customer_managed=False),
    "aws-managed-key": _wrong_key(
        "Re-encrypt under a customer managed key: the key of a resource cannot change in "
        "place.", customer_managed=True),
    "aws-owned-key": _wrong_key(
        "Re-encrypt under a customer managed key (restore with --kms-key-id).",
        customer_managed=True),
    "key-below-external-store": _wrong_key(
        "Re-encrypt under a customer key in a custom key store (AWS CloudHSM or an external "
        "key store); set target_keys to that key for this region.", customer_managed=True),
    "cross-account-key": _wrong_key("Re-encrypt under a key this account owns.",
                                    customer_managed=True, own_account=True),
}


def _audit_key_use(key_arn: str) -> Remediation:
    """Manual steps: a trail needs a bucket (and often an organization-wide decision) that
    rdsaudit cannot choose, so the commands are hints for a person, never runbook lines."""
    arn = Arn.parse(key_arn)
    region = arn.region if arn and arn.region else "us-east-1"
    account = arn.account if arn else None

    def hint(title: str, argv: tuple[str, ...]) -> Step:
        return Step(title, argv, StepKind.MANUAL, account, region)

    return Remediation(
        "Log KMS management events, reads included, with a trail that covers the key's "
        "region (a multi-region trail, or the organization trail; docs/aws-facts.md §11).",
        (hint("Create a multi-region trail into a bucket of your choice (or fix the event "
              "selectors of the existing trail)",
              _aws("cloudtrail", "create-trail", region, "--name", "rdsaudit-kms",
                   "--s3-bucket-name", "BUCKET", "--is-multi-region-trail")),
         hint("Log all management events, including KMS read events (Decrypt)",
              _aws("cloudtrail", "put-event-selectors", region, "--trail-name",
                   "rdsaudit-kms", "--event-selectors",
                   '[{"ReadWriteType":"All","IncludeManagementEvents":true}]')),
         hint("Start logging", _aws("cloudtrail", "start-logging", region, "--name",
                                    "rdsaudit-kms"))))


STRATEGIES = ("snapshot", "blue-green")


def remediation_for(finding: Finding, ctx: Context, strategy: str = "snapshot"
                    ) -> Remediation | None:
    """The plan of a failing finding. `strategy` blue-green re-creates instances and
    clusters through a Blue/Green deployment where it applies (else the snapshot path,
    saying why); the snapshot path is the default and works everywhere."""
    if finding.rule_id == "key-rotation-disabled":
        return _rotation(finding.resource.arn, ctx)
    if finding.rule_id == "key-usage-not-audited":
        return _audit_key_use(finding.resource.arn)
    planner = PLANNERS.get(finding.rule_id)
    resource = ctx.by_arn.get(finding.resource.arn)
    if planner is None or resource is None:
        return None
    if strategy == "blue-green" and finding.rule_id in REENCRYPTING:
        from rdsaudit.plan.bluegreen import blue_green, with_fallback

        rem = blue_green(resource, ctx, finding.rule_id) or with_fallback(
            planner(resource, ctx), resource, ctx)
    else:
        rem = planner(resource, ctx)
    if finding.rule_id in REENCRYPTING:
        # Recorded so `rdsaudit plan` can re-plan from the report alone.
        rem = replace(rem, target_key=target_key(ctx, resource.account_id, resource.region),
                      customer_key_required=_strict(ctx, resource.account_id),
                      strategy=rem.strategy or ("snapshot" if _recreates(rem) else None))
    return rem


# Rules whose plan re-creates or copies the resource under a key.
REENCRYPTING = frozenset({
    "instance-unencrypted", "cluster-unencrypted", "snapshot-unencrypted",
    "cluster-snapshot-unencrypted", "key-region-mismatch", "aws-managed-key",
    "aws-owned-key", "key-below-external-store", "cross-account-key",
    "replica-encryption-mismatch", "replica-key-mismatch"})


def _recreates(rem: Remediation) -> bool:
    return any(s.argv[2:3] in (("restore-db-instance-from-db-snapshot",),
                               ("restore-db-cluster-from-snapshot",), ("copy-db-snapshot",),
                               ("create-db-instance-read-replica",))
               for s in rem.steps if s.kind is StepKind.COMMAND)
