"""The installed console script, offline: bad input, saved inventories, plans, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rdsaudit.model import CollectionError, Inventory
from rdsaudit.rules import RULES
from rdsaudit.serialize import dump_inventory
from tests.support.builders import ACCOUNT, backup, instance, inventory, key_arn, kms_key, snapshot

RDSAUDIT = str(Path(sys.executable).with_name("rdsaudit"))


def run(*args: str | Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                 "AWS_EC2_METADATA_DISABLED": "true"})
    base.update(env or {})
    return subprocess.run([RDSAUDIT, *map(str, args)], capture_output=True, text=True,
                          env=base, timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rdsaudit: error: ")
    return lines[0]


def save(tmp_path: Path, inv: Inventory, name: str = "inv.json") -> Path:
    path = tmp_path / name
    path.write_text(dump_inventory(inv))
    return path


def test_rules_lists_the_catalogue() -> None:
    proc = run("rules")
    assert proc.returncode == 0
    for rule_id in RULES:
        assert rule_id in proc.stdout
    assert "high with minimum_key_protection above aws-managed" in proc.stdout


def test_iam_policy_is_read_only_json() -> None:
    proc = run("iam-policy")
    actions = json.loads(proc.stdout)["Statement"][0]["Action"]
    assert "rds:DescribeDBInstances" in actions and "kms:DescribeKey" in actions
    assert all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in actions)


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and "rdsaudit" in proc.stdout


@pytest.mark.parametrize("args", [
    ["scan", "--bogus"],
    ["scan", "--format", "xml"],
    ["scan", "--fail-on", "urgent"],
    ["scan", "--max-attempts", "0"],
    ["scan", "--format", "json,json2"],
    ["evaluate"],
    ["frobnicate"],
])
def test_bad_flags_are_one_line_and_exit_2(args: list[str]) -> None:
    one_line_error(run(*args))


def test_several_formats_need_an_output_dir(tmp_path: Path) -> None:
    inv = save(tmp_path, inventory(instance()))
    line = one_line_error(run("evaluate", inv, "--format", "json,csv"))
    assert "several formats need --output-dir" in line


@pytest.mark.parametrize(("content", "says"), [
    ("fail_on = ", "invalid TOML"),
    ("colour = 'blue'", "unknown setting(s) colour"),
    ("fail_on = 'urgent'", "fail_on"),
    ("min_backup_retention_days = -1", "min_backup_retention_days"),
    ("require_customer_managed_key = 'yes'", "require_customer_managed_key"),
    ("regions = 'us-east-1'", "regions"),
    ("target_keys = { us-east-1 = 'not-an-arn' }", "target_keys"),
    ("minimum_key_protection = 'hsm'", "minimum_key_protection: unknown key protection"),
    ("key_protection = 'customer'", "key_protection must be a list"),
    ("[[key_protection]]\naccount = 111122223333\nminimum = 'customer'", "12-digit"),
    ("[[key_protection]]\naccount = '111122223333'\nminimum = 'strong'",
     "key_protection entry 1: minimum"),
    ("[[key_protection]]\naccount = '111122223333'", "exactly account and minimum"),
    ("key_material_expiry_days = 0", "key_material_expiry_days"),
])
def test_bad_config_names_file_and_entry(tmp_path: Path, content: str, says: str) -> None:
    config = tmp_path / "rdsaudit.toml"
    config.write_text(content)
    inv = save(tmp_path, inventory(instance()))
    line = one_line_error(run("evaluate", inv, "--config", config))
    assert str(config) in line and says in line


def test_missing_config_file(tmp_path: Path) -> None:
    inv = save(tmp_path, inventory(instance()))
    assert "cannot read config" in one_line_error(
        run("evaluate", inv, "--config", tmp_path / "absent.toml"))


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "not valid JSON"),
    ('{"format": "something-else"}', "not an rdsaudit inventory"),
    ('{"format": "rdsaudit-inventory", "version": 99}', "version 99"),
    ('{"format": "rdsaudit-inventory", "version": 1, "scan": {}}', "missing field"),
    ("[" * 100000, "inventory"),
])
def test_bad_inventory_is_one_line_and_exit_2(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "inv.json"
    path.write_text(content)
    assert says in one_line_error(run("evaluate", path))


def test_inventory_with_wrong_field_type_names_the_field(tmp_path: Path) -> None:
    path = save(tmp_path, inventory(instance("db1")))
    data = json.loads(path.read_text())
    data["resources"][0]["encrypted"] = "yes"
    path.write_text(json.dumps(data))
    assert "inventory.resources[0].encrypted" in one_line_error(run("evaluate", path))


def test_evaluate_gates_with_every_exit_code(tmp_path: Path) -> None:
    failing = save(tmp_path, inventory(instance("plain", encrypted=False)), "fail.json")
    clean = save(tmp_path, inventory(instance("good"), backup()), "clean.json")
    incomplete = save(tmp_path, inventory(instance("good"), errors=(CollectionError(
        ACCOUNT, "eu-west-1", "rds", "DescribeDBSnapshots", "AccessDenied", "no"),)),
        "incomplete.json")
    proc = run("evaluate", failing)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 2 and doc["summary"]["exit_code"] == 1
    assert ("instance-unencrypted", "plain") in {
        (f["rule_id"], f["resource"]["id"]) for f in doc["findings"] if f["status"] == "fail"}
    assert "exit 1" in proc.stderr.splitlines()[-1]
    assert run("evaluate", failing, "--fail-on", "critical").returncode == 0
    assert run("evaluate", failing, "--exit-zero").returncode == 0
    assert run("evaluate", clean).returncode == 0
    proc = run("evaluate", incomplete)
    assert proc.returncode == 3
    assert "INCOMPLETE" in proc.stderr and "DescribeDBSnapshots" in proc.stderr
    assert json.loads(proc.stdout)["errors"][0]["code"] == "AccessDenied"
    config = tmp_path / "c.toml"
    config.write_text("fail_on = 'critical'\n")
    assert run("evaluate", failing, "--config", config).returncode == 0
    assert run("evaluate", failing, "--config", config, "--fail-on", "high").returncode == 1


def test_policy_from_config_raises_severity(tmp_path: Path) -> None:
    from rdsaudit.model import EncryptionType
    owned = instance("owned", key=None, encryption_type=EncryptionType.SSE_RDS)
    path = save(tmp_path, inventory(owned))
    assert run("evaluate", path, "--fail-on", "high").returncode == 0
    config = tmp_path / "c.toml"
    config.write_text("require_customer_managed_key = true\n")
    assert run("evaluate", path, "--fail-on", "high", "--config", config).returncode == 1


def test_key_protection_ladder_from_config(tmp_path: Path) -> None:
    managed = key_arn("55555555-2222-3333-4444-555555555555")
    inv = inventory(instance("wiki", key=managed), keys=(kms_key(managed, key_manager="AWS"),))
    path = save(tmp_path, inv)
    config = tmp_path / "c.toml"
    assert run("evaluate", path, "--fail-on", "high").returncode == 0
    config.write_text("minimum_key_protection = 'aws-managed'\n")
    assert run("evaluate", path, "--fail-on", "high", "--config", config).returncode == 0
    config.write_text(f"[[key_protection]]\naccount = '{ACCOUNT}'\nminimum = 'customer'\n")
    assert run("evaluate", path, "--fail-on", "high", "--config", config).returncode == 1
    config.write_text("[[key_protection]]\naccount = '000000000000'\nminimum = 'customer'\n")
    assert run("evaluate", path, "--fail-on", "high", "--config", config).returncode == 0


def test_output_dir_writes_report_files(tmp_path: Path) -> None:
    path = save(tmp_path, inventory(instance("plain", encrypted=False)))
    out = tmp_path / "out"
    proc = run("evaluate", path, "--output-dir", out, "--quiet")
    assert proc.returncode == 1 and proc.stderr == "" and proc.stdout == ""
    assert json.loads((out / "rdsaudit-report.json").read_text())["findings"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_plan_prints_a_runbook_for_one_resource(tmp_path: Path) -> None:
    inv = save(tmp_path, inventory(instance("plain", encrypted=False),
                                   snapshot("s1", encrypted=False)))
    report = tmp_path / "report.json"
    run("evaluate", inv, "--output-dir", tmp_path, "--quiet")
    (tmp_path / "rdsaudit-report.json").rename(report)
    proc = run("plan", report, "--resource", "plain")
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert "aws rds create-db-snapshot --region us-east-1 --db-instance-identifier plain" in script
    assert "copy-db-snapshot" in script and "restore-db-instance-from-db-snapshot" in script
    assert "\naws rds delete-db-instance" not in script  # manual steps stay comments
    assert "s1" not in script
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True,
                           check=False)
    assert check.returncode == 0, check.stderr


def test_plan_refuses_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"schema_version": 1, "findings": [1]}')
    assert "findings[0]" in one_line_error(run("plan", bad))


def test_no_credentials_fails_fast_with_exit_2() -> None:
    start = time.monotonic()
    line = one_line_error(run("scan", "--regions", "us-east-1"))
    assert "no AWS credentials" in line
    assert time.monotonic() - start < 20


def test_unreachable_endpoint_fails_fast_with_exit_2() -> None:
    start = time.monotonic()
    line = one_line_error(run("scan", "--regions", "us-east-1", env={
        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}))
    assert "cannot use these AWS credentials" in line or "connect" in line.lower()
    assert time.monotonic() - start < 30


def test_unknown_profile_and_region_exit_2() -> None:
    assert "nope" in one_line_error(run("scan", "--profile", "nope"))
    line = one_line_error(run("scan", "--regions", "mars-north-1", env={
        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}))
    assert "mars-north-1" in line


def test_a_bug_is_exit_4_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import rdsaudit.evaluate
    from rdsaudit.cli import main

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("rule exploded")

    monkeypatch.setattr(rdsaudit.evaluate, "evaluate", broken)
    path = save(tmp_path, inventory(instance()))
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(path)])
    assert exit_.value.code == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: rule exploded" in err
