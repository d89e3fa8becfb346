"""The AWS CLI calls a remediation plan may contain, checked against the botocore model.

A runbook is executed by a person, possibly whole; a report file can be edited. So every
step that reaches a script is an argument vector that passes `check_argv`: an `aws` call of
one of the operations below (each a remediation RDS or KMS operation, a waiter, or the
account check), with only the options the botocore model gives that operation, acting on
the finding's own resource or on one the plan itself created. Everything else is refused.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class CommandRefused(ValueError):
    """A step that is not a known remediation call on the resources it may touch."""


@dataclass(frozen=True, slots=True)
class Operation:
    """What the check needs to know about one remediation operation.

    `subjects`: options naming the resource acted on (must be the finding's own resource or
    one the plan created). `creates`: options naming a resource the call creates.
    `references`: options naming a resource only read from (any resource of the report).
    `keys`: options naming a KMS key acted on (a key of the report).
    """

    subjects: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    required_subject: bool = True


_RDS: dict[str, Operation] = {
    "create-db-snapshot": Operation(("--db-instance-identifier",), ("--db-snapshot-identifier",)),
    "copy-db-snapshot": Operation(("--source-db-snapshot-identifier",),
                                  ("--target-db-snapshot-identifier",)),
    "restore-db-instance-from-db-snapshot": Operation(("--db-snapshot-identifier",),
                                                      ("--db-instance-identifier",)),
    "create-db-instance-read-replica": Operation(
        (), ("--db-instance-identifier",), ("--source-db-instance-identifier",),
        required_subject=False),
    "create-db-cluster-snapshot": Operation(("--db-cluster-identifier",),
                                            ("--db-cluster-snapshot-identifier",)),
    "restore-db-cluster-from-snapshot": Operation(("--snapshot-identifier",),
                                                  ("--db-cluster-identifier",)),
    "create-db-instance": Operation(("--db-cluster-identifier",), ("--db-instance-identifier",),
                                    required_subject=False),
    "modify-db-instance": Operation(("--db-instance-identifier",)),
    "modify-db-cluster": Operation(("--db-cluster-identifier",)),
    "modify-db-snapshot-attribute": Operation(("--db-snapshot-identifier",)),
    "modify-db-cluster-snapshot-attribute": Operation(("--db-cluster-snapshot-identifier",)),
    "delete-db-instance": Operation(("--db-instance-identifier",),
                                    ("--final-db-snapshot-identifier",)),
    "delete-db-cluster": Operation(("--db-cluster-identifier",),
                                   ("--final-db-snapshot-identifier",)),
    "delete-db-snapshot": Operation(("--db-snapshot-identifier",)),
    "delete-db-cluster-snapshot": Operation(("--db-cluster-snapshot-identifier",)),
    "delete-db-instance-automated-backup": Operation(
        ("--db-instance-automated-backups-arn", "--dbi-resource-id")),
    "delete-db-cluster-automated-backup": Operation(("--db-cluster-resource-id",)),
    "start-db-instance": Operation(("--db-instance-identifier",)),
    "start-db-cluster": Operation(("--db-cluster-identifier",)),
    # Blue/Green (rdsaudit.plan.bluegreen): the deployment is named by the plan; its identifier
    # (bgd-…) exists only at run time, so later steps name it by BLUE_GREEN_ID placeholder.
    "create-blue-green-deployment": Operation(("--source",),
                                              ("--blue-green-deployment-name",)),
    "describe-blue-green-deployments": Operation(required_subject=False),
    "switchover-blue-green-deployment": Operation(("--blue-green-deployment-identifier",)),
    "delete-blue-green-deployment": Operation(("--blue-green-deployment-identifier",)),
}
# `{bgd-id:NAME}`: the identifier of the deployment NAME that an earlier step created.
BLUE_GREEN_ID = re.compile(r"\{bgd-id:([^{}]+)\}")
_BLUE_GREEN_FILTER = "Name=blue-green-deployment-name,Values="
_KMS: dict[str, Operation] = {
    "enable-key": Operation(keys=("--key-id",), required_subject=False),
    "cancel-key-deletion": Operation(keys=("--key-id",), required_subject=False),
    "enable-key-rotation": Operation(keys=("--key-id",), required_subject=False),
    "describe-key": Operation(keys=("--key-id",), required_subject=False),
}
_STS: dict[str, Operation] = {"get-caller-identity": Operation(required_subject=False)}
OPERATIONS: Mapping[str, Mapping[str, Operation]] = {"rds": _RDS, "kms": _KMS, "sts": _STS}
# Waiters (`aws rds wait NAME`) take the options of their describe call; the identifier
# they wait on must be one the finding or the plan knows.
_WAITER_SUBJECTS = ("--db-instance-identifier", "--db-cluster-identifier",
                    "--db-snapshot-identifier", "--db-cluster-snapshot-identifier")
# The one AWS CLI global option a plan may carry; --endpoint-url, --profile and the like
# would send the call somewhere the operator did not choose.
GLOBAL_OPTIONS = frozenset({"--region"})


@functools.cache
def _service(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@functools.cache
def _options(service: str, operation: str) -> Mapping[str, str]:
    """CLI option -> botocore shape type, for the operation's input members."""
    from botocore import xform_name

    model = _service(service)
    for name in model.operation_names:
        if xform_name(name, "-") == operation:
            shape = model.operation_model(name).input_shape
            members = shape.members if shape is not None else {}
            return {"--" + xform_name(m, "-"): s.type_name for m, s in members.items()}
    raise CommandRefused(f"{service} {operation} is not an operation of the AWS CLI")


