"""Waivers (match, glob, expiry, stale, bad entries) and baselines (new, unchanged, resolved,
--fail-on-new), through the console script on saved inventories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdsaudit.model import EncryptionType
from tests.cli.test_cli import one_line_error, run, save
from tests.support.builders import ACCOUNT, instance, inventory, snapshot

PLAIN = instance("legacy-1", encrypted=False)
PLAIN2 = instance("legacy-2", encrypted=False)
OWNED = instance("owned", key=None, encryption_type=EncryptionType.SSE_RDS)
SNAP = snapshot("snap-x", encrypted=False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rdsaudit.toml"
    path.write_text(text)
    return path


def waiver(rule: str, resource: str, expires: str = "2027-06-30", extra: str = "") -> str:
    return (f'[[waivers]]\nrule = "{rule}"\nresource = "{resource}"\nreason = "migration '
            f'planned"\nowner = "dba@example.com"\nexpires = {expires}\n{extra}\n')


def evaluate_doc(tmp_path: Path, *args: str | Path) -> tuple[int, dict[str, object], str]:
    inv = save(tmp_path, inventory(PLAIN, PLAIN2, OWNED, SNAP))
    proc = run("evaluate", inv, *args)
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def statuses(doc: dict[str, object]) -> dict[tuple[str, str], str]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return {(f["rule_id"], f["resource"]["id"]): f["status"] for f in findings}


def test_glob_waiver_waives_matching_failures_only(tmp_path: Path) -> None:
    cfg = config(tmp_path, waiver("instance-unencrypted",
                                  f"arn:aws:rds:*:{ACCOUNT}:db:legacy-*"))
    code, doc, _ = evaluate_doc(tmp_path, "--config", cfg, "--fail-on", "high")
    st = statuses(doc)
    assert st[("instance-unencrypted", "legacy-1")] == "waived"
    assert st[("instance-unencrypted", "legacy-2")] == "waived"
    assert st[("snapshot-unencrypted", "snap-x")] == "fail"
    waived = [f for f in doc["findings"] if f["status"] == "waived"]  # type: ignore[union-attr]
    assert waived[0]["waiver"] == {"reason": "migration planned", "owner": "dba@example.com",
                                   "expires": "2027-06-30"}
    assert doc["waivers"][0]["state"] == "active" and doc["waivers"][0]["matched"] == 2  # type: ignore[index]
    assert code == 1  # the snapshot still fails


def test_waived_findings_never_fail_the_gate(tmp_path: Path) -> None:
    cfg = config(tmp_path, waiver("*", "arn:aws:rds:us-east-1:*"))
    code, doc, _ = evaluate_doc(tmp_path, "--config", cfg)
    assert code == 0
    assert "fail" not in statuses(doc).values()
    assert doc["summary"]["findings"]["waived"] >= 4  # type: ignore[index]


def test_expired_waiver_no_longer_applies_and_is_reported(tmp_path: Path) -> None:
    cfg = config(tmp_path, waiver("instance-unencrypted", PLAIN.arn, expires="2026-11-01"))
    code, doc, stderr = evaluate_doc(tmp_path, "--config", cfg)
    assert statuses(doc)[("instance-unencrypted", "legacy-1")] == "fail"
    assert doc["waivers"][0]["state"] == "expired"  # type: ignore[index]
    assert "expired waiver" in stderr and code == 1


def test_waiver_scoped_to_another_account_or_region_is_stale(tmp_path: Path) -> None:
    cfg = config(tmp_path,
                 waiver("instance-unencrypted", PLAIN.arn, extra='account = "999999999999"')
                 + waiver("snapshot-unencrypted", "arn:aws:rds:*", extra='region = "eu-west-1"'))
    _, doc, stderr = evaluate_doc(tmp_path, "--config", cfg)
    assert [w["state"] for w in doc["waivers"]] == ["stale", "stale"]  # type: ignore[union-attr]
    assert statuses(doc)[("instance-unencrypted", "legacy-1")] == "fail"
    assert stderr.count("stale waiver") == 2


@pytest.mark.parametrize(("entry", "says"), [
    (waiver("no-such-rule", "arn:aws:rds:*"), "unknown rule id 'no-such-rule'"),
    (waiver("instance-unencrypted", "arn:aws:rds:*", expires='"next week"'),
     "expires must be a date"),
    (waiver("instance-unencrypted", "arn:aws:rds:*:db:[abc"), "unclosed '['"),
    (waiver("instance-unencrypted", "legacy-*"), "must be a resource ARN or a glob"),
    ('[[waivers]]\nrule = "instance-unencrypted"\nresource = "arn:aws:rds:*"\n', "missing reason"),
    (waiver("instance-unencrypted", "arn:aws:rds:*", extra='colour = "red"'), "colour"),
    (waiver("instance-unencrypted", "arn:aws:rds:*", extra='account = "12"'), "12-digit"),
    ('waivers = "all of them"\n', "array of tables"),
])
def test_bad_waiver_names_file_entry_and_problem(tmp_path: Path, entry: str, says: str) -> None:
    cfg = config(tmp_path, waiver("instance-unencrypted", PLAIN.arn) + entry
                 if entry.startswith("[[") else entry)
    inv = save(tmp_path, inventory(PLAIN))
    line = one_line_error(run("evaluate", inv, "--config", cfg))
    assert str(cfg) in line and says in line
    if entry.startswith("[["):
        assert "waivers[1]" in line


def test_baseline_marks_new_unchanged_and_resolved(tmp_path: Path) -> None:
    old_inv = save(tmp_path, inventory(PLAIN, SNAP), "old.json")
    out = tmp_path / "old"
    assert run("evaluate", old_inv, "--output-dir", out, "--quiet").returncode == 1
    previous = out / "rdsaudit-report.json"
    fixed_snap = snapshot("snap-x", encrypted=True)
    new_inv = save(tmp_path, inventory(PLAIN, PLAIN2, fixed_snap), "new.json")
    proc = run("evaluate", new_inv, "--baseline", previous)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    marks = {(f["rule_id"], f["resource"]["id"]): f["baseline"] for f in doc["findings"]
             if f["status"] == "fail"}
    assert marks[("instance-unencrypted", "legacy-1")] == "unchanged"
    assert marks[("instance-unencrypted", "legacy-2")] == "new"
    resolved = {(r["rule_id"], r["resource_id"]) for r in doc["baseline"]["resolved"]}
    assert ("snapshot-unencrypted", "snap-x") in resolved
    assert doc["baseline"]["new"] >= 1 and doc["baseline"]["unchanged"] >= 1
    assert "1 resolved" in proc.stderr or "resolved failure" in proc.stderr
    # Gate on new failures only: legacy-2 is new, so still 1; without it, 0.
    assert run("evaluate", new_inv, "--baseline", previous, "--fail-on-new").returncode == 1
    same_inv = save(tmp_path, inventory(PLAIN, fixed_snap), "same.json")
    assert run("evaluate", same_inv, "--baseline", previous, "--fail-on-new").returncode == 0
    assert run("evaluate", same_inv, "--baseline", previous).returncode == 1


def test_fail_on_new_needs_a_baseline_and_a_valid_one(tmp_path: Path) -> None:
    inv = save(tmp_path, inventory(PLAIN))
    assert "--baseline" in one_line_error(run("evaluate", inv, "--fail-on-new"))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert "--baseline" in one_line_error(run("evaluate", inv, "--baseline", bad))
