"""Remediation: for each failing finding, the ordered steps that fix it, with real names.

Steps are structured first (title, command, manual); the AWS CLI text is their rendering.
They respect what AWS allows (docs/aws-facts.md §8): encryption is chosen only at
creation, so an instance is re-created from an encrypted snapshot copy; an Aurora cluster
is restored from its snapshot with a key; cross-region copies need a destination-region
key; a key pending deletion is cancelled, then enabled. rdsaudit never runs any of it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from rdsaudit.arns import Arn
from rdsaudit.model import Finding, KeyLookup, Remediation, Resource, ResourceType, Step
from rdsaudit.rules.catalogue import NO_ENCRYPTION_CLASSES, unusable_keys
from rdsaudit.rules.context import Context

DEFAULT_KEY = "alias/aws/rds"
TARGET_KEY_VARIABLE = "${TARGET_KEY_ARN}"


def _q(value: str) -> str:
    return shlex.quote(value)


def _key(key: str) -> str:
    """A key for --kms-key-id: quoted, except the placeholder the runbook's header checks."""
    return f'"{key}"' if key == TARGET_KEY_VARIABLE else _q(key)


def _cmd(*parts: str) -> str:
    return " ".join(parts)


def _wait(what: str, flag: str, ident: str, region: str) -> Step:
    return Step(f"Wait until {ident} is available",
                _cmd("aws rds wait", what, "--region", _q(region), flag, _q(ident)))


def _target_key(ctx: Context, region: str, *, customer_managed: bool) -> tuple[str, str]:
    """(key, note): the key to encrypt with in `region`, and what the plan says about it."""
    key = ctx.policy.target_keys.get(region)
    if key:
        return key, f"Target key {key} (from --target-key or target_keys)."
    if customer_managed:
        return (TARGET_KEY_VARIABLE,
                f"No target key is configured for {region}: set TARGET_KEY_ARN to a customer "
                "managed key of that region, or pass --target-key.")
    return (DEFAULT_KEY,
            f"No target key is configured for {region}: the plan uses the account's default "
            f"RDS key ({DEFAULT_KEY}); pass --target-key to use a customer managed key.")


def _reencrypt_instance(r: Resource, ctx: Context, *, customer_managed: bool,
                        why: str) -> Remediation:
    region, name = r.region, r.id
    key, note = _target_key(ctx, region, customer_managed=customer_managed)
    snap, enc_snap, new = f"{name}-pre-encryption", f"{name}-encrypted", f"{name}-enc"
    steps: list[Step] = []
    restore = ["aws rds restore-db-instance-from-db-snapshot", "--region", _q(region),
               "--db-instance-identifier", _q(new), "--db-snapshot-identifier", _q(enc_snap)]
    if r.instance_class and r.instance_class.startswith(NO_ENCRYPTION_CLASSES):
        steps.append(Step(f"Choose an instance class that supports encryption: {r.instance_class}"
                          " never did (for example db.t3.micro or db.m5.large)", manual=True))
        restore += ["--db-instance-class", "db.t3.micro"]
    elif r.instance_class:
        restore += ["--db-instance-class", _q(r.instance_class)]
    steps += [
        Step(f"Snapshot {name} (the snapshot inherits its encryption state)",
             _cmd("aws rds create-db-snapshot --region", _q(region), "--db-instance-identifier",
                  _q(name), "--db-snapshot-identifier", _q(snap))),
        _wait("db-snapshot-available", "--db-snapshot-identifier", snap, region),
        Step(f"Copy the snapshot, encrypting it with {key}",
             _cmd("aws rds copy-db-snapshot --region", _q(region),
                  "--source-db-snapshot-identifier", _q(snap),
                  "--target-db-snapshot-identifier", _q(enc_snap), "--kms-key-id", _key(key),
                  "--copy-tags")),
        _wait("db-snapshot-available", "--db-snapshot-identifier", enc_snap, region),
        Step(f"Restore a new encrypted instance {new} from the encrypted copy (add your subnet "
             "group, security groups, parameter and option groups)", _cmd(*restore)),
        _wait("db-instance-available", "--db-instance-identifier", new, region),
    ]
    new_arn = r.arn.rsplit(":", 1)[0] + ":" + new
    for replica in ctx.replicas_of(r):
        steps += _recreate_replica(replica, new, new_arn, region, ctx)
    steps += [
        Step(f"Cut applications over to {new} (or rename: modify-db-instance "
             "--new-db-instance-identifier) and verify the data", manual=True),
        Step(f"After verification, delete the old unencrypted instance {name} and its replicas",
             _cmd("aws rds delete-db-instance --region", _q(region), "--db-instance-identifier",
                  _q(name), "--final-db-snapshot-identifier", _q(f"{name}-final")),
             manual=True),
    ]
    return Remediation(f"{why} {note}", tuple(steps))


