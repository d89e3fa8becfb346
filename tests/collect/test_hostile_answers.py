"""Hostile answers from a fake AWS on 127.0.0.1, through the installed CLI: loops that would
never end, wrong types, lone surrogates, terminal escapes, a server that drips or hangs, and
coverage gaps. Each ends as a recorded error naming the operation and region (and the
resource where there is one), reports written, exit 3: never exit 4, never "complete"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from tests.support.hostile import REGION, run, small_estate

FORMATS = "json,html,csv,junit,sarif"


@pytest.fixture(scope="module")
def estate() -> Iterator[tuple[FakeAWS, str]]:
    with small_estate() as served:
        yield served


def scan(fake: FakeAWS, tmp: Path, *faults: Fault, extra: tuple[str, ...] = (),
         timeout: float = 240) -> tuple[int, str, dict[str, Any]]:
    for fault in faults:
        fake.inject_fault(fault)
    out = tmp / "out"
    try:
        proc = run(fake, "scan", "--output-dir", out, "--format", FORMATS, "--no-history",
                   "--fail-on", "critical", "--max-attempts", "2",
                   *(("--regions", REGION) if "--regions" not in extra else ()), *extra,
                   timeout=timeout)
    finally:
        fake.clear_faults()
    stderr = proc.stderr.decode("utf-8", "replace")
    report = out / "rdsaudit-report.json"
    doc = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, stderr, doc


def errors(doc: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(e["region"], e["service"], e["operation"], e["code"]) for e in doc["errors"]}


def arns(doc: dict[str, Any]) -> set[str]:
    """Every judged resource: contract v2 lists them in resources[] (findings hold failures
    and waivers only, so a healthy resource appears nowhere else)."""
    return {r["arn"] for r in doc["resources"]}


# -- every loop bounded -----------------------------------------------------------------------

@pytest.mark.parametrize(("service", "operation"), [
    ("kms", "ListAliases"), ("rds", "DescribeDBInstances"), ("rds", "DescribeDBSnapshots")])
def test_alternating_markers_end_the_listing(estate: tuple[FakeAWS, str], tmp_path: Path,
                                             service: str, operation: str) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path, Fault(service, operation, kind="cycle-marker"))
    assert code == 3, stderr
    assert (REGION, service, operation, "RunawayPagination") in errors(doc)
    # The first page was real: what it held is still reported.
    if operation == "DescribeDBInstances":
        assert any(a.endswith(":db:enc-db") for a in arns(doc))
    calls = doc["scan"]["api_calls"][f"{service}:{operation}"]
    assert calls <= 3 + (operation == "DescribeDBSnapshots") * 3


def test_ever_increasing_markers_stop_at_the_page_cap(estate: tuple[FakeAWS, str],
                                                      tmp_path: Path) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path,
                             Fault("kms", "ListAliases", kind="cycle-marker", mode="increase"))
    assert code == 3, stderr
    assert (REGION, "kms", "ListAliases", "RunawayPagination") in errors(doc)
    assert "more than 2000 pages" in stderr
    assert doc["scan"]["api_calls"]["kms:ListAliases"] == 2000


def test_organization_listing_that_cycles_is_an_error_not_a_hang(
        estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    page = json.dumps({"Accounts": [{"Id": "123456789012", "State": "ACTIVE"}],
                       "NextToken": "t-1"})
    code, stderr, doc = scan(fake, tmp_path,
                             Fault("organizations", "ListAccounts", kind="malformed", body=page),
                             extra=("--organization", "--role-name", "audit"))
    assert code == 3, stderr
    assert ("us-east-1", "organizations", "ListAccounts", "RunawayPagination") in errors(doc)
    assert doc["scan"]["accounts"] == ["123456789012"]  # what was listed is scanned


def test_organization_with_no_accounts_is_incomplete(estate: tuple[FakeAWS, str],
                                                     tmp_path: Path) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path,
                             Fault("organizations", "ListAccounts", kind="malformed",
                                   body='{"Accounts": []}'),
                             extra=("--organization", "--role-name", "audit"))
    assert code == 3, stderr
    assert any(e["code"] == "NothingScanned" for e in doc["errors"])
    assert doc["summary"]["complete"] is False


# -- wrong types --------------------------------------------------------------------------------

def test_a_wrong_type_in_one_record_makes_that_record_an_error(
        estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    fault = Fault("rds", "DescribeDBInstances", kind="wrong-type", field="BackupRetentionPeriod",
                  value="seven", match=None)
    code, stderr, doc = scan(fake, tmp_path, fault)
    assert code == 3, stderr
    bad = [e for e in doc["errors"] if e["operation"] == "DescribeDBInstances"]
    assert bad and all(e["code"] == "MalformedResponse" for e in bad)
    assert {e["resource"] for e in bad} == {
        f"arn:aws:rds:{REGION}:123456789012:db:enc-db",
        f"arn:aws:rds:{REGION}:123456789012:db:plain-db"}
    assert "BackupRetentionPeriod" in bad[0]["message"]
    # The rest of the scan went on: snapshots, keys.
    assert any(":snapshot:plain-snap" in a for a in arns(doc))


@pytest.mark.parametrize("fault", [
    Fault("kms", "DescribeKey", kind="wrong-type", field="CreationDate", value="1e20"),
    Fault("kms", "DescribeKey", kind="wrong-type", field="CreationDate", value='"not-a-date"'),
    Fault("kms", "DescribeKey", kind="wrong-type", mode="list"),
    Fault("kms", "DescribeKey", kind="wrong-type"),
    Fault("rds", "DescribeDBSnapshots", kind="wrong-type", mode="no-result"),
    Fault("rds", "DescribeDBInstances", kind="wrong-type"),
    Fault("kms", "ListAliases", kind="wrong-type", mode="list"),
    Fault("rds", "DescribeDBInstances", kind="wrong-type", field="StorageEncrypted",
          value="maybe"),
], ids=["timestamp-1e20", "timestamp-text", "json-list", "all-retyped", "no-result",
        "xml-retyped", "aliases-list", "bool-maybe"])
def test_wrong_type_answers_are_recorded_errors(estate: tuple[FakeAWS, str], tmp_path: Path,
                                                fault: Fault) -> None:
    fake, key = estate
    code, stderr, doc = scan(fake, tmp_path, fault)
    assert code == 3, stderr
    assert any(e["operation"] == fault.action and e["code"] == "MalformedResponse"
               for e in doc["errors"]), doc["errors"]
    if fault.action == "DescribeKey":
        unverifiable = {f["resource"]["arn"] for f in doc["findings"]
                        if f["rule_id"] == "key-unverifiable" and f["status"] == "fail"}
        assert any(a.endswith(":db:enc-db") for a in unverifiable)
        assert any(e["resource"] == key for e in doc["errors"])


# -- surrogates and escapes ---------------------------------------------------------------------

def test_lone_surrogate_in_free_text_reaches_no_writer(estate: tuple[FakeAWS, str],
                                                       tmp_path: Path) -> None:
    fake, key = estate
    code, stderr, doc = scan(fake, tmp_path,
                             Fault("kms", "DescribeKey", kind="surrogate", field="Description"))
    assert code == 0, stderr  # free text: made valid, nothing lost
    (entry,) = [k for k in doc["keys"] if k["arn"] == key]
    assert entry["description"] == "rds key\ufffd"
    for path in (tmp_path / "out").iterdir():
        path.read_bytes().decode("utf-8")  # every file is valid UTF-8


@pytest.mark.parametrize("fault", [
    Fault("kms", "ListAliases", kind="surrogate"),
    Fault("kms", "DescribeKey", kind="surrogate"),
    Fault("rds", "DescribeDBInstances", kind="surrogate"),
    Fault("rds", "DescribeDBInstances", kind="error", code="InvalidParameterValue",
          status=400, message="bad \ud800 value"),
], ids=["aliases", "key", "xml", "error-message"])
def test_lone_surrogates_in_identifiers_are_errors_not_crashes(
        estate: tuple[FakeAWS, str], tmp_path: Path, fault: Fault) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path, fault)
    assert code == 3, stderr
    assert any(e["operation"] == fault.action for e in doc["errors"])
    for path in (tmp_path / "out").iterdir():
        path.read_bytes().decode("utf-8")


RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x85", "\u202e", "\u2066")


@pytest.mark.parametrize("fault", [
    Fault("rds", "DescribeDBInstances", kind="escape"),
    Fault("rds", "DescribeDBInstances", kind="escape", field="Value"),
    Fault("kms", "DescribeKey", kind="escape"),
    Fault("kms", "ListAliases", kind="escape"),
    Fault("rds", "DescribeDBSnapshots", kind="error", code="InvalidParameterValue", status=400,
          message="\x1b]0;pwned\x07\x1b[2K\x1b[31mred\u009b31m\u202eevil"),
    Fault("kms", "ListAliases", kind="error", code="ValidationException", status=400,
          message="\x1b]0;pwned\x07\x1b[2K\x1b[31mred\u009b31m\u202eevil"),
], ids=["xml-identifiers", "xml-tag-values", "key", "aliases", "rds-error", "kms-error"])
def test_terminal_escapes_never_reach_stderr_raw(estate: tuple[FakeAWS, str], tmp_path: Path,
                                                 fault: Fault) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path, fault, extra=("--fail-on", "critical"))
    assert not any(c in stderr for c in RAW_CONTROLS), ascii(stderr)
    assert code in (0, 3), stderr
    if fault.field is None and fault.kind == "escape":
        # Identifiers carrying controls are refused, named in escaped form.
        bad = [e for e in doc["errors"] if e["operation"] == fault.action]
        assert bad and all(e["code"] == "MalformedResponse" for e in bad)


# -- the deadline ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    Fault("rds", "DescribeDBClusters", kind="drip", delay=3),
    Fault("kms", "DescribeKey", kind="hang"),
], ids=["drip", "hang"])
def test_the_deadline_bounds_the_whole_scan(estate: tuple[FakeAWS, str], tmp_path: Path,
                                            fault: Fault) -> None:
    fake, _ = estate
    # Without the deadline a dripped answer takes (bytes x 3 s), i.e. hours, and a hung
    # call the read timeout on every attempt; the subprocess timeout is the proof it ended.
    code, stderr, doc = scan(fake, tmp_path, fault, extra=("--timeout", "6"), timeout=120)
    assert code == 3, stderr
    assert (REGION, fault.service, fault.action, "DeadlineExceeded") in errors(doc), stderr
    assert (tmp_path / "out" / "rdsaudit-report.html").exists()
    # What was read before the deadline is reported.
    assert any(a.endswith(":db:plain-db") for a in arns(doc))


# -- coverage ----------------------------------------------------------------------------

def test_every_region_not_opted_in_is_incomplete(estate: tuple[FakeAWS, str],
                                                 tmp_path: Path) -> None:
    fake, _ = estate
    code, stderr, doc = scan(fake, tmp_path,
                             Fault("ec2", "DescribeRegions", kind="wrong-type",
                                   field="optInStatus", value="not-opted-in"),
                             extra=("--regions", "all"))
    assert code == 3, stderr
    assert [e["code"] for e in doc["errors"]] == ["NothingScanned"]
    assert "no region was scanned" in stderr


def test_no_region_at_all_is_incomplete(estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    code, stderr, doc = scan(
        fake, tmp_path,
        Fault("ec2", "DescribeRegions", kind="malformed",
              body='<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                   "<requestId>r</requestId><regionInfo/></DescribeRegionsResponse>"),
        extra=("--regions", "all"))
    assert code == 3, stderr
    assert doc["scan"]["regions"] == []
    assert any(e["code"] == "NothingScanned" for e in doc["errors"])


def test_an_enabled_region_botocore_does_not_know_is_scanned_if_the_partition_allows_it(
        estate: tuple[FakeAWS, str], tmp_path: Path) -> None:
    fake, _ = estate
    body = ('<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>r</requestId><regionInfo>"
            + "".join(f"<item><regionName>{r}</regionName><optInStatus>opt-in-not-required"
                      "</optInStatus></item>"
                      for r in ("us-east-1", "us-middle-7", "evil.example.com", "xx-fake-1"))
            + "</regionInfo></DescribeRegionsResponse>")
    code, stderr, doc = scan(fake, tmp_path, Fault("ec2", "DescribeRegions", kind="malformed",
                                                   body=body), extra=("--regions", "all"))
    assert sorted(doc["scan"]["regions"]) == ["us-east-1", "us-middle-7"], stderr
    assert code in (0, 3), stderr  # moto may or may not answer for the new region
