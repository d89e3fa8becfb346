"""Frozen records to and from JSON-ready dicts, strictly.

Saved inventories are user input: `load_inventory` checks every field's type against the
dataclass annotations and raises `InventoryProblem` with the path of the first bad value.

Size (~590 lines): one strict reader in two speeds that must agree exactly: a builder
generated once per record type (`build_generated`) and streamed record by record
(`streamed_inventory`), and the reflective builder (`build_reflective`) that decides
everything the fast path does not take as plainly valid. Property tests hold them equal
(tests/cli/test_inputs_property.py); kept together so a change to one is seen beside the
other.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from rdsaudit.errors import UsageProblem
from rdsaudit.model import Inventory, ScanInfo
from rdsaudit.text import identifier_problem, valid_text
from rdsaudit.userfile import UserFileProblem, read_user_file

INVENTORY_FORMAT = "rdsaudit-inventory"
INVENTORY_VERSION = 1


class InventoryProblem(UsageProblem, ValueError):
    """A saved inventory we cannot use (exit 2)."""


def to_data(value: Any) -> Any:
    """Dataclasses, enums and tuples to plain JSON values. Severity renders as its label."""
    tp = type(value)
    if tp is tuple or tp is list:
        return [v if type(v) in _SCALARS else to_data(v) for v in value]
    converter = _DUMPERS.get(tp)
    if converter is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        converter = _DUMPERS[type(value)] = _dumper(type(value))
    if converter is not None:
        return converter(value)
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [v if type(v) in _SCALARS else to_data(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


# Values to_data returns as they are (exactly these types: a str subclass is an enum).
_SCALARS = frozenset({str, int, float, bool, type(None)})
_DUMPERS: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _dumper(tp: type) -> Callable[[Any], dict[str, Any]]:
    """to_data of one dataclass type as generated code: a dict display of its fields, each
    kept as is when it is a plain scalar, converted otherwise (the reflective walk over
    `dataclasses.fields` cost most of a large report's document)."""
    names = [f.name for f in dataclasses.fields(tp)]
    items = ", ".join(f"{n!r}: (v if type(v := o.{n}) in S else c(v))" for n in names)
    source = f"def dump(o):\n    return {{{items}}}\n"
    namespace: dict[str, Any] = {"S": _SCALARS, "c": to_data}
    exec(compile(source, f"<to_data {tp.__name__}>", "exec"), namespace)  # noqa: S102
    return cast(Callable[[Any], dict[str, Any]], namespace["dump"])


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
               indent: str, inner: Mapping[str, str] | None = None,
               batch: int = 200) -> Iterator[str]:
    """A JSON object written a line at a time: each member on a line of its own, except a
    non-empty list (or tuple), whose items get a line each. `dump` encodes one value.

    `inner` names object members whose line holds a long list (the report's
    summary.actions: 25,000 actions of a large estate, tens of megabytes): that line is
    written in pieces of `batch` list items, each piece ending between two items (never
    inside a value), so the line is never one string."""
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
        elif inner and name in inner and isinstance(value, Mapping) and isinstance(
                value.get(inner[name]), list | tuple) and value[inner[name]]:
            yield from _pieces(f"{indent}{json.dumps(name)}: ", value, inner[name], dump,
                               end, batch)
        else:
            yield f"{indent}{json.dumps(name)}: {dump(value)}{end}"
    yield "}\n"


def _pieces(start: str, value: Mapping[str, Any], key: str, dump: Callable[[Any], str],
            end: str, batch: int) -> Iterator[str]:
    """`start`, then dump(value) in pieces: the same text as one dump, whose list `key` is
    written `batch` items at a time (the items joined as the encoder joins them)."""
    marker = "\x00rdsaudit-list\x00"
    # The last occurrence: what follows the list in the object is ours (the report puts
    # the actions last), while text before it could hold the marker.
    head, tail = dump({**value, key: marker}).rsplit(dump(marker), 1)
    separator = dump([0, 0])[2:-2]  # ", " or ","
    items = value[key]
    chunk = start + head + "["
    for i in range(0, len(items), batch):
        chunk += separator.join(dump(item) for item in items[i:i + batch])
        yield chunk
        chunk = separator
    yield "]" + tail + end


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # ASCII: nothing a file cannot encode


def load_inventory(path: Path) -> Inventory:
    try:
        text = read_user_file(path, "inventory")
    except UserFileProblem as exc:
        raise InventoryProblem(str(exc)) from None
    try:
        streamed = streamed_inventory(text)
    finally:
        shared_values.clear()
    if streamed is not None:
        return streamed
    # Anything the streamed reading does not take as plainly valid is read whole, by the
    # same rules, which accept it or say exactly what is wrong.
    raw = _parsed(text, path)
    del text  # 128 MB for 100k resources: not held while the records are built
    return _inventory_of(raw, path)


