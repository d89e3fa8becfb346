"""The runbook of the whole demo estate, run as an operator would: the real AWS CLI against
the emulator, through the account check, with RDSAUDIT_CONFIRM_DELETE=1; then a rescan.

Where moto is not AWS, the emulator is corrected in this process, each patch with the AWS
fact it restores (docs/aws-facts.md, docs/moto-fidelity.md §11).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.demo.emulator import FakeAWS, instance_automated_backup_arn
from rdsaudit.demo.estate import DEMO_REGIONS, DemoEstate, demo_environment
from tests.support.aws_fork import fast_aws

BIN = Path(sys.executable).parent
RDSAUDIT = str(BIN / "rdsaudit")
AWS_CLI = BIN / "aws"

pytestmark = pytest.mark.skipif(not AWS_CLI.exists(), reason="awscli is not installed")


def _key_id(key_id: str) -> str:
    return key_id.rsplit("/", 1)[-1] if key_id.startswith("arn:") else key_id


# Called with the key id whenever EnableKey succeeds (the overlay hook below).
_ENABLED: list[Callable[[str], None]] = []


def _accept_key_arns(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS accepts a key ARN wherever KeyId is asked for (EnableKey, CancelKeyDeletion,
    EnableKeyRotation: "Specify the key ID or key ARN"); moto raises KeyError on an ARN
    (moto-fidelity §11.9)."""
    from moto.kms.models import KmsBackend

    for name in ("enable_key", "cancel_key_deletion", "enable_key_rotation"):
        original: Callable[..., Any] = getattr(KmsBackend, name)

        def patched(self: Any, key_id: str, *args: Any, _o: Any = original, _n: str = name,
                    **kw: Any) -> Any:
            result = _o(self, _key_id(key_id), *args, **kw)
            if _n == "enable_key":
                for hook in _ENABLED:
                    hook(_key_id(key_id))
            return result

        monkeypatch.setattr(KmsBackend, name, patched)


def _encrypting_cluster_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    """RestoreDBClusterFromSnapshot with KmsKeyId encrypts the new cluster even from an
    unencrypted snapshot (aws-facts §8.2); moto keeps it unencrypted (moto-fidelity §11.4)."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.restore_db_cluster_from_snapshot

    def patched(self: Any, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        cluster = original(self, from_snapshot_id, overrides)
        if overrides.get("kms_key_id"):
            live = self.clusters[cluster.db_cluster_identifier]
            # The returned copy, the live cluster and its automated snapshot (taken at
            # creation, encrypted like the cluster in AWS).
            snaps = [s for s in self.cluster_snapshots.values()
                     if s.snapshot_type == "automated"
                     and s.cluster.db_cluster_identifier == live.db_cluster_identifier]
            for target in [cluster, live, *snaps, *(s.cluster for s in snaps)]:
                target.storage_encrypted = True
                target.kms_key_id = overrides["kms_key_id"]
            for snap in snaps:
                snap.encrypted = True
        return cluster

    monkeypatch.setattr(RDSBackend, "restore_db_cluster_from_snapshot", patched)


def _recoverable_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """StartDBInstance is the documented way out of inaccessible-encryption-credentials-
    recoverable once the key is usable (aws-facts §5 "What happens to RDS"); moto starts only
    stopped instances (moto-fidelity, "More divergences")."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.start_db_instance

    def patched(self: Any, db_instance_identifier: str) -> Any:
        database = self.describe_db_instances(db_instance_identifier)[0]
        if database.status == "inaccessible-encryption-credentials-recoverable":
            database.status = "stopped"
        return original(self, db_instance_identifier)

    monkeypatch.setattr(RDSBackend, "start_db_instance", patched)


