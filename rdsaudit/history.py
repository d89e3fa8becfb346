"""Scan history in an embedded SQLite database, for trends and for auditors.

One row per scan with counts by status and severity, and one row per (scan, account). The
schema is versioned with `PRAGMA user_version` and migrated forward step by step, so an old
database is upgraded in place and never rewritten from scratch.

Safe under concurrent scans: every connection waits for a lock (`busy_timeout`) instead of
failing, the database is in WAL mode (readers never block the writer), and each migration
step runs in one `BEGIN IMMEDIATE` transaction that re-reads the version it starts from, so
two first-time scans cannot both create the tables. A database of a newer schema is read,
never written. The file is 0600 in a 0700 directory: it names accounts and regions.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rdsaudit.errors import UsageProblem
from rdsaudit.model import SEVERITY_LABELS
from rdsaudit.timestamps import iso_utc

SEVERITIES = SEVERITY_LABELS
BUSY_TIMEOUT_MS = 30_000

# Each entry moves the schema from version i to i+1. Never edit a released step: add one.
# Statements are separated by ";" (each runs on its own inside the step's transaction).
MIGRATIONS: tuple[str, ...] = (
    # 1: one row per scan.
    """
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        tool_version TEXT NOT NULL,
        accounts TEXT NOT NULL,
        regions TEXT NOT NULL,
        complete INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        resources INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        waived INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        critical INTEGER NOT NULL, high INTEGER NOT NULL, medium INTEGER NOT NULL,
        low INTEGER NOT NULL, info INTEGER NOT NULL
    );
    CREATE INDEX scans_finished ON scans (finished_at);
    """,
    # 2: failures by account, for Organization scans.
    """
    CREATE TABLE scan_accounts (
        scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
        account_id TEXT NOT NULL,
        failed INTEGER NOT NULL,
        critical INTEGER NOT NULL, high INTEGER NOT NULL, medium INTEGER NOT NULL,
        low INTEGER NOT NULL, info INTEGER NOT NULL,
        PRIMARY KEY (scan_id, account_id)
    );
    """,
    # 3: what was scanned (profile or role, endpoint, accounts, regions), so a trend compares
    # like with like; older scans have the empty label and form a trend of their own.
    """
    ALTER TABLE scans ADD COLUMN label TEXT NOT NULL DEFAULT '';
    CREATE INDEX scans_label ON scans (label, finished_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryProblem(UsageProblem):
    """A history database we cannot open or use."""


def default_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("rdsaudit") / "history.sqlite3"


def scan_label(*, profile: str | None, role: str | None, endpoint: str | None,
               accounts: list[str], regions: list[str]) -> str:
    """What a scan covered, as one comparable text."""
    return json.dumps({"profile": profile, "role": role, "endpoint": endpoint,
                       "accounts": sorted(accounts), "regions": sorted(regions)},
                      sort_keys=True, separators=(",", ":"))


def _private_file(path: Path) -> None:
    """The directory 0700 and the database 0600, created so before SQLite opens it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


@contextmanager
def open_history(path: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """A migrated connection; `HistoryProblem` for anything that makes it unusable. With a
    newer schema the connection is read-only (`writable(db)` says so)."""
    try:
        if create:
            _private_file(path)
        elif not path.exists():
            raise HistoryProblem(f"{path}: no scan history yet")
        # Autocommit: transactions are explicit (BEGIN IMMEDIATE in migrate and record).
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryProblem(f"{path}: cannot open history: {exc}") from None
    with closing(connection) as db:
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA foreign_keys = ON")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version <= SCHEMA_VERSION:
                db.execute("PRAGMA journal_mode = WAL")
                migrate(db)
            yield db
        except sqlite3.DatabaseError as exc:
            raise HistoryProblem(f"{path}: history database is unusable: {exc}") from None


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def writable(db: sqlite3.Connection) -> bool:
    """False for a database of a newer schema than this rdsaudit's: read it, never write."""
    return schema_version(db) <= SCHEMA_VERSION


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION, one step per transaction; safe when several
    processes do it at once (each step re-reads the version under the write lock)."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            if version >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return version
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def record(db: sqlite3.Connection, doc: Mapping[str, Any], label: str = "") -> int:
    """Store one report document's counts; returns the new scan id."""
    if not writable(db):
        raise HistoryProblem(f"history schema {schema_version(db)} is newer than this "
                             f"rdsaudit's ({SCHEMA_VERSION}): not recorded; upgrade rdsaudit")
    scan, summary = doc["scan"], doc["summary"]
    by_sev = summary["failures_by_severity"]
    db.execute("BEGIN IMMEDIATE")
    try:
        cursor = db.execute(
            "INSERT INTO scans (started_at, finished_at, tool_version, accounts, regions,"
            " complete, exit_code, resources, passed, failed, waived, errors, critical, high,"
            " medium, low, info, label) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (scan["started_at"], scan["finished_at"], doc["tool"]["version"],
             json.dumps(scan["accounts"]), json.dumps(scan["regions"]),
             int(summary["complete"]), summary["exit_code"], summary["resources_total"],
             summary["findings"]["pass"], summary["findings"]["fail"],
             summary["findings"]["waived"], summary["errors"],
             *(by_sev[s] for s in SEVERITIES), label))
        scan_id = int(cursor.lastrowid or 0)
        db.executemany(
            "INSERT INTO scan_accounts (scan_id, account_id, failed, critical, high, medium,"
            " low, info) VALUES (?,?,?,?,?,?,?,?)",
            [(scan_id, account, sum(c.values()), *(c[s] for s in SEVERITIES))
             for account, c in sorted(_per_account(doc).items())])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return scan_id


