"""Every registered format renders the same result: a format cannot be half-added.

Also home of the hand-built scan the other report tests share (`sample_document`): a few
resources judged by the real rules, with attacker-controlled names, tags and descriptions.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pandas as pd

from rdsaudit.evaluate import evaluate
from rdsaudit.model import (
    CollectionError,
    EncryptionType,
    Finding,
    Inventory,
    KeyLookup,
    KmsAlias,
    KmsKey,
    Resource,
    ResourceType,
    Result,
    RotationLookup,
    ScanInfo,
    SnapshotShare,
    Status,
    Waiver,
)
from rdsaudit.policy import Policy
from rdsaudit.report import FORMATS, report_document
from rdsaudit.report.csv import iter_csv
from rdsaudit.report.json import dump_value as json_dump
from rdsaudit.report.sarif import iter_sarif
from rdsaudit.serialize import json_lines as iter_json_lines

ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
US, EU = "us-east-1", "eu-west-1"
KEY_ROTATION_OFF = f"arn:aws:kms:{US}:{ACCOUNT}:key/aaaaaaaa-0000-4000-8000-000000000001"
KEY_PENDING_DELETION = f"arn:aws:kms:{US}:{ACCOUNT}:key/bbbbbbbb-0000-4000-8000-000000000002"
KEY_AWS_MANAGED = f"arn:aws:kms:{EU}:{ACCOUNT}:key/cccccccc-0000-4000-8000-000000000003"
FINISHED_AT = "2026-01-01T00:05:00Z"
DELETION_DATE = "2026-01-06T00:00:00Z"  # 4 days 23 h 55 min after the scan: 5 days left

IMG_XSS = "<img src=x onerror=alert(1)>"
SCRIPT_XSS = "</script><script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://x")'


def _instance(name: str, region: str = US, **fields: Any) -> Resource:
    values: dict[str, Any] = {
        "type": ResourceType.DB_INSTANCE, "arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{name}",
        "id": name, "region": region, "account_id": ACCOUNT, "encrypted": True,
        "encryption_type": EncryptionType.SSE_KMS, "kms_key_id": None, "engine": "postgres",
        "status": "available", "instance_class": "db.t3.micro", "backup_retention": 7,
    }
    values.update(fields)
    return Resource(**values)


def sample_inventory(*, errors: bool = True) -> Inventory:
    snapshot_arn = f"arn:aws:rds:{US}:{ACCOUNT}:snapshot:plain-snap"
    return Inventory(
        scan=ScanInfo("2026-01-01T00:00:00Z", FINISHED_AT, (ACCOUNT,), (US, EU),
                      api_calls=(("rds:DescribeDBInstances", 2),)),
        resources=(
            _instance("plain", encrypted=False, encryption_type=EncryptionType.NONE,
                      tags=(("owner", IMG_XSS), ("env", HYPERLINK), ("team", SCRIPT_XSS))),
            _instance("enc", kms_key_id=KEY_ROTATION_OFF, tags=(("owner", "team-a"),)),
            _instance("doomed", kms_key_id=KEY_PENDING_DELETION,
                      tags=(("environment", "production"),)),
            _instance("managed", region=EU, kms_key_id=KEY_AWS_MANAGED),
            Resource(ResourceType.DB_CLUSTER, f"arn:aws:rds:{US}:{ACCOUNT}:cluster:owned",
                     "owned", US, ACCOUNT, True, EncryptionType.SSE_RDS, None,
                     engine="aurora-postgresql", status="available"),
            Resource(ResourceType.DB_SNAPSHOT, snapshot_arn, "plain-snap", US, ACCOUNT, False,
                     EncryptionType.NONE, None, snapshot_type="manual", source_id="plain"),
        ),
        keys=(
            KmsKey(KEY_ROTATION_OFF, US, ACCOUNT, KeyLookup.OK, "Enabled", "CUSTOMER",
                   "AWS_KMS", SCRIPT_XSS, rotation=RotationLookup.OK, rotation_enabled=False),
            KmsKey(KEY_PENDING_DELETION, US, ACCOUNT, KeyLookup.OK, "PendingDeletion",
                   "CUSTOMER", "AWS_KMS", "retired app key", deletion_date=DELETION_DATE,
                   rotation=RotationLookup.OK, rotation_enabled=False),
            KmsKey(KEY_AWS_MANAGED, EU, ACCOUNT, KeyLookup.OK, "Enabled", "AWS", "AWS_KMS",
                   "Default key that protects my RDS database volumes when no other key is "
                   "defined"),
        ),
        aliases=(KmsAlias("alias/aws/rds", EU, ACCOUNT, "cccccccc-0000-4000-8000-000000000003"),),
        shares=(SnapshotShare(snapshot_arn, ("all",)),),
        errors=(
            CollectionError(ACCOUNT, EU, "rds", "DescribeDBSnapshots", "AccessDenied",
                            f"User is not authorized {IMG_XSS}"),
        ) if errors else (),
    )


def sample_result(*, errors: bool = True) -> Result:
    """The sample scan judged by the real rules, with the aws-owned-key failure waived."""
    result = evaluate(sample_inventory(errors=errors), Policy())
    findings: list[Finding] = []
    for f in result.findings:
        if f.rule_id == "aws-owned-key" and f.status is Status.FAIL:
            f = replace(f, status=Status.WAIVED,
                        waiver=Waiver("SSE-RDS accepted for the reporting cluster",
                                      "dba@example.com", "2026-06-30"))
        findings.append(f)
    return replace(result, findings=tuple(findings))


def sample_document(*, errors: bool = True) -> dict[str, Any]:
    return report_document(sample_result(errors=errors))


# -- what each format lets a reader recover -----------------------------------------------

Pairs = set[tuple[str, str]]


class _ScriptData(HTMLParser):
    """Collects the text of <script type="application/json" id="report-data">."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "script" and ("id", "report-data") in attrs

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text += data


