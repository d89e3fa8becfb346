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

from rdsaudit.collect.floor import api_floor
from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.demo.estate import (
    DEMO_CONFIG,
    DEMO_REGIONS,
    DEMO_ROLE,
    REGULATED_ACCOUNT,
    DemoEstate,
    apply_demo_overlays,
    demo_environment,
)
from rdsaudit.report import FORMATS
from rdsaudit.rules import RULES
from rdsaudit.serialize import load_inventory
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
    """Scanned as `rdsaudit demo` scans it: both accounts, the second through the audit
    role, under the demo's config."""
    fake, estate = demo
    config = tmp_path / "rdsaudit.toml"
    config.write_text(DEMO_CONFIG)
    fake.reset_calls()
    proc = run(fake, "scan", "--regions", ",".join(DEMO_REGIONS), "--output-dir", tmp_path,
               "--accounts", ",".join(estate.accounts), "--role-name", DEMO_ROLE,
               "--config", config, "--save-inventory", tmp_path / "inv.json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "rdsaudit-report.json").read_text())
    assert failing(doc) == set(estate.expected_failure_arns)
    assert {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"} == set(
        estate.rules_tripped) == set(RULES)
    # The only error is the cross-account key nobody let us describe.
    assert [(e["operation"], e["code"]) for e in doc["errors"]] == [
        ("DescribeKey", "AccessDeniedException")]
    assert doc["summary"]["complete"] is False and doc["summary"]["exit_code"] == 1
    # Calls we counted are the calls the emulator saw, and exactly the floor: nothing twice,
    # one AssumeRole into the second account.
    assert doc["scan"]["api_calls"] == fake.call_counts()
    floor = api_floor(load_inventory(tmp_path / "inv.json"), caller=estate.account_id)
    assert doc["scan"]["api_calls"] == floor and floor["sts:AssumeRole"] == 1
    assert doc["scan"]["accounts"] == list(estate.accounts) == [estate.account_id,
                                                                REGULATED_ACCOUNT]
    healthy = {r.arn for r in estate.healthy}
    passing = {r["arn"] for r in doc["resources"] if r["passes"]}  # the pass evidence
    assert healthy <= passing
    # The saved inventory is judged again offline to the same findings.
    again = run(fake, "evaluate", tmp_path / "inv.json", "--quiet", "--config", config)
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
    # The caller's account only (no --accounts): its share of the estate's failures.
    assert failing(doc) >= estate.failure_arns_in(estate.account_id)
    assert doc["scan"]["accounts"] == [estate.account_id]


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


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """`rdsaudit demo`, run once: its stderr and its output directory."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([RDSAUDIT, "demo", "--output-dir", str(cwd / "d")],
                          capture_output=True, text=True, timeout=300, check=False, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr, cwd / "d"


def test_demo_command_writes_every_format(demo_run: tuple[str, Path]) -> None:
    stderr, out = demo_run
    assert "failing" in stderr.splitlines()[-2]
    assert "of 2 account(s)" in stderr.splitlines()[-2]
    doc = json.loads((out / "rdsaudit-report.json").read_text())
    assert doc["summary"]["failures_by_severity"]["critical"] > 0
    tripped = {f["rule_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert tripped == set(RULES)  # every rule, key-below-external-store included
    for fmt in FORMATS.values():
        assert (out / f"rdsaudit-report.{fmt.extension}").exists()


def test_demo_judges_key_protection_per_account(demo_run: tuple[str, Path]) -> None:
    """The second account's [[key_protection]] minimum (customer-external-store): its
    snapshot copy under an ordinary customer key (Origin AWS_KMS) fails
    key-below-external-store, its database on a CloudHSM key store key passes; the first
    account keeps the default minimum, so the rule judges none of its resources, not even
    those on plain customer keys."""
    _, out = demo_run
    doc = json.loads((out / "rdsaudit-report.json").read_text())
    rule = "key-below-external-store"
    [finding] = [f for f in doc["findings"] if f["rule_id"] == rule]
    assert (finding["resource"]["account_id"], finding["resource"]["id"]) == (
        REGULATED_ACCOUNT, "cards-vault-export")
    assert (finding["status"], finding["severity"]) == ("fail", "high")
    [key] = [k for k in doc["keys"] if k["arn"] == finding["kms_key"]["arn"]]
    assert (key["account_id"], key["origin"], key["key_manager"]) == (
        REGULATED_ACCOUNT, "AWS_KMS", "CUSTOMER")
    resources = {(r["account_id"], r["id"]): r for r in doc["resources"]}
    export = resources[(REGULATED_ACCOUNT, "cards-vault-export")]
    assert rule in export["fails"] and export["posture"] == "customer"
    vault = resources[(REGULATED_ACCOUNT, "cards-vault-db")]
    assert rule in vault["passes"] and not vault["fails"]
    assert vault["posture"] == "customer-external-store"
    [storage] = [k["arn"] for k in vault["keys"] if k["role"] == "storage"]
    [vault_key] = [k for k in doc["keys"] if k["arn"] == storage]
    assert (vault_key["origin"], vault_key["custom_key_store_type"]) == (
        "AWS_CLOUDHSM", "AWS_CLOUDHSM")
    first = [r for (account, _), r in resources.items() if account != REGULATED_ACCOUNT]
    assert any(r["posture"] == "customer" for r in first)  # plain customer keys there
    assert not [r["id"] for r in first if rule in r["passes"] or rule in r["fails"]]
