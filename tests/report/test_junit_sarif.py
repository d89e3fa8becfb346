"""JUnit XML and SARIF 2.1.0: structure CI systems and code-scanning dashboards rely on."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from rdsaudit.report.junit import render_junit
from rdsaudit.report.sarif import render_sarif
from rdsaudit.rules import RULES
from tests.report.test_formats import sample_document

# -- JUnit --------------------------------------------------------------------------------


def test_junit_has_a_suite_per_rule_and_a_case_per_rule_and_resource() -> None:
    doc = sample_document()
    root = ET.fromstring(render_junit(doc))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    passes = [(rule, r["arn"]) for r in doc["resources"] for rule in r["passes"]]
    assert set(suites) == ({f["rule_id"] for f in doc["findings"]} | {p[0] for p in passes}
                           | {"collection-errors"})
    for f in doc["findings"]:
        cases = [c for c in suites[f["rule_id"]].findall("testcase")
                 if c.get("name") == f["resource"]["arn"]]
        assert len(cases) == 1 and cases[0].get("classname") == f["rule_id"]
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
    pass_rules = {p[0] for p in passes}
    for rule in pass_rules:  # one passing case per rule counts its resources
        n = sum(p[0] == rule for p in passes)
        cases = [c for c in suites[rule].findall("testcase")
                 if c.get("name") == f"{n} resource{'s' if n != 1 else ''} pass"]
        assert len(cases) == 1 and not list(cases[0])
    assert root.get("tests") == str(len(doc["findings"]) + len(pass_rules) + len(doc["errors"]))
    assert root.get("failures") == str(doc["summary"]["findings"]["fail"])
    assert root.get("skipped") == str(doc["summary"]["findings"]["waived"])
    assert root.get("errors") == str(len(doc["errors"]))


def test_junit_failure_carries_message_and_remediation_summary() -> None:
    doc = sample_document()
    root = ET.fromstring(render_junit(doc))
    f = next(f for f in doc["findings"] if f["rule_id"] == "key-unusable"
             and f["status"] == "fail")
    case = next(c for c in root.iter("testcase")
                if c.get("classname") == "key-unusable" and c.get("name") == f["resource"]["arn"])
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f["message"]
    assert failure.get("type") == "critical"
    assert f["remediation"]["summary"] in (failure.text or "")
    assert "aws kms cancel-key-deletion" in (failure.text or "")


def test_junit_waived_is_skipped_with_the_reason() -> None:
    root = ET.fromstring(render_junit(sample_document()))
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert [c.get("classname") for c in skipped] == ["aws-owned-key"]
    message = skipped[0].find("skipped").get("message", "")  # type: ignore[union-attr]
    assert "SSE-RDS accepted" in message and "dba@example.com" in message


def test_junit_collection_errors_are_error_testcases() -> None:
    root = ET.fromstring(render_junit(sample_document()))
    errors = [c for c in root.iter("testcase") if c.find("error") is not None]
    assert len(errors) == 1
    error = errors[0].find("error")
    assert error is not None and error.get("type") == "AccessDenied"
    assert "rds:DescribeDBSnapshots" in (errors[0].get("name") or "")
    assert "<img src=x" in (error.get("message") or "")  # escaped by ElementTree, parsed back
    complete = ET.fromstring(render_junit(sample_document(errors=False)))
    assert complete.get("errors") == "0"
    assert [s.get("name") for s in complete.findall("testsuite")].count(
        "collection-errors") == 0


def test_junit_survives_characters_xml_cannot_carry() -> None:
    doc = sample_document()
    first = doc["findings"][0]
    assert first["status"] == "fail"
    first["message"] = "bad \x00 byte \x1b[31m and ]]> <&>"
    root = ET.fromstring(render_junit(doc))  # parses: control characters were replaced
    case = next(c for c in root.iter("testcase") if c.get("classname") == first["rule_id"]
                and c.get("name") == first["resource"]["arn"])
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "bad \ufffd byte \ufffd[31m and ]]> <&>"


# -- SARIF --------------------------------------------------------------------------------

LEVELS = {"none", "note", "warning", "error"}


def check_sarif_2_1_0(log: Mapping[str, Any]) -> None:
    """The required properties and enumerations of the SARIF 2.1.0 schema that we emit."""
    assert log["version"] == "2.1.0"
    assert isinstance(log["runs"], list) and log["runs"]
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert isinstance(driver["name"], str) and driver["name"]
        ids = [r["id"] for r in driver.get("rules", [])]
        assert len(ids) == len(set(ids)), "reportingDescriptor ids must be unique"
        for rule in driver.get("rules", []):
            assert isinstance(rule["id"], str)
            for field in ("shortDescription", "fullDescription", "help"):
                if field in rule:
                    assert isinstance(rule[field]["text"], str)
            if "defaultConfiguration" in rule:
                assert rule["defaultConfiguration"]["level"] in LEVELS
        for invocation in run.get("invocations", []):
            assert isinstance(invocation["executionSuccessful"], bool)
            for note in invocation.get("toolExecutionNotifications", []):
                assert isinstance(note["message"]["text"], str)
                assert note.get("level", "warning") in LEVELS
        for result in run.get("results", []):
            assert isinstance(result["message"]["text"], str)
            assert result.get("level", "warning") in LEVELS
            if "ruleIndex" in result:
                assert ids[result["ruleIndex"]] == result["ruleId"]
            for location in result.get("locations", []):
                for logical in location.get("logicalLocations", []):
                    assert set(logical) <= {"name", "index", "fullyQualifiedName",
                                            "decoratedName", "parentIndex", "kind",
                                            "properties"}
            for suppression in result.get("suppressions", []):
                assert suppression["kind"] in {"inSource", "external"}
                assert suppression.get("status", "accepted") in {"accepted", "underReview",
                                                                 "rejected"}


def _sarif(doc: Mapping[str, Any]) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(doc))
    check_sarif_2_1_0(log)
    return log


def test_sarif_driver_lists_the_rule_catalogue() -> None:
    run = _sarif(sample_document())["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "rdsaudit"
    rules = {r["id"]: r for r in driver["rules"]}
    assert list(rules) == list(RULES)
    expected = {"critical": ("error", "9.5"), "high": ("error", "7.5"),
                "medium": ("warning", "5.0"), "low": ("note", "3.0"), "info": ("note", "0.0")}
    for rule_id, rule in RULES.items():
        entry = rules[rule_id]
        assert entry["shortDescription"]["text"] == rule.title
        assert entry["fullDescription"]["text"] == rule.description
        level, score = expected[rule.severity.label]
        assert entry["defaultConfiguration"]["level"] == level
        assert float(entry["properties"]["security-severity"]) == float(score)
    assert rules["snapshot-public"]["defaultConfiguration"]["level"] == "error"
    assert rules["key-rotation-disabled"]["defaultConfiguration"]["level"] == "warning"
    assert rules["cross-account-key"]["defaultConfiguration"]["level"] == "note"


def test_sarif_results_are_failures_and_suppressed_waivers() -> None:
    doc = sample_document()
    results = _sarif(doc)["runs"][0]["results"]
    failing = [f for f in doc["findings"] if f["status"] == "fail"]
    waived = [f for f in doc["findings"] if f["status"] == "waived"]
    assert len(results) == len(failing) + len(waived)
    by_key = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]): r
              for r in results}
    for f in failing + waived:
        result = by_key[(f["rule_id"], f["resource"]["arn"])]
        assert result["message"]["text"] == f["message"]
        logical = result["locations"][0]["logicalLocations"][0]
        assert logical["kind"] == f["resource"]["type"]
        level = {"critical": "error", "high": "error", "medium": "warning"}.get(
            f["severity"], "note")
        assert result["level"] == level
        assert ("suppressions" in result) == (f["status"] == "waived")
    suppressed = [r for r in results if "suppressions" in r]
    assert suppressed[0]["suppressions"][0]["kind"] == "external"
    assert suppressed[0]["suppressions"][0]["justification"].startswith("SSE-RDS accepted")


def test_sarif_fingerprints_are_stable_and_unique() -> None:
    results = _sarif(sample_document())["runs"][0]["results"]
    prints = [r["partialFingerprints"]["rdsauditFinding/v1"] for r in results]
    assert len(set(prints)) == len(prints)
    again = _sarif(sample_document())["runs"][0]["results"]
    assert prints == [r["partialFingerprints"]["rdsauditFinding/v1"] for r in again]


def test_sarif_collection_errors_make_the_invocation_unsuccessful() -> None:
    invocation = _sarif(sample_document())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert len(notes) == 1 and notes[0]["level"] == "error"
    assert "AccessDenied" in notes[0]["message"]["text"]
    assert notes[0]["descriptor"]["id"] == "AccessDenied"
    complete = _sarif(sample_document(errors=False))["runs"][0]["invocations"][0]
    assert complete["executionSuccessful"] is True
    assert complete["toolExecutionNotifications"] == []


def test_sarif_checker_rejects_a_log_missing_required_fields() -> None:
    log = _sarif(sample_document())
    del log["runs"][0]["results"][0]["message"]
    try:
        check_sarif_2_1_0(log)
    except (KeyError, AssertionError):
        return
    raise AssertionError("a result without a message passed the SARIF check")
