"""History never costs a scan, and the low items of issue 12: each through the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.history import SCHEMA_VERSION, entry_for, open_history, recent, record
from rdsaudit.report.csv import neutralise
from tests.support.hostile import RDSAUDIT, REGION, run, small_estate


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAWS]:
    with small_estate() as (served, _key):
        yield served


def scan(fake: FakeAWS, tmp: Path, *extra: str | Path) -> tuple[int, str]:
    proc = run(fake, "scan", "--regions", REGION, "--output-dir", tmp / "out", "--format",
               "json,html", "--fail-on", "critical", *extra)
    return proc.returncode, proc.stderr.decode()


# -- history ------------------------------------------------------------------------------------

def test_a_corrupt_history_is_a_warning_and_the_scan_stands(fake: FakeAWS,
                                                            tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    code, stderr = scan(fake, tmp_path, "--history", db)
    assert code == 0, stderr
    assert "rdsaudit: warning: history not read" in stderr
    assert "rdsaudit: warning: scan not recorded in the history" in stderr
    assert (tmp_path / "out" / "rdsaudit-report.html").exists()


def test_an_unwritable_history_location_is_a_warning(fake: FakeAWS, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, stderr = scan(fake, tmp_path, "--history", blocker / "history.sqlite3")
    assert code == 0, stderr
    assert "scan not recorded in the history" in stderr


def test_a_newer_schema_is_read_only(fake: FakeAWS, tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite3"
    with open_history(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    before = db.read_bytes()
    code, stderr = scan(fake, tmp_path, "--history", db)
    assert code == 0, stderr
    assert "newer than this rdsaudit" in stderr and "read only" in stderr
    assert db.read_bytes() == before


def test_corrupted_rows_are_left_out_of_the_trend(fake: FakeAWS, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    assert scan(fake, tmp_path, "--history", db)[0] == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE scans SET accounts = 'not json', regions = 42")
    code, stderr = scan(fake, tmp_path, "--history", db)
    assert code == 0, stderr
    doc = json.loads((tmp_path / "out" / "rdsaudit-report.json").read_text())
    assert len(doc["history"]) == 1  # this scan; the broken row is skipped


def test_the_trend_compares_like_with_like(fake: FakeAWS, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    for regions in (REGION, REGION, f"{REGION},eu-west-1"):
        proc = run(fake, "scan", "--regions", regions, "--output-dir", tmp_path / "out",
                   "--history", db, "--fail-on", "critical")
        assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "rdsaudit-report.json").read_text())
    assert [h["regions"] for h in doc["history"]] == [["eu-west-1", REGION]]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(DISTINCT label) FROM scans").fetchone()[0] == 2
    # waived is carried apart from fixed in every trend entry
    assert "waived" in doc["history"][-1] and "fail" in doc["history"][-1]


def test_history_is_written_after_the_reports(fake: FakeAWS, tmp_path: Path) -> None:
    """A scan whose reports cannot be written records nothing."""
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    db = tmp_path / "h.sqlite3"
    code, stderr = scan(fake, tmp_path, "--history", db)
    assert code == 2, stderr
    assert not db.exists()


def test_concurrent_first_opens_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "history.sqlite3"
    doc = {"tool": {"version": "t"},
           "scan": {"started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:01:00Z",
                    "accounts": ["123456789012"], "regions": [REGION]},
           "summary": {"complete": True, "exit_code": 0, "resources_total": 1,
                       "findings": {"pass": 1, "fail": 0, "waived": 0}, "errors": 0,
                       "failures_by_severity": dict.fromkeys(
                           ("critical", "high", "medium", "low", "info"), 0)},
           "findings": []}
    failures: list[BaseException] = []
    barrier = threading.Barrier(24)

    def one() -> None:
        try:
            barrier.wait()
            with open_history(db) as conn:
                record(conn, doc, "label")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with open_history(db) as conn:
        assert len(recent(conn, 100, "label")) == 24
    assert entry_for(doc)["resources"] == 1
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_reports_and_inventories_honour_the_umask(fake: FakeAWS, tmp_path: Path, umask: int,
                                                  mode: int) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()}
    proc = subprocess.run(
        ["sh", "-c", f'umask {umask:03o}; exec "$@"', "sh", RDSAUDIT, "scan", "--regions",
         REGION, "--output-dir", str(out), "--format", "json,csv", "--save-inventory",
         str(out / "inv.json"), "--no-history"],
        env={**env, "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
             "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
             "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull},
        capture_output=True, timeout=240, check=False)
    assert proc.returncode == 1, proc.stderr
    for name in ("rdsaudit-report.json", "rdsaudit-report.csv", "inv.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == mode, name


# -- low items ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["\n=1+1", " =1+1", "\u00a0=HYPERLINK(1)", "a\r\n@SUM(1)",
                                   "ok\n \t-2"])
def test_csv_neutralises_every_line_after_blanks(value: str) -> None:
    out = neutralise(value)
    assert out.startswith("'")
    for line in out.splitlines():
        assert not line.lstrip(" \u00a0\t").startswith(("=", "+", "-", "@"))


def test_csv_keeps_plain_text() -> None:
    assert neutralise("team a\nowner b") == "team a\nowner b"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION})
    return subprocess.run([RDSAUDIT, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def test_iam_policy_assumes_only_the_named_role() -> None:
    doc = json.loads(cli("iam-policy", "--organization", "--role-name", "audit-ro").stdout)
    assume = [s for s in doc["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert [s["Resource"] for s in assume] == ["arn:aws:iam::*:role/audit-ro"]
    assert all(s["Resource"] != "*" for s in assume)


def test_unknown_role_arn_placeholder_is_exit_2() -> None:
    proc = cli("scan", "--accounts", "111122223333", "--role-arn",
               "arn:aws:iam::{account_id}:role/{x}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--role-arn" in proc.stderr


def test_a_report_with_non_string_accounts_is_exit_2(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"schema_version": 1, "scan": {"accounts": [1, None]},
                                  "findings": []}))
    proc = cli("plan", str(report))
    assert proc.returncode == 2, proc.stderr
    assert "scan.accounts" in proc.stderr


def test_version_true_is_not_version_1(tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"format": "rdsaudit-inventory", "version": True}))
    proc = cli("evaluate", str(inv))
    assert proc.returncode == 2 and "version" in proc.stderr
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"schema_version": True, "findings": []}))
    assert cli("plan", str(report)).returncode == 2


def test_dev_zero_and_fifos_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        for args in (("evaluate", path), ("plan", path), ("evaluate", "--config", path,
                                                           str(fifo))):
            proc = cli(*args, timeout=30)
            assert proc.returncode == 2, (args, proc.stderr)
            assert "not a regular file" in proc.stderr


def test_a_network_failure_is_not_called_a_credential_problem() -> None:
    env_proc = subprocess.run(
        [RDSAUDIT, "scan", "--regions", REGION, "--no-history"], capture_output=True,
        text=True, timeout=120, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
             "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
             "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
             "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_REGION": REGION})
    assert env_proc.returncode == 2
    assert "cannot reach AWS" in env_proc.stderr
    assert "credentials" not in env_proc.stderr


def test_no_arguments_prints_the_help_as_help() -> None:
    proc = cli()
    assert proc.returncode == 2
    assert proc.stderr.count("\n") > 5 and "Commands:" in proc.stderr
