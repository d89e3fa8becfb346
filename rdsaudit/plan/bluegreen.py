"""The Blue/Green strategy (`rdsaudit plan --strategy blue-green`): encrypt by creating a
Blue/Green deployment whose green environment is encrypted, then switching over.

`CreateBlueGreenDeployment.TargetResourceConfigurations[]` is `{SourceArn, TargetKmsKeyId}`,
"when the blue resource is unencrypted and you want to encrypt the green resource": one
entry per instance and per read replica, one per cluster on Aurora (botocore 1.44.x; RDS API
Reference, TargetResourceConfiguration). The RDS User Guide's Blue/Green limitations page
still says encryption cannot be changed this way: the documents disagree, so every plan says
so and asks the operator to confirm it for their engine; the snapshot path stays the
default. There is no waiter: the runbook polls describe-blue-green-deployments in a bounded
loop (rdsaudit.plan.runbook). The switchover is the cut-over: it runs, with the clean-up, only in
the runbook's confirmed section. After it the old (blue) resources carry the suffix -old1.

Where Blue/Green does not apply the plan falls back to the snapshot path and says why.
"""

from __future__ import annotations

import json
from dataclasses import replace

from rdsaudit.model import Remediation, Resource, ResourceType, Step, StepKind
from rdsaudit.plan.steps import (
    _aws,
    _delete_replica,
    _key_for,
    _manual,
    _NoKey,
    _replace_instance_cleanup,
    _run,
)
from rdsaudit.rules.context import Context

# Engines RDS Blue/Green Deployments support (RDS User Guide, "Overview of Blue/Green
# Deployments"): RDS for MySQL, MariaDB and PostgreSQL, Aurora MySQL and Aurora PostgreSQL.
ENGINES = ("mysql", "mariadb", "postgres", "aurora-mysql", "aurora-postgresql")
# The name switchover gives the old (blue) resources: the green ones take the blue names.
OLD_SUFFIX = "-old1"
# The runbook resolves this to the deployment's identifier (bgd-…) at run time: it exists
# only once create-blue-green-deployment has run. rdsaudit.plan.awscli accepts it only for a
# deployment the plan itself created.
PLACEHOLDER = "{{bgd-id:{name}}}"

# Rule -> (needs a customer managed key, the plan's own account only): as the snapshot path.
_KEY_RULES = {
    "instance-unencrypted": (False, False), "cluster-unencrypted": (False, False),
    "key-region-mismatch": (False, False), "aws-managed-key": (True, False),
    "aws-owned-key": (True, False), "key-below-external-store": (True, False),
    "cross-account-key": (True, True),
}


def placeholder(name: str) -> str:
    return PLACEHOLDER.format(name=name)


def unsupported(r: Resource, ctx: Context) -> str | None:
    """Why Blue/Green does not apply to `r` (the plan then uses the snapshot path)."""
    if r.type not in (ResourceType.DB_INSTANCE, ResourceType.DB_CLUSTER):
        return f"a {r.type.value} is not a running database, which Blue/Green copies"
    engine = r.engine or "unknown"
    if engine == "sqlserver-ex":
        return ("SQL Server Express supports neither Blue/Green Deployments nor encryption "
                "at rest: the edition changes on the snapshot path")
    if engine not in ENGINES:
        return (f"Blue/Green Deployments support MySQL, MariaDB, PostgreSQL, Aurora MySQL and "
                f"Aurora PostgreSQL, not {engine}")
    if r.type is ResourceType.DB_CLUSTER and r.instance_class:
        return ("this plan does not use Blue/Green for Multi-AZ DB clusters (confirm their "
                "support for encryption with AWS first)")
    if r.type is ResourceType.DB_INSTANCE and (r.replica_source or r.replica_source_cluster):
        return "a read replica follows its source: the source's plan re-creates it"
    if any(rep.region != r.region for rep in ctx.replicas_of(r)):
        return "Blue/Green Deployments do not support cross-Region read replicas"
    if r.status not in (None, "available"):
        return f"Blue/Green needs an available source; {r.id} is {r.status}"
    return None


def _constraints(r: Resource, key: str) -> str:
    prereq = {
        "mysql": "binary logging on (automated backups retained)",
        "mariadb": "binary logging on (automated backups retained)",
        "aurora-mysql": "binlog_format set in a custom DB cluster parameter group",
        "postgres": "rds.logical_replication = 1 in a custom DB parameter group",
        "aurora-postgresql": "rds.logical_replication = 1 in a custom DB cluster parameter "
                             "group",
    }[r.engine or "mysql"]
    return (f"Confirm before running: Blue/Green supports {r.engine} {r.engine_version or ''} "
            f"with {prereq} (RDS User Guide, Blue/Green limitations and prerequisites). The "
            "RDS API reference lets TargetResourceConfigurations encrypt an unencrypted blue "
            f"with TargetKmsKeyId ({key}), but the User Guide's limitations page still says "
            "encryption cannot change through Blue/Green: confirm it for your engine and "
            "version (or use --strategy snapshot). The switchover keeps the names and "
            "endpoints (green takes them over, writes stop for up to the switchover timeout, "
            f"the old resources are renamed with {OLD_SUFFIX}).")


