"""AWS answers read leniently where AWS is sloppy (timestamps) and strictly where the shape is
wrong (a `MalformedAnswer`, never a crash).

The scanner's checks of what an answer may hold live here too, as pure functions of the
answer: `key_metadata_problem` (DescribeKey), `trail_entry_problem` (DescribeTrails) and
`text_problem` (no text from AWS where AWS writes none: every string is an identifier unless
the field is free text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import botocore.utils
from botocore.parsers import (
    PROTOCOL_PARSERS,
    BaseXMLResponseParser,
    ResponseParserFactory,
    _text_content,
)

from rdsaudit.collect.failures import AWS_FAILURES, MalformedAnswer
from rdsaudit.text import identifier_problem
from rdsaudit.timestamps import iso_utc


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parsing, without dateutil for the forms AWS sends.

    botocore parses every timestamp of every response with dateutil, which is half of its
    XML parsing time on a snapshot listing (benchmarks/results.md). ISO 8601 text and epoch
    seconds are what the RDS and KMS APIs send; anything else goes to botocore's parser.
    The result is the same aware datetime in UTC.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    result: datetime = botocore.utils.parse_timestamp(value)
    return result


def lenient_timestamp(value: Any) -> Any:
    """`parse_timestamp`, or the value as text when it is not a time (`not-a-date`, 1e20):
    the record holding it is then malformed, instead of the whole page failing."""
    try:
        return parse_timestamp(value)
    except Exception:  # noqa: BLE001 - botocore/dateutil raise RuntimeError too ("1e20")
        return str(value)


def _lenient(parser: type) -> type:
    """A botocore XML parser that keeps a number or boolean it cannot read as its text.

    botocore raises ValueError for `<BackupRetentionPeriod>seven</…>` (the whole call
    fails, exit 4 before) and reads any boolean but `true` as False; kept as text, the value
    reaches the record's own type checks (`collect.specs`), which refuse that one record.
    """

    class Lenient(parser):  # type: ignore[misc]
        @_text_content  # type: ignore[untyped-decorator]
        def _handle_integer(self, shape: Any, text: str) -> Any:
            try:
                return int(text)
            except ValueError:
                return text

        @_text_content  # type: ignore[untyped-decorator]
        def _handle_float(self, shape: Any, text: str) -> Any:
            try:
                return float(text)
            except ValueError:
                return text

        @_text_content  # type: ignore[untyped-decorator]
        def _handle_boolean(self, shape: Any, text: str) -> Any:
            return {"true": True, "false": False}.get(text, text)

        _handle_long = _handle_integer
        _handle_double = _handle_float

    Lenient.__name__ = f"Lenient{parser.__name__}"
    return Lenient


_LENIENT_PARSERS = {name: _lenient(cls) for name, cls in PROTOCOL_PARSERS.items()
                    if issubclass(cls, BaseXMLResponseParser)}


class LenientParserFactory(ResponseParserFactory):  # type: ignore[misc]
    """botocore's parser factory, with `lenient_timestamp` and lenient XML scalars."""

    def __init__(self) -> None:
        super().__init__()
        self.set_parser_defaults(timestamp_parser=lenient_timestamp)

    def create_parser(self, protocol_name: str) -> Any:
        parser = _LENIENT_PARSERS.get(protocol_name) or PROTOCOL_PARSERS[protocol_name]
        return parser(**self._defaults)


def use_lenient_parsers(session: boto3.Session) -> None:
    """Parse the session's answers with `LenientParserFactory`: the same values for a
    well-formed answer (and less CPU: `parse_timestamp`), text where one is wrong."""
    core = getattr(session, "_session", None)
    if core is None:
        return
    if not isinstance(core.get_component("response_parser_factory"), LenientParserFactory):
        core.register_component("response_parser_factory", LenientParserFactory())


