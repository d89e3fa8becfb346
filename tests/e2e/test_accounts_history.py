"""Organization scans against the emulator (moto Organizations and STS), and scan history.

Three member accounts with their own estates, one whose role cannot be assumed, one closed
(suspended) account that must be skipped; the management account is scanned with its own
credentials. History: two scans stored, listed, trended in the HTML, pruned, and an old
schema migrated forward.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from rdsaudit.collect.floor import api_floor
from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.history import MIGRATIONS, SCHEMA_VERSION
from rdsaudit.serialize import load_inventory
from tests.cli.test_cli import one_line_error
from tests.e2e.test_scan import run
from tests.support.seeded_org import MANAGEMENT, ROLE, audited, in_account

PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}


@dataclass
class Org:
    fake: FakeAWS
    members: dict[str, str]  # name -> account id
    closed: str


def _encrypted_db(account: str, name: str) -> None:
    audited(account)
    kms, rds = in_account(account, "kms"), in_account(account, "rds")
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres",
                           DBInstanceClass="db.t3.micro", StorageEncrypted=True,
                           KmsKeyId=key["Arn"], **PW)


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        members = {}
        for name in ("payments", "analytics", "sandbox", "retired"):
            status = client.create_account(AccountName=name,
                                           Email=f"{name}@example.com")["CreateAccountStatus"]
            members[name] = status["AccountId"]
        client.close_account(AccountId=members["retired"])
        _encrypted_db(members["payments"], "payments-db")
        _encrypted_db(members["analytics"], "analytics-db")
        _encrypted_db(members["sandbox"], "sandbox-db")
        _encrypted_db(MANAGEMENT, "org-tools-db")
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    try:
        yield Org(fake, members, members.pop("retired"))
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def test_organization_scan_attributes_findings_and_records_the_denied_account(
        org: Org, tmp_path: Path) -> None:
    denied = org.members["sandbox"]
    org.fake.inject_fault(Fault("sts", "AssumeRole", match=denied, code="AccessDenied",
                             message=f"not authorized to perform sts:AssumeRole on {denied}"))
    try:
        proc = run(org.fake, "scan", "--organization", "--role-name", ROLE, "--regions",
                   "us-east-1", "--output-dir", tmp_path, "--format", "json,csv", "--no-history",
                   "--save-inventory", tmp_path / "inv.json")
    finally:
        org.fake.clear_faults()
    assert proc.returncode == 3, proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    # The calls are the floor of the multi-account inventory: every per-region call once per
    # (account, region) read, one AssumeRole per member, none past the denied AssumeRole.
    floor = api_floor(load_inventory(tmp_path / "inv.json"), caller=MANAGEMENT,
                      list_accounts_pages=doc["scan"]["api_calls"]["organizations:ListAccounts"])
    assert doc["scan"]["api_calls"] == floor
    assert floor["kms:ListAliases"] == floor["cloudtrail:DescribeTrails"] == 3
    expected = {MANAGEMENT, org.members["payments"], org.members["analytics"], denied}
    assert set(doc["scan"]["accounts"]) == expected
    assert org.closed not in doc["scan"]["accounts"]
    owners = {r["id"]: r["account_id"] for r in doc["resources"] if r["type"] == "db-instance"}
    assert owners == {"payments-db": org.members["payments"],
                      "analytics-db": org.members["analytics"],
                      "org-tools-db": MANAGEMENT}
    assert [(e["account_id"], e["operation"], e["code"]) for e in doc["errors"]] == [
        (denied, "AssumeRole", "AccessDenied")]
    assert doc["scan"]["api_calls"]["organizations:ListAccounts"] >= 1
    assert doc["scan"]["api_calls"]["sts:AssumeRole"] == 3
    # Every scanned account is counted, failing or not (the CSV lists failures only).
    assert org.members["payments"] in doc["summary"]["by_account"]
    assert (tmp_path / "rdsaudit-report.csv").stat().st_size > 0


def test_account_list_with_role_arn_template(org: Org) -> None:
    ids = f"{org.members['payments']},{org.members['analytics']}"
    proc = run(org.fake, "scan", "--accounts", ids, "--role-arn",
               "arn:aws:iam::{account_id}:role/" + ROLE, "--external-id", "x-123",
               "--regions", "us-east-1", "--no-history")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc["scan"]["accounts"]) == set(ids.split(","))
    assert {r["id"] for r in doc["resources"]
            if r["type"] == "db-instance"} == {"payments-db", "analytics-db"}


@pytest.mark.parametrize(("args", "says"), [
    (["--organization"], "--role-name"),
    (["--accounts", "12345", "--role-name", "r"], "12-digit"),
    (["--accounts", "111111111111", "--role-arn", "arn:aws:iam::1:role/x"], "{account_id}"),
])
def test_bad_account_options_exit_2(org: Org, args: list[str], says: str) -> None:
    assert says in one_line_error(run(org.fake, "scan", *args))


def test_organization_listing_denied_is_exit_2(org: Org) -> None:
    org.fake.inject_fault(Fault("organizations", "ListAccounts", code="AccessDeniedException",
                             status=400, message="not the management account"))
    try:
        line = one_line_error(run(org.fake, "scan", "--organization", "--role-name", ROLE,
                                  "--regions", "us-east-1"))
    finally:
        org.fake.clear_faults()
    assert "management" in line


def test_history_records_lists_trends_prunes(org: Org, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    for _ in range(2):
        proc = run(org.fake, "scan", "--regions", "us-east-1", "--history", db,
                   "--format", "json,html", "--output-dir", tmp_path / "out")
        assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "rdsaudit-report.json").read_text())
    assert len(doc["history"]) == 2 and doc["history"][-1]["resources"] >= 1
    listing = run(org.fake, "history", "--history", db, "--json")
    scans = json.loads(listing.stdout)
    assert len(scans) == 2 and scans[0]["accounts"] == [MANAGEMENT]
    table = run(org.fake, "history", "--history", db)
    assert table.returncode == 0 and table.stdout.count("\n") == 3
    html = (tmp_path / "out" / "rdsaudit-report.html").read_text()
    assert "trend" in html.lower()
    pruned = run(org.fake, "history", "--history", db, "--prune", "0")
    assert pruned.returncode == 0 and "pruned 2 scan(s)" in pruned.stderr
    assert json.loads(run(org.fake, "history", "--history", db, "--json").stdout) == []


def test_old_history_schema_is_migrated_forward(org: Org, tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO scans (started_at, finished_at, tool_version, accounts, regions,"
            " complete, exit_code, resources, passed, failed, waived, errors, critical, high,"
            " medium, low, info) VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z',"
            " '0.0.1', '[\"123456789012\"]', '[]', 1, 1, 5, 3, 2, 0, 0, 0, 2, 0, 0, 0)")
    proc = run(org.fake, "scan", "--regions", "us-east-1", "--history", db, "--quiet")
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM scans").fetchone()[0] == 2
    scans = json.loads(run(org.fake, "history", "--history", db, "--json").stdout)
    assert scans[0]["tool_version"] == "0.0.1" and scans[0]["failures_by_account"] == {}


def test_unusable_history_is_exit_2(org: Org, tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    assert "history" in one_line_error(run(org.fake, "history", "--history", db))
    # A scan is not cost by it: a warning, and the scan's own exit code (issue 12).
    proc = run(org.fake, "scan", "--regions", "us-east-1", "--history", db)
    assert proc.returncode == 0, proc.stderr
    assert "rdsaudit: warning: history not read" in proc.stderr
