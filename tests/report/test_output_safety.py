"""Hostile text in every free-text field, through `rdsaudit evaluate`, into every format.

The saved inventory and the config carry markup and spreadsheet formulas in tag keys and
values, resource identifiers (and one region and account), KMS key descriptions, notes,
states and alias names, collection error codes and messages, skipped-region reasons and
waiver resources, reasons and owners. Then:

* HTML: no element, attribute or script the page did not put there itself; the strings are
  shown as text and round-trip through the embedded JSON;
* JSON, JUnit and SARIF: they parse and give every string back exactly;
* CSV: no cell (nor a tag inside the tags cell) starts with = + - @ tab or CR;
* the runbook (`rdsaudit plan`): hostile identifiers never become shell syntax.

Fields a format does not carry at all are listed in DROPPED (and in the hand-over notes).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.model import (
    CollectionError,
    KmsAlias,
    RotationLookup,
    SkippedRegion,
)
from rdsaudit.report.csv import neutralise
from rdsaudit.text import identifier_problem
from tests.cli.test_cli import one_line_error, run, save
from tests.support.builders import ACCOUNT, REGION, instance, inventory, key_arn, kms_key, snapshot

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(1)</script>"
SVG = '"><svg onload=alert(1)>'
HYPERLINK = '=HYPERLINK("http://x")'
PAYLOADS = [IMG, SCRIPT, SVG, HYPERLINK, "+cmd", "-2+3", "@SUM(1)", "\t=1", "\r=1"]
# The payloads that can be identifiers (resource ids, aliases): a control character makes an
# identifier malformed wherever it is read (AWS answer, saved inventory, report), so the
# last two are free text only (tags, descriptions, messages).
NAMES = [p for p in PAYLOADS if identifier_problem(p) is None]
CONTROL = [p for p in PAYLOADS if p not in NAMES]
MARKUP = [IMG, SCRIPT, SVG]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_REGION = SVG  # one resource's region (charts, filters, data-value attributes)
HOSTILE_ACCOUNT = IMG  # one resource's account
FORMATS = "json,html,csv,junit,sarif"
# What each format leaves out by design (the CSV's columns are checked).
DROPPED = {
    "csv": "skipped regions, KMS key descriptions/notes/aliases, stale waivers",
    "junit": "tags, KMS key descriptions/notes/aliases, skipped regions, stale waivers",
    "sarif": "KMS key descriptions/notes/aliases, skipped regions, stale waivers",
}


def key_id(i: int) -> str:
    return f"{i:08d}-2222-3333-4444-555555555555"


def hostile_inventory() -> Any:
    resources = []
    keys = []
    aliases = []
    for i, p in enumerate(PAYLOADS):
        # An unencrypted instance named by the payload (or, for a control character, named
        # ctl-N), tagged with it (key and value).
        name = p if p in NAMES else f"ctl-{i}"
        resources.append(instance(name, encrypted=False, tags=((p, p), ("team", p))))
        # An encrypted instance on a key whose description, note and alias are the payload.
        arn = key_arn(key_id(i))
        keys.append(kms_key(arn, description=p, note=p, rotation=RotationLookup.OK,
                            rotation_enabled=False))
        if p in NAMES:
            aliases.append(KmsAlias(f"alias/{p}", REGION, ACCOUNT, key_id(i)))
        resources.append(instance(f"enc-{i}", key=arn, tags=(("owner", p),)))
    # A key whose state is a formula, and a snapshot on it.
    odd_state = key_arn("99999999-2222-3333-4444-555555555555")
    keys.append(kms_key(odd_state, key_state=HYPERLINK))
    resources.append(snapshot("odd-state", key=odd_state))
    # A resource in a hostile region and account (labels, filters, chart attributes).
    resources.append(replace(instance("elsewhere", encrypted=False), region=HOSTILE_REGION,
                             account_id=HOSTILE_ACCOUNT))
    errors = tuple(CollectionError(ACCOUNT, REGION, "rds", "DescribeDBSnapshots", p, p)
                   for p in PAYLOADS)
    errors += (CollectionError(IMG, SVG, SCRIPT, HYPERLINK, "-2+3", "@SUM(1)"),)
    skipped = tuple(SkippedRegion(ACCOUNT, "ap-east-1", p, p) for p in PAYLOADS[:1])
    return inventory(*resources, keys=tuple(keys), aliases=tuple(aliases), errors=errors,
                     skipped=skipped)


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid TOML basic string


def waiver_config() -> str:
    lines = []
    # Even payloads: the instance named by it is waived, with the payload as reason/owner.
    for p in NAMES[::2]:
        lines += ["[[waivers]]", 'rule = "instance-unencrypted"',
                  f"resource = {toml_string(f'arn:aws:rds:{REGION}:{ACCOUNT}:db:{p}')}",
                  f"reason = {toml_string(p)}", f"owner = {toml_string(p)}",
                  'expires = "2099-12-31"', ""]
    # A stale and an expired waiver, hostile everywhere they can be.
    lines += ["[[waivers]]", 'rule = "*"', f"resource = {toml_string('arn:' + IMG + SVG)}",
              f"reason = {toml_string(SCRIPT)}", f"owner = {toml_string(HYPERLINK)}",
              'expires = "2099-12-31"', "",
              "[[waivers]]", 'rule = "snapshot-unencrypted"',
              f"resource = {toml_string('arn:' + HYPERLINK)}", f"reason = {toml_string('-2+3')}",
              f"owner = {toml_string('@SUM(1)')}", 'expires = "2001-01-01"', ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    inv = save(tmp, hostile_inventory())
    config = tmp / "rdsaudit.toml"
    config.write_text(waiver_config(), encoding="utf-8")
    reports = tmp / "reports"
    proc = run("evaluate", inv, "--config", config, "--format", FORMATS, "--output-dir",
               reports, "--evidence", "full")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return reports


@pytest.fixture(scope="module")
def doc(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "rdsaudit-report.json").read_text("utf-8"))
    return data


# -- JSON -----------------------------------------------------------------------------------

def test_json_round_trips_every_string(out: Path, doc: dict[str, Any]) -> None:
    raw = (out / "rdsaudit-report.json").read_text("utf-8")
    assert "\r" not in raw and "\t" not in raw  # control characters are escaped
    by_id = {}
    for f in doc["findings"]:
        by_id.setdefault(f["resource"]["id"], []).append(f)
    for i, p in enumerate(PAYLOADS):
        name = p if p in NAMES else f"ctl-{i}"
        [own] = [f for f in by_id[name] if f["rule_id"] == "instance-unencrypted"]
        assert own["resource"]["arn"] == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{name}"
        assert own["tags"] == {p: p, "team": p}
        assert name in own["message"]
    waived = {f["resource"]["id"]: f["waiver"] for f in doc["findings"]
              if f["status"] == "waived"}
    assert waived.keys() == set(NAMES[::2])
    # Waiver text is stripped of surrounding whitespace when the config is read.
    assert all(w["reason"] == w["owner"] == rid.strip() for rid, w in waived.items())
    keys = {k["arn"]: k for k in doc["keys"]}
    for i, p in enumerate(PAYLOADS):
        k = keys[key_arn(key_id(i))]
        aliases = [f"alias/{p}"] if p in NAMES else []
        assert (k["description"], k["note"], k["aliases"]) == (p, p, aliases)
    assert {(e["code"], e["message"]) for e in doc["errors"]} >= {(p, p) for p in PAYLOADS}
    assert (IMG, SVG, SCRIPT, HYPERLINK) in {
        (e["account_id"], e["region"], e["service"], e["operation"]) for e in doc["errors"]}
    assert doc["scan"]["skipped_regions"][0]["message"] == IMG
    configured = {(w["resource"], w["reason"], w["owner"], w["state"]) for w in doc["waivers"]}
    assert ("arn:" + IMG + SVG, SCRIPT, HYPERLINK, "stale") in configured
    assert ("arn:" + HYPERLINK, "-2+3", "@SUM(1)", "expired") in configured
    elsewhere = [f for f in doc["findings"] if f["resource"]["id"] == "elsewhere"]
    assert {(f["resource"]["region"], f["resource"]["account_id"]) for f in elsewhere} == {
        (HOSTILE_REGION, HOSTILE_ACCOUNT)}


# -- HTML -----------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Every element with its attributes, the scripts, and the text outside scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._buffer = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in, self._attrs, self._buffer = tag, dict(attrs), ""

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in == "script":
            self.scripts.append((self._attrs, self._buffer))
        elif tag == "style" and self._in == "style":
            self.styles.append(self._buffer)
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buffer += data
        else:
            self.text.append(data)


@pytest.fixture(scope="module")
def html(out: Path) -> str:
    return (out / "rdsaudit-report.html").read_text("utf-8")


@pytest.fixture(scope="module")
def page(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    parser.close()
    return parser


def test_html_has_no_element_attribute_or_script_of_the_attacker(html: str, page: _Page
                                                                   ) -> None:
    for payload in MARKUP:
        assert payload not in html
    assert "alert(1)</script>" not in html
    tags = [tag for tag, _ in page.elements]
    assert "img" not in tags and "iframe" not in tags and "object" not in tags
    for tag, attrs in page.elements:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "svg":  # the page's own charts only
            assert (attrs.get("class") or "").split()[0] in ("bars", "hist"), attrs
        for name in ("href", "src", "action", "formaction", "xlink:href"):
            value = (attrs.get(name) or "").strip().lower()
            if tag == "a" and value.startswith("https://docs.aws.amazon.com/"):
                continue  # a rule's AWS documentation (our own constant), nothing loaded
            assert not value.startswith(("javascript:", "data:text", "http:", "https:")), (
                tag, name, value)
    # Exactly two scripts: the JSON data block and the page's own code (by its CSP hash).
    assert [(a.get("type"), a.get("id")) for a, _ in page.scripts] == [
        ("application/json", "report-data"), (None, None)]
    assert tags.count("script") == 2
    csp = next(a["content"] for t, a in page.elements
               if t == "meta" and (a.get("http-equiv") or "").lower()
               == "content-security-policy")
    assert csp is not None and "unsafe-inline" not in csp
    code = page.scripts[1][1]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "alert(" not in code


def test_html_shows_the_strings_as_text(page: _Page) -> None:
    text = "".join(page.text)
    for p in [*MARKUP, HYPERLINK]:
        # Key descriptions, notes and aliases, error codes and messages, waiver reasons and
        # owners, the hostile region (chart label, filter option) are all printed as text.
        assert p in text, p
    assert f"alias/{IMG}" in text
    assert "arn:" + IMG + SVG in text  # the stale waiver's resource glob (waivers table)
    # Attributes built from data hold the exact string (escaped, not broken out of).
    values = {attrs.get("data-value") for tag, attrs in page.elements if tag == "g"}
    assert HOSTILE_REGION in values
    options = {attrs.get("value") for tag, attrs in page.elements if tag == "option"}
    assert HOSTILE_REGION in options


def test_html_embedded_data_round_trips_and_cannot_end_its_script(page: _Page,
                                                                  doc: dict[str, Any]) -> None:
    data_text = page.scripts[0][1]
    assert not re.search(r"[<>&]", data_text)  # \u003c … : "</script>" cannot occur
    data = json.loads(data_text)
    ids = {r[1] for r in data["resources"]}  # [prefix, id, tags, …] (html._table_data)
    assert set(NAMES) <= ids
    tags = {(k, v) for r in data["resources"] for k, v in data["tagsets"][r[2]]}
    assert {(p, p) for p in PAYLOADS} <= tags
    column = data["columns"].index("waiver")
    reasons = {row[column]["reason"] for row in data["findings"] if row[column]}
    assert reasons == {p.strip() for p in NAMES[::2]}
    assert {f["resource"]["id"] for f in doc["findings"]} == ids
    # Messages and remediations stored per shape (html.TEXT_SLOTS) come back exact, hostile
    # names and all.
    from tests.report.test_formats import html_data_rows

    shown = [f for f in doc["findings"] if f["status"] != "pass"]
    assert [(r["message"], r["remediation"]) for r in html_data_rows(data)] == [
        (f["message"], f["remediation"] or None) for f in shown]


# -- CSV ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "rdsaudit-report.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_no_csv_cell_starts_a_formula(csv_rows: list[dict[str, str]]) -> None:
    assert csv_rows
    for row in csv_rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULA_PREFIXES), (column, cell)
            for line in cell.split("\n"):  # a reader may split multi-line cells
                assert not line.startswith(FORMULA_PREFIXES[:4]), (column, cell)


def _shown(p: str) -> str:
    return "'" + p if p.startswith(FORMULA_PREFIXES) else p


def test_csv_keeps_the_strings_neutralised(csv_rows: list[dict[str, str]]) -> None:
    ids = {row["resource_id"] for row in csv_rows}
    assert {_shown(p) for p in NAMES} <= ids
    for i, p in enumerate(PAYLOADS):
        name = p if p in NAMES else f"ctl-{i}"
        [row] = [r for r in csv_rows if r["resource_id"] == _shown(name)
                 and r["rule_id"] == "instance-unencrypted"]
        # Each tag key and value is neutralised on its own, and the cell as a whole: every
        # line of it (issue 12: a line after a break may start a formula too).
        assert row["tags"] == neutralise(f"{_shown(p)}={_shown(p)}; team={_shown(p)}")
        assert not any(line.lstrip(" \u00a0").startswith(("=", "+", "-", "@"))
                       for line in row["tags"].splitlines())
        assert row["status"] == ("waived" if p in NAMES[::2] else "fail")
    states = {row["key_state"] for row in csv_rows}
    assert _shown(HYPERLINK) in states
    regions = {(row["region"], row["account_id"]) for row in csv_rows}
    assert (HOSTILE_REGION, HOSTILE_ACCOUNT) in regions


def test_csv_drops_what_it_has_no_column_for(csv_rows: list[dict[str, str]],
                                            doc: dict[str, Any]) -> None:
    """One row per finding plus one per collection error, with the contract's columns;
    skipped regions, key descriptions, notes, aliases and waiver reasons and owners are not
    in the CSV (DROPPED['csv']). If a column is added for them, it must be neutralised too."""
    assert "csv" in DROPPED
    assert len(csv_rows) == len(doc["findings"]) + len(doc["errors"])
    assert sum(1 for r in csv_rows if r["status"] == "error") == len(doc["errors"])
    assert list(csv_rows[0]) == [
        "account_id", "region", "resource_type", "resource_id", "resource_arn", "rule_id",
        "rule_title", "severity", "status", "message", "kms_key_arn", "key_state",
        "remediation_summary", "remediation_commands", "tags", "waiver_reason", "waiver_owner",
        "waiver_expires", "baseline", "finding_id", "scan_time"]


# -- JUnit and SARIF ------------------------------------------------------------------------

def test_junit_parses_and_round_trips(out: Path, doc: dict[str, Any]) -> None:
    root = ET.parse(out / "rdsaudit-report.xml").getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    for f in doc["findings"]:
        case = cases[(f["rule_id"], f["resource"]["arn"])]
        if f["status"] == "fail":
            failure = case.find("failure")
            assert failure is not None and failure.get("message") == f["message"]
        elif f["status"] == "waived":
            skipped = case.find("skipped")
            assert skipped is not None
            reason = f["waiver"]["reason"]
            assert reason == f["resource"]["id"].strip()
            assert skipped.get("message", "").startswith(f"waived: {reason} (owner {reason}")
    errors = [c.find("error") for c in root.iter("testcase") if c.find("error") is not None]
    assert {(e.get("type"), e.get("message")) for e in errors if e is not None} >= {
        (p, p) for p in PAYLOADS}


def test_junit_element_text_keeps_carriage_returns(out: Path, doc: dict[str, Any]) -> None:
    """Attribute values round-trip (`&#13;`); element text must too, or a CR becomes LF."""
    root = ET.parse(out / "rdsaudit-report.xml").getroot()
    texts = [e.text or "" for e in root.iter("error")]
    assert any("\r=1" in t for t in texts), [t for t in texts if "=1" in t]


def test_sarif_parses_and_round_trips(out: Path, doc: dict[str, Any]) -> None:
    sarif = json.loads((out / "rdsaudit-report.sarif").read_text("utf-8"))
    [run_] = sarif["runs"]
    results = run_["results"]
    names = {r["locations"][0]["logicalLocations"][0]["name"] for r in results}
    assert set(NAMES) <= names
    for r in results:
        location = r["locations"][0]["logicalLocations"][0]
        if location["name"] in NAMES and r["ruleId"] == "instance-unencrypted":
            p = location["name"]
            assert r["properties"]["tags"] == {p: p, "team": p}
            assert p in r["message"]["text"]
            if p in NAMES[::2]:
                [suppression] = r["suppressions"]
                assert suppression["justification"] == p.strip()
                assert suppression["properties"]["owner"] == p.strip()
    notes = run_["invocations"][0]["toolExecutionNotifications"]
    assert {n["descriptor"]["id"] for n in notes} >= set(PAYLOADS)
    assert all(any(p in n["message"]["text"] for n in notes) for p in PAYLOADS)


# -- identifiers read back from files ------------------------------------------------------

@pytest.mark.parametrize("bad", [*CONTROL, "db\u202eevil", "db\u2028x"])
def test_saved_identifiers_with_control_characters_are_refused(tmp_path: Path,
                                                               bad: str) -> None:
    """A saved inventory or report is held to the rule an AWS answer is: an identifier with a
    control character is malformed (exit 2, one line naming the field), never cleaned into
    another name or handed to a runbook."""
    inv = save(tmp_path, inventory(instance(bad, encrypted=False)))
    proc = run("evaluate", inv, "--format", "json", "--output-dir", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "control character" in line and "inventory.resources[0]." in line, line
    assert not (tmp_path / "out").exists()
    # The same name in a report: plan and --baseline refuse it.
    good = save(tmp_path, inventory(instance("plain", encrypted=False)))
    proc = run("evaluate", good, "--format", "json", "--output-dir", tmp_path / "rep")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "rep" / "rdsaudit-report.json").read_text("utf-8"))
    for f in doc["findings"]:
        f["resource"]["id"] = bad
    report = tmp_path / "edited.json"
    report.write_text(json.dumps(doc), encoding="utf-8")
    for args in (("plan", report), ("evaluate", good, "--baseline", report, "--output-dir",
                                    tmp_path / "base")):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        [line] = proc.stderr.strip().splitlines()
        assert "control character" in line and ".resource.id" in line, line
        assert "Traceback" not in proc.stderr


def test_lone_surrogates_in_a_report_reach_no_writer(tmp_path: Path) -> None:
    """JSON allows "\\ud800"; read back from a report it is made valid Unicode in free text
    (plan and --baseline write it as U+FFFD, never exit 4) and refused in a command."""
    inv = save(tmp_path, inventory(instance("plain", encrypted=False)))
    proc = run("evaluate", inv, "--format", "json", "--output-dir", tmp_path / "rep")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "rep" / "rdsaudit-report.json").read_text("utf-8"))
    doc["scan"]["finished_at"] = "\ud800"
    for f in doc["findings"]:
        f["message"] = f["title"] = "bad \ud800 text"
        f["tags"] = {"k\udfff": "v\ud800"}
        if f["remediation"]:
            f["remediation"]["summary"] = "s\ud800"
            for step in f["remediation"]["steps"]:
                step["title"] = "x\udbff"
    report = tmp_path / "surrogates.json"
    report.write_text(json.dumps(doc), encoding="utf-8")  # ensure_ascii: \ud800 escapes
    runbook = tmp_path / "runbook.sh"
    proc = run("plan", report, "--output", runbook)
    assert proc.returncode == 0, proc.stderr
    text = runbook.read_text("utf-8")
    assert "bad \ufffd text" in text and "# Step 1: x\ufffd" in text
    proc = run("evaluate", inv, "--baseline", report, "--format", "json,html,csv",
               "--output-dir", tmp_path / "base")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    # In what the runbook would execute, it is refused: never cleaned into another command.
    [step] = [s for f in doc["findings"] if f["remediation"]
              for s in f["remediation"]["steps"] if s["argv"]][:1]
    step["argv"][-1] += "\ud800"
    report.write_text(json.dumps(doc), encoding="utf-8")
    line = one_line_error(run("plan", report))
    assert "argv" in line and "not valid Unicode" in line, line


# -- the runbook ----------------------------------------------------------------------------

def test_runbook_quotes_hostile_identifiers(out: Path, doc: dict[str, Any],
                                            tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text((out / "rdsaudit-report.json").read_text("utf-8"), encoding="utf-8")
    wanted = [p for p in NAMES if p not in NAMES[::2]]  # the failing (not waived) ones
    proc = run("plan", report, *[a for p in wanted for a in ("--resource", p)])
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    commands = {s["command"] for f in doc["findings"] if f["resource"]["id"] in wanted
                and f["status"] == "fail" and f["remediation"]
                for s in f["remediation"]["steps"] if s["command"] and not s["manual"]}
    assert commands
    preamble = {"set -euo pipefail"}
    for line in _shell_lines(script):
        assert (line.strip() in commands or line in preamble
                or line.startswith(': "${TARGET_KEY_ARN') or _runbook_frame(line)), line
    for p in wanted:
        assert any(p in shlex.split(c) for c in commands), p


def test_runbook_quotes_a_hostile_region(out: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    doc = json.loads((out / "rdsaudit-report.json").read_text("utf-8"))
    # That resource's account is hostile too: a runbook whose account check could not hold
    # is refused with one line (exit 2).
    report.write_text(json.dumps(doc), encoding="utf-8")
    refused = run("plan", report, "--resource", "elsewhere")
    assert refused.returncode == 2 and "not 12 digits" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    for f in doc["findings"]:
        if f["resource"]["account_id"] == HOSTILE_ACCOUNT:
            f["resource"]["account_id"] = "111122223333"
            for step in (f["remediation"] or {}).get("steps", []):
                step.pop("account", None)
    report.write_text(json.dumps(doc), encoding="utf-8")
    proc = run("plan", report, "--resource", "elsewhere")
    assert proc.returncode == 0, proc.stderr
    commands = [line for line in _shell_lines(proc.stdout) if line.startswith("aws ")]
    assert commands
    for command in commands:
        words = shlex.split(command)
        assert words[words.index("--region") + 1] == HOSTILE_REGION, command


def _runbook_frame(line: str) -> bool:
    """The runbook's own lines (account check, clean-up guard): fixed text, or a printf of
    one quoted argument."""
    frame = {'actual_account="$(aws sts get-caller-identity --query Account --output text)"',
             'if [ "$actual_account" != "$expected_account" ]; then', "exit 1", "fi", "else",
             'if [ "${RDSAUDIT_CONFIRM_DELETE:-}" = 1 ]; then'}
    line = line.strip()
    if line in frame or re.fullmatch(r"expected_account=\d{12}", line):
        return True
    words = shlex.split(line)
    return len(words) == 4 and words[:2] == ["printf", "%s\\n"] and words[3] == ">&2"


def _shell_lines(script: str) -> Iterator[str]:
    """The lines bash would execute: everything that is not blank or a comment. Only LF
    ends a line for bash, so a CR inside a comment does not start a new command."""
    for line in script.split("\n")[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


# -- optional: a real browser ---------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


def test_chromium_opens_the_page_without_running_any_payload(out: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian Chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(f"console: {m.text}")
                    if m.type == "error" else None)
            page.goto((out / "rdsaudit-report.html").as_uri())
            page.wait_for_selector("html[data-ready=true]")
            if page.locator("#show-all").is_visible():
                page.click("#show-all")
            page.select_option("#f-status", "")
            for toggle in page.locator("#findings-body button.toggle").all():
                toggle.click()  # every detail: tags, waiver, remediation, key
            page.fill("#f-text", IMG)
            page.fill("#f-text", "")
            page.wait_for_timeout(200)
            body = page.locator("body").inner_text()
            assert IMG in body and SCRIPT in body
            assert page.locator("img").count() == 0
            assert page.locator("script").count() == 2
            assert page.locator("svg[onload]").count() == 0
        finally:
            browser.close()
    assert problems == []
