"""Fix-first actions: a table of estates -> the expected actions, in order, with their members.

Each case names the actions as (kind, cause id, sorted resource ids); the test also checks
that every failing finding is in exactly one action and that no waived finding is.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rdsaudit.evaluate import evaluate
from rdsaudit.model import Inventory, Status
from rdsaudit.policy import Policy
from rdsaudit.report import report_document
from tests.support.builders import (
    KEY,
    KEY2,
    backup,
    cluster,
    cluster_snapshot,
    instance,
    inventory,
    kms_key,
    snapshot,
)

SHARE_ALL = "all"
DOOMED = kms_key(KEY2, key_state="PendingDeletion", deletion_date="2026-12-04T12:00:00Z")
DOOMED_LATER = kms_key(KEY, key_state="PendingDeletion", deletion_date="2026-12-20T12:00:00Z")
DISABLED = kms_key(KEY2, key_state="Disabled")


def _public(snap_id: str, inv: Inventory) -> Inventory:
    from rdsaudit.model import SnapshotShare

    arn = next(r.arn for r in inv.resources if r.id == snap_id)
    return replace(inv, shares=(*inv.shares, SnapshotShare(arn, (SHARE_ALL,))))


Expected = list[tuple[str, str, list[str]]]

CASES: list[tuple[str, Inventory, Expected]] = [
    ("compliant estate: no action",
     inventory(instance("db1"), snapshot("s1")),
     []),
    ("an unencrypted primary takes its replica, snapshot and backup",
     inventory(instance("db1", encrypted=False),
               instance("rep1", encrypted=False, replica_source="db1"),
               snapshot("s1", encrypted=False, source_id="db1"),
               backup("ab-1", encrypted=False, source_id="db1")),
     [("unencrypted-primary", "db1", ["ab-1", "db1", "rep1", "s1"])]),
    ("a snapshot of an encrypted source is an action of its own",
     inventory(instance("db1"), snapshot("s1", encrypted=False, source_id="db1")),
     [("resource", "s1", ["s1"])]),
    ("a key pending deletion comes first and lists every dependent",
     inventory(instance("db1", encrypted=False),
               instance("crm-db", key=KEY2), backup("ab-1", key=KEY2, source_id="crm-db"),
               snapshot("s9", key=KEY2, source_id="crm-db"),
               keys=(kms_key(KEY), DOOMED)),
     [("key", DOOMED.arn, ["ab-1", "crm-db", "s9"]),
      ("unencrypted-primary", "db1", ["db1"])]),
    ("two deadlines: the sooner one first",
     inventory(instance("late", key=KEY), instance("soon", key=KEY2),
               keys=(DOOMED_LATER, DOOMED)),
     [("key", DOOMED.arn, ["soon"]), ("key", DOOMED_LATER.arn, ["late"])]),
    ("no deadline: severity first (public critical before unencrypted high)",
     _public("pub", inventory(instance("db1", encrypted=False),
                              snapshot("pub", encrypted=False, source_id="db9"))),
     [("public-snapshot", "pub", ["pub"]), ("unencrypted-primary", "db1", ["db1"])]),
    ("tie-break: a public unencrypted snapshot of an unencrypted primary joins the public "
     "action, not the primary's",
     _public("pub", inventory(instance("db1", encrypted=False),
                              snapshot("pub", encrypted=False, source_id="db1"))),
     [("public-snapshot", "pub", ["pub"]), ("unencrypted-primary", "db1", ["db1"])]),
    ("tie-break: a key failure of a replica joins the key, its other failures its primary",
     inventory(instance("db1", encrypted=False),
               instance("rep1", key=KEY2, replica_source="db1"),
               keys=(kms_key(KEY), DISABLED)),
     [("key", DISABLED.arn, ["rep1"]), ("unencrypted-primary", "db1", ["db1", "rep1"])]),
    ("same severity: the larger blast radius first",
     inventory(instance("small", encrypted=False),
               instance("big", encrypted=False),
               snapshot("b1", encrypted=False, source_id="big"),
               snapshot("b2", encrypted=False, source_id="big")),
     [("unencrypted-primary", "big", ["b1", "b2", "big"]),
      ("unencrypted-primary", "small", ["small"])]),
    ("an encrypted source that fails takes the failures of its copies",
     inventory(instance("db1", region="eu-west-1", key=KEY),
               snapshot("s1", region="eu-west-1", key=KEY, source_id="db1"),
               instance("ok"), snapshot("s2", key=KEY, source_id="ok")),
     [("resource", "db1", ["db1", "s1"])]),
    ("an Aurora cluster takes its cluster snapshots",
     inventory(cluster("cl1", encrypted=False),
               cluster_snapshot("cs1", encrypted=False, source_id="cl1")),
     [("unencrypted-primary", "cl1", ["cl1", "cs1"])]),
    ("a chain: the snapshot of an unencrypted replica joins the unencrypted primary",
     inventory(instance("db1", encrypted=False),
               instance("rep1", encrypted=False, replica_source="db1"),
               snapshot("rs", encrypted=False, source_id="rep1")),
     [("unencrypted-primary", "db1", ["db1", "rep1", "rs"])]),
]


def _name(arn: str, ids: dict[str, str]) -> str:
    return ids.get(arn, arn)


@pytest.mark.parametrize(("case", "inv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_actions_group_and_order_by_root_cause(case: str, inv: Inventory,
                                                expected: Expected) -> None:
    doc = report_document(evaluate(inv, Policy()))
    ids = {r["arn"]: r["id"] for r in doc["resources"]}
    actions = doc["summary"]["actions"]
    got = [(a["kind"], a["cause"] if a["kind"] == "key" else _name(a["cause"], ids),
            sorted(_name(arn, ids) for arn in a["resources"])) for a in actions]
    assert got == expected, case
    assert [a["urgency"] for a in actions] == list(range(1, len(actions) + 1))
    failing = [f["id"] for f in doc["findings"] if f["status"] == "fail"]
    grouped = [fid for a in actions for fid in a["finding_ids"]]
    assert sorted(grouped) == sorted(failing), "each failing finding in exactly one action"


def test_a_key_action_states_its_deadline_and_dependents() -> None:
    inv = inventory(instance("crm-db", key=KEY2), backup("ab-1", key=KEY2, source_id="crm-db"),
                    backup("ab-2", key=KEY2, source_id="crm-db"), keys=(kms_key(KEY), DOOMED))
    from rdsaudit.model import KmsAlias

    inv = replace(inv, aliases=(KmsAlias("alias/crm-retiring", "us-east-1", "111122223333",
                                         KEY2.rsplit("/", 1)[-1]),))
    action = report_document(evaluate(inv, Policy()))["summary"]["actions"][0]
    assert action["deadline"] == DOOMED.deletion_date and action["days_left"] == 7
    assert action["title"] == ("Cancel the deletion of KMS key alias/crm-retiring: it is "
                               "deleted in 7 days: crm-db and 2 backups depend on it")
    assert action["remediation"] is not None
    assert any("cancel-key-deletion" in (s.get("command") or "")
               for s in action["remediation"]["steps"])


def test_waived_findings_stay_out_of_actions() -> None:
    from tests.report.test_formats import sample_result

    result = sample_result(errors=False)
    doc = report_document(result)
    waived = {f["id"] for f in doc["findings"] if f["status"] == "waived"}
    assert waived
    assert not waived & {fid for a in doc["summary"]["actions"] for fid in a["finding_ids"]}
    assert all(f.status is not Status.PASS for f in result.findings if f.waiver)
