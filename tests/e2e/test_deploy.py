"""deploy/: the CloudFormation stack passes cfn-lint, whose rule E3601 validates the state
machine against the Step Functions (ASL) schema, so a typo in a state fails here; the
Batch and Kubernetes variants and the Dockerfile keep the properties docs/organization.md
promises (shards, merge, non-root, read-only root filesystem, no history)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode_str

from rdsaudit.collect.accounts import MULTI_ACCOUNT_ACTIONS
from rdsaudit.collect.specs import required_actions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATE = DEPLOY / "cloudformation" / "rdsaudit-organization.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True,
                          timeout=300, check=False)


def _template() -> dict[str, Any]:
    decoded, problems = decode_str(TEMPLATE.read_text())
    assert not problems and decoded is not None
    return dict(decoded)


def test_template_passes_cfn_lint() -> None:
    proc = _lint(TEMPLATE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("before", "after", "says"), [
    ("StartAt: PlanShards", "StartAt: PlanShardz", "E3601"),
    ("            ItemProcessor:", "            ItemProcesor:", "E3601"),
    ("                  Type: Task", "                  Type: Tsk", "E3601"),
    ("MaxConcurrency: ${MaxConcurrency}", "MaxConcurency: ${MaxConcurrency}", "E3601"),
])
def test_a_typo_in_the_state_machine_fails_the_lint(tmp_path: Path, before: str, after: str,
                                                     says: str) -> None:
    text = TEMPLATE.read_text()
    assert before in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(before, after, 1))
    proc = _lint(broken)
    assert proc.returncode != 0 and says in proc.stdout, proc.stdout


def test_state_machine_is_a_distributed_map_of_shard_scans_then_a_merge() -> None:
    machine = _template()["Resources"]["StateMachine"]["Properties"]
    states = machine["Definition"]["States"]
    assert states["PlanShards"]["Parameters"]["shards.$"] == \
        "States.ArrayRange(1, ${ShardCount}, 1)"
    scan = states["ScanShards"]
    assert scan["Type"] == "Map" and scan["Next"] == "Merge"
    assert scan["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    task = scan["ItemProcessor"]["States"]["ScanShard"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    command = task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    for word in ("'scan'", "'--organization'", "'--shard', $.shard", "'--no-history'"):
        assert word in command
    merge = states["Merge"]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
    assert "'merge', '--shards', '${ShardCount}'" in merge


def test_task_role_is_the_printed_policy_and_nothing_broader() -> None:
    resources = _template()["Resources"]
    statements = resources["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["RdsauditReadOnly"]["Action"] == required_actions(), (
        "the read-only actions changed: update deploy/cloudformation/ from "
        "`rdsaudit iam-policy`")
    granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                               else s["Action"])}
    extra = granted - set(required_actions()) - set(MULTI_ACCOUNT_ACTIONS)
    assert extra == {"s3:PutObject", "s3:GetObject", "s3:ListBucket", "kms:GenerateDataKey",
                     "kms:Decrypt"}
    assert all("*" not in a for a in granted)
    assert by_sid["RdsauditMemberRoles"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
    bucket = resources["ReportBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_task_runs_as_non_root_on_a_read_only_root_filesystem() -> None:
    container = _template()["Resources"]["TaskDefinition"]["Properties"][
        "ContainerDefinitions"][0]
    assert container["ReadonlyRootFilesystem"] is True and container["User"] == "10001"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and not users[-1].startswith(("0", "root"))
    assert "HOME=/tmp" in dockerfile


def test_batch_and_kubernetes_variants_shard_with_auto_and_keep_no_history() -> None:
    batch = json.loads((DEPLOY / "batch" / "array-job.json").read_text())
    command = batch["containerProperties"]["command"]
    assert command[command.index("--shard") + 1].startswith("auto/")
    assert "--no-history" in command and "{shard}" in command[command.index("--output-dir")
                                                                + 1]
    assert batch["containerProperties"]["readonlyRootFilesystem"] is True
    shards, merge = yaml.safe_load_all((DEPLOY / "kubernetes" / "indexed-job.yaml").read_text())
    assert shards["spec"]["completionMode"] == "Indexed"
    n = shards["spec"]["completions"]
    [pod] = shards["spec"]["template"]["spec"]["containers"]
    assert pod["args"][pod["args"].index("--shard") + 1] == f"auto/{n}"
    assert "--no-history" in pod["args"] and pod["securityContext"]["readOnlyRootFilesystem"]
    [merger] = merge["spec"]["template"]["spec"]["containers"]
    assert merger["args"][:3] == ["merge", "--shards", str(n)]
