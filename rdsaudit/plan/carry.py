"""The database's own configuration, carried onto its encrypted re-creation.

One table says which `Resource` field is which API parameter. For each re-creating call
(restore, read replica, cluster member) a field goes into that call when the botocore model
says the operation accepts it, else into the modify call right after, else into a manual
step that names it. So the plan never passes a parameter an operation lacks, and never
silently drops one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rdsaudit.model import Resource


@dataclass(frozen=True, slots=True)
class Carried:
    create: tuple[str, ...]  # options for the re-creating call
    modify: tuple[str, ...]  # options for the modify call after it
    manual: tuple[str, ...]  # what no call carries, one sentence each
    carried: tuple[str, ...]  # names of what the re-creating call carries
    modified: tuple[str, ...]

    @property
    def summary(self) -> str:
        return ", ".join(self.carried) or "nothing more to carry"

    @property
    def modify_summary(self) -> str:
        return ", ".join(self.modified)


def _group(name: str | None) -> str | None:
    # A default group ("default.mysql8.0", "default:mysql-8-0") is what the restore picks
    # when given none, and its name differs by engine version: carry only custom groups.
    return None if name is None or name.startswith(("default.", "default:")) else name


def _tags(r: Resource) -> str | None:
    tags = [{"Key": k, "Value": v} for k, v in r.tags if not k.startswith("aws:")]
    return json.dumps(tags, separators=(",", ":")) if tags else None


# (label, botocore member, value, scope): scope "all", "db" (not an Aurora member: cluster
# level there), or "network" (instances and clusters, not members).
_Value = Callable[[Resource], Any]
FIELDS: tuple[tuple[str, str, _Value, str], ...] = (
    ("subnet group", "DBSubnetGroupName", lambda r: r.db_subnet_group, "network"),
    ("VPC security groups", "VpcSecurityGroupIds", lambda r: list(r.vpc_security_group_ids)
     or None, "network"),
    ("parameter group", "DBParameterGroupName", lambda r: _group(r.parameter_group), "instance"),
    ("cluster parameter group", "DBClusterParameterGroupName",
     lambda r: _group(r.parameter_group), "cluster"),
    ("option group", "OptionGroupName", lambda r: _group(r.option_group), "db"),
    ("port", "Port", lambda r: r.port, "network"),
    ("Multi-AZ", "MultiAZ", lambda r: True if r.multi_az else None, "instance"),
    ("storage type", "StorageType", lambda r: r.storage_type, "db"),
    ("IOPS", "Iops", lambda r: r.iops, "db"),
    ("storage throughput", "StorageThroughput", lambda r: r.storage_throughput, "db"),
    ("deletion protection", "DeletionProtection",
     lambda r: True if r.deletion_protection else None, "network"),
    ("IAM authentication", "EnableIAMDatabaseAuthentication",
     lambda r: True if r.iam_auth else None, "network"),
    ("public accessibility", "PubliclyAccessible", lambda r: r.publicly_accessible, "all"),
    ("copy tags to snapshots", "CopyTagsToSnapshot",
     lambda r: True if r.copy_tags_to_snapshot else None, "network"),
    ("enhanced monitoring", "MonitoringInterval",
     lambda r: r.monitoring_interval if r.monitoring_interval else None, "all"),
    ("monitoring role", "MonitoringRoleArn",
     lambda r: r.monitoring_role_arn if r.monitoring_interval else None, "all"),
    ("Performance Insights", "EnablePerformanceInsights",
     lambda r: True if r.performance_insights_enabled else None, "all"),
    ("Performance Insights retention", "PerformanceInsightsRetentionPeriod",
     lambda r: r.performance_insights_retention if r.performance_insights_enabled else None,
     "all"),
    ("Performance Insights key", "PerformanceInsightsKMSKeyId",
     lambda r: r.performance_insights_kms_key_id if r.performance_insights_enabled else None,
     "all"),
    ("log exports", "EnableCloudwatchLogsExports",
     lambda r: list(r.cloudwatch_logs_exports) or None, "network"),
    ("license model", "LicenseModel", lambda r: r.license_model, "instance"),
    ("tags", "Tags", _tags, "all"),
)
# Where the modify call names a parameter differently.
_MODIFY_NAMES = {"Port": "DBPortNumber"}


@functools.cache
def _members(operation: str) -> dict[str, str]:
    """Member -> shape type of an RDS operation's input, from the botocore model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("rds")
    shape = model.operation_model(operation).input_shape
    return {name: s.type_name for name, s in shape.members.items()}


def option(member: str) -> str:
    from botocore import xform_name

    return "--" + str(xform_name(member, "-"))


def _args(member: str, kind: str, value: Any) -> list[str]:
    if kind == "boolean":
        return [option(member) if value else "--no-" + option(member)[2:]]
    if kind == "list" and isinstance(value, list):
        return [option(member), *map(str, value)]
    return [option(member), str(value)]


def carried(r: Resource, create: str, modify: str, *, cluster: bool = False,
            member: bool = False, skip: Sequence[str] = (),
            extra: Sequence[tuple[str, str, Any]] = ()) -> Carried:
    """Split `r`'s configuration between the `create` operation, the `modify` operation
    after it, and manual steps. `extra`: further (label, member, value) to carry."""
    scope = {"all"} | ({"cluster", "network", "db"} if cluster else
                       {"instance"} if member else {"instance", "network", "db"})
    accepted, modifiable = _members(create), _members(modify)
    out_create: list[str] = []
    out_modify: list[str] = []
    manual: list[str] = []
    names_create: list[str] = []
    names_modify: list[str] = []
    rows = [(label, m, fn(r), where) for label, m, fn, where in FIELDS] + [
        (label, m, value, "all") for label, m, value in extra]
    for label, name, value, where in rows:
        if value is None or where not in scope or name in skip:
            continue
        if name in accepted:
            out_create += _args(name, accepted[name], value)
            names_create.append(label)
            continue
        modify_name = _MODIFY_NAMES.get(name, name)
        if modify_name in modifiable:
            out_modify += _args(modify_name, modifiable[modify_name], value)
            names_modify.append(label)
        else:
            manual.append(f"Set the {label} of the new resource by hand ({value}): the API "
                          f"calls {create} and {modify} cannot carry it")
    if r.manages_master_user_secret:
        manual.append("The master user password was managed in Secrets Manager: turn that on "
                      "again for the new resource (modify --manage-master-user-password) and "
                      "re-create the secret's rotation schedule; neither can be carried")
    return Carried(tuple(out_create), tuple(out_modify), tuple(manual), tuple(names_create),
                   tuple(names_modify))