def _recreate_replica(replica: Resource, new_source: str, new_source_arn: str,
                      source_region: str, ctx: Context) -> list[Step]:
    name = f"{replica.id}-enc"
    if replica.region == source_region:
        return [
            Step(f"Re-create read replica {replica.id} from the encrypted primary (same region: "
                 "it uses the primary's key)",
                 _cmd("aws rds create-db-instance-read-replica --region", _q(replica.region),
                      "--db-instance-identifier", _q(name),
                      "--source-db-instance-identifier", _q(new_source))),
            _wait("db-instance-available", "--db-instance-identifier", name, replica.region),
        ]
    key, note = _target_key(ctx, replica.region, customer_managed=False)
    return [
        Step(f"Re-create cross-region read replica {replica.id} in {replica.region} from the "
             f"encrypted primary, with a key of {replica.region}. {note}",
             _cmd("aws rds create-db-instance-read-replica --region", _q(replica.region),
                  "--db-instance-identifier", _q(name), "--source-db-instance-identifier",
                  _q(new_source_arn), "--source-region", _q(source_region),
                  "--kms-key-id", _key(key))),
        _wait("db-instance-available", "--db-instance-identifier", name, replica.region),
    ]


def _sqlserver_express(r: Resource, ctx: Context) -> Remediation:
    region, name = r.region, r.id
    snap, new = f"{name}-edition-change", f"{name}-web"
    steps = (
        Step("Choose a SQL Server edition that supports encryption at rest (sqlserver-web, "
             "sqlserver-se or sqlserver-ee) and its licence and instance class", manual=True),
        Step(f"Snapshot {name}",
             _cmd("aws rds create-db-snapshot --region", _q(region), "--db-instance-identifier",
                  _q(name), "--db-snapshot-identifier", _q(snap))),
        _wait("db-snapshot-available", "--db-snapshot-identifier", snap, region),
        Step(f"Restore it as a new instance {new} on the chosen edition",
             _cmd("aws rds restore-db-instance-from-db-snapshot --region", _q(region),
                  "--db-instance-identifier", _q(new), "--db-snapshot-identifier", _q(snap),
                  "--engine sqlserver-web --db-instance-class db.m5.large")),
        _wait("db-instance-available", "--db-instance-identifier", new, region),
        Step(f"Then encrypt {new} like any other instance: snapshot, copy-db-snapshot "
             "--kms-key-id, restore (rerun rdsaudit for the exact commands)", manual=True),
    )
    return Remediation(
        "SQL Server Express does not support encryption at rest: the edition must change "
        "before the instance can be encrypted; a snapshot copy alone cannot encrypt it.", steps)


