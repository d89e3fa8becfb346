"""End to end: the installed `rdsaudit` console script as a subprocess against the emulator
on 127.0.0.1 (`AWS_ENDPOINT_URL`), asserting findings, calls and every exit code."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.demo.estate import (
    DEMO_REGIONS,
    POLICY_RULES,
    DemoEstate,
    apply_demo_overlays,
    demo_environment,
)
from rdsaudit.report import FORMATS
from rdsaudit.rules import RULES
from tests.support.reports import report_text

RDSAUDIT = str(Path(sys.executable).with_name("rdsaudit"))
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN-e2e"
EMPTY_REGION = "us-west-2"  # nothing seeded there
SECRET_REGION = "ap-southeast-2"


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[FakeAWS, DemoEstate]]:
    with demo_environment() as served:
        yield served


def run(fake: FakeAWS, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({
        "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "AKIAE2ETEST",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
    })
    base.update(env)
    return subprocess.run([RDSAUDIT, *map(str, args)], capture_output=True, text=True,
                          env=base, timeout=180, check=False)


@contextlib.contextmanager
def injected(demo: tuple[FakeAWS, DemoEstate], *faults: Fault) -> Iterator[None]:
    """Add faults for one block, then restore the demo's own (the partner key's denial)."""
    fake, estate = demo
    for fault in faults:
        fake.inject_fault(fault)
    try:
        yield
    finally:
        fake.clear_faults()
        apply_demo_overlays(fake, estate)


def failing(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["resource"]["arn"]) for f in doc["findings"]
            if f["status"] == "fail"}


def test_scan_finds_exactly_the_seeded_failures(demo: tuple[FakeAWS, DemoEstate],
                                                tmp_path: Path) -> None:
    fake, estate = demo
    fake.reset_calls()
    proc = run(fake, "scan", "--regions", ",".join(DEMO_REGIONS), "--output-dir", tmp_path,
               "--save-inventory", tmp_path / "inv.json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    assert failing(doc) == set(estate.expected_failure_arns)
    assert {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"} == set(
        estate.rules_tripped)
    # The only error is the cross-account key nobody let us describe.
    assert [(e["operation"], e["code"]) for e in doc["errors"]] == [
        ("DescribeKey", "AccessDeniedException")]
    assert doc["summary"]["complete"] is False and doc["summary"]["exit_code"] == 1
    # Calls we counted are the calls the emulator saw.
    assert doc["scan"]["api_calls"] == fake.call_counts()
    assert doc["scan"]["accounts"] == [estate.account_id]
    healthy = {r.arn for r in estate.healthy}
    passing = {r["arn"] for r in doc["resources"] if r["passes"]}  # the pass evidence
    assert healthy <= passing
    # The saved inventory is judged again offline to the same findings.
    again = run(fake, "evaluate", tmp_path / "inv.json", "--quiet")
    assert again.returncode == 1
    assert failing(json.loads(again.stdout)) == failing(doc)


def test_every_format_is_written(demo: tuple[FakeAWS, DemoEstate], tmp_path: Path) -> None:
    fake, _ = demo
    proc = run(fake, "scan", "--regions", ",".join(DEMO_REGIONS), "--format",
               ",".join(FORMATS), "--output-dir", tmp_path, "--exit-zero")
    assert proc.returncode == 0, proc.stderr
    for fmt in FORMATS.values():
        assert (tmp_path / f"rdsaudit-report.{fmt.extension}").stat().st_size > 0


def test_empty_region_is_compliant_then_incomplete_with_a_fault(
        demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, _ = demo
    proc = run(fake, "scan", "--regions", EMPTY_REGION)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["resources_total"] == 0
    with injected(demo, Fault("rds", "DescribeDBSnapshots", EMPTY_REGION)):
        proc = run(fake, "scan", "--regions", EMPTY_REGION)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert {(e["region"], e["operation"], e["code"]) for e in doc["errors"]} == {
        (EMPTY_REGION, "DescribeDBSnapshots", "AccessDenied")}
    assert "INCOMPLETE" in proc.stderr
    assert run(fake, "scan", "--regions", EMPTY_REGION, "--exit-zero").returncode == 0


def test_region_not_enabled_is_skipped(demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, _ = demo
    invalid = "The security token included in the request is invalid"
    with injected(demo,
                  Fault("rds", "*", "ap-east-1", code="InvalidClientTokenId", status=403,
                        message=invalid),
                  Fault("kms", "*", "ap-east-1", code="UnrecognizedClientException",
                        status=400, message=invalid)):
        proc = run(fake, "scan", "--regions", f"{EMPTY_REGION},ap-east-1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["errors"] == []
    assert [s["region"] for s in doc["scan"]["skipped_regions"]] == ["ap-east-1"]
    assert "not enabled, skipped" in proc.stderr


@pytest.mark.parametrize("code", ["ExpiredToken", "InvalidClientTokenId"])
def test_rejected_credentials_exit_2(demo: tuple[FakeAWS, DemoEstate], code: str) -> None:
    fake, _ = demo
    with injected(demo, Fault("sts", "GetCallerIdentity", code=code, status=403,
                              message="The security token included in the request is expired")):
        proc = run(fake, "scan", "--regions", EMPTY_REGION)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and code in proc.stderr
    assert "Traceback" not in proc.stderr


def test_default_regions_come_from_describe_regions(demo: tuple[FakeAWS, DemoEstate]) -> None:
    fake, estate = demo
    proc = run(fake, "scan", "--quiet", "--exit-zero")
    doc = json.loads(proc.stdout)
    regions = doc["scan"]["regions"]
    assert set(DEMO_REGIONS) <= set(regions)
    assert "ap-east-1" not in regions and not any(r.startswith("cn-") for r in regions)
    assert doc["scan"]["api_calls"]["ec2:DescribeRegions"] == 1
    assert failing(doc) >= set(estate.expected_failure_arns)


def test_no_secret_reaches_any_report_or_log(demo: tuple[FakeAWS, DemoEstate],
                                             tmp_path: Path) -> None:
    fake, _ = demo
    rds = boto3.client("rds", region_name=SECRET_REGION, endpoint_url=fake.endpoint_url,
                       aws_access_key_id="a", aws_secret_access_key="b")
    created = rds.create_db_instance(
        DBInstanceIdentifier="secretive", Engine="postgres", DBInstanceClass="db.t3.micro",
        MasterUsername="admin", ManageMasterUserPassword=True)["DBInstance"]
    secret_arn = created.get("MasterUserSecret", {}).get("SecretArn")
    with injected(demo, Fault("rds", "DescribeDBClusters", SECRET_REGION, message="denied")):
        proc = run(fake, "scan", "--regions", SECRET_REGION, "--format", ",".join(FORMATS),
                   "--output-dir", tmp_path, "--save-inventory", tmp_path / "inv.json")
    assert proc.returncode in (1, 3), proc.stderr
    texts = [proc.stdout, proc.stderr] + [report_text(p) for p in tmp_path.iterdir()]
    for needle in filter(None, [SECRET_KEY, SESSION_TOKEN, "AKIAE2ETEST", secret_arn,
                                "MasterUserSecret", "MasterUserPassword"]):
        assert not any(needle in text for text in texts), needle


def test_demo_command_writes_every_format(tmp_path: Path) -> None:
    proc = subprocess.run([RDSAUDIT, "demo", "--output-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "failing" in proc.stderr.splitlines()[-2]
    doc = json.loads((tmp_path / "d" / "rdsaudit-report.json").read_text())
    assert doc["summary"]["failures_by_severity"]["critical"] > 0
    tripped = {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert tripped == set(RULES) - POLICY_RULES
    for fmt in FORMATS.values():
        assert (tmp_path / "d" / f"rdsaudit-report.{fmt.extension}").exists()
