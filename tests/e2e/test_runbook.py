"""Remediation plans that work: generate a runbook, execute it command by command with the
real AWS CLI (awscli from PyPI) against the emulator, and rescan.

Covers an unencrypted instance with a read replica and an unencrypted public snapshot of
the demo estate. The AWS CLI ignores AWS_ENDPOINT_URL, so a two-line `aws` wrapper first on
PATH adds --endpoint-url; the runbook runs unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.demo.estate import DEMO_REGIONS, DemoEstate, demo_environment

BIN = Path(sys.executable).parent
RDSAUDIT = str(BIN / "rdsaudit")
AWS_CLI = BIN / "aws"

pytestmark = pytest.mark.skipif(not AWS_CLI.exists(), reason="awscli is not installed")


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[FakeAWS, DemoEstate]]:
    with demo_environment() as served:
        yield served


def _env(fake: FakeAWS, wrapper_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": f"{wrapper_dir}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


def _wrapper(tmp_path: Path) -> Path:
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    aws = wrapper_dir / "aws"
    aws.write_text(f'#!/bin/sh\nexec "{AWS_CLI}" --endpoint-url "$AWS_ENDPOINT_URL" "$@"\n')
    aws.chmod(0o755)
    return wrapper_dir


def _scan(env: dict[str, str], out: Path, *extra: str) -> dict[str, object]:
    proc = subprocess.run([RDSAUDIT, "scan", "--regions", ",".join(DEMO_REGIONS),
                           "--output-dir", str(out), "--quiet", "--exit-zero",
                           "--evidence", "full", *extra],
                          env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads((out / "rdsaudit-report.json").read_text())
    return doc


def _commands(script: str) -> list[str]:
    return [line for line in script.splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("set ")]


def test_runbook_encrypts_instance_with_replica_and_snapshot(
        demo: tuple[FakeAWS, DemoEstate], tmp_path: Path) -> None:
    fake, estate = demo
    env = _env(fake, _wrapper(tmp_path))
    assert shutil.which("aws", path=env["PATH"]) == str(tmp_path / "bin" / "aws")
    target = estate.key("orders").arn  # a customer managed key of us-east-1
    before = _scan(env, tmp_path / "before", "--target-key", target)
    instance, replica = "legacy-reporting-mysql", "legacy-reporting-mysql-ro"
    snapshot = "legacy-reporting-mysql-pre-migration"
    proc = subprocess.run([RDSAUDIT, "plan", str(tmp_path / "before" / "rdsaudit-report.json"),
                           "--resource", instance, "--resource", snapshot],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    assert f"--kms-key-id {target}" in script
    assert "create-db-instance-read-replica" in script and replica in script
    assert _commands(script), script
    path = tmp_path / "runbook.sh"
    path.write_text(script)
    # The whole runbook, as an operator would run it: the account check, then every step.
    run = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, f"{script}\n{run.stderr}"

    after = _scan(env, tmp_path / "after")
    assert isinstance(after["findings"], list) and isinstance(before["findings"], list)
    status = {(f["rule_id"], f["resource"]["id"]): f["status"] for f in after["findings"]}
    # The new encrypted primary, its re-created replica and the encrypted snapshot copy.
    assert status[("instance-unencrypted", f"{instance}-enc")] == "pass"
    assert status[("instance-unencrypted", f"{replica}-enc")] == "pass"
    assert status[("snapshot-unencrypted", f"{snapshot}-encrypted")] == "pass"
    assert status[("replica-key-mismatch", f"{replica}-enc")] == "pass"
    # The public snapshot is no longer public.
    assert status[("snapshot-public", snapshot)] == "pass"
    # Keys of the new resources are the target key.
    keys = {f["resource"]["id"]: (f["kms_key"] or {}).get("arn") for f in after["findings"]
            if f["rule_id"] == "key-unusable"}
    assert keys[f"{instance}-enc"] == target and keys[f"{replica}-enc"] == target