def _reencrypt_cluster(r: Resource, ctx: Context, *, customer_managed: bool,
                       why: str) -> Remediation:
    region, name = r.region, r.id
    key, note = _target_key(ctx, region, customer_managed=customer_managed)
    snap, new = f"{name}-pre-encryption", f"{name}-enc"
    engine = r.engine or "aurora-mysql"
    restore = ["aws rds restore-db-cluster-from-snapshot --region", _q(region),
               "--db-cluster-identifier", _q(new), "--snapshot-identifier", _q(snap),
               "--engine", _q(engine), "--kms-key-id", _key(key)]
    if r.instance_class:  # Multi-AZ DB clusters carry a cluster instance class
        restore += ["--db-cluster-instance-class", _q(r.instance_class)]
    steps = [
        Step(f"Snapshot cluster {name}",
             _cmd("aws rds create-db-cluster-snapshot --region", _q(region),
                  "--db-cluster-identifier", _q(name), "--db-cluster-snapshot-identifier",
                  _q(snap))),
        _wait("db-cluster-snapshot-available", "--db-cluster-snapshot-identifier", snap, region),
        Step(f"Restore an encrypted cluster {new} from the snapshot with {key} (a cluster "
             "snapshot cannot be copied with a new key; the restore encrypts it)",
             _cmd(*restore)),
        _wait("db-cluster-available", "--db-cluster-identifier", new, region),
    ]
    for i, member in enumerate(ctx.members_of(r), start=1):
        if r.instance_class:
            break  # Multi-AZ DB clusters create their own instances
        member_name = f"{new}-{i}"
        steps += [
            Step(f"Re-create member {member.id} as {member_name} (the restore creates the "
                 "cluster only)",
                 _cmd("aws rds create-db-instance --region", _q(region), "--db-instance-identifier",
                      _q(member_name), "--db-cluster-identifier", _q(new), "--engine",
                      _q(engine), "--db-instance-class",
                      _q(member.instance_class or "db.r6g.large"))),
            _wait("db-instance-available", "--db-instance-identifier", member_name, region),
        ]
    steps += [
        Step(f"Cut applications over to the endpoints of {new} and verify", manual=True),
        Step(f"After verification, delete the old cluster {name} and its instances",
             _cmd("aws rds delete-db-cluster --region", _q(region), "--db-cluster-identifier",
                  _q(name), "--final-db-snapshot-identifier", _q(f"{name}-final")),
             manual=True),
    ]
    return Remediation(f"{why} {note}", tuple(steps))


def _copy_snapshot(r: Resource, ctx: Context, *, customer_managed: bool,
                   why: str) -> Remediation:
    region = r.region
    key, note = _target_key(ctx, region, customer_managed=customer_managed)
    if r.type is ResourceType.DB_CLUSTER_SNAPSHOT:
        temp = f"{_plain(r.id)}-enc-restore"
        new_snap = f"{_plain(r.id)}-encrypted"
        engine = r.engine or "aurora-mysql"
        steps = (
            Step(f"Restore a temporary encrypted cluster {temp} from {r.id} with {key} (copying "
                 "an unencrypted cluster snapshot with a key is an error)",
                 _cmd("aws rds restore-db-cluster-from-snapshot --region", _q(region),
                      "--db-cluster-identifier", _q(temp), "--snapshot-identifier", _q(r.id),
                      "--engine", _q(engine), "--kms-key-id", _key(key))),
            _wait("db-cluster-available", "--db-cluster-identifier", temp, region),
            Step(f"Snapshot the encrypted cluster as {new_snap}",
                 _cmd("aws rds create-db-cluster-snapshot --region", _q(region),
                      "--db-cluster-identifier", _q(temp), "--db-cluster-snapshot-identifier",
                      _q(new_snap))),
            _wait("db-cluster-snapshot-available", "--db-cluster-snapshot-identifier", new_snap,
                  region),
            Step(f"Delete the temporary cluster {temp}",
                 _cmd("aws rds delete-db-cluster --region", _q(region), "--db-cluster-identifier",
                      _q(temp), "--skip-final-snapshot"), manual=True),
            Step(f"After verification, delete the old snapshot {r.id}",
                 _cmd("aws rds delete-db-cluster-snapshot --region", _q(region),
                      "--db-cluster-snapshot-identifier", _q(r.id)), manual=True),
        )
        return Remediation(f"{why} {note}", steps)
    new_snap = f"{_plain(r.id)}-encrypted"
    steps_list = [
        Step(f"Copy {r.id} to {new_snap}, encrypted with {key}",
             _cmd("aws rds copy-db-snapshot --region", _q(region),
                  "--source-db-snapshot-identifier", _q(r.id),
                  "--target-db-snapshot-identifier", _q(new_snap), "--kms-key-id", _key(key),
                  "--copy-tags")),
        _wait("db-snapshot-available", "--db-snapshot-identifier", new_snap, region),
    ]
    if r.snapshot_type == "manual":
        steps_list.append(Step(f"After verification, delete the unencrypted snapshot {r.id}",
                               _cmd("aws rds delete-db-snapshot --region", _q(region),
                                    "--db-snapshot-identifier", _q(r.id)), manual=True))
    else:
        steps_list.append(Step(f"{r.snapshot_type} snapshots expire with their retention; "
                               f"encrypt the source {r.source_id} so new ones are encrypted",
                               manual=True))
    return Remediation(f"{why} {note}", tuple(steps_list))


