"""Frozen records to and from JSON-ready dicts, strictly.

Saved inventories are user input: `load_inventory` checks every field's type against the
dataclass annotations and raises `InventoryProblem` with the path of the first bad value.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rdsaudit.errors import UsageProblem
from rdsaudit.model import Inventory
from rdsaudit.text import identifier_problem, valid_text
from rdsaudit.userfile import UserFileProblem, read_user_file

INVENTORY_FORMAT = "rdsaudit-inventory"
INVENTORY_VERSION = 1


class InventoryProblem(UsageProblem, ValueError):
    """A saved inventory we cannot use (exit 2)."""


def to_data(value: Any) -> Any:
    """Dataclasses, enums and tuples to plain JSON values. Severity renders as its label."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def inventory_document(inventory: Inventory) -> dict[str, Any]:
    return {"format": INVENTORY_FORMAT, "version": INVENTORY_VERSION, **to_data(inventory)}


def dump_inventory(inventory: Inventory) -> str:
    return "".join(iter_inventory(inventory))


def iter_inventory(inventory: Inventory) -> Iterator[str]:
    """The inventory's JSON, a line at a time: one top-level member per line and one list
    item (resource, key, error…) per line, each converted and encoded when it is written
    (json's C encoder), so a large estate is never held twice as a document and a string."""
    members = [("format", INVENTORY_FORMAT), ("version", INVENTORY_VERSION)] + [
        (f.name, getattr(inventory, f.name)) for f in dataclasses.fields(inventory)]
    return json_lines(members, lambda v: _compact(to_data(v)), " ")


def json_lines(members: Sequence[tuple[str, Any]], dump: Callable[[Any], str],
               indent: str) -> Iterator[str]:
    """A JSON object written a line at a time: each member on a line of its own, except a
    non-empty list (or tuple), whose items get a line each. `dump` encodes one value."""
    yield "{\n"
    last = len(members) - 1
    for n, (name, value) in enumerate(members):
        end = ",\n" if n < last else "\n"
        if isinstance(value, list | tuple) and value:
            yield f"{indent}{json.dumps(name)}: [\n"
            final = len(value) - 1
            for i, item in enumerate(value):
                yield f"{indent * 2}{dump(item)}{',' if i < final else ''}\n"
            yield f"{indent}]{end}"
        else:
            yield f"{indent}{json.dumps(name)}: {dump(value)}{end}"
    yield "}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # ASCII: nothing a file cannot encode


def load_inventory(path: Path) -> Inventory:
    try:
        text = read_user_file(path, "inventory")
    except UserFileProblem as exc:
        raise InventoryProblem(str(exc)) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryProblem(f"{path}: inventory is not valid JSON: {exc}") from None
    except RecursionError:
        raise InventoryProblem(f"{path}: inventory is nested too deeply") from None
    if not isinstance(raw, dict) or raw.get("format") != INVENTORY_FORMAT:
        raise InventoryProblem(f"{path}: not an rdsaudit inventory (written by --save-inventory)")
    version = raw.get("version")
    if isinstance(version, bool) or version != INVENTORY_VERSION:
        raise InventoryProblem(f"{path}: inventory version {raw.get('version')!r} is not "
                               f"supported (expected {INVENTORY_VERSION})")
    body = {k: v for k, v in raw.items() if k not in ("format", "version")}
    try:
        inventory = _build(Inventory, body, "inventory")
    except _Bad as bad:
        raise InventoryProblem(f"{path}: {bad}") from None
    assert isinstance(inventory, Inventory)
    return inventory


class _Bad(ValueError):
    pass


def build_record(tp: Any, value: Any, where: str) -> Any:
    """One record of type `tp` from JSON data, checked like a saved inventory (re-planning
    reads the resources and keys of a report this way); InventoryProblem names the path."""
    try:
        return _build(tp, value, where)
    except _Bad as bad:
        raise InventoryProblem(str(bad)) from None


# Fields that name something (used as is in look-ups and remediation commands): never
# "cleaned". Everything else is free text, made valid Unicode on the way in.
_IDENTIFIER_FIELDS = frozenset({
    "arn", "id", "region", "account_id", "kms_key_id", "cluster_id", "replica_source",
    "replica_source_cluster", "source_id", "resource_id", "performance_insights_kms_key_id",
    "master_user_secret_kms_key_id", "activity_stream_kms_key_id", "primary_key_arn",
    "replica_key_arns", "name", "target_key_id", "snapshot_arn", "restore", "accounts",
    "regions", "engine", "snapshot_type", "key_state", "key_manager", "origin",
    # What a runbook passes to restore and re-create calls (the carried configuration).
    "engine_version", "license_model", "db_subnet_group", "vpc_security_group_ids",
    "parameter_group", "option_group", "storage_type", "monitoring_role_arn",
    "cloudwatch_logs_exports", "members", "tde_credential_arn", "instance_class"})


def _is_identifier(where: str) -> bool:
    field = where.rsplit(".", 1)[-1].split("[", 1)[0]
    return field in _IDENTIFIER_FIELDS


@functools.cache
def _fields(tp: Any) -> tuple[tuple[tuple[str, Any, bool], ...], frozenset[str]]:
    """(name, type, required) per field of a dataclass; resolving hints is slow, so once."""
    hints = typing.get_type_hints(tp)
    fields = tuple(
        (f.name, hints[f.name],
         f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        for f in dataclasses.fields(tp)
    )
    return fields, frozenset(name for name, _, _ in fields)


def _build(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _build(option, value, where)
            except _Bad as bad:
                errors.append(str(bad))
        raise _Bad(errors[0] if errors else f"{where}: bad value")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise _Bad(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _Bad(f"{where}: expected {len(args)} items")
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value,
                                                                                 strict=True)))
    if origin in (Mapping, dict, typing.Mapping) or tp is Mapping:
        kt, vt = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise _Bad(f"{where}: expected an object")
        return {_build(kt, k, where): _build(vt, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Bad(f"{where}: expected an object")
        fields, names = _fields(tp)  # type: ignore[arg-type]
        if not names.issuperset(value):
            unknown = set(value) - names
            raise _Bad(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, hint, required in fields:
            if name not in value:
                if required:
                    raise _Bad(f"{where}: missing field {name}")
                continue
            kwargs[name] = _build(hint, value[name], f"{where}.{name}")
        return tp(**kwargs)  # type: ignore[operator]
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        if not isinstance(value, str) or value.upper() not in tp.__members__:
            raise _Bad(f"{where}: unknown value {value!r}")
        return tp[value.upper()]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _Bad(f"{where}: unknown value {value!r}") from None
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _Bad(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"{where}: expected a whole number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _Bad(f"{where}: expected a string")
        if _is_identifier(where):
            # Never "cleaned": an identifier holding a control character or invalid
            # Unicode is refused, as it is in an AWS answer (rdsaudit/text.py).
            problem = identifier_problem(value)
            if problem is not None:
                raise _Bad(f"{where}: {problem}")
            return value
        return valid_text(value)
    raise _Bad(f"{where}: unsupported type {tp!r}")
