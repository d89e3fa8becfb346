"""`plan --strategy blue-green`: a Blue/Green deployment with an encrypted green environment
where it applies, the snapshot path (and why) where it does not.

moto has Blue/Green calls but ignores TargetResourceConfigurations (moto-fidelity §11), so
the runbook is checked, not trusted to moto: `bash -n`, every `aws` call it makes (its steps
and its fixed polling helpers) against the botocore model, and a run with a stub `aws` that
answers the polling like RDS does.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from rdsaudit.plan.awscli import CommandRefused, Scope, check_argv
from tests.cli.test_cli import one_line_error, run, save
from tests.support.builders import ACCOUNT, cluster, instance, inventory, key_arn, kms_key, snapshot

CMK = key_arn("44444444-2222-3333-4444-555555555555")
EU = "eu-west-1"
EU_KEY = key_arn("33333333-2222-3333-4444-555555555555", region=EU)
GLOBALS = {"--region", "--query", "--output", "--generate-cli-skeleton"}


def _estate() -> list[Any]:
    mysql = instance("shop", encrypted=False, engine="mysql", engine_version="8.0.36")
    geo = instance("geo", encrypted=False, engine="postgres")
    return [
        mysql,
        instance("shop-ro", encrypted=False, engine="mysql", replica_source="shop"),
        cluster("events", encrypted=False, engine="aurora-postgresql", members=("events-1",)),
        instance("events-1", encrypted=False, engine="aurora-postgresql", cluster_id="events",
                 instance_class="db.r6g.large"),
        instance("ledger", encrypted=False, engine="oracle-ee"),
        instance("tiny", encrypted=False, engine="sqlserver-ex"),
        geo,
        instance("geo-eu", encrypted=False, engine="postgres", region=EU,
                 replica_source=geo.arn),
        snapshot("shop-manual", encrypted=False, source_id="shop"),
    ]


def _report(tmp_path: Path) -> Path:
    inv = save(tmp_path, inventory(*_estate(), keys=(kms_key(CMK), kms_key(EU_KEY))))
    out = tmp_path / "out"
    proc = run("evaluate", inv, "--output-dir", out, "--quiet", "--exit-zero")
    assert proc.returncode == 0, proc.stderr
    return out / "rdsaudit-report.json"


def _blue_green(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    report = _report(tmp_path)
    runbook = tmp_path / "runbook.sh"
    proc = run("plan", report, "--strategy", "blue-green", "--target-key", CMK,
               "--target-key", EU_KEY, "--output", runbook)
    assert proc.returncode == 0, proc.stderr
    # The re-planned document, as plan saw it (for the per-finding strategy).
    from rdsaudit.plan.replan import replan
    from rdsaudit.policy import Policy
    from rdsaudit.report.reading import load_report

    doc = replan(load_report(report), Policy(target_keys={f"{ACCOUNT}:us-east-1": CMK,
                                                          f"{ACCOUNT}:{EU}": EU_KEY}),
                 "blue-green")
    return runbook.read_text(), doc


def _by_resource(doc: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]["id"]: f["remediation"] for f in doc["findings"]
            if f["rule_id"] == rule and f["status"] == "fail"}


def test_each_finding_says_which_strategy_it_uses_and_why(tmp_path: Path) -> None:
    _, doc = _blue_green(tmp_path)
    plans = _by_resource(doc, "instance-unencrypted") | _by_resource(doc, "cluster-unencrypted")
    assert plans["shop"]["strategy"] == "blue-green"
    assert plans["events"]["strategy"] == "blue-green"
    assert plans["shop"]["summary"].startswith("Strategy blue-green: mysql supports")
    fallbacks = {
        "ledger": "not oracle-ee", "tiny": "SQL Server Express supports neither",
        "geo": "cross-Region read replicas", "shop-ro": "a read replica follows its source"}
    for rid, why in fallbacks.items():
        assert plans[rid]["summary"].startswith("Strategy snapshot (blue-green asked for, but"), rid
        assert why in plans[rid]["summary"], (rid, plans[rid]["summary"])
    snap = _by_resource(doc, "snapshot-unencrypted")["shop-manual"]
    assert snap["strategy"] == "snapshot" and "not a running database" in snap["summary"]
    # The constraints are stated in the plan itself.
    manual = " ".join(s["title"] for s in plans["shop"]["steps"] if s["kind"] == "manual")
    assert "User Guide's limitations page still says encryption cannot change" in manual
    assert "API reference" in manual and "confirm it for your engine" in manual


def test_create_names_every_instance_and_replica_with_the_key(tmp_path: Path) -> None:
    _, doc = _blue_green(tmp_path)
    steps = {rid: [s["argv"] for s in rem["steps"] if s["argv"]]
             for rid, rem in (_by_resource(doc, "instance-unencrypted")
                              | _by_resource(doc, "cluster-unencrypted")).items()}
    [shop] = [a for a in steps["shop"] if a[2] == "create-blue-green-deployment"]
    configs = json.loads(shop[shop.index("--target-resource-configurations") + 1])
    arn = f"arn:aws:rds:us-east-1:{ACCOUNT}"
    assert configs == [{"SourceArn": f"{arn}:db:shop", "TargetKmsKeyId": CMK},
                       {"SourceArn": f"{arn}:db:shop-ro", "TargetKmsKeyId": CMK}]
    [events] = [a for a in steps["events"] if a[2] == "create-blue-green-deployment"]
    assert json.loads(events[events.index("--target-resource-configurations") + 1]) == [
        {"SourceArn": f"{arn}:cluster:events", "TargetKmsKeyId": CMK}]
    assert events[events.index("--source") + 1] == f"{arn}:cluster:events"
    # The old (renamed) resources are deleted after the switchover, the replica first.
    ops = [(a[2], a[a.index("--db-instance-identifier") + 1]) for a in steps["shop"]
           if a[2] == "delete-db-instance"]
    assert ops == [("delete-db-instance", "shop-ro-old1"), ("delete-db-instance", "shop-old1")]


def _model_check(argv: list[str]) -> None:
    """Every option of the call is an input member of its operation (or a global option)."""
    model = botocore.session.get_session().get_service_model(argv[0])
    names = {xform_name(n, "-"): n for n in model.operation_names}
    if argv[1] == "wait":
        waiters = botocore.session.get_session().get_waiter_model(argv[0])
        assert argv[2] in {xform_name(w, "-") for w in waiters.waiter_names}, argv
        op = waiters.get_waiter({xform_name(w, "-"): w for w in waiters.waiter_names}[argv[2]]
                                ).operation
        rest = argv[3:]
    else:
        assert argv[1] in names, argv
        op, rest = names[argv[1]], argv[2:]
    members = {"--" + xform_name(m, "-"): s.type_name
               for m, s in model.operation_model(op).input_shape.members.items()}
    for token in rest:
        if token.startswith("--"):
            base = "--" + token[5:] if token.startswith("--no-") else token
            assert token in GLOBALS or token in members or base in members, (token, argv)


def _stub(tmp_path: Path) -> tuple[Path, Path]:
    """An `aws` that logs its arguments and answers like RDS: the deployment is AVAILABLE
    once created and SWITCHOVER_COMPLETED once switched over."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    log, state = tmp_path / "calls.jsonl", tmp_path / "switched"
    stub = bin_dir / "aws"
    stub.write_text(
        "#!/bin/bash\n"
        f"printf '%s\\0' \"$@\" >> {shlex.quote(str(log))}\n"
        f"printf '\\001\\0' >> {shlex.quote(str(log))}\n"
        'case "$1 $2" in\n'
        f'  "sts get-caller-identity") echo {ACCOUNT} ;;\n'
        f'  "rds switchover-blue-green-deployment") : > {shlex.quote(str(state))} ;;\n'
        '  "rds create-blue-green-deployment")\n'
        '    case "$*" in *--generate-cli-skeleton*)\n'
        '      echo \'{"TargetResourceConfigurations": [{"SourceArn": ""}]}\' ;; esac ;;\n'
        '  "rds describe-blue-green-deployments")\n'
        '    case "$*" in\n'
        '      *Identifier*) echo bgd-0123456789abcdef ;;\n'
        f'      *) if [ -e {shlex.quote(str(state))} ]; then echo SWITCHOVER_COMPLETED;\n'
        '         else echo AVAILABLE; fi ;;\n'
        '    esac ;;\n'
        'esac\n')
    stub.chmod(0o755)
    return bin_dir, log