def _cross_region_replica_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting a read replica, same-Region or cross-Region, removes it from its source's
    ReadReplicaDBInstanceIdentifiers (which lists cross-Region replicas by ARN). moto lists
    them by ARN but removes by identifier: ValueError after the instance is already gone,
    an HTTP 500 the CLI retries into DBInstanceNotFound."""
    from moto.rds.models import DBInstance

    def remove_replica(self: Any, replica: Any) -> None:
        for name in (replica.db_instance_identifier, replica.db_instance_arn):
            if name in self.replicas:
                self.replicas.remove(name)

    monkeypatch.setattr(DBInstance, "remove_replica", remove_replica)


def _automated_backup_deletes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeleteDBInstanceAutomatedBackup (by DBInstanceAutomatedBackupsArn) and
    DeleteDBClusterAutomatedBackup (by DbClusterResourceId) delete a retained automated
    backup of a deleted database (aws-facts: automated backups); moto implements neither
    (moto-fidelity §11.13), and the cluster backups exist only in the emulator's layer. The
    layer answers them here: the instance backup is moto's automated snapshots of that
    instance incarnation, the cluster backup the layer's own record."""
    import xml.etree.ElementTree as ET

    from moto.rds.models import rds_backends

    from rdsaudit.demo.emulator import wire

    original = FakeAWS.handle

    def handle(self: FakeAWS, environ: Any, req: Any) -> Any:
        action = req.action
        if req.service != "rds" or action not in ("DeleteDBInstanceAutomatedBackup",
                                                  "DeleteDBClusterAutomatedBackup"):
            return original(self, environ, req)
        found = False
        if action == "DeleteDBInstanceAutomatedBackup":
            backend = rds_backends[req.account][req.region]
            arn = req.param("DBInstanceAutomatedBackupsArn")
            for name, snap in list(backend.database_snapshots.items()):
                if snap.snapshot_type == "automated" and arn == \
                        instance_automated_backup_arn(
                            req.region, req.account, snap.db_instance_identifier,
                            getattr(snap.database, "created", None)):
                    del backend.database_snapshots[name]
                    found = True
        else:
            rid = req.param("DbClusterResourceId")
            with self._lock:
                records = self._cluster_backups.get((req.account, req.region), [])
                kept = [r for r in records if r.get("DbClusterResourceId") != rid]
                found = len(kept) < len(records)
                self._cluster_backups[(req.account, req.region)] = kept
                self._pages.clear()
        if not found:
            return wire.error_resp(req, 404, "DBInstanceAutomatedBackupNotFound"
                                        if "Instance" in action else
                                        "DBClusterAutomatedBackupNotFoundFault",
                                        "no such retained automated backup")
        root = ET.Element(wire.rds_tag(f"{action}Response"))
        ET.SubElement(root, wire.rds_tag(f"{action}Result"))
        meta = ET.SubElement(root, wire.rds_tag("ResponseMetadata"))
        ET.SubElement(meta, wire.rds_tag("RequestId")).text = "rdsaudit-test"
        return wire.xml_resp(200, wire.serialize(root))

    monkeypatch.setattr(FakeAWS, "handle", handle)