def read_answer(method: Callable[..., Any], operation: str, **params: Any) -> Mapping[str, Any]:
    """Call `method`; an answer botocore cannot turn into the modelled structure (a value of
    the wrong type, a JSON list for an object) is a `MalformedAnswer`, never a crash."""
    try:
        result = method(**params)
    except AWS_FAILURES:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            UnicodeError, RecursionError) as exc:
        raise MalformedAnswer(f"the {operation} answer is not of the expected shape "
                              f"({type(exc).__name__})") from None
    if not isinstance(result, Mapping):
        raise MalformedAnswer(f"the {operation} answer is not a structure")
    return result


# DescribeKey fields a rule or report reads, by the type they must have.
_KEY_TEXT = ("KeyState", "KeyManager", "Origin", "KeySpec", "KeyUsage", "ExpirationModel",
             "CustomKeyStoreId", "MultiRegionKeyType")


def key_metadata_problem(meta: Any) -> str | None:
    """What makes a DescribeKey `KeyMetadata` unusable, or None."""
    if not isinstance(meta, Mapping):
        return "the answer has no KeyMetadata structure"
    if not isinstance(meta.get("KeyState"), str):
        return "no KeyMetadata.KeyState"
    for name in _KEY_TEXT:
        value = meta.get(name)
        if value is not None and (not isinstance(value, str)
                                  or identifier_problem(value) is not None):
            return f"KeyMetadata.{name} is not a sound name"
    for name in ("DeletionDate", "ValidTo", "CreationDate"):
        if meta.get(name) is not None and not isinstance(meta[name], datetime):
            return f"KeyMetadata.{name} is not a date"
    for name in ("MultiRegion", "Enabled"):
        if meta.get(name) is not None and not isinstance(meta[name], bool):
            return f"KeyMetadata.{name} is not true or false"
    if meta.get("Description") is not None and not isinstance(meta["Description"], str):
        return "KeyMetadata.Description is not text"
    window = meta.get("PendingDeletionWindowInDays")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
        return "KeyMetadata.PendingDeletionWindowInDays is not a whole number"
    return None


# Free text (error messages, a selector's own name) in the answers below; every other
# string there is a machine value (ARN, region, key id, timestamp, enum, event source) and is
# held to identifier_problem.
TRAIL_STATUS_FREE_TEXT = frozenset({"LatestDeliveryError", "LatestNotificationError",
                                     "LatestDigestDeliveryError",
                                     "LatestCloudWatchLogsDeliveryError"})


SELECTOR_FREE_TEXT = frozenset({"Name"})


def text_problem(value: Any, free: frozenset[str] = frozenset(),
                 where: str = "the answer") -> str | None:
    """The first string of an answer (walked through structures and lists) that cannot be
    an identifier, as "<where> <problem>", or None. Strings under a key in `free` are free
    text and not checked."""
    if isinstance(value, str):
        problem = identifier_problem(value)
        return f"{where} {problem}" if problem is not None else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in free:
                continue
            problem = text_problem(item, free, f"{key}" if where == "the answer"
                                   else f"{where}.{key}")
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = text_problem(item, free, where)
            if problem is not None:
                return problem
    return None


def trail_entry_problem(entry: Mapping[str, Any]) -> str | None:
    """What makes a DescribeTrails entry unusable (its TrailARN, Name and HomeRegion are
    used as the ARN and region of later calls and shown as identifiers), or None."""
    for name in ("TrailARN", "Name", "HomeRegion"):
        value = entry.get(name)
        if value is not None and (not isinstance(value, str)
                                  or identifier_problem(value) is not None):
            return f"{name} is not a sound name"
    return None


def iso_text(value: Any) -> str:
    return iso_utc(value) if isinstance(value, datetime) else str(value)


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def multi_region_config(config: Any) -> tuple[str | None, tuple[str, ...]]:
    """(primary key ARN, replica key ARNs) of DescribeKey's MultiRegionConfiguration."""
    if not isinstance(config, Mapping):
        return None, ()
    primary = config.get("PrimaryKey")
    primary_arn = str_or_none(primary.get("Arn")) if isinstance(primary, Mapping) else None
    replicas = config.get("ReplicaKeys")
    replica_arns = tuple(
        arn for arn in (str_or_none(r.get("Arn")) for r in replicas if isinstance(r, Mapping))
        if arn is not None
    ) if isinstance(replicas, list) else ()
    return primary_arn, replica_arns