def blue_green(r: Resource, ctx: Context, rule_id: str) -> Remediation | None:
    """The Blue/Green plan of `r`, or None when it does not apply (the caller falls back
    to the snapshot path; the reason is added to its summary by `with_fallback`)."""
    if rule_id not in _KEY_RULES or unsupported(r, ctx) is not None:
        return None
    customer_managed, own_account = _KEY_RULES[rule_id]
    try:
        key, note = _key_for(r, ctx, r.region, customer_managed=customer_managed,
                             own_account=own_account)
    except _NoKey as no_key:
        return replace(no_key.remediation, strategy="blue-green")
    # BlueGreenDeploymentName: at most 60 characters, no trailing or doubled hyphen.
    name = r.id[:52].rstrip("-") + "-encrypt"
    cluster = r.type is ResourceType.DB_CLUSTER
    replicas = [] if cluster else ctx.replicas_of(r)
    # One entry per instance and per (same-Region) read replica; per cluster on Aurora.
    sources = [r.arn] + [rep.arn for rep in replicas]
    configurations = json.dumps([{"SourceArn": arn, "TargetKmsKeyId": key} for arn in sources],
                                separators=(",", ":"))
    bgd = placeholder(name)
    where = r.region
    steps: list[Step] = [
        _manual(_constraints(r, key), r),
        _run(f"Create the Blue/Green deployment {name}: an encrypted green copy of {r.id}"
             f"{' and its read replicas' if replicas else ''} under {key}, kept in sync", r,
             _aws("rds", "create-blue-green-deployment", where, "--blue-green-deployment-name",
                  name, "--source", r.arn, "--target-resource-configurations",
                  configurations)),
        Step(f"Wait (bounded polling, no waiter exists) until {name} is AVAILABLE",
             _aws("rds", "describe-blue-green-deployments", where, "--filters",
                  f"Name=blue-green-deployment-name,Values={name}"),
             StepKind.WAIT, r.account_id, where),
        _manual(f"Check the green {'cluster' if cluster else 'instances'} of {name} "
                f"(describe-blue-green-deployments, then describe-db-"
                f"{'clusters' if cluster else 'instances'}): StorageEncrypted true with {key}, "
                "replica lag near zero, your tests pass. Then run the confirmed section "
                "below: it switches over and cleans up", r),
        _run(f"Switch over {name}: green takes the names and endpoints of {r.id}", r,
             _aws("rds", "switchover-blue-green-deployment", where,
                  "--blue-green-deployment-identifier", bgd), destructive=True),
        Step(f"Wait (bounded polling) until {name} is SWITCHOVER_COMPLETED",
             _aws("rds", "describe-blue-green-deployments", where, "--filters",
                  f"Name=blue-green-deployment-name,Values={name}"),
             StepKind.WAIT, r.account_id, where, destructive=True),
        _run(f"Delete the Blue/Green deployment {name} (the old resources stay, renamed "
             f"{OLD_SUFFIX})", r,
             _aws("rds", "delete-blue-green-deployment", where,
                  "--blue-green-deployment-identifier", bgd), destructive=True),
    ]
    old = replace(r, id=r.id + OLD_SUFFIX, arn=r.arn + OLD_SUFFIX)
    related = [old.id, old.arn]
    if cluster:
        steps += _cluster_cleanup(old, [m.id + OLD_SUFFIX for m in ctx.members_of(r)]
                                  or [m + OLD_SUFFIX for m in r.members])
        related += [m.id + OLD_SUFFIX for m in ctx.members_of(r)] or [
            m + OLD_SUFFIX for m in r.members]
    else:
        old_replicas = [replace(rep, id=rep.id + OLD_SUFFIX, arn=rep.arn + OLD_SUFFIX)
                        for rep in replicas]
        what = "unencrypted instance" if not r.encrypted else "instance (old key)"
        steps += _replace_instance_cleanup(old, key, ctx, old_replicas, what)
        related += [x for rep in old_replicas for x in (rep.id, rep.arn)]
        related += [x for rep in replicas for x in (rep.id, rep.arn)]
    summary = (f"Strategy blue-green: {r.engine} supports Blue/Green Deployments, so a green "
               f"copy is encrypted with {key} and switched over (short write downtime, same "
               f"endpoints). {note}")
    return Remediation(summary, tuple(steps), related=tuple(related), strategy="blue-green")


def _cluster_cleanup(old: Resource, members: list[str]) -> list[Step]:
    steps: list[Step] = []
    for member in members:
        steps += _delete_replica(replace(old, id=member, type=ResourceType.DB_INSTANCE))
    if old.deletion_protection:
        steps.append(_run(f"Turn off deletion protection on the old {old.id}", old, _aws(
            "rds", "modify-db-cluster", old.region, "--db-cluster-identifier", old.id,
            "--no-deletion-protection", "--apply-immediately"), destructive=True))
    steps.append(_run(f"Delete the old cluster {old.id} (its data lives in the switched-over "
                      "green cluster)", old,
                      _aws("rds", "delete-db-cluster", old.region, "--db-cluster-identifier",
                           old.id, "--skip-final-snapshot"), destructive=True))
    steps.append(Step(f"Wait until {old.id} is deleted",
                      ("aws", "rds", "wait", "db-cluster-deleted", "--region", old.region,
                       "--db-cluster-identifier", old.id),
                      StepKind.WAIT, old.account_id, old.region, destructive=True))
    return steps


def with_fallback(rem: Remediation, r: Resource, ctx: Context) -> Remediation:
    """The snapshot plan of a resource Blue/Green was asked for but does not apply to."""
    why = unsupported(r, ctx) or "Blue/Green does not apply to this finding"
    return replace(rem, summary=f"Strategy snapshot (blue-green asked for, but {why}). "
                   f"{rem.summary}", strategy="snapshot" if rem.steps else rem.strategy)
