"""Reports to and from S3 (moto behind the emulator), with SSE-KMS.

Every format is written under an s3:// prefix and read back; the JSON report serves as
`--baseline s3://…` and `plan s3://…`, an inventory as `evaluate s3://…`, and a shard's
prefix as a `merge` part. A failed upload keeps the staged reports and says where they are.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.report import FORMATS
from tests.cli.test_cli import one_line_error
from tests.e2e.test_scan import run

REGION = "us-east-1"
BUCKET = "audit-reports"


@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[FakeAWS, str]]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        key = boto3.client("kms", region_name=REGION).create_key(
            Description="report bucket key")["KeyMetadata"]["Arn"]
        boto3.client("rds", region_name=REGION).create_db_instance(
            DBInstanceIdentifier="ledger", Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername="admin", MasterUserPassword="correct-horse-9")
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    try:
        yield fake, str(key)
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def _s3(fake: FakeAWS) -> Any:
    return boto3.client("s3", region_name=REGION, endpoint_url=fake.endpoint_url,
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_every_format_to_s3_with_sse_kms_and_read_back(estate: tuple[FakeAWS, str],
                                                       tmp_path: Path) -> None:
    fake, key = estate
    proc = run(fake, "scan", "--regions", REGION, "--format", ",".join(FORMATS),
               "--output-dir", f"s3://{BUCKET}/daily/", "--s3-kms-key", key, "--no-history")
    assert proc.returncode == 1, proc.stderr
    s3 = _s3(fake)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="daily/")["Contents"]}
    assert listed == {f"daily/rdsaudit-report.{f.extension}" for f in FORMATS.values()}
    for name in listed:
        head = s3.head_object(Bucket=BUCKET, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms", name
        assert head["SSEKMSKeyId"] == key, name
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key="daily/rdsaudit-report.json")["Body"]
                     .read())
    assert any(f["resource"]["id"] == "ledger" and f["status"] == "fail"
               for f in doc["findings"])
    assert f"wrote s3://{BUCKET}/daily/rdsaudit-report.json" in proc.stderr
    staged = re.findall(r"rdsaudit-staging-\w+", proc.stderr)
    assert not staged  # nothing left behind after a good upload

    # The S3 report is a baseline, and a plan's input.
    again = run(fake, "scan", "--regions", REGION, "--baseline",
                f"s3://{BUCKET}/daily/rdsaudit-report.json", "--fail-on-new", "--output-dir",
                tmp_path, "--no-history")
    assert again.returncode == 0, again.stderr
    base = json.loads((tmp_path / "rdsaudit-report.json").read_text())["baseline"]
    assert base["new"] == 0 and base["unchanged"] >= 1
    plan = run(fake, "plan", f"s3://{BUCKET}/daily/rdsaudit-report.json")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("#!/usr/bin/env bash") and "ledger" in plan.stdout


def test_evaluate_and_merge_read_s3(estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    saved = tmp_path / "inv.json"
    assert run(fake, "scan", "--regions", REGION, "--save-inventory", saved,
               "--no-history").returncode == 1
    _s3(fake).put_object(Bucket=BUCKET, Key="inv/inventory.json", Body=saved.read_bytes())
    proc = run(fake, "evaluate", f"s3://{BUCKET}/inv/inventory.json")
    assert proc.returncode == 1, proc.stderr
    assert any(f["resource"]["id"] == "ledger" for f in json.loads(proc.stdout)["findings"])
    assert "no such object" in one_line_error(run(fake, "evaluate", f"s3://{BUCKET}/nope.json"))

    # A shard writes its report and inventory to S3; merge reads the prefixes.
    from rdsaudit.shard import shard_of

    accounts = tmp_path / "accounts.txt"
    accounts.write_text("123456789012\n")
    index = shard_of("123456789012", 2)
    proc = run(fake, "scan", "--accounts-file", accounts, "--role-name", "audit", "--regions",
               REGION, "--shard", f"{index}/2", "--output-dir",
               f"s3://{BUCKET}/run/shard-{index}/", "--no-history")
    assert proc.returncode == 1, proc.stderr
    other = 3 - index
    proc = run(fake, "merge", f"s3://{BUCKET}/run/shard-{index}/",
               f"s3://{BUCKET}/run/shard-{other}/", "--output-dir", tmp_path / "merged")
    assert proc.returncode == 1, proc.stderr
    merged = json.loads((tmp_path / "merged" / "rdsaudit-report.json").read_text())
    [missing] = [e for e in merged["errors"] if e["code"] == "ShardMissing"]
    assert f"shard {other}/2" in missing["message"]
    assert f"s3://{BUCKET}/run/shard-{other}/" in missing["message"]


def test_failed_upload_keeps_the_reports_and_says_where(estate: tuple[FakeAWS, str]) -> None:
    fake, _ = estate
    proc = run(fake, "scan", "--regions", REGION, "--format", "json,html", "--output-dir",
               "s3://no-such-bucket/x/", "--no-history")
    assert proc.returncode == 1, proc.stderr  # the failing database decides; errors too
    [where] = re.findall(r"the reports are in (\S+)", proc.stderr)
    staged = Path(where)
    try:
        doc = json.loads((staged / "rdsaudit-report.json").read_text())
        assert (staged / "rdsaudit-report.html").stat().st_size > 0
        assert {(e["service"], e["operation"]) for e in doc["errors"]} == {("s3", "PutObject")}
        assert doc["summary"]["complete"] is False
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def test_s3_options_are_checked(estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    assert "--s3-kms-key needs --output-dir s3://" in one_line_error(
        run(fake, "scan", "--s3-kms-key", "arn:aws:kms:us-east-1:1:key/x", "--no-history"))
    assert "not an s3://BUCKET/KEY location" in one_line_error(
        run(fake, "scan", "--output-dir", "s3://", "--no-history"))
