"""Times as rdsaudit writes and reads them: ISO 8601 in UTC, to the second, with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utcnow() -> str:
    return iso_utc(datetime.now(UTC))


def parse_time(text: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text (naive means UTC); None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def days_left(moment: Any, now: datetime | None) -> int | None:
    """Whole days from `now` to `moment` (ISO text or a datetime), rounded up; 0 once past;
    None when either is unknown. The one formula behind every "N days left" rdsaudit shows
    (key deletion, key material expiry, the seven-day recoverable window)."""
    when = moment if isinstance(moment, datetime) else parse_time(moment)
    if when is None or now is None:
        return None
    seconds = (when - now).total_seconds()
    return max(0, int(-(-seconds // 86400)))