def _execute(tmp_path: Path, script: str, *, confirm: bool) -> list[list[str]]:
    path = tmp_path / "bg.sh"
    path.write_text(script)
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                            check=False)
    assert syntax.returncode == 0, syntax.stderr
    bin_dir, log = _stub(tmp_path)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "RDSAUDIT_POLL_SECONDS": "0"}
    if confirm:
        env["RDSAUDIT_CONFIRM_DELETE"] = "1"
    proc = subprocess.run(["/bin/bash", str(path)], env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "command not found" not in proc.stderr
    calls: list[list[str]] = [[]]
    for arg in log.read_bytes().decode().split("\0")[:-1]:
        if arg == "\x01":
            calls.append([])
        else:
            calls[-1].append(arg)
    calls.pop()
    return calls


@pytest.mark.parametrize("confirm", [False, True])
def test_blue_green_runbook_runs_with_a_stub_aws(tmp_path: Path, confirm: bool) -> None:
    script, _ = _blue_green(tmp_path)
    calls = _execute(tmp_path, script, confirm=confirm)
    for call in calls:
        _model_check(call)
    # The runbook first asks the CLI whether its model has --target-resource-configurations.
    assert calls[1] == ["rds", "create-blue-green-deployment", "--generate-cli-skeleton",
                        "input"]
    ops = [c[1] for c in calls[2:] if c[0] == "rds"]
    assert ops.count("create-blue-green-deployment") == 2  # shop, events
    if not confirm:
        assert "switchover-blue-green-deployment" not in ops
        assert "delete-blue-green-deployment" not in ops
        return
    assert ops.count("switchover-blue-green-deployment") == 2
    for op in ("switchover-blue-green-deployment", "delete-blue-green-deployment"):
        for call in (c for c in calls if c[1:2] == [op]):
            assert call[call.index("--blue-green-deployment-identifier") + 1] == \
                "bgd-0123456789abcdef"
    # Polled until SWITCHOVER_COMPLETED before the deployment is deleted.
    first_delete = ops.index("delete-blue-green-deployment")
    assert ops.index("switchover-blue-green-deployment") < first_delete
    assert "describe-blue-green-deployments" in ops[ops.index(
        "switchover-blue-green-deployment"):first_delete]
    deleted = [c[c.index("--db-instance-identifier") + 1] for c in calls
               if c[1:2] == ["delete-db-instance"]]
    assert {"shop-old1", "shop-ro-old1", "events-1-old1"} <= set(deleted)
    assert ["rds", "delete-db-cluster", "--region", "us-east-1", "--db-cluster-identifier",
            "events-old1", "--skip-final-snapshot"] in calls


def test_an_aws_cli_without_target_resource_configurations_stops_first(
        tmp_path: Path) -> None:
    script, _ = _blue_green(tmp_path)
    bin_dir = tmp_path / "old-cli"
    bin_dir.mkdir()
    log = tmp_path / "old.log"
    (bin_dir / "aws").write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$*" >> {shlex.quote(str(log))}\n'
        f'if [ "$1" = sts ]; then echo {ACCOUNT}; fi\n'
        'if [ "$2" = create-blue-green-deployment ]; then echo \'{"Source": ""}\'; fi\n')
    (bin_dir / "aws").chmod(0o755)
    path = tmp_path / "bg.sh"
    path.write_text(script)
    proc = subprocess.run(["/bin/bash", str(path)], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "has no --target-resource-configurations" in proc.stderr
    assert "Nothing was changed." in proc.stderr
    assert len(log.read_text().splitlines()) == 2  # the account check, the model check


def test_polling_is_bounded_and_stops_on_a_failed_deployment(tmp_path: Path) -> None:
    script, _ = _blue_green(tmp_path)
    assert "-ge 240" in script
    bin_dir = tmp_path / "bad-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(
        "#!/bin/bash\n"
        f'if [ "$1" = sts ]; then echo {ACCOUNT}; fi\n'
        'if [ "$2" = describe-blue-green-deployments ]; then echo INVALID_CONFIGURATION; fi\n'
        'if [ "$2" = create-blue-green-deployment ]; then echo TargetResourceConfigurations\n'
        '  echo \'"TargetResourceConfigurations"\'; fi\n')
    (bin_dir / "aws").chmod(0o755)
    path = tmp_path / "bg.sh"
    path.write_text(script)
    proc = subprocess.run(["/bin/bash", str(path)], env={"PATH": str(bin_dir),
                                                         "RDSAUDIT_POLL_SECONDS": "0"},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "is INVALID_CONFIGURATION, not AVAILABLE: stopping" in proc.stderr


@pytest.mark.parametrize("edit", ["literal-id", "other-name", "other-source"])
def test_edited_blue_green_steps_are_refused(tmp_path: Path, edit: str) -> None:
    report = _report(tmp_path)
    replanned = tmp_path / "replanned.json"
    from rdsaudit.plan.replan import replan
    from rdsaudit.policy import Policy
    from rdsaudit.report.reading import load_report

    doc = replan(load_report(report), Policy(target_keys={f"{ACCOUNT}:us-east-1": CMK,
                                                          f"{ACCOUNT}:{EU}": EU_KEY}),
                 "blue-green")
    [shop] = [f for f in doc["findings"] if f["rule_id"] == "instance-unencrypted"
              and f["resource"]["id"] == "shop"]
    steps = shop["remediation"]["steps"]
    [create] = [s for s in steps if s["argv"][2:3] == ["create-blue-green-deployment"]]
    [switch] = [s for s in steps if s["argv"][2:3] == ["switchover-blue-green-deployment"]]
    if edit == "literal-id":
        switch["argv"][-1] = "bgd-someoneelse"
    elif edit == "other-name":
        switch["argv"][-1] = "{bgd-id:payments-prod-encrypt}"
    else:
        i = create["argv"].index("--target-resource-configurations") + 1
        create["argv"][i] = json.dumps([{"SourceArn": "arn:aws:rds:us-east-1:"
                                         f"{ACCOUNT}:db:payments-prod", "TargetKmsKeyId": CMK}])
    replanned.write_text(json.dumps(doc))
    assert "refused" in one_line_error(run("plan", replanned))


def test_check_argv_accepts_only_the_plans_own_deployment() -> None:
    scope = Scope(own={"arn:aws:rds:us-east-1:1:db:a", "a"})
    create = ["aws", "rds", "create-blue-green-deployment", "--region", "us-east-1",
              "--blue-green-deployment-name", "a-encrypt", "--source",
              "arn:aws:rds:us-east-1:1:db:a", "--target-resource-configurations",
              '[{"SourceArn":"arn:aws:rds:us-east-1:1:db:a","TargetKmsKeyId":"k"}]']
    with pytest.raises(CommandRefused):
        check_argv(["aws", "rds", "switchover-blue-green-deployment",
                    "--blue-green-deployment-identifier", "{bgd-id:a-encrypt}"], scope)
    check_argv(create, scope)
    check_argv(["aws", "rds", "switchover-blue-green-deployment",
                "--blue-green-deployment-identifier", "{bgd-id:a-encrypt}"], scope)
    check_argv(["aws", "rds", "describe-blue-green-deployments", "--region", "us-east-1",
                "--filters", "Name=blue-green-deployment-name,Values=a-encrypt"], scope)
    for bad in (["--filters", "Name=blue-green-deployment-name,Values=b"],
                ["--blue-green-deployment-identifier", "bgd-1"], []):
        with pytest.raises(CommandRefused):
            check_argv(["aws", "rds", "describe-blue-green-deployments", *bad], scope)
    with pytest.raises(CommandRefused):
        check_argv([*create[:-1], '[{"SourceArn":"arn:aws:rds:us-east-1:1:db:b"}]'],
                   Scope(own={"arn:aws:rds:us-east-1:1:db:a", "a"}))


@pytest.mark.parametrize("strategy", ["snapshot", "blue-green"])
def test_hostile_values_replanned_execute_nothing_but_aws(tmp_path: Path, strategy: str) -> None:
    """Re-planning reads ids and configuration from the report: hostile ones (newline,
    $(…), backticks, quotes, control characters) stay arguments of `aws`, in both
    strategies, and the polling helpers never interpret them."""
    from tests.plan.test_runbook_safety import HOSTILE, SENTINEL, SHELL_NAMES

    # Names carry shell syntax (a control character makes a name malformed wherever it is
    # read, so those payloads go into the free text: the tags).
    estate: list[Any] = []
    for i, bad in enumerate(SHELL_NAMES):
        estate.append(instance(f"db{i}{bad}", encrypted=False, engine="mysql",
                               db_subnet_group=f"net{bad}", parameter_group=f"pg{bad}",
                               vpc_security_group_ids=(f"sg-{bad}",),
                               tags=tuple((f"team{n}", h) for n, h in enumerate(HOSTILE))))
    estate.append(cluster(f"cl{HOSTILE[1]}", encrypted=False))
    inv = save(tmp_path, inventory(*estate, keys=(kms_key(CMK),)))
    out = tmp_path / "out"
    assert run("evaluate", inv, "--output-dir", out, "--quiet", "--exit-zero").returncode == 0
    runbook = tmp_path / "hostile.sh"
    proc = run("plan", out / "rdsaudit-report.json", "--strategy", strategy, "--target-key",
               CMK, "--output", runbook)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "cwd"
    work.mkdir()
    script = runbook.read_bytes().decode()
    path = tmp_path / "bg.sh"
    path.write_bytes(script.encode())
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
    bin_dir, log = _stub(tmp_path)
    proc2 = subprocess.run(["/bin/bash", str(path)], cwd=work, capture_output=True, text=True,
                           env={"PATH": str(bin_dir), "RDSAUDIT_POLL_SECONDS": "0",
                                "RDSAUDIT_CONFIRM_DELETE": "1"}, check=False, timeout=120)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert "command not found" not in proc2.stderr
    assert not list(work.iterdir()) and not list(tmp_path.glob(f"{SENTINEL}*"))
    calls = log.read_bytes().decode().split("\x01\0")
    blue_green = [c for c in calls if "create-blue-green-deployment" in c
                  and "--generate-cli-skeleton" not in c]
    assert (len(blue_green) == len(SHELL_NAMES) + 1) is (strategy == "blue-green")
    assert any(f"db0{SHELL_NAMES[0]}-encrypt\0" in c for c in blue_green) is (
        strategy == "blue-green")