def html_rows(text: str) -> list[dict[str, Any]]:
    """The findings as the HTML page's script sees them (rows of the embedded data)."""
    parser = _ScriptData()
    parser.feed(text)
    return html_data_rows(json.loads(parser.text))


def html_expand(data: Mapping[str, Any], index: int | None, name: tuple[str, ...]) -> Any:
    """A text of the page's data with its resource put back, as report.js.j2 `expand`
    does: region, account, id, then ARN (the reverse of html.TEXT_SLOTS)."""
    if index is None:
        return None
    text = data["texts"][index]
    if isinstance(text, list):
        return text[0]
    arn, rid, account, region = name
    for slot, value in (("\x03", region), ("\x04", account), ("\x01", rid), ("\x02", arn)):
        text = text.replace(slot, value)
    return text


def html_data_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    col = {name: i for i, name in enumerate(data["columns"])}
    rows = []
    for f in data["findings"]:
        # A resource is [prefix, id, tags, posture, fails, waived, arn?] (html._table_data).
        res = data["resources"][f[col["resource"]]]
        prefix = data["prefixes"][res[0]]
        arn = res[6] if len(res) > 6 else prefix[0] + res[1]
        name = (arn, res[1], prefix[3], prefix[2])
        remediation = html_expand(data, f[col["remediation"]], name)
        rows.append({"rule_id": f[col["rule_id"]], "status": f[col["status"]],
                     "arn": arn, "severity": f[col["severity"]],
                     "tags": data["tagsets"][res[2]],
                     "message": html_expand(data, f[col["message"]], name),
                     "remediation": None if remediation is None else json.loads(remediation)})
    return rows


def _json_pairs(text: str, status: str) -> Pairs:
    return {(f["rule_id"], f["resource"]["arn"]) for f in json.loads(text)["findings"]
            if f["status"] == status}


def _html_pairs(text: str, status: str) -> Pairs:
    return {(r["rule_id"], r["arn"]) for r in html_rows(text) if r["status"] == status}


def _csv_pairs(text: str, status: str) -> Pairs:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    rows = frame[frame["status"] == status]
    return set(zip(rows["rule_id"], rows["resource_arn"], strict=True))


def _junit_pairs(text: str, status: str) -> Pairs:
    child = {"fail": "failure", "waived": "skipped"}[status]
    return {(case.get("classname", ""), case.get("name", ""))
            for case in ET.fromstring(text).iter("testcase") if case.find(child) is not None}


def _sarif_pairs(text: str, status: str) -> Pairs:
    results = json.loads(text)["runs"][0]["results"]
    return {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"])
            for r in results if bool(r.get("suppressions")) == (status == "waived")}


def _asff_pairs(text: str, status: str) -> Pairs:
    return {(f["GeneratorId"], f["Resources"][0]["Id"]) for f in json.loads(text)
            if (f["Workflow"]["Status"] == "SUPPRESSED") == (status == "waived")}


def _ocsf_pairs(text: str, status: str) -> Pairs:
    wanted = {"fail": "New", "waived": "Suppressed"}[status]
    return {(e["compliance"]["control"], e["resources"][0]["uid"]) for e in json.loads(text)
            if e["status"] == wanted}


