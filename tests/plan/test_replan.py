"""`rdsaudit plan` re-plans from a version 2 report's resources[] (no rescan): other target
keys (`--target-key`, a config's `target_keys`) and another strategy apply, the scan's key
policy still holds, and every re-planned step is held to the same allow-list as the report's.

Through the real CLI: `evaluate` (or the demo) writes the report, `plan` reads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.model import ResourceType
from tests.cli.test_cli import one_line_error, run, save
from tests.support.builders import (
    ACCOUNT,
    KEY,
    OTHER_ACCOUNT,
    backup,
    cluster,
    cluster_snapshot,
    instance,
    inventory,
    key_arn,
    kms_key,
    resource,
    snapshot,
)

EU = "eu-west-1"
EU_KEY = key_arn("33333333-2222-3333-4444-555555555555", region=EU)
US_CMK = key_arn("44444444-2222-3333-4444-555555555555")


def _estate() -> list[Any]:
    """Every re-creating shape: an instance with a same-Region and a cross-Region replica,
    an Aurora cluster with members, snapshots, a retained backup, a wrongly keyed instance."""
    primary = instance("orders", encrypted=False, engine="mysql", engine_version="8.0.36",
                       db_subnet_group="private", vpc_security_group_ids=("sg-1", "sg-2"),
                       parameter_group="orders-params", port=3307, multi_az=True,
                       deletion_protection=True, monitoring_interval=60,
                       monitoring_role_arn=f"arn:aws:iam::{ACCOUNT}:role/em",
                       performance_insights_enabled=True, performance_insights_retention=7,
                       tags=(("team", "core"),))
    return [
        primary,
        instance("orders-ro", encrypted=False, engine="mysql", replica_source="orders"),
        instance("orders-eu", encrypted=False, engine="mysql", region=EU,
                 replica_source=primary.arn),
        cluster("events", encrypted=False, engine_version="15.4", members=("events-1",
                                                                           "events-2")),
        instance("events-1", encrypted=False, engine="aurora-postgresql", cluster_id="events",
                 instance_class="db.r6g.large"),
        instance("events-2", encrypted=False, engine="aurora-postgresql", cluster_id="events",
                 instance_class="db.r6g.xlarge"),
        snapshot("orders-manual", encrypted=False, source_id="orders"),
        cluster_snapshot("events-manual", encrypted=False, source_id="events"),
        backup("ab-1", encrypted=False, source_id="gone-db"),
        instance("legacy", engine="postgres", key=KEY2_ALIAS_ARN),
    ]


KEY2_ALIAS_ARN = key_arn("55555555-2222-3333-4444-555555555555")


def _keys() -> tuple[Any, ...]:
    return (kms_key(KEY), kms_key(EU_KEY), kms_key(US_CMK),
            kms_key(KEY2_ALIAS_ARN, key_manager="AWS"))


def _report(tmp_path: Path, *resources: Any, extra: tuple[str, ...] = (),
            keys: tuple[Any, ...] | None = None) -> tuple[Path, dict[str, Any]]:
    inv = save(tmp_path, inventory(*resources, keys=keys or _keys()))
    out = tmp_path / "out"
    proc = run("evaluate", inv, "--output-dir", out, "--quiet", "--exit-zero", *extra)
    assert proc.returncode == 0, proc.stderr
    path = out / "rdsaudit-report.json"
    return path, json.loads(path.read_text())


def _plan(report: Path, *args: str) -> tuple[str, str]:
    proc = run("plan", report, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def _kms_keys_used(script: str) -> set[str]:
    return set(re.findall(r"--kms-key-id (\S+)", script)) | set(
        re.findall(r'"TargetKmsKeyId":"([^"]+)"', script))


def test_replanning_unchanged_reproduces_the_reports_own_runbook(tmp_path: Path) -> None:
    """resources[].config carries everything planning reads: re-planned with the same
    policy, every step of every shape comes out as the scan planned it."""
    report, doc = _report(tmp_path, *_estate(), instance("good", key=US_CMK),
                          extra=("--target-key", KEY, "--target-key", EU_KEY))
    # Only what a plan needs carries config (a compliant, unrelated resource does not).
    assert {r["id"] for r in doc["resources"] if "config" not in r
            and r["type"] != "kms-key"} == {"good"}
    [events] = [r for r in doc["resources"] if r["id"] == "events"]
    assert [m["id"] for m in events["member_configs"]] == ["events-1", "events-2"]
    own, _ = _plan(report)
    replanned, _ = _plan(report, "--strategy", "snapshot")
    assert "restore-db-instance-from-db-snapshot" in own and "--port 3307" in own
    assert replanned == own


def test_target_key_applies_without_a_rescan(tmp_path: Path) -> None:
    report, _ = _report(tmp_path, *_estate())
    before, _ = _plan(report)
    assert "alias/aws/rds" in _kms_keys_used(before)
    after, _ = _plan(report, "--target-key", US_CMK, "--target-key", EU_KEY)
    assert _kms_keys_used(after) == {US_CMK, EU_KEY}
    # The cross-Region replica takes the key of its own Region.
    assert re.search(rf"create-db-instance-read-replica --region {EU} .*--kms-key-id "
                     rf"{re.escape(EU_KEY)}", after)


def test_a_recorded_target_key_is_kept_when_replanning(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, *_estate(), extra=("--target-key", US_CMK))
    [orders] = [f for f in doc["findings"] if f["rule_id"] == "instance-unencrypted"
                and f["resource"]["id"] == "orders"]
    assert orders["remediation"]["target_key"] == US_CMK
    assert orders["remediation"]["strategy"] == "snapshot"
    own, _ = _plan(report)
    after, _ = _plan(report, "--strategy", "snapshot")
    assert after == own
    us_lines = [line for line in after.splitlines() if "--region us-east-1" in line]
    assert any(US_CMK in line for line in us_lines)
    assert not any("alias/aws/rds" in line for line in us_lines)


def test_account_form_uses_another_accounts_key(tmp_path: Path) -> None:
    shared = key_arn("66666666-2222-3333-4444-555555555555", account=OTHER_ACCOUNT)
    report, _ = _report(tmp_path, instance("db1", encrypted=False))
    after, _ = _plan(report, "--target-key", f"{ACCOUNT}={shared}")
    assert _kms_keys_used(after) == {shared}


def test_a_policy_blocked_region_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text("require_customer_managed_key = true\n")
    report, doc = _report(tmp_path, instance("us-db", encrypted=False),
                          instance("eu-db", encrypted=False, region=EU),
                          extra=("--config", str(config)))
    assert all(f["remediation"]["blocked"] for f in doc["findings"]
               if f["rule_id"] == "instance-unencrypted")
    # The report remembers the policy: no --config is needed to keep refusing aws/rds.
    script, stderr = _plan(report, "--target-key", US_CMK)
    assert _kms_keys_used(script) == {US_CMK}
    assert "eu-db" in script and "--region eu-west-1" not in script
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"rdsaudit: warning: No customer managed key for account {ACCOUNT} in {EU}: refusing "
        f"to plan with alias/aws/rds; pass --target-key arn:aws:kms:{EU}:{ACCOUNT}:key/KEY-ID "
        "(or target_keys)."]
    # A config given now applies too (target_keys by region).
    config.write_text(f'require_customer_managed_key = true\n[target_keys]\n"{EU}" = '
                      f'"{EU_KEY}"\n')
    script, stderr = _plan(report, "--target-key", US_CMK, "--config", str(config))
    assert _kms_keys_used(script) == {US_CMK, EU_KEY} and "warning" not in stderr


def test_minimum_key_protection_customer_also_refuses_aws_rds(tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text('minimum_key_protection = "customer"\n')
    report, _ = _report(tmp_path, instance("us-db", encrypted=False),
                        extra=("--config", str(config)))
    _, stderr = _plan(report)
    assert "refusing to plan with alias/aws/rds" in stderr


def test_a_version_1_report_cannot_be_replanned_but_still_plans(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    doc["schema_version"] = 1
    del doc["resources"]
    report.write_text(json.dumps(doc))
    line = one_line_error(run("plan", report, "--target-key", US_CMK))
    assert "no resources[].config" in line and "rescan" in line
    script, _ = _plan(report)
    assert "aws rds create-db-snapshot --region us-east-1 --db-instance-identifier db1" in script


def test_an_edited_config_is_held_to_the_allow_list(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    [db1] = [r for r in doc["resources"] if r["id"] == "db1"]
    db1["config"]["vpc_security_group_ids"] = ["sg-1", "--endpoint-url", "http://evil"]
    report.write_text(json.dumps(doc))
    line = one_line_error(run("plan", report, "--target-key", US_CMK))
    assert "refused" in line and "--endpoint-url" in line


@pytest.mark.parametrize(("field", "value"), [("port", "3306; rm"), ("members", "x"),
                                              ("unknown_field", 1)])
def test_a_malformed_config_is_one_line(tmp_path: Path, field: str, value: Any) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    [db1] = [r for r in doc["resources"] if r["id"] == "db1"]
    db1["config"][field] = value
    report.write_text(json.dumps(doc))
    line = one_line_error(run("plan", report, "--strategy", "snapshot"))
    assert "cannot re-plan from the report" in line and "resources[" in line


def test_demo_report_replans_with_a_target_key(tmp_path: Path) -> None:
    """The demo estate scanned to JSON, then planned again with a customer managed key."""
    out = tmp_path / "demo"
    proc = run("demo", "--output-dir", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = out / "rdsaudit-report.json"
    doc = json.loads(report.read_text())
    # Two accounts: a runbook to stdout is one account's (the caller's, which holds orders).
    demo = doc["scan"]["accounts"][0]
    own, own_err = _plan(report, "--account", demo)
    assert "refusing to plan with alias/aws/rds" in own_err  # aws-managed-key findings
    assert _plan(report, "--account", demo, "--strategy", "snapshot")[0] == own
    [orders] = [k["arn"] for k in doc["keys"] if "alias/orders-db" in k["aliases"]
                and k["region"] == "us-east-1"]
    script, stderr = _plan(report, "--account", demo, "--target-key", orders)
    assert f"No customer managed key for account {demo}" not in stderr  # the other's may be
    used = _kms_keys_used(script)
    assert orders in used and not {k for k in used if ":us-east-1:" not in k} - {
        "alias/aws/rds"}
    assert script.count(orders) > own.count(orders)


def test_snapshot_unencrypted_resource_types_are_all_replanned(tmp_path: Path) -> None:
    report, _ = _report(tmp_path, resource(ResourceType.DB_SNAPSHOT, "s1", encrypted=False,
                                           snapshot_type="manual"))
    script, _ = _plan(report, "--target-key", US_CMK)
    assert f"--kms-key-id {US_CMK}" in script