def _plain(snapshot_id: str) -> str:
    # Automated snapshots are named "rds:<db>-<date>"; a copy's name may not contain ":".
    return snapshot_id.replace("rds:", "").replace(":", "-")


def _reencrypt(r: Resource, ctx: Context, *, customer_managed: bool, why: str) -> Remediation:
    if r.type is ResourceType.DB_INSTANCE:
        return _reencrypt_instance(r, ctx, customer_managed=customer_managed, why=why)
    if r.type is ResourceType.DB_CLUSTER:
        return _reencrypt_cluster(r, ctx, customer_managed=customer_managed, why=why)
    if r.type in (ResourceType.DB_SNAPSHOT, ResourceType.DB_CLUSTER_SNAPSHOT):
        return _copy_snapshot(r, ctx, customer_managed=customer_managed, why=why)
    return Remediation(f"{why} Automated backups follow their database: re-encrypt "
                       f"{r.source_id}; this backup expires with its retention period.")


# -- per rule ----------------------------------------------------------------------------

def _instance_unencrypted(r: Resource, ctx: Context) -> Remediation:
    if r.engine == "sqlserver-ex":
        return _sqlserver_express(r, ctx)
    source = ctx.replica_source(r)
    if source is not None:
        return Remediation(f"{r.id} is a read replica of {source.id}: encrypt the source; the "
                           "replica is re-created from the encrypted source (see the source's "
                           "finding).")
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
    steps = []
    if r.status == "retained":
        steps.append(Step(f"If the retained backup of deleted {r.source_id} is no longer "
                          "needed, delete it (restore to a point in time first if it is)",
                          _cmd("aws rds delete-db-instance-automated-backup --region", _q(r.region),
                               "--db-instance-automated-backups-arn", _q(r.arn)), manual=True))
    return Remediation(f"Automated backups inherit the encryption of {r.source_id}: encrypt "
                       "the database (see its finding); new backups are then encrypted.",
                       tuple(steps))


def _snapshot_public(r: Resource, ctx: Context) -> Remediation:
    if r.type is ResourceType.DB_CLUSTER_SNAPSHOT:
        cmd = _cmd("aws rds modify-db-cluster-snapshot-attribute --region", _q(r.region),
                   "--db-cluster-snapshot-identifier", _q(r.id),
                   "--attribute-name restore --values-to-remove all")
    else:
        cmd = _cmd("aws rds modify-db-snapshot-attribute --region", _q(r.region),
                   "--db-snapshot-identifier", _q(r.id),
                   "--attribute-name restore --values-to-remove all")
    return Remediation("Stop sharing the snapshot publicly, then encrypt it (see its "
                       "unencrypted-snapshot finding).",
                       (Step(f"Remove public access from {r.id}", cmd),))