def whole_inventory(text: str, path: Path) -> Inventory:
    """The inventory of a saved inventory's text, read whole."""
    return _inventory_of(_parsed(text, path), path)


def _parsed(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryProblem(f"{path}: inventory is not valid JSON: {exc}") from None
    except RecursionError:
        raise InventoryProblem(f"{path}: inventory is nested too deeply") from None


def _inventory_of(raw: Any, path: Path) -> Inventory:
    if not isinstance(raw, dict) or raw.get("format") != INVENTORY_FORMAT:
        raise InventoryProblem(f"{path}: not an rdsaudit inventory (written by --save-inventory)")
    version = raw.get("version")
    if isinstance(version, bool) or version != INVENTORY_VERSION:
        raise InventoryProblem(f"{path}: inventory version {raw.get('version')!r} is not "
                               f"supported (expected {INVENTORY_VERSION})")
    body = {k: v for k, v in raw.items() if k not in ("format", "version")}
    try:
        inventory = build_generated(Inventory, body, "inventory")
    except BadValue as bad:
        raise InventoryProblem(f"{path}: {bad}") from None
    finally:
        shared_values.clear()
    assert isinstance(inventory, Inventory)
    return inventory


class BadValue(ValueError):
    pass


_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what json's decoder skips between tokens
_DECODER = json.JSONDecoder()  # json.loads's own settings


def streamed_inventory(text: str) -> Inventory | None:
    """The inventory, with each record built as soon as it is parsed: never the parsed JSON
    of 100,000 records at once (a dict of ~50 members each: 230 MB). Only for the plainly
    valid: None on anything else (a syntax error anywhere, a record the fast path leaves to
    `build_reflective`, a wrong format or version, an unknown or missing member), which the caller
    then reads whole and judges exactly as before."""
    record_lists = _record_lists()
    ws = _WHITESPACE.match
    decode = _DECODER.raw_decode

    def skip(pos: int) -> int:
        match = ws(text, pos)  # always a match (it may be empty)
        return match.end() if match is not None else pos

    try:
        pos = skip(0)
        if text[pos:pos + 1] != "{":
            return None
        pos = skip(pos + 1)
        members: dict[str, Any] = {}
        while True:
            if text[pos:pos + 1] != '"':
                return None
            key, pos = decode(text, pos)
            pos = skip(pos)
            if text[pos:pos + 1] != ":":
                return None
            pos = skip(pos + 1)
            tp = record_lists.get(key)
            if tp is not None and text[pos:pos + 1] == "[":
                build = _fast_builder(tp)
                records = []
                pos = skip(pos + 1)
                if text[pos:pos + 1] == "]":
                    pos += 1
                else:
                    while True:
                        item, pos = decode(text, pos)
                        records.append(build(item, key))
                        pos = skip(pos)
                        if text[pos:pos + 1] == ",":
                            pos = skip(pos + 1)
                        elif text[pos:pos + 1] == "]":
                            pos += 1
                            break
                        else:
                            return None
                members[key] = tuple(records)
            else:
                value, pos = decode(text, pos)
                members[key] = _Raw(value)
            pos = skip(pos)
            if text[pos:pos + 1] == ",":
                pos = skip(pos + 1)
            elif text[pos:pos + 1] == "}":
                break
            else:
                return None
        if skip(pos + 1) != len(text):
            return None  # json.loads: "Extra data"
        version = members.pop("version", None)
        form = members.pop("format", None)
        if not (isinstance(form, _Raw) and form.value == INVENTORY_FORMAT
                and isinstance(version, _Raw) and type(version.value) is int
                and version.value == INVENTORY_VERSION):
            return None
        scan = members.pop("scan", None)
        if not isinstance(scan, _Raw) or any(
                name not in record_lists or isinstance(value, _Raw)
                for name, value in members.items()):
            return None
        return Inventory(build_generated(ScanInfo, scan.value, "inventory.scan"), **members)
    except (ValueError, RecursionError, _Fallback):  # JSONDecodeError and BadValue are ValueErrors
        return None


class _Raw:
    """A member's value as parsed (not a record list)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@functools.cache
def _record_lists() -> dict[str, Any]:
    """Inventory member -> the record type of its list (resources: Resource, ...)."""
    hints = typing.get_type_hints(Inventory)
    return {name: typing.get_args(hint)[0] for name, hint in hints.items()
            if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(
                typing.get_args(hint)[0])}


def build_record(tp: Any, value: Any, where: str) -> Any:
    """One record of type `tp` from JSON data, checked like a saved inventory (re-planning
    reads the resources and keys of a report this way); InventoryProblem names the path."""
    try:
        return build_generated(tp, value, where)
    except BadValue as bad:
        raise InventoryProblem(str(bad)) from None
    finally:
        shared_values.clear()


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


def build_reflective(tp: Any, value: Any, where: str) -> Any:
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
                return build_reflective(option, value, where)
            except BadValue as bad:
                errors.append(str(bad))
        raise BadValue(errors[0] if errors else f"{where}: bad value")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise BadValue(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(build_reflective(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise BadValue(f"{where}: expected {len(args)} items")
        return tuple(build_reflective(a, v, f"{where}[{i}]")
                     for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (Mapping, dict, typing.Mapping) or tp is Mapping:
        kt, vt = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise BadValue(f"{where}: expected an object")
        return {build_reflective(kt, k, where): build_reflective(vt, v, f"{where}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise BadValue(f"{where}: expected an object")
        fields, names = _fields(tp)  # type: ignore[arg-type]
        if not names.issuperset(value):
            unknown = set(value) - names
            raise BadValue(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, hint, required in fields:
            if name not in value:
                if required:
                    raise BadValue(f"{where}: missing field {name}")
                continue
            kwargs[name] = build_reflective(hint, value[name], f"{where}.{name}")
        return tp(**kwargs)  # type: ignore[operator]
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        if not isinstance(value, str) or value.upper() not in tp.__members__:
            raise BadValue(f"{where}: unknown value {value!r}")
        return tp[value.upper()]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise BadValue(f"{where}: unknown value {value!r}") from None
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise BadValue(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"{where}: expected a whole number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise BadValue(f"{where}: expected a string")
        if _is_identifier(where):
            # Never "cleaned": an identifier holding a control character or invalid
            # Unicode is refused, as it is in an AWS answer (rdsaudit/text.py).
            problem = identifier_problem(value)
            if problem is not None:
                raise BadValue(f"{where}: {problem}")
            return value
        return valid_text(value)
    raise BadValue(f"{where}: unsupported type {tp!r}")


# -- the fast path ---------------------------------------------------------------------------
#
# `build_reflective` reads the annotations of every field of every record (100,000 resources of ~50
# fields: most of `rdsaudit evaluate`'s time). The fast path is the same checks as code
# generated once per record type: a record that passes them is exactly what `build_reflective` makes
# of it; anything it does not take as plainly valid (a wrong type, a missing or unknown
# field, a value it has no check for) is built by `build_reflective` instead, which accepts it or
# names the first bad value as before. The fast path never accepts what `build_reflective` refuses.


class _Fallback(Exception):
    """Not an error: the fast path leaves this record to `build_reflective`."""

    pass


_MISSING = object()


def build_generated(tp: Any, value: Any, where: str) -> Any:
    try:
        return _fast_builder(tp)(value, where)
    except _Fallback:  # build_reflective accepts it, or names the first bad value with its path
        return build_reflective(tp, value, where)


@functools.cache
def _fast_builder(tp: Any) -> Callable[[Any, str], Any]:
    """The generated builder of one dataclass type (see above)."""
    fields, names = _fields(tp)
    defaults = {f.name: f.default for f in dataclasses.fields(tp)}
    namespace: dict[str, Any] = {
        "T": tp, "NAMES": names, "M": _MISSING, "F": _Fallback, "PLAIN": _PLAIN_ID,
        "problem": identifier_problem, "text": valid_text, "slow": build_reflective,
        "records": _records, "strs": _strings, "pairs": _pairs, "fast": build_generated,
        # The saved inventory's own lists are dropped record by record as they are built
        # (load_inventory parsed them for this alone): never the parsed JSON and every
        # record at once. Repeated values (regions, accounts, engines, keys, tags) are one
        # object each: JSON parsing makes a string per occurrence.
        "CONSUME": tp is Inventory, "SHARE": shared_values,
    }
    lines = ["def build(d, where):",
             "    if type(d) is not dict or not NAMES.issuperset(d):",
             "        raise F"]
    args = []
    for n, (name, hint, required) in enumerate(fields):
        v = f"v{n}"
        args.append(v)
        lines.append(f"    {v} = d.get({name!r}, M)")
        if required:
            lines += [f"    if {v} is M:", "        raise F"]
        else:
            namespace[f"D{n}"] = defaults[name]
            lines += [f"    if {v} is M:", f"        {v} = D{n}", "    else:"]
        indent = "    " if required else "        "
        lines += [indent + line for line in _check(hint, v, name, n, namespace)]
    lines.append(f"    return T({', '.join(args)})")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<build {tp.__name__}>", "exec"), namespace)  # noqa: S102
    return cast(Callable[[Any, str], Any], namespace["build"])


_PLAIN_ID = re.compile(r"[\x21-\x7e]*").fullmatch  # identifier_problem's own fast test


def _str_check(v: str, identifier: bool, share: bool) -> list[str]:
    lines = [f"if type({v}) is not str or (not PLAIN({v}) and problem({v}) is not None):",
             "    raise F"] if identifier else [
        f"if type({v}) is not str:", "    raise F",
        f"if not {v}.isascii():", f"    {v} = text({v})"]
    if share:
        lines.append(f"{v} = SHARE.setdefault({v}, {v})")
    return lines


# Fields whose values are (nearly) unique to their record: not worth sharing.
_UNIQUE_FIELDS = frozenset({"arn", "id", "resource_id", "snapshot_arn", "description", "note",
                            "message", "deletion_date", "valid_to", "last_used_at",
                            "last_used_event_id", "members", "backup_replications"})
# The values of the records being loaded, each kept once (cleared after a load).
shared_values: dict[Any, Any] = {}


def _check(hint: Any, v: str, name: str, n: int, namespace: dict[str, Any]) -> list[str]:
    """Lines that check (and convert) the JSON value in variable `v` for a field of type
    `hint`; `raise F` where `build_reflective` must decide."""
    identifier = name in _IDENTIFIER_FIELDS
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        body = _check(inner, v, name, n, namespace)
        return [f"if {v} is not None:"] + ["    " + line for line in body]
    if hint is str:
        return _str_check(v, identifier, name not in _UNIQUE_FIELDS)
    if hint is bool:
        return [f"if type({v}) is not bool:", "    raise F"]
    if hint is int:
        return [f"if type({v}) is not int:", "    raise F"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum) \
            and not issubclass(hint, enum.IntEnum):
        namespace[f"E{n}"] = {m.value: m for m in hint if type(m.value) is str}
        return [f"if type({v}) is not str or {v} not in E{n}:", "    raise F",
                f"{v} = E{n}[{v}]"]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = args[0]
        if item is str:
            return [f"{v} = strs({v}, {identifier})"]
        if item == tuple[str, str]:
            return [f"{v} = pairs({v}, {identifier})", f"{v} = SHARE.setdefault({v}, {v})"]
        if dataclasses.is_dataclass(item):
            namespace[f"R{n}"] = item
            return [f"{v} = records(R{n}, {v}, where + {'.' + name!r}, CONSUME)"]
    if dataclasses.is_dataclass(hint):
        namespace[f"R{n}"] = hint
        return [f"{v} = fast(R{n}, {v}, where + {'.' + name!r})"]
    # Anything else: the reflective builder, for this field only (it names a bad value).
    namespace[f"H{n}"] = hint
    return [f"{v} = slow(H{n}, {v}, where + {'.' + name!r})"]


def _strings(value: Any, identifier: bool) -> tuple[str, ...]:
    if type(value) is not list:
        raise _Fallback
    if not value:
        return ()
    out = []
    for item in value:
        if type(item) is not str:
            raise _Fallback
        if identifier:
            if not _PLAIN_ID(item) and identifier_problem(item) is not None:
                raise _Fallback
        elif not item.isascii():
            item = valid_text(item)
        out.append(item)
    return tuple(out)


def _pairs(value: Any, identifier: bool) -> tuple[tuple[str, str], ...]:
    if type(value) is not list:
        raise _Fallback
    if not value:
        return ()
    out = []
    for item in value:
        if type(item) is not list or len(item) != 2:
            raise _Fallback
        a, b = item
        if type(a) is not str or type(b) is not str:
            raise _Fallback
        if identifier:
            if (not _PLAIN_ID(a) and identifier_problem(a) is not None) or (
                    not _PLAIN_ID(b) and identifier_problem(b) is not None):
                raise _Fallback
        else:
            if not a.isascii():
                a = valid_text(a)
            if not b.isascii():
                b = valid_text(b)
        out.append((a, b))
    return tuple(out)


def _records(tp: Any, value: Any, where: str, consume: bool = False) -> tuple[Any, ...]:
    """A list of records, each by the fast path, or by `build_reflective` when it must decide (which
    names the path of the first bad value, as it would have for the whole list). With
    `consume`, each parsed item is dropped from the list once its record is built."""
    if type(value) is not list:
        raise BadValue(f"{where}: expected a list")  # as build_reflective says it
    build = _fast_builder(tp)
    out = []
    for i, item in enumerate(value):
        try:
            out.append(build(item, where))
        except (_Fallback, BadValue):
            out.append(build_reflective(tp, item, f"{where}[{i}]"))
        if consume:
            value[i] = None
    return tuple(out)