def _table_pairs(text: str, status: str) -> Pairs:
    """The terminal table: under "Failures (n)" / "Waived (n)", a row per finding (severity,
    rule, region, resource), its message lines, and its ARN as the last indented line."""
    wanted = {"fail": "Failures (", "waived": "Waived ("}[status]
    pairs: Pairs = set()
    section = ""
    current: list[str] | None = None
    for line in [*text.splitlines(), ""]:
        if current is not None and not line.startswith(" " * 12):
            pairs.add((current[0], current[-1].strip()))
            current = None
        if line and not line.startswith(" "):
            section = line
            continue
        if section.startswith(wanted) and line.startswith("  ") and not line.startswith("   "):
            fields = line.split()
            if fields[0] != "SEVERITY":
                current = [fields[1]]
        elif current is not None:
            current.append(line)
    return pairs


def _xlsx_pairs(data: str | bytes, status: str) -> Pairs:
    assert isinstance(data, bytes)
    frame = pd.read_excel(io.BytesIO(data), sheet_name="Findings", dtype=str,
                          keep_default_na=False)
    rows = frame[frame["status"] == status]
    return set(zip(rows["rule_id"], rows["resource_arn"], strict=True))


EXTRACT: dict[str, Callable[[Any, str], Pairs]] = {
    "json": _json_pairs,
    "html": _html_pairs,
    "csv": _csv_pairs,
    "junit": _junit_pairs,
    "sarif": _sarif_pairs,
    "asff": _asff_pairs,
    "ocsf": _ocsf_pairs,
    "table": _table_pairs,
    "xlsx": _xlsx_pairs,
}


def _expected(doc: Mapping[str, Any], status: str) -> Pairs:
    return {(f["rule_id"], f["resource"]["arn"]) for f in doc["findings"]
            if f["status"] == status}


def test_every_format_renders_the_same_failures_and_waivers() -> None:
    doc = sample_document()
    failing, waived = _expected(doc, "fail"), _expected(doc, "waived")
    assert len(failing) >= 6 and len(waived) == 1  # the sample exercises both
    assert set(FORMATS) == set(EXTRACT), "a format was registered without a reader here"
    for name, fmt in FORMATS.items():
        text = fmt.render(doc)
        assert isinstance(text, str | bytes) and text, name
        assert EXTRACT[name](text, "fail") == failing, name
        assert EXTRACT[name](text, "waived") == waived, name


def test_formats_have_distinct_extensions_and_names() -> None:
    assert all(fmt.name == name for name, fmt in FORMATS.items())
    assert {n: f.extension for n, f in FORMATS.items()} == {
        "json": "json", "html": "html", "csv": "csv", "junit": "xml", "sarif": "sarif",
        "asff": "asff.json", "ocsf": "ocsf.json", "table": "txt", "xlsx": "xlsx"}


def test_every_format_renders_a_scan_with_no_findings() -> None:
    doc = report_document(evaluate(Inventory(ScanInfo(FINISHED_AT, FINISHED_AT, (ACCOUNT,),
                                                      (US,))), Policy()))
    assert doc["findings"] == []
    for name, fmt in FORMATS.items():
        text = fmt.render(doc)
        assert EXTRACT[name](text, "fail") == set(), name


def test_every_format_tolerates_fields_added_to_the_document() -> None:
    """Later schema additions (an account grouping, waiver fields) must not break a view."""
    doc = sample_document()
    doc["accounts"] = [{"account_id": ACCOUNT, "name": "prod", "findings": 3}]
    doc["scan"]["organization"] = {"id": "o-123"}
    for f in doc["findings"]:
        f["account"] = {"id": ACCOUNT, "name": "prod"}
        f["resource"]["partition"] = "aws"
        if f["waiver"]:
            f["waiver"]["ticket"] = "SEC-42"
            f["waiver"]["approved_by"] = ["alice", "bob"]
    failing = _expected(doc, "fail")
    for name, fmt in FORMATS.items():
        assert EXTRACT[name](fmt.render(doc), "fail") == failing, name