@functools.cache
def _waiters(service: str) -> Mapping[str, str]:
    """Waiter CLI name -> the operation it polls."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_waiter_model(service)
    return {xform_name(w, "-"): xform_name(model.get_waiter(w).operation, "-")
            for w in model.waiter_names}


@dataclass(slots=True)
class Scope:
    """What a step may name: the finding's own resource, what the plan created so far,
    and the report's resources and keys (for options that only read)."""

    own: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)


def _parse(argv: Sequence[str], options: Mapping[str, str]) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise CommandRefused(f"unexpected argument {token!r}")
        kind = options.get(token)
        negated = token.startswith("--no-") and options.get("--" + token[5:]) == "boolean"
        if kind is None and token in GLOBAL_OPTIONS:
            kind = "string"
        if kind is None and not negated:
            raise CommandRefused(f"option {token} is not a parameter of this operation")
        if token in parsed:
            raise CommandRefused(f"option {token} is given twice")
        i += 1
        if kind == "boolean" or negated:
            parsed[token] = []
            continue
        values: list[str] = []
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
            if kind != "list":
                break
        if not values:
            raise CommandRefused(f"option {token} has no value")
        parsed[token] = values
    return parsed


def check_argv(argv: Sequence[str], scope: Scope) -> None:
    """Raise CommandRefused unless `argv` is a known remediation call within `scope`;
    record what it creates in `scope.created`."""
    if len(argv) < 3 or argv[0] != "aws":
        raise CommandRefused("not an aws command")
    service, operation, rest = argv[1], argv[2], list(argv[3:])
    if service not in OPERATIONS:
        raise CommandRefused(f"aws {service} is not a remediation service")
    if operation == "wait":
        if not rest or rest[0] not in _waiters(service):
            raise CommandRefused(f"aws {service} wait {rest[:1]} is not a waiter")
        parsed = _parse(rest[1:], _options(service, _waiters(service)[rest[0]]))
        _require(parsed, _WAITER_SUBJECTS, scope.own | scope.created, required=True)
        return
    spec = OPERATIONS[service].get(operation)
    if spec is None:
        raise CommandRefused(f"aws {service} {operation} is not a remediation operation")
    parsed = _parse(rest, _options(service, operation))
    if "blue-green" in operation:
        _blue_green(operation, parsed, scope)
        if operation != "create-blue-green-deployment":
            return
    _require(parsed, spec.subjects, scope.own | scope.created, required=spec.required_subject)
    _require(parsed, spec.references, scope.own | scope.created | scope.known, required=False)
    _require(parsed, spec.keys, scope.keys | scope.own, required=False)
    for option in spec.creates:
        for value in parsed.get(option, []):
            scope.created.add(value)


def blue_green_name(value: str) -> str | None:
    """NAME of a `{bgd-id:NAME}` placeholder, or of a describe filter on the name."""
    match = BLUE_GREEN_ID.fullmatch(value)
    if match:
        return match.group(1)
    return value.removeprefix(_BLUE_GREEN_FILTER) if value.startswith(_BLUE_GREEN_FILTER) \
        else None


def _blue_green(operation: str, parsed: dict[str, list[str]], scope: Scope) -> None:
    """The parts of a Blue/Green call the option check cannot see: the deployment it names
    must be one the plan created; each target configuration a resource of the finding."""
    if operation == "create-blue-green-deployment":
        raw = parsed.get("--target-resource-configurations", [])
        try:
            entries = [e for value in raw for e in json.loads(value)]
        except (ValueError, TypeError):
            raise CommandRefused("--target-resource-configurations is not a JSON list") \
                from None
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) - {"SourceArn", "TargetKmsKeyId"} \
                    or not all(isinstance(v, str) for v in entry.values()):
                raise CommandRefused("--target-resource-configurations: an entry is not "
                                     "{SourceArn, TargetKmsKeyId}")
            if entry.get("SourceArn") not in scope.own:
                raise CommandRefused(f"--target-resource-configurations names "
                                     f"{entry.get('SourceArn')!r}, not a resource of the "
                                     "finding")
        return
    if operation == "describe-blue-green-deployments":
        values = parsed.get("--filters", [])
        if set(parsed) - {"--region", "--filters"} or len(values) != 1 \
                or not values[0].startswith(_BLUE_GREEN_FILTER):
            raise CommandRefused("describe-blue-green-deployments must filter on the name "
                                 "of a deployment the plan created")
        names = [values[0].removeprefix(_BLUE_GREEN_FILTER)]
    else:
        names = [blue_green_name(v) or "" for v in
                 parsed.get("--blue-green-deployment-identifier", [])]
    if not names:
        raise CommandRefused("names no Blue/Green deployment")
    for name in names:
        if name not in scope.created:
            raise CommandRefused(f"names Blue/Green deployment {name!r}, which the plan did "
                                 "not create")


def _require(parsed: Mapping[str, list[str]], options: Collection[str], allowed: set[str], *,
             required: bool) -> None:
    present = [o for o in options if o in parsed]
    if required and options and not present:
        raise CommandRefused(f"names none of {', '.join(options)}")
    for option in present:
        for value in parsed[option]:
            if value not in allowed and _arn_name(value) not in allowed:
                raise CommandRefused(f"{option} {value!r} is neither the finding's resource "
                                     "nor one the plan creates")


def _arn_name(value: str) -> str | None:
    """The name an RDS ARN ends in (`arn:aws:rds:REGION:ACCOUNT:db:NAME` -> NAME)."""
    parts = value.split(":")
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "rds":
        return parts[6]
    return None