def _cluster_delete_removes_automated_backups(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeleteDBCluster "removes automated backups immediately after the DB cluster is
    deleted" by default (DeleteAutomatedBackups, botocore model); moto keeps the cluster's
    automated snapshots, which a rescan would still report."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.delete_db_cluster

    def patched(self: Any, cluster_identifier: str, *args: Any, **kw: Any) -> Any:
        cluster = original(self, cluster_identifier, *args, **kw)
        for name, snap in list(self.cluster_snapshots.items()):
            if snap.snapshot_type == "automated" and \
                    snap.cluster.db_cluster_identifier == cluster_identifier:
                del self.cluster_snapshots[name]
        return cluster

    monkeypatch.setattr(RDSBackend, "delete_db_cluster", patched)


def _clusters_ready_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS reports a new cluster `creating` until it is ready, then `available`; moto says
    `creating` exactly once (moto-fidelity §11.15), which makes every `aws rds wait
    db-cluster-available` sleep its 30 s delay before the second poll. Only the end state
    matters to the runbook: report it at once."""
    from moto.rds.models import DBCluster

    def status(self: Any) -> str:
        if self._status == "creating":
            self._status = "available"
        return str(self._status)

    monkeypatch.setattr(DBCluster, "status", property(status, DBCluster.status.fset))


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAWS, DemoEstate]]:
    _accept_key_arns(monkeypatch)
    _encrypting_cluster_restore(monkeypatch)
    _recoverable_start(monkeypatch)
    _clusters_ready_at_once(monkeypatch)
    _cross_region_replica_delete(monkeypatch)
    _automated_backup_deletes(monkeypatch)
    _cluster_delete_removes_automated_backups(monkeypatch)
    try:
        with demo_environment() as served:
            yield served
    finally:
        _ENABLED.clear()


def _env(fake: FakeAWS, bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "RDSAUDIT_CONFIRM_DELETE": "1",
    })
    return env


def _key_states_follow_enable_key(fake: FakeAWS, estate: DemoEstate) -> None:
    """The demo holds key states moto cannot (PendingReplicaDeletion, Hibernating) as
    emulator overlays on DescribeKey. In AWS, EnableKey after CancelKeyDeletion leaves the
    key Enabled: once the runbook's EnableKey succeeds, the key's overlaid state goes."""
    overlays = {arn: dict(fields) for arn, fields in estate.overlays}

    def enabled(key_id: str) -> None:
        for arn, fields in overlays.items():
            if arn.endswith("/" + key_id):
                fields.pop("KeyState", None)
                fields.pop("Enabled", None)
        fake.clear_overlays()
        for arn, fields in overlays.items():
            fake.overlay(arn, fields)

    _ENABLED.append(enabled)


def _scan(env: dict[str, str], out: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run([RDSAUDIT, "scan", "--regions", ",".join(DEMO_REGIONS),
                           "--output-dir", str(out), "--quiet", "--exit-zero", *extra],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads((out / "rdsaudit-report.json").read_text())
    return doc


def _fails(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["resource"]["arn"]) for f in doc["findings"]
            if f["status"] == "fail"}


@pytest.mark.e2e
def test_whole_demo_runbook_runs_and_fixes_what_it_claims(
        demo: tuple[FakeAWS, DemoEstate], tmp_path: Path) -> None:
    fake, estate = demo
    _key_states_follow_enable_key(fake, estate)
    bin_dir = tmp_path / "bin"
    env = _env(fake, bin_dir)
    targets = [estate.key("orders").arn, estate.key("eu-orders").arn]
    keys = [a for t in targets for a in ("--target-key", t)]
    before = _scan(env, tmp_path / "before", *keys)
    out = tmp_path / "runbooks"
    proc = subprocess.run([RDSAUDIT, "plan", str(tmp_path / "before" / "rdsaudit-report.json"),
                           "--output-dir", str(out)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    [runbook] = [p for p in out.iterdir() if p.name == f"runbook-{estate.account_id}.sh"]
    started = time.monotonic()
    with fast_aws(bin_dir, fake.endpoint_url, env):
        run = subprocess.run(["bash", "-x", str(runbook)], env=env, capture_output=True,
                             text=True, timeout=900, check=False)
    took = time.monotonic() - started
    (tmp_path / "runbook.log").write_text(run.stderr)
    calls = sum(1 for line in run.stderr.splitlines() if line.startswith("+ aws "))
    print(f"runbook: {calls} aws commands in {took:.0f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    after = _scan(env, tmp_path / "after", *keys)
    claimed = {(f["rule_id"], f["resource"]["arn"]) for f in before["findings"]
               if f["status"] == "fail" and f["remediation"]
               and not f["remediation"].get("blocked")
               and any(s.get("kind") == "command" for s in f["remediation"]["steps"])}
    assert len(claimed) > 20
    still = claimed & _fails(after)
    new = _fails(after) - _fails(before)
    assert not still, sorted(still)
    assert not new, sorted(new)


def _green_follows_target_kms_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """CreateBlueGreenDeployment.TargetResourceConfigurations[].TargetKmsKeyId encrypts the
    green resource of SourceArn with that key (RDS API reference,
    TargetResourceConfiguration); moto ignores it (moto-fidelity §11, More divergences). The
    green instance, and its automated snapshot taken at creation, get the key."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.create_blue_green_deployment

    def patched(self: Any, bg_kwargs: dict[str, Any]) -> Any:
        deployment = original(self, bg_kwargs)
        live = self.blue_green_deployments[deployment.blue_green_deployment_identifier]
        for entry in bg_kwargs.get("target_resource_configurations") or []:
            source = entry.get("SourceArn") or entry.get("source_arn")
            key = entry.get("TargetKmsKeyId") or entry.get("target_kms_key_id")
            if source != live.source or not key:
                continue
            green = self.find_db_from_id(live.target)
            green.storage_encrypted, green.kms_key_id = True, key
            for snap in self.database_snapshots.values():
                if snap.snapshot_type == "automated" and \
                        snap.db_instance_identifier == green.db_instance_identifier:
                    snap.kms_key_id, snap.storage_encrypted, snap.encrypted = key, True, True
                    snap.database.storage_encrypted, snap.database.kms_key_id = True, key
        return deployment

    monkeypatch.setattr(RDSBackend, "create_blue_green_deployment", patched)


@pytest.mark.e2e
def test_blue_green_runbook_runs_with_the_real_cli(
        demo: tuple[FakeAWS, DemoEstate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan --strategy blue-green` re-planned from the report, run whole with the real AWS
    CLI (create, bounded polling, switchover, clean-up of the -old1 instance), then a
    rescan: the instance is encrypted with the target key under its own name."""
    fake, estate = demo
    _green_follows_target_kms_key(monkeypatch)
    bin_dir = tmp_path / "bin"
    env = {**_env(fake, bin_dir), "RDSAUDIT_POLL_SECONDS": "0"}
    target = estate.key("eu-orders").arn
    before = _scan(env, tmp_path / "before")
    name = "eu-newsletter-db"  # mysql, unencrypted, no replicas (moto's green has none)
    [arn] = {f["resource"]["arn"] for f in before["findings"]
             if f["resource"]["id"] == name}
    assert ("instance-unencrypted", arn) in _fails(before)
    runbook = tmp_path / "bg.sh"
    proc = subprocess.run([RDSAUDIT, "plan", str(tmp_path / "before" / "rdsaudit-report.json"),
                           "--resource", name, "--strategy", "blue-green", "--target-key",
                           target, "--output", str(runbook)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "create-blue-green-deployment" in runbook.read_text()
    # The AWS CLI from PyPI (awscli 1.46.x) carries its own, older botocore model without
    # TargetResourceConfigurations: the runbook stops before changing anything.
    with fast_aws(bin_dir, fake.endpoint_url, env):
        old = subprocess.run(["bash", "-x", str(runbook)], env=env, capture_output=True,
                             text=True, timeout=600, check=False)
    print(f"AWS CLI without a newer model: exit {old.returncode}")
    if old.returncode == 1:
        assert "has no --target-resource-configurations" in old.stderr
        assert "+ aws rds create-blue-green-deployment --region" not in old.stderr
    else:  # an AWS CLI whose model has it
        assert old.returncode == 0, old.stderr[-3000:]
    # With a newer RDS model on AWS_DATA_PATH (the documented way to give the CLI models;
    # the same as upgrading it), the whole runbook runs.
    import botocore

    models = tmp_path / "models"
    shutil.copytree(Path(botocore.__file__).parent / "data" / "rds", models / "rds")
    env["AWS_DATA_PATH"] = str(models)
    with fast_aws(tmp_path / "bin2", fake.endpoint_url, env):
        env2 = {**env, "PATH": f"{tmp_path / 'bin2'}{os.pathsep}{env['PATH']}"}
        run = subprocess.run(["bash", "-x", str(runbook)], env=env2, capture_output=True,
                             text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "+ aws rds switchover-blue-green-deployment" in run.stderr
    after = _scan(env, tmp_path / "after")
    assert ("instance-unencrypted", arn) not in _fails(after)
    [entry] = [r for r in after["resources"] if r["arn"] == arn]
    assert [k["arn"] for k in entry["keys"] if k["role"] == "storage"] == [target]
    assert entry["posture"] == "customer" and "config" not in entry  # nothing left to plan
    assert not [r for r in after["resources"] if r["id"].startswith(f"{name}-old1")
                and r["type"] == "db-instance"]
    assert not _fails(after) - _fails(before)