def _restart(r: Resource) -> Step:
    if r.type is ResourceType.DB_CLUSTER:
        return Step(f"Start {r.id} within the seven-day recoverable window",
                    _cmd("aws rds start-db-cluster --region", _q(r.region),
                         "--db-cluster-identifier", _q(r.id)))
    return Step(f"Start {r.id} within the seven-day recoverable window",
                _cmd("aws rds start-db-instance --region", _q(r.region),
                     "--db-instance-identifier", _q(r.id)))


def _key_steps(key_arn: str, state: str | None) -> list[Step]:
    arn = Arn.parse(key_arn)
    region = arn.region if arn else "us-east-1"
    where = f" (run in account {arn.account}, which owns the key)" if arn else ""
    enable = Step(f"Enable the key{where}",
                  _cmd("aws kms enable-key --region", _q(region), "--key-id", _q(key_arn)))
    if state == "PendingReplicaDeletion":
        return [Step(f"Cancel the scheduled deletion of the multi-Region primary{where}, "
                     "before its last replica is deleted and its waiting period ends; the key "
                     "becomes Disabled", _cmd("aws kms cancel-key-deletion --region", _q(region),
                                               "--key-id", _q(key_arn))), enable]
    if state == "PendingDeletion":
        return [Step(f"Cancel the scheduled deletion before its date{where}; the key becomes "
                     "Disabled", _cmd("aws kms cancel-key-deletion --region", _q(region),
                                      "--key-id", _q(key_arn))), enable]
    if state == "Disabled":
        return [enable]
    if state == "PendingImport":
        return [Step(f"Import the key material again{where} (aws kms get-parameters-for-import, "
                     "then import-key-material)", manual=True)]
    if state == "Unavailable":
        return [Step(f"Reconnect the custom key store that holds the key{where} "
                     "(aws kms connect-custom-key-store)", manual=True)]
    return [Step(f"Bring the key back to Enabled{where}", manual=True)]


def _key_unusable(r: Resource, ctx: Context) -> Remediation:
    broken = unusable_keys(r, ctx)
    assert broken
    if len(broken) > 1 or broken[0][1].lookup is not KeyLookup.NOT_FOUND:
        steps = [step for _, k in broken for step in (
            _key_steps(k.arn, k.key_state) if k.lookup is not KeyLookup.NOT_FOUND else
            [Step(f"Key {k.arn} no longer exists: configure {r.id} to use another key for "
                  "that function", manual=True)])]
        if r.status == "inaccessible-encryption-credentials-recoverable":
            steps.append(_restart(r))
        names = ", ".join(f"{k.arn} ({role.value})" for role, k in broken)
        return Remediation(f"Make KMS key(s) {names} usable again before RDS loses access "
                           "for good.", tuple(steps))
    key = broken[0][1]
    if key.lookup is KeyLookup.NOT_FOUND:
        return Remediation(
            "The key no longer exists: data encrypted under it cannot be decrypted. Restore "
            "from a backup or snapshot encrypted under another key.",
            (Step(f"Find a snapshot of {r.id} under a usable key and restore it", manual=True),))
    steps = _key_steps(key.arn, key.key_state)
    if r.status == "inaccessible-encryption-credentials-recoverable":
        steps.append(_restart(r))
    return Remediation(f"Make KMS key {key.arn} usable again before RDS loses access for good.",
                       tuple(steps))


def _credentials_inaccessible(r: Resource, ctx: Context) -> Remediation:
    view = ctx.key_of(r)
    state = view.key.key_state if view.key else None
    steps = _key_steps(view.arn, state) if view.arn else [
        Step("Restore RDS's access to the KMS key (key state, key policy, grants)", manual=True)]
    if r.status == "inaccessible-encryption-credentials-recoverable":
        steps.append(_restart(r))
        return Remediation("Restore access to the key, then start the database within seven "
                           "days of losing access.", tuple(steps))
    steps.append(Step(f"Restore {r.id} from its latest backup once the key is usable "
                      "(restore-db-instance-to-point-in-time or from a snapshot)", manual=True))
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
        (Step(f"Check the key and its policy from account {owner}",
              _cmd("aws kms describe-key --region", _q(arn.region if arn else r.region),
                   "--key-id", _q(view.arn))),))