def test_xlsx_lists_every_key_dependent_and_never_overflows_a_cell() -> None:
    """A key with thousands of dependents (and a very long message) fit: one row per key,
    dependent and role in "Key dependents", and no cell over Excel's 32,767 characters."""
    doc = sample_document()
    key = doc["keys"][0]
    many = [f"arn:aws:rds:us-east-1:{ACCOUNT}:db:db-{i:05d}" for i in range(3000)]
    key["dependents"] = many
    key["roles"] = [{"arn": a, "role": "storage"} for a in many] + [
        {"arn": many[0], "role": "performance-insights"}]
    doc["findings"][0]["message"] = "x" * 40_000
    data = FORMATS["xlsx"].render(doc)
    assert isinstance(data, bytes)
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str,
                           keep_default_na=False)
    rows = sheets["Key dependents"]
    mine = rows[rows["Key ARN"] == key["arn"]]
    assert len(mine) == 3001
    assert set(zip(mine["Dependent ARN"], mine["Role"], strict=True)) == {
        (r["arn"], r["role"]) for r in key["roles"]}
    keys = sheets["Keys"]
    assert keys[keys["Key ARN"] == key["arn"]]["Dependents"].tolist() == ["3000"]
    longest = max(len(v) for frame in sheets.values() for col in frame.columns
                  for v in frame[col])
    assert longest <= 32_767
    cut = sheets["Findings"]["message"].map(len).max()
    assert cut == 32_767
    assert sheets["Findings"]["message"].str.contains("cell limit").any()


def test_large_formats_stream_whole_lines_that_add_up_to_the_report() -> None:
    """JSON, CSV and JUnit are written chunk by chunk (never one string of the estate);
    each chunk ends a line, so the per-chunk redaction never sees half a value."""
    doc = sample_document()
    streaming = {name for name, fmt in FORMATS.items() if fmt.stream is not None}
    assert streaming >= {"json", "csv", "junit", "sarif", "asff", "ocsf"}
    for name in streaming:
        stream = FORMATS[name].stream
        assert stream is not None
        chunks = list(iter_csv(doc, batch=1) if name == "csv" else
                      iter_sarif(doc, batch=1) if name == "sarif" else
                      iter_json_lines(list(doc.items()), json_dump, "  ",
                                      inner={"summary": "actions"}, batch=1)
                      if name == "json" else stream(doc))
        assert len(chunks) > 2, name
        if name == "sarif":  # one line: chunks end between two results, never in a value
            assert all(c.endswith(("[", "}")) for c in chunks[:-1])
            assert all(c.startswith(",") for c in chunks[1:-1]), chunks[1][:20]
            assert chunks[-1].endswith("\n") and chunks[-1].count("\n") == 1
        else:
            # Whole lines; the summary's line (its actions) in pieces that end between two
            # actions, never inside a value.
            pieces = [i for i, c in enumerate(chunks) if c and not c.endswith("\n")]
            assert name == "json" or not pieces, name
            assert all(chunks[i].endswith("}") and chunks[i + 1].startswith((", {", "]"))
                       for i in pieces), name
            if name == "json":
                assert len(pieces) == len(doc["summary"]["actions"]) >= 2
        assert "".join(chunks) == FORMATS[name].render(doc) == "".join(stream(doc)), name


def test_xlsx_survives_control_characters_in_aws_text() -> None:
    """A worksheet cannot hold most C0 controls (openpyxl refuses them): an escape sequence
    in a tag or message is shown as U+FFFD instead of aborting the workbook."""
    doc = sample_document()
    doc["findings"][0]["tags"] = {"k\x1b": "v\x1b[2Jx\x07"}
    doc["findings"][0]["message"] = "m\x1b[31mred"
    data = FORMATS["xlsx"].render(doc)
    assert isinstance(data, bytes)
    frame = pd.read_excel(io.BytesIO(data), sheet_name="Findings", dtype=str,
                          keep_default_na=False)
    assert "m\ufffd[31mred" in set(frame["message"])
    assert any("v\ufffd[2Jx\ufffd" in t for t in frame["tags"])
    assert not any("\x1b" in v for col in frame.columns for v in frame[col])


def test_xlsx_sheets_have_a_frozen_bold_header_a_filter_and_text_never_a_formula() -> None:
    """Read back with openpyxl, as a spreadsheet would open it: every sheet, the Findings
    header frozen and filterable, account ids as text, a `=` value stays text."""
    from openpyxl import load_workbook

    doc = sample_document()
    doc["findings"][0]["message"] = "=HYPERLINK(\"http://x\")"
    data = FORMATS["xlsx"].render(doc)
    assert isinstance(data, bytes)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Summary", "By account and region", "Actions", "Findings",
                               "Keys", "Key dependents"]
    findings = book["Findings"]
    assert findings.freeze_panes == "A2"
    rows = list(findings.iter_rows(values_only=True))
    assert findings.auto_filter.ref == f"A1:U{len(rows)}"
    assert rows[0][0] == "account_id" and findings["A1"].font.b
    assert all(isinstance(r[0], str) and r[0] == ACCOUNT for r in rows[1:])
    assert all(c.data_type != "f" for row in findings.iter_rows() for c in row)
    assert "'=HYPERLINK(\"http://x\")" in {r[9] for r in rows}
    assert len(rows) - 1 == len(doc["findings"]) + len(doc["errors"])
