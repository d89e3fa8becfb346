"""Scan history in an embedded SQLite database, for trends and for auditors.

One row per scan with counts by status and severity, and one row per (scan, account). The
schema is versioned with `PRAGMA user_version` and migrated forward step by step, so an old
database is upgraded in place and never rewritten from scratch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rdsaudit.timestamps import iso_utc

SEVERITIES = ("critical", "high", "medium", "low", "info")

# Each entry moves the schema from version i to i+1. Never edit a released step: add one.
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
)
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryProblem(Exception):
    """A history database we cannot open or use (exit 2)."""


def default_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("rdsaudit") / "history.sqlite3"


@contextmanager
def open_history(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryProblem(f"{path}: cannot open history: {exc}") from None
    with closing(connection) as db:
        try:
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
            yield db
            db.commit()
        except sqlite3.DatabaseError as exc:
            raise HistoryProblem(f"{path}: history database is unusable: {exc}") from None


def migrate(db: sqlite3.Connection) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise HistoryProblem(f"history schema {version} is newer than this rdsaudit "
                             f"({SCHEMA_VERSION}); upgrade rdsaudit")
    for step in range(version, SCHEMA_VERSION):
        with db:
            db.executescript(MIGRATIONS[step])
            db.execute(f"PRAGMA user_version = {step + 1}")
    return SCHEMA_VERSION


def record(db: sqlite3.Connection, doc: Mapping[str, Any]) -> int:
    """Store one report document's counts; returns the new scan id."""
    scan, summary = doc["scan"], doc["summary"]
    by_sev = summary["failures_by_severity"]
    cursor = db.execute(
        "INSERT INTO scans (started_at, finished_at, tool_version, accounts, regions, complete,"
        " exit_code, resources, passed, failed, waived, errors, critical, high, medium, low,"
        " info) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (scan["started_at"], scan["finished_at"], doc["tool"]["version"],
         json.dumps(scan["accounts"]), json.dumps(scan["regions"]), int(summary["complete"]),
         summary["exit_code"], summary["resources_total"], summary["findings"]["pass"],
         summary["findings"]["fail"], summary["findings"]["waived"], summary["errors"],
         *(by_sev[s] for s in SEVERITIES)))
    scan_id = int(cursor.lastrowid or 0)
    per_account: dict[str, dict[str, int]] = {a: dict.fromkeys(SEVERITIES, 0)
                                              for a in scan["accounts"]}
    for finding in doc["findings"]:
        if finding["status"] == "fail":
            counts = per_account.setdefault(finding["resource"]["account_id"],
                                            dict.fromkeys(SEVERITIES, 0))
            counts[finding["severity"]] += 1
    db.executemany(
        "INSERT INTO scan_accounts (scan_id, account_id, failed, critical, high, medium, low,"
        " info) VALUES (?,?,?,?,?,?,?,?)",
        [(scan_id, account, sum(c.values()), *(c[s] for s in SEVERITIES))
         for account, c in sorted(per_account.items())])
    return scan_id


def recent(db: sqlite3.Connection, limit: int = 30) -> list[dict[str, Any]]:
    """The last `limit` scans, oldest first, with failures by account."""
    rows = db.execute(
        "SELECT id, started_at, finished_at, tool_version, accounts, regions, complete,"
        " exit_code, resources, passed, failed, waived, errors, critical, high, medium, low,"
        " info FROM scans ORDER BY finished_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
    scans = []
    for row in reversed(rows):
        (scan_id, started, finished, version, accounts, regions, complete, exit_code,
         resources, passed, failed, waived, errors, *sev) = row
        by_account = {
            account: failed_n for account, failed_n in db.execute(
                "SELECT account_id, failed FROM scan_accounts WHERE scan_id = ?"
                " ORDER BY account_id", (scan_id,))
        }
        scans.append({
            "id": scan_id, "started_at": started, "finished_at": finished,
            "tool_version": version, "accounts": json.loads(accounts),
            "regions": json.loads(regions), "complete": bool(complete),
            "exit_code": exit_code, "resources": resources, "pass": passed, "fail": failed,
            "waived": waived, "errors": errors,
            "failures_by_severity": dict(zip(SEVERITIES, sev, strict=True)),
            "failures_by_account": by_account,
        })
    return scans


def prune(db: sqlite3.Connection, days: int, now: datetime | None = None) -> int:
    """Delete scans that finished more than `days` days ago; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    cursor = db.execute("DELETE FROM scans WHERE finished_at <= ?", (iso_utc(cutoff),))
    return cursor.rowcount