def _material_expiring(r: Resource, ctx: Context) -> Remediation:
    keys = sorted({view.key.arn for _, view in ctx.key_views(r)
                   if view.key is not None and view.key.origin == "EXTERNAL"})
    steps = tuple(Step(f"Re-import the same key material into {arn} with a later ValidTo, or "
                       "with --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE (aws kms "
                       "get-parameters-for-import, then import-key-material)", manual=True)
                  for arn in keys)
    return Remediation("Re-import the key material before it expires: once it does, KMS "
                       "deletes it and every resource under the key loses access.", steps)


def _without_backups(r: Resource, ctx: Context) -> Remediation:
    days = max(7, ctx.policy.min_backup_retention_days)
    return Remediation(
        "Turn on automated backups: if the key is ever lost, a backup is the only way back.",
        (Step(f"Keep {days} days of automated backups for {r.id}",
              _cmd("aws rds modify-db-instance --region", _q(r.region), "--db-instance-identifier",
                   _q(r.id), "--backup-retention-period", str(days), "--apply-immediately")),))


def _replica_mismatch(r: Resource, ctx: Context) -> Remediation:
    source = ctx.replica_source(r)
    assert source is not None
    new = f"{r.id}-new"
    steps = _recreate_replica(r, source.id if source.region == r.region else source.arn,
                              source.arn, source.region, ctx)
    steps[0] = Step(steps[0].title.replace(f"{r.id} from the encrypted primary",
                                           f"{r.id} as {new} from {source.id}"),
                    steps[0].command.replace(_q(f"{r.id}-enc"), _q(new))
                    if steps[0].command else None)
    steps[1] = _wait("db-instance-available", "--db-instance-identifier", new, r.region)
    steps += [Step(f"Point readers at {new}, then delete {r.id}",
                   _cmd("aws rds delete-db-instance --region", _q(r.region),
                        "--db-instance-identifier", _q(r.id), "--skip-final-snapshot"),
                   manual=True)]
    return Remediation("A replica's encryption and key follow its source only when it is "
                       "created: re-create it from the source.", tuple(steps))


def _rotation(key_arn: str) -> Remediation:
    arn = Arn.parse(key_arn)
    region = arn.region if arn else "us-east-1"
    return Remediation("Turn on automatic yearly rotation of the key.",
                       (Step("Enable automatic rotation",
                             _cmd("aws kms enable-key-rotation --region", _q(region), "--key-id",
                                  _q(key_arn))),))


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
    "key-region-mismatch": lambda r, ctx: _reencrypt(
        r, ctx, customer_managed=False,
        why=f"Re-encrypt under a key of {r.region}: the key of a resource cannot change in "
            "place."),
    "aws-managed-key": lambda r, ctx: _reencrypt(
        r, ctx, customer_managed=True,
        why="Re-encrypt under a customer managed key: the key of a resource cannot change in "
            "place."),
    "aws-owned-key": lambda r, ctx: _reencrypt(
        r, ctx, customer_managed=True,
        why="Re-encrypt under a customer managed key (restore with --kms-key-id)."),
    "cross-account-key": lambda r, ctx: _reencrypt(
        r, ctx, customer_managed=True,
        why="Re-encrypt under a key this account owns."),
}


def remediation_for(finding: Finding, ctx: Context) -> Remediation | None:
    if finding.rule_id == "key-rotation-disabled":
        return _rotation(finding.resource.arn)
    planner = PLANNERS.get(finding.rule_id)
    resource = ctx.by_arn.get(finding.resource.arn)
    if planner is None or resource is None:
        return None
    return planner(resource, ctx)
