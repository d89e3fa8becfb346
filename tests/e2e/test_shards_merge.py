"""Sharded Organization scans and `rdsaudit merge`, against the emulator.

An Organization with a management account and members: one owns a KMS key that another
uses (a cross-account key), one cannot be assumed (AccessDenied), one has an unencrypted
database. Scanned in one run and in 3 shards + merge, the reports must agree: same
findings, errors, summary and exit code. A shard alone cannot judge the borrowed key;
the merge re-joins it. A missing shard is a named error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.shard import Shard, parse_shard, shard_of
from tests.cli.test_cli import one_line_error
from tests.e2e.test_scan import run
from tests.support.seeded_org import MANAGEMENT, ROLE, audited, in_account

PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}
SHARDS = 3


@dataclass
class Org:
    fake: FakeAWS
    owner: str  # owns the shared key
    borrower: str  # a database encrypted with the owner's key
    denied: str
    plain: str  # an unencrypted database
    key_arn: str


def _db(account: str, name: str, key_arn: str | None) -> None:
    extra: dict[str, Any] = {"StorageEncrypted": True, "KmsKeyId": key_arn} if key_arn else {}
    in_account(account, "rds").create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
        **extra, **PW)


def _key(account: str) -> str:
    audited(account)
    kms = in_account(account, "kms")
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    return str(key["Arn"])


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        def member() -> str:
            n = len(created)
            status = client.create_account(AccountName=f"member-{n}",
                                           Email=f"m{n}@example.com")["CreateAccountStatus"]
            created.append(status["AccountId"])
            return str(status["AccountId"])

        created: list[str] = []
        owner, borrower, denied, plain = member(), member(), member(), member()
        # moto's account ids are random: add members until the borrower of the key sits in
        # another shard than its owner, so the merge has a key to re-join.
        while shard_of(borrower, SHARDS) == shard_of(owner, SHARDS):
            assert len(created) < 40
            borrower = member()
        key_arn = _key(owner)
        _db(owner, "owner-db", key_arn)
        _db(borrower, "borrower-db", key_arn)
        _db(plain, "plain-db", None)
        _db(MANAGEMENT, "org-tools-db", _key(MANAGEMENT))
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    fake.inject_fault(Fault("sts", "AssumeRole", match=denied, code="AccessDenied",
                            message=f"not authorized to perform sts:AssumeRole on {denied}"))
    try:
        yield Org(fake, owner, borrower, denied, plain, key_arn)
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def _scan(org: Org, out: Path, *extra: str, **env: str) -> tuple[int, dict[str, Any]]:
    proc = run(org.fake, "scan", "--organization", "--role-name", ROLE, "--regions",
               "us-east-1", "--output-dir", out, "--no-history", *extra, **env)
    assert proc.returncode in (0, 1, 3), proc.stderr
    return proc.returncode, json.loads((out / "rdsaudit-report.json").read_text())


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(json.dumps(e, sort_keys=True) for e in doc["errors"])
    return {"findings": doc["findings"], "errors": errors, "summary": doc["summary"],
            "accounts": sorted(doc["scan"]["accounts"])}


def test_three_shards_and_merge_equal_one_run(org: Org, tmp_path: Path) -> None:
    whole_code, whole = _scan(org, tmp_path / "whole")
    shards = []
    for index in range(1, SHARDS + 1):
        # One shard the way AWS Batch and Kubernetes name it: a 0-based index variable.
        args = ("--shard", f"auto/{SHARDS}") if index == 2 else ("--shard", f"{index}/{SHARDS}")
        env = {"JOB_COMPLETION_INDEX": "1"} if index == 2 else {}
        _, doc = _scan(org, tmp_path / f"shard-{index}", *args, **env)
        assert doc["scan"]["shard"] == {"index": index, "count": SHARDS}
        assert (tmp_path / f"shard-{index}" / "rdsaudit-inventory.json").exists()
        shards.append(doc)
    # The shards are disjoint and together cover the Organization.
    scanned = [a for doc in shards for a in doc["scan"]["accounts"]]
    assert sorted(scanned) == sorted(whole["scan"]["accounts"])
    for index, doc in enumerate(shards, 1):
        assert all(shard_of(a, SHARDS) == index for a in doc["scan"]["accounts"])

    # Alone, the borrower's shard cannot describe the owner's key (moto: NotFound, as a
    # key policy without a grant would deny it): it judges the key unusable.
    borrower_shard = shards[shard_of(org.borrower, SHARDS) - 1]
    alone = {(f["rule_id"], f["status"]) for f in borrower_shard["findings"]
             if f["resource"]["id"] == "borrower-db"}
    assert ("key-unusable", "fail") in alone

    merged_dir = tmp_path / "merged"
    proc = run(org.fake, "merge", *(tmp_path / f"shard-{i}" for i in range(1, SHARDS + 1)),
               "--format", "json,csv", "--output-dir", merged_dir)
    merged = json.loads((merged_dir / "rdsaudit-report.json").read_text())
    assert proc.returncode == whole_code == 1, proc.stderr
    assert _comparable(merged) == _comparable(whole)
    together = {(f["rule_id"], f["status"]) for f in merged["findings"]
                if f["resource"]["id"] == "borrower-db"}
    assert ("key-unusable", "fail") not in together
    assert ("cross-account-key", "fail") in together
    assert [(e["account_id"], e["operation"]) for e in merged["errors"]] == [
        (org.denied, "AssumeRole")]
    assert sum(merged["scan"]["api_calls"].values()) == sum(
        sum(doc["scan"]["api_calls"].values()) for doc in shards)

    # A shard that never wrote its part: named in the merged report, exit 3 or 1.
    missing = shard_of(org.plain, SHARDS)
    given = [tmp_path / f"shard-{i}" for i in range(1, SHARDS + 1) if i != missing]
    proc = run(org.fake, "merge", *given, tmp_path / "never-written", "--output-dir",
               tmp_path / "partial")
    partial = json.loads((tmp_path / "partial" / "rdsaudit-report.json").read_text())
    codes = [e["code"] for e in partial["errors"]]
    assert "ShardMissing" in codes
    named = next(e for e in partial["errors"] if e["code"] == "ShardMissing")
    assert f"shard {missing}/{SHARDS}" in named["message"]
    assert org.plain in named["message"] and "never-written" in named["message"]
    assert partial["summary"]["complete"] is False
    assert proc.returncode in (1, 3)
    assert proc.returncode == (1 if partial["summary"]["findings"]["fail"] else 3)


def test_missing_shard_alone_is_exit_3(org: Org, tmp_path: Path) -> None:
    """When the present shards have no failures, a missing one makes the merge exit 3."""
    listed = tmp_path / "accounts.txt"
    listed.write_text(f"{org.owner}\n")  # its estate is compliant
    index = shard_of(org.owner, SHARDS)
    proc = run(org.fake, "scan", "--accounts-file", listed, "--role-name", ROLE, "--regions",
               "us-east-1", "--shard", f"{index}/{SHARDS}", "--output-dir", tmp_path / "s",
               "--no-history")
    assert proc.returncode == 0, [f["message"] for f in json.loads(
        (tmp_path / "s" / "rdsaudit-report.json").read_text())["findings"]
        if f["status"] == "fail"]
    proc = run(org.fake, "merge", tmp_path / "s", "--output-dir", tmp_path / "m")
    assert proc.returncode == 3, proc.stderr
    merged = json.loads((tmp_path / "m" / "rdsaudit-report.json").read_text())
    assert sorted(e["message"].split(" is missing")[0] for e in merged["errors"]) == [
        f"shard {i}/{SHARDS}" for i in range(1, SHARDS + 1) if i != index]


@pytest.mark.parametrize(("args", "says"), [
    (["--shard", "0/3"], "INDEX must be from 1 to 3"),
    (["--shard", "4/3"], "INDEX must be from 1 to 3"),
    (["--shard", "three"], "expected INDEX/COUNT"),
    (["--shard", "auto/3"], "JOB_COMPLETION_INDEX"),
])
def test_bad_shard_is_exit_2(org: Org, tmp_path: Path, args: list[str], says: str) -> None:
    proc = run(org.fake, "scan", "--organization", "--role-name", ROLE, "--output-dir",
               tmp_path, "--no-history", *args)
    assert says in one_line_error(proc)


def test_shard_without_accounts_or_output_is_exit_2(org: Org, tmp_path: Path) -> None:
    assert "--shard needs --organization" in one_line_error(
        run(org.fake, "scan", "--shard", "1/2", "--output-dir", tmp_path, "--no-history"))
    assert "--shard needs --output-dir" in one_line_error(
        run(org.fake, "scan", "--organization", "--role-name", ROLE, "--shard", "1/2",
            "--no-history"))


def test_accounts_file_shards_split_the_list(org: Org, tmp_path: Path) -> None:
    listed = tmp_path / "accounts.txt"
    listed.write_text(f"# audited accounts\n{org.owner}\n{org.borrower}  # uses the key\n\n")
    seen = []
    for index in (1, 2):
        out = tmp_path / f"p{index}"
        proc = run(org.fake, "scan", "--accounts-file", listed, "--role-name", ROLE,
                   "--regions", "us-east-1", "--shard", f"{index}/2", "--output-dir", out,
                   "--no-history")
        assert proc.returncode in (0, 1), proc.stderr
        seen += json.loads((out / "rdsaudit-report.json").read_text())["scan"]["accounts"]
    assert sorted(seen) == sorted([org.owner, org.borrower])
    bad = tmp_path / "bad.txt"
    bad.write_text("12345\n")
    assert "bad.txt:1: '12345' is not a 12-digit account id" in one_line_error(
        run(org.fake, "scan", "--accounts-file", bad, "--role-name", ROLE, "--no-history"))


def test_merge_refuses_parts_of_different_scans(org: Org, tmp_path: Path) -> None:
    _scan(org, tmp_path / "a", "--shard", "1/2")
    _scan(org, tmp_path / "b", "--shard", "1/3")
    assert "different shard counts" in one_line_error(
        run(org.fake, "merge", tmp_path / "a", tmp_path / "b"))
    assert "given twice" in one_line_error(
        run(org.fake, "merge", tmp_path / "a", tmp_path / "a" / "rdsaudit-inventory.json"))
    assert "none of the parts exists" in one_line_error(
        run(org.fake, "merge", tmp_path / "nothing"))


def test_shard_assignment_is_stable_and_spreads() -> None:
    ids = [f"{n:012d}" for n in range(3000)]
    counts = [sum(shard_of(a, 3) == i for a in ids) for i in (1, 2, 3)]
    assert all(900 < c < 1100 for c in counts), counts
    assert shard_of("123456789012", 7) == shard_of("123456789012", 7)
    assert parse_shard("auto/4", {"AWS_BATCH_JOB_ARRAY_INDEX": "0"}) == Shard(1, 4)
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "3"}) == Shard(4, 4)


def test_security_hub_findings_land_in_each_members_own_hub(org: Org, tmp_path: Path) -> None:
    proc = run(org.fake, "scan", "--organization", "--role-name", ROLE, "--regions",
               "us-east-1", "--security-hub", "--output-dir", tmp_path, "--no-history")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    failing = {f["resource"]["account_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert {org.plain, org.borrower} <= failing

    def hub_of(account: str) -> set[str]:
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=org.fake.endpoint_url,
                           aws_access_key_id="x", aws_secret_access_key="x")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                RoleSessionName="check")["Credentials"]
        hub = boto3.client("securityhub", region_name="us-east-1",
                           endpoint_url=org.fake.endpoint_url,
                           aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
        return {f["AwsAccountId"] for f in hub.get_findings()["Findings"]}

    assert hub_of(org.plain) == {org.plain}
    assert hub_of(org.borrower) == {org.borrower}
    assert hub_of(org.owner) == set()  # compliant: nothing imported


def test_same_arguments_for_every_worker_and_merge_by_shard_count(org: Org,
                                                                  tmp_path: Path) -> None:
    """What array engines do: identical arguments, the index from the environment; the
    output names its shard through {shard}; `merge --shards N RUN` finds the parts."""
    for zero_based in range(SHARDS):
        proc = run(org.fake, "scan", "--organization", "--role-name", ROLE, "--regions",
                   "us-east-1", "--shard", f"auto/{SHARDS}", "--output-dir",
                   str(tmp_path / "run" / "shard-{shard}"), "--no-history", "--exit-zero",
                   AWS_BATCH_JOB_ARRAY_INDEX=str(zero_based))
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        f"shard-{i}" for i in range(1, SHARDS + 1)]
    proc = run(org.fake, "merge", "--shards", str(SHARDS), tmp_path / "run", "--output-dir",
               tmp_path / "merged")
    assert proc.returncode == 1, proc.stderr
    merged = json.loads((tmp_path / "merged" / "rdsaudit-report.json").read_text())
    assert [e["operation"] for e in merged["errors"]] == ["AssumeRole"]
    assert "--shards 4, but the parts come from 3" in one_line_error(
        run(org.fake, "merge", "--shards", "4", tmp_path / "run"))
