"""The JSON contract, schema_version 2: resources, finding ids, errors' resource, summary.

And the readers: `plan` and `--baseline` still take version 1 reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdsaudit.evaluate import evaluate
from rdsaudit.model import (
    CollectionError,
    KeyLookup,
    KmsKey,
    SnapshotShare,
    Status,
    finding_id,
)
from rdsaudit.policy import Policy
from rdsaudit.report import report_document
from rdsaudit.serialize import to_data
from tests.cli.test_cli import run, save
from tests.support.builders import (
    ACCOUNT,
    KEY,
    KEY2,
    REGION,
    backup,
    cluster,
    instance,
    inventory,
    kms_key,
    snapshot,
)

EU = "eu-west-1"


def _estate():  # type: ignore[no-untyped-def]
    plain = snapshot("pub", encrypted=False, source_id="db9")
    return inventory(
        instance("plain", encrypted=False, tags=(("team", "a"),)),
        instance("good", performance_insights_kms_key_id=KEY2),
        instance("member", cluster_id="cl1"),  # judged through its cluster, mostly
        cluster("cl1", encrypted=False, encryption_type=None),
        plain, backup("ab-1", key=KEY2, source_id="good"),
        keys=(kms_key(KEY), kms_key(KEY2, key_state="PendingDeletion",
                                    deletion_date="2026-12-04T00:00:00Z")),
        shares=(SnapshotShare(plain.arn, ("all",)),),
        errors=(CollectionError(ACCOUNT, EU, "kms", "DescribeKey", "AccessDenied", "no",
                                resource=KEY),),
    )


def test_resources_list_every_judged_resource_with_posture_keys_and_rule_ids() -> None:
    result = evaluate(_estate(), Policy())
    doc = report_document(result)
    assert doc["schema_version"] == 2
    by_id = {r["id"]: r for r in doc["resources"] if r["type"] != "kms-key"}
    # A cluster member is judged through its cluster: listed only if some rule judged it.
    assert set(by_id) - {"member"} == {"plain", "good", "cl1", "pub", "ab-1"}
    assert by_id["plain"]["posture"] == "unencrypted" and by_id["plain"]["keys"] == []
    assert by_id["plain"]["tags"] == {"team": "a"}
    assert "instance-unencrypted" in by_id["plain"]["fails"]
    good = by_id["good"]
    assert good["posture"] == "customer"
    assert [k["role"] for k in good["keys"]] == ["storage", "performance-insights"]
    assert good["keys"][1] == {"role": "performance-insights", "arn": KEY2,
                               "state": "PendingDeletion", "manager": "CUSTOMER",
                               "deadline": "2026-12-04T00:00:00Z"}
    # Its Performance Insights key is pending deletion: a key failure of another role.
    assert "instance-unencrypted" in good["passes"] and good["fails"] == ["key-unusable"]
    assert by_id["ab-1"]["keys"][0]["deadline"] == "2026-12-04T00:00:00Z"
    # Every finding of the result is accounted for, once, on its resource.
    outcomes = sorted((r["arn"], rule, status) for r in doc["resources"]
                      for status, rules in (("fail", r["fails"]), ("pass", r["passes"]),
                                            ("waived", r["waived"])) for rule in rules)
    assert outcomes == sorted((f.resource.arn, f.rule_id, f.status.value)
                              for f in result.findings)


def test_findings_are_failures_and_waivers_with_stable_ids_unless_evidence_full() -> None:
    result = evaluate(_estate(), Policy())
    doc = report_document(result)
    assert {f["status"] for f in doc["findings"]} == {"fail"}
    for f in doc["findings"]:
        r = f["resource"]
        assert f["id"] == finding_id(r["account_id"], r["region"], f["rule_id"], r["arn"])
    assert len({f["id"] for f in doc["findings"]}) == len(doc["findings"])
    full = report_document(result, evidence="full")
    assert full["scan"]["evidence"] == "full"
    assert len(full["findings"]) == len(result.findings)
    assert sum(f["status"] == "pass" for f in full["findings"]) == \
        doc["summary"]["findings"]["pass"] > 0


def test_errors_name_their_resource_and_summary_counts_every_account_and_region() -> None:
    doc = report_document(evaluate(_estate(), Policy()))
    assert doc["errors"][0]["resource"] == KEY
    assert set(doc["summary"]["by_region"]) == {REGION, EU}
    eu = doc["summary"]["by_region"][EU]
    assert eu["fail"] == 0 and eu["resources"] == 0 and eu["errors"] == 1  # no failures
    us = doc["summary"]["by_region"][REGION]
    assert us["fail"] == doc["summary"]["findings"]["fail"] and us["critical"] >= 1
    assert doc["summary"]["by_account"][ACCOUNT]["fail"] == us["fail"]
    assert doc["summary"]["verdict"].startswith("Not compliant: ")
    assert doc["summary"]["verdict"].endswith("· scan incomplete: 1 error")
    assert doc["keys"][1]["dependents"] and doc["keys"][1]["deadline"]


def _v1(doc: dict[str, object], passes: list[dict[str, object]]) -> dict[str, object]:
    """A version 1 report as rdsaudit 0.x wrote it: no resources, ids, passes listed."""
    findings = [{k: v for k, v in f.items() if k != "id"}  # type: ignore[attr-defined]
                for f in doc["findings"]] + passes  # type: ignore[operator]
    return {"schema_version": 1, "tool": doc["tool"], "scan": doc["scan"],
            "findings": findings, "errors": [], "summary": doc["summary"]}


def test_plan_and_baseline_read_version_1_and_version_2_reports(tmp_path: Path) -> None:
    inv = inventory(instance("plain", encrypted=False), instance("good"))
    result = evaluate(inv, Policy())
    v2 = report_document(result)
    full = report_document(result, evidence="full")
    passes = [{k: v for k, v in f.items() if k != "id"} for f in full["findings"]
              if f["status"] == "pass"]
    v1 = _v1(v2, passes)  # type: ignore[arg-type]
    saved = save(tmp_path, inv)
    for version, doc in ((1, v1), (2, v2)):
        report = tmp_path / f"v{version}.json"
        report.write_text(json.dumps(doc))
        planned = run("plan", report)
        assert planned.returncode == 0, planned.stderr
        assert "create-db-snapshot" in planned.stdout and "plain" in planned.stdout
        against = run("evaluate", saved, "--baseline", report, "--fail-on-new")
        assert against.returncode == 0, against.stderr
        out = json.loads(against.stdout)
        assert {f["baseline"] for f in out["findings"]} == {"unchanged"}, version


def test_json_report_of_the_cli_is_version_2_and_round_trips_failures(tmp_path: Path) -> None:
    inv = inventory(instance("plain", encrypted=False), instance("good"))
    proc = run("evaluate", save(tmp_path, inv))
    doc = json.loads(proc.stdout)
    expected = to_data([f for f in evaluate(inv, Policy()).findings
                        if f.status is not Status.PASS])
    assert [(f["rule_id"], f["resource"]["arn"]) for f in doc["findings"]] == \
        [(f["rule_id"], f["resource"]["arn"]) for f in expected]
    assert {r["id"] for r in doc["resources"] if r["type"] != "kms-key"} == {"plain", "good"}


def test_compact_pass_evidence_gives_the_same_document_as_pass_findings() -> None:
    """evaluate(pass_findings=False) keeps passes as (ARN, rule id): the report is the same."""
    verbose = report_document(evaluate(_estate(), Policy()))
    compact_result = evaluate(_estate(), Policy(), pass_findings=False)
    assert compact_result.passes and not any(f.status is Status.PASS
                                             for f in compact_result.findings)
    compact = report_document(compact_result)
    assert compact["resources"] == verbose["resources"]
    assert compact["findings"] == verbose["findings"]
    assert compact["summary"] == verbose["summary"]


@pytest.mark.parametrize(("key", "health"), [
    (kms_key(KEY), "usable"),
    (kms_key(KEY, key_state="Disabled"), "unusable"),
    (kms_key(KEY, key_state="PendingDeletion", deletion_date="2026-12-04T00:00:00Z"),
     "unusable"),
    (kms_key(KEY, key_state="PendingReplicaDeletion"), "unusable"),
    (kms_key(KEY, lookup=KeyLookup.NOT_FOUND, key_state=None), "unusable"),
    (kms_key(KEY, lookup=KeyLookup.ACCESS_DENIED, key_state=None, key_manager=None),
     "unverifiable"),
    (kms_key(KEY, key_state="Quarantined"), "unverifiable"),  # a state KMS may add
    (kms_key(KEY, key_manager="PARTNER"), "unverifiable"),
])
def test_each_key_entry_carries_its_health(key: KmsKey, health: str) -> None:
    """The key view of the HTML shows the document's judgement of a key (keys[].health),
    not one of its own; the rules' key states are the one source."""
    doc = report_document(evaluate(inventory(instance("db1", key=KEY), keys=(key,)), Policy()))
    [entry] = doc["keys"]
    assert entry["health"] == health
