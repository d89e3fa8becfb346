"""Every planner has a table of cases, each a hand-built inventory (no AWS): the operations
its plan calls, in order, and what it must never call. Shapes from issue 9's Why."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rdsaudit.evaluate import evaluate
from rdsaudit.model import Inventory, KeyLookup, Remediation, ResourceType
from rdsaudit.policy import Policy
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
    snapshot,
)

TARGET = key_arn("99999999-2222-3333-4444-555555555555")
PRIMARY = key_arn("mrk-1234567890abcdef1234567890abcdef", region="eu-west-1")
REPLICA = key_arn("mrk-1234567890abcdef1234567890abcdef")
GONE = key_arn("deaddead-2222-3333-4444-555555555555")


def _plan(inv: Inventory, rule: str, rid: str, **policy: Any) -> Remediation:
    policy.setdefault("target_keys", {"us-east-1": TARGET})
    result = evaluate(inv, Policy(**policy))
    found = [f for f in result.findings if f.rule_id == rule and f.resource.id == rid
             and f.status.value == "fail"]
    assert found, [(f.rule_id, f.resource.id) for f in result.findings
                   if f.status.value == "fail"]
    assert found[0].remediation is not None
    return found[0].remediation


def _ops(rem: Remediation) -> list[str]:
    return [s.argv[2] if s.argv[2] != "wait" else f"wait {s.argv[3]}" for s in rem.steps
            if s.argv]


def _runnable(rem: Remediation) -> list[str]:
    return [s.argv[2] for s in rem.steps if s.argv and not s.manual and s.argv[2] != "wait"]


# (case, inventory, rule, resource, operations expected in this order as a subsequence,
#  operations that must not appear, policy)
CASES: list[tuple[str, Inventory, str, str, list[str], list[str], dict[str, Any]]] = [
    ("unencrypted instance: snapshot, encrypted copy, restore, clean-up",
     inventory(instance("db1", encrypted=False)), "instance-unencrypted", "db1",
     ["create-db-snapshot", "copy-db-snapshot", "restore-db-instance-from-db-snapshot",
      "delete-db-snapshot", "delete-db-instance", "copy-db-snapshot", "delete-db-snapshot"],
     [], {}),
    ("instance with a replica: replica re-created, old replica deleted before the primary",
     inventory(instance("db1", encrypted=False),
               instance("db1-ro", encrypted=False, replica_source="db1")),
     "instance-unencrypted", "db1",
     ["restore-db-instance-from-db-snapshot", "create-db-instance-read-replica",
      "delete-db-instance", "delete-db-instance"], [], {}),
    ("replica of a source outside the scan: no rebuild as a primary",
     inventory(instance("ro", encrypted=False,
                        replica_source="arn:aws:rds:ap-south-1:111122223333:db:src")),
     "instance-unencrypted", "ro", [],
     ["create-db-snapshot", "restore-db-instance-from-db-snapshot"], {}),
    ("SQL Server Express: edition change and encryption in one pass",
     inventory(instance("ex", encrypted=False, engine="sqlserver-ex",
                        instance_class="db.t3.small")),
     "instance-unencrypted", "ex",
     ["create-db-snapshot", "copy-db-snapshot", "restore-db-instance-from-db-snapshot"], [],
     {}),
    ("unencrypted cluster: restore with a key, members, members deleted before cluster",
     inventory(cluster("cl1", encrypted=False),
               instance("cl1-a", encrypted=False, cluster_id="cl1",
                        engine="aurora-postgresql")),
     "cluster-unencrypted", "cl1",
     ["create-db-cluster-snapshot", "restore-db-cluster-from-snapshot", "create-db-instance",
      "delete-db-cluster-snapshot", "delete-db-instance", "delete-db-cluster"],
     ["copy-db-cluster-snapshot"], {}),
    ("manual snapshot: copy with key, delete the unencrypted one",
     inventory(snapshot("s1", encrypted=False, snapshot_type="manual")),
     "snapshot-unencrypted", "s1", ["copy-db-snapshot", "delete-db-snapshot"], [], {}),
    ("cluster snapshot: temporary encrypted cluster, never copy with a key",
     inventory(cluster_snapshot("cs1", encrypted=False, snapshot_type="manual")),
     "cluster-snapshot-unencrypted", "cs1",
     ["restore-db-cluster-from-snapshot", "create-db-cluster-snapshot", "delete-db-cluster",
      "delete-db-cluster-snapshot"], ["copy-db-cluster-snapshot"], {}),
    ("retained instance automated backup: the instance API",
     inventory(backup("ab-1", encrypted=False, status="retained", source_id="gone")),
     "automated-backup-unencrypted", "ab-1", ["delete-db-instance-automated-backup"],
     ["delete-db-cluster-automated-backup"], {}),
    ("key disabled: enable",
     inventory(instance("db1"), keys=(kms_key(KEY, key_state="Disabled"),)),
     "key-unusable", "db1", ["enable-key"], ["cancel-key-deletion"], {}),
    ("key pending deletion: cancel then enable",
     inventory(instance("db1"), keys=(kms_key(KEY, key_state="PendingDeletion",
                                              deletion_date="2026-12-20T00:00:00Z"),)),
     "key-unusable", "db1", ["cancel-key-deletion", "enable-key"], [], {}),
    ("key pending replica deletion: cancel then enable",
     inventory(instance("db1"), keys=(kms_key(KEY, key_state="PendingReplicaDeletion",
                                              pending_deletion_window_days=30),)),
     "key-unusable", "db1", ["cancel-key-deletion", "enable-key"], [], {}),
    ("terminal state, key gone: restore elsewhere, no enable",
     inventory(instance("db1", key=GONE, status="inaccessible-encryption-credentials"),
               keys=(replace(kms_key(GONE), lookup=KeyLookup.NOT_FOUND, key_state=None),)),
     "encryption-credentials-inaccessible", "db1", [], ["enable-key", "start-db-instance"],
     {}),
    ("terminal state, key disabled: enable, then restore (no start)",
     inventory(instance("db1", status="inaccessible-encryption-credentials"),
               keys=(kms_key(KEY, key_state="Disabled"),)),
     "encryption-credentials-inaccessible", "db1", ["enable-key"], ["start-db-instance"], {}),
    ("recoverable state: enable then start",
     inventory(instance("db1", status="inaccessible-encryption-credentials-recoverable"),
               keys=(kms_key(KEY, key_state="Disabled"),)),
     "encryption-credentials-inaccessible", "db1", ["enable-key", "start-db-instance"], [],
     {}),
    ("aws-managed key without a target key: refused, never alias/aws/rds",
     inventory(instance("db1"), keys=(kms_key(KEY, key_manager="AWS"),)),
     "aws-managed-key", "db1", [], ["copy-db-snapshot"], {"target_keys": {}}),
    ("require_customer_managed_key: unencrypted instance refused without a key",
     inventory(instance("db1", encrypted=False)), "instance-unencrypted", "db1", [],
     ["copy-db-snapshot"], {"target_keys": {}, "require_customer_managed_key": True}),
    ("no backups: modify retention",
     inventory(instance("db1", backup_retention=0)), "encrypted-without-backups", "db1",
     ["modify-db-instance"], [], {}),
]


@pytest.mark.parametrize(("case", "inv", "rule", "rid", "ordered", "never", "policy"), CASES,
                         ids=[c[0] for c in CASES])
def test_planner_case(case: str, inv: Inventory, rule: str, rid: str, ordered: list[str],
                      never: list[str], policy: dict[str, Any]) -> None:
    rem = _plan(inv, rule, rid, **policy)
    ops = _runnable(rem)
    it = iter(ops)
    assert all(op in it for op in ordered), (ops, ordered)
    assert not set(ops) & set(never), ops
    for step in rem.steps:
        assert "alias/aws/rds" not in step.argv or not (
            policy.get("require_customer_managed_key") or rule == "aws-managed-key")


def test_pending_replica_deletion_says_when_the_countdown_starts() -> None:
    inv = inventory(instance("db1"), keys=(kms_key(KEY, key_state="PendingReplicaDeletion",
                                                   pending_deletion_window_days=30),))
    text = " ".join(s.title for s in _plan(inv, "key-unusable", "db1").steps)
    assert "countdown starts when the last replica is deleted" in text and "30-day" in text


def test_multi_region_rotation_is_set_on_the_primary_in_its_region() -> None:
    replica = kms_key(REPLICA, rotation_enabled=False, multi_region=True,
                      primary_key_arn=PRIMARY)
    primary = kms_key(PRIMARY, rotation_enabled=False, multi_region=True,
                      primary_key_arn=PRIMARY, replica_key_arns=(REPLICA,))
    result = evaluate(inventory(instance("db1", key=REPLICA), keys=(replica, primary)),
                      Policy())
    found = [f for f in result.findings if f.rule_id == "key-rotation-disabled"
             and f.status.value == "fail"]
    assert found
    for f in found:
        assert f.remediation is not None
        [step] = [s for s in f.remediation.steps if s.argv]
        assert step.argv == ("aws", "kms", "enable-key-rotation", "--region", "eu-west-1",
                             "--key-id", PRIMARY)
        assert step.account == ACCOUNT


def test_retained_cluster_backup_uses_the_cluster_api_with_its_resource_id() -> None:
    bk = replace(backup("cab-1", encrypted=False, status="retained", source_id="oldcl"),
                 arn=f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-auto-backup:cab-1",
                 resource_id="cluster-ABCDEF")
    rem = _plan(inventory(bk), "automated-backup-unencrypted", "cab-1")
    [step] = [s for s in rem.steps if s.argv]
    assert step.argv[2] == "delete-db-cluster-automated-backup"
    assert step.argv[step.argv.index("--db-cluster-resource-id") + 1] == "cluster-ABCDEF"
    assert step.destructive


def test_replica_out_of_scan_names_the_source_region() -> None:
    inv = inventory(instance("ro", encrypted=False,
                             replica_source="arn:aws:rds:ap-south-1:111122223333:db:src"))
    rem = _plan(inv, "instance-unencrypted", "ro")
    assert "ap-south-1" in rem.summary and "outside the scan" in rem.summary


def test_refusal_names_the_key_to_pass() -> None:
    rem = _plan(inventory(instance("db1", encrypted=False)), "instance-unencrypted", "db1",
                target_keys={}, require_customer_managed_key=True)
    assert rem.blocked and "--target-key arn:aws:kms:us-east-1:" in rem.blocked


def test_target_key_of_another_account_applies_only_to_that_account() -> None:
    other_key = key_arn("77777777-2222-3333-4444-555555555555", account=OTHER_ACCOUNT)
    inv = inventory(instance("db1", encrypted=False))
    # A key of another account given as ARN applies to that account's resources only...
    rem = _plan(inv, "instance-unencrypted", "db1",
                target_keys={f"{OTHER_ACCOUNT}:us-east-1": other_key})
    assert all(other_key not in s.argv for s in rem.steps)
    # ...and ACCOUNT=ARN lends it to ACCOUNT.
    rem = _plan(inv, "instance-unencrypted", "db1",
                target_keys={f"{ACCOUNT}:us-east-1": other_key})
    assert any(other_key in s.argv for s in rem.steps)


def test_wrong_key_instance_is_not_called_unencrypted() -> None:
    inv = inventory(instance("db1"), keys=(kms_key(KEY, key_manager="AWS"),))
    rem = _plan(inv, "aws-managed-key", "db1")
    titles = " ".join(s.title for s in rem.steps)
    assert "unencrypted instance" not in titles and "old key" in titles


def test_resource_type_coverage() -> None:
    planned = {c[2] for c in CASES} | {"key-rotation-disabled"}
    assert {"instance-unencrypted", "cluster-unencrypted", "snapshot-unencrypted",
            "cluster-snapshot-unencrypted", "automated-backup-unencrypted", "key-unusable",
            "encryption-credentials-inaccessible", "aws-managed-key"} <= planned
    assert ResourceType.DB_CLUSTER  # the enum the cases use


@pytest.mark.parametrize(("key", "rotates"), [
    (kms_key(KEY, key_state="PendingDeletion"), True),
    (kms_key(KEY, key_state="PendingReplicaDeletion", multi_region=True,
             primary_key_arn=KEY), True),
    (kms_key(KEY, key_state="PendingDeletion", origin="EXTERNAL"), False),
    (kms_key(KEY, key_state="PendingDeletion", origin="AWS_CLOUDHSM",
             custom_key_store_type="AWS_CLOUDHSM"), False),
    (kms_key(KEY, key_state="Disabled"), False),
])
def test_a_cancelled_deletion_turns_rotation_back_on_where_it_applies(
        key: Any, rotates: bool) -> None:
    """While deletion is pending rotation reads false, so the scan cannot know the key's own
    setting: the plan turns it on again after enabling (else the rescan may fail
    key-rotation-disabled), but only where automatic rotation exists."""
    ops = _ops(_plan(inventory(instance("db1"), keys=(key,)), "key-unusable", "db1"))
    assert ("enable-key-rotation" in ops) is rotates, ops
    if rotates:
        assert ops.index("enable-key-rotation") > ops.index("enable-key")