def _per_account(doc: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    per_account: dict[str, dict[str, int]] = {a: dict.fromkeys(SEVERITIES, 0)
                                              for a in doc["scan"]["accounts"]}
    for finding in doc["findings"]:
        if finding["status"] == "fail":
            counts = per_account.setdefault(finding["resource"]["account_id"],
                                            dict.fromkeys(SEVERITIES, 0))
            counts[finding["severity"]] += 1
    return per_account


def entry_for(doc: Mapping[str, Any], label: str = "") -> dict[str, Any]:
    """The trend entry of a scan not recorded yet (the one being reported), as `recent`
    returns entries."""
    scan, summary = doc["scan"], doc["summary"]
    return {
        "id": None, "started_at": scan["started_at"], "finished_at": scan["finished_at"],
        "tool_version": doc["tool"]["version"], "accounts": list(scan["accounts"]),
        "regions": list(scan["regions"]), "complete": bool(summary["complete"]),
        "exit_code": summary["exit_code"], "resources": summary["resources_total"],
        "pass": summary["findings"]["pass"], "fail": summary["findings"]["fail"],
        "waived": summary["findings"]["waived"], "errors": summary["errors"],
        "failures_by_severity": {s: summary["failures_by_severity"][s] for s in SEVERITIES},
        "failures_by_account": {a: sum(c.values())
                                for a, c in sorted(_per_account(doc).items())},
        "label": label,
    }


_COLUMNS = ("SELECT id, started_at, finished_at, tool_version, accounts, regions, complete,"
            " exit_code, resources, passed, failed, waived, errors, critical, high, medium,"
            " low, info, label FROM scans ")
_RECENT = _COLUMNS + "ORDER BY finished_at DESC, id DESC LIMIT ?"
_RECENT_OF_LABEL = _COLUMNS + "WHERE label = ? ORDER BY finished_at DESC, id DESC LIMIT ?"


def recent(db: sqlite3.Connection, limit: int = 30,
           label: str | None = None) -> list[dict[str, Any]]:
    """The last `limit` scans (of `label` only, when given), oldest first, with failures by
    account. A row that cannot be read is left out, never an error."""
    has_label = "label" in {row[1] for row in db.execute("PRAGMA table_info(scans)")}
    if not has_label:  # a newer schema read as is may lack it; an older one is migrated
        rows = db.execute(_RECENT.replace(", label FROM", ", '' FROM"), (limit,)).fetchall()
    elif label is None:
        rows = db.execute(_RECENT, (limit,)).fetchall()
    else:
        rows = db.execute(_RECENT_OF_LABEL, (label, limit)).fetchall()
    scans = []
    for row in reversed(rows):
        try:
            scans.append(_entry(db, row))
        except (ValueError, TypeError, sqlite3.Error):
            continue  # a corrupted row: the trend goes on without it
    return scans


def _entry(db: sqlite3.Connection, row: tuple[Any, ...]) -> dict[str, Any]:
    (scan_id, started, finished, version, accounts, regions, complete, exit_code,
     resources, passed, failed, waived, errors, *rest) = row
    sev, label = rest[:5], rest[5]
    numbers = (exit_code, resources, passed, failed, waived, errors, *sev)
    if not all(isinstance(n, int) for n in numbers) or not all(
            isinstance(t, str) for t in (started, finished, version)):
        raise ValueError("not a scan row")
    account_list, region_list = json.loads(accounts), json.loads(regions)
    if not (isinstance(account_list, list) and isinstance(region_list, list)
            and all(isinstance(a, str) for a in account_list + region_list)):
        raise ValueError("not a scan row")
    by_account = {
        str(account): int(failed_n) for account, failed_n in db.execute(
            "SELECT account_id, failed FROM scan_accounts WHERE scan_id = ?"
            " ORDER BY account_id", (scan_id,))
    }
    return {
        "id": scan_id, "started_at": started, "finished_at": finished,
        "tool_version": version, "accounts": account_list, "regions": region_list,
        "complete": bool(complete), "exit_code": exit_code, "resources": resources,
        "pass": passed, "fail": failed, "waived": waived, "errors": errors,
        "failures_by_severity": dict(zip(SEVERITIES, sev, strict=True)),
        "failures_by_account": by_account, "label": str(label or ""),
    }


def prune(db: sqlite3.Connection, days: int, now: datetime | None = None) -> int:
    """Delete scans that finished more than `days` days ago; returns how many."""
    if not writable(db):
        raise HistoryProblem(f"history schema {schema_version(db)} is newer than this "
                             f"rdsaudit's ({SCHEMA_VERSION}): it is read-only")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    cursor = db.execute("DELETE FROM scans WHERE finished_at <= ?", (iso_utc(cutoff),))
    return cursor.rowcount
