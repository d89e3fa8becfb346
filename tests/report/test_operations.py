"""HTML report, operations views, read as text: the trend over the scan history, the waivers
and what became of them, the comparison with a baseline, and several accounts.

`operations_document` builds its document through the real pipeline (rules, waivers,
baseline, history database) and is shared with the browser tests and the screenshot.
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from rdsaudit.baseline import apply_baseline
from rdsaudit.evaluate import evaluate
from rdsaudit.history import migrate, recent, record
from rdsaudit.model import EncryptionType
from rdsaudit.policy import Policy
from rdsaudit.report import report_document
from rdsaudit.report.html import render_html
from rdsaudit.waivers import WaiverRule
from tests.report.test_formats import (
    ACCOUNT,
    EU,
    IMG_XSS,
    OTHER_ACCOUNT,
    SCRIPT_XSS,
    US,
    _instance,
    sample_document,
    sample_inventory,
)

BASELINE_SOURCE = "<img src=x onerror=alert(2)>.json"
GONE_ARN = f"arn:aws:rds:{US}:{ACCOUNT}:db:decommissioned"
# Failures per severity of the earlier scans (oldest first); the last one had errors.
EARLIER = [
    {"critical": 5, "high": 6, "medium": 3, "low": 2, "info": 0},
    {"critical": 4, "high": 6, "medium": 2, "low": 2, "info": 0},
    {"critical": 4, "high": 4, "medium": 2, "low": 1, "info": 0},
    {"critical": 3, "high": 3, "medium": 1, "low": 1, "info": 0},
]


def _waivers() -> tuple[WaiverRule, ...]:
    return (
        # active: waives the SSE-RDS cluster's aws-owned-key failure
        WaiverRule("aws-owned-key", f"arn:aws:rds:*:{ACCOUNT}:cluster:*",
                   "SSE-RDS accepted for the reporting cluster", "dba@example.com",
                   date(2026, 6, 30)),
        # stale: the pattern matches nothing; reason and owner carry markup
        WaiverRule("instance-unencrypted", "arn:aws:rds:*:*:db:legacy-*", IMG_XSS,
                   SCRIPT_XSS, date(2026, 12, 31), region=EU),
        # expired: past its date, so the unencrypted instance fails again
        WaiverRule("instance-unencrypted", f"arn:aws:rds:{US}:{ACCOUNT}:db:plain",
                   "migration to an encrypted copy planned", "app-team@example.com",
                   date(2025, 12, 1)),
    )


def operations_document(*, history: int = len(EARLIER) + 1) -> dict[str, Any]:
    """Two accounts, three waivers (active, stale, expired), a baseline with new, unchanged
    and resolved failures, and `history` recorded scans (the last one this scan)."""
    inv = sample_inventory(errors=False)
    billing = _instance("billing", encrypted=False, encryption_type=EncryptionType.NONE,
                        account_id=OTHER_ACCOUNT,
                        arn=f"arn:aws:rds:{US}:{OTHER_ACCOUNT}:db:billing")
    inv = replace(inv, scan=replace(inv.scan, accounts=(ACCOUNT, OTHER_ACCOUNT)),
                  resources=(*inv.resources, billing))
    result = evaluate(inv, Policy(waivers=_waivers()))
    # The baseline: every failure of today except the public snapshot and the new account's
    # instance (so those two are new), plus one failure that is gone (resolved).
    current = report_document(result)
    previous = [f for f in current["findings"] if f["status"] in ("fail", "waived")
                and f["rule_id"] != "snapshot-public" and f["resource"]["id"] != "billing"]
    previous.append({"rule_id": "instance-unencrypted", "status": "fail",
                     "severity": "high", "resource": {
                         "arn": GONE_ARN, "id": "decommissioned", "account_id": ACCOUNT,
                         "region": US}})
    result = apply_baseline(result, {"findings": previous}, BASELINE_SOURCE)
    doc = report_document(result)
    if history:
        doc["history"] = _history(doc, history)
    return doc


def _history(doc: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Record `count - 1` earlier scans and then this one in a real history database."""
    db = sqlite3.connect(":memory:")
    try:
        migrate(db)
        earlier = EARLIER[-(count - 1):] if count > 1 else []
        for i, by_sev in enumerate(earlier):
            past = copy.deepcopy(doc)
            day = 20 + i
            past["scan"]["started_at"] = f"2025-12-{day}T00:00:00Z"
            past["scan"]["finished_at"] = f"2025-12-{day}T00:04:00Z"
            past["summary"]["failures_by_severity"] = by_sev
            past["summary"]["findings"]["fail"] = sum(by_sev.values())
            if i == len(earlier) - 1:
                past["summary"]["complete"] = False
                past["summary"]["errors"] = 2
                past["summary"]["exit_code"] = 3
            record(db, past)
        record(db, doc)
        return recent(db, 30)
    finally:
        db.close()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append((tag, dict(attrs)))


def _section(html: str, ident: str) -> str:
    return html.split(f'id="{ident}"', 1)[1].split("</section>", 1)[0]


def _data(html: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    return data


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return operations_document()


@pytest.fixture(scope="module")
def html(doc: dict[str, Any]) -> str:
    return render_html(doc)


# -- the document itself (guards the fixture) ---------------------------------------------

def test_the_document_exercises_every_operations_field(doc: dict[str, Any]) -> None:
    assert [w["state"] for w in doc["waivers"]] == ["active", "stale", "expired"]
    assert doc["summary"]["waivers"] == {"active": 1, "stale": 1, "expired": 1}
    assert doc["baseline"]["new"] == 2 and doc["baseline"]["unchanged"] >= 4
    assert [r["resource_arn"] for r in doc["baseline"]["resolved"]] == [GONE_ARN]
    assert len(doc["history"]) == len(EARLIER) + 1
    assert doc["history"][-1]["fail"] == doc["summary"]["findings"]["fail"]
    assert set(doc["summary"]["failures_by_account"]) == {ACCOUNT, OTHER_ACCOUNT}


# -- trend ----------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 2, 5])
def test_trend_has_one_point_and_one_table_row_per_recorded_scan(count: int) -> None:
    doc = operations_document(history=count)
    assert len(doc["history"]) == count
    html = render_html(doc)
    trend = _section(html, "trend")
    assert "<h2>Trend" in trend
    assert trend.count('<g class="hist-point') == count
    table = trend.split('id="hist-table"')[1]
    assert table.count("<tr") == count + 1  # and the header
    assert table.count("this scan") == 1 and '<a href="#trend">Trend' in html
    if count == 1:
        assert "first recorded scan" in trend and "<polyline" not in trend
    else:
        assert trend.count('<circle class="hist-dot') == count


@pytest.mark.parametrize("history", ["missing", [], None])
def test_no_history_means_no_trend_anywhere(history: Any) -> None:
    doc = operations_document(history=0)
    if history != "missing":
        doc["history"] = history
    html = render_html(doc)
    assert 'id="trend"' not in html
    # The page's CSS and JS never name the trend: the word is there only with the section.
    assert "trend" not in html.lower()


def test_trend_shows_dates_counts_changes_and_incomplete_scans(html: str, doc: dict[str, Any]
                                                               ) -> None:
    trend = _section(html, "trend")
    now = doc["summary"]["findings"]["fail"]
    for by_sev in EARLIER:
        assert f"{sum(by_sev.values())} failing, {by_sev['critical']} critical" in trend
    assert ">Dec 20<" in trend and "2025-12-20 00:04 UTC" in trend
    assert f"{now} failing finding{'s' if now != 1 else ''} in this scan" in trend
    last = sum(EARLIER[-1].values())
    change = now - last
    word = f"{change} more" if change > 0 else f"{-change} fewer"
    assert word in trend and "than the previous scan (2025-12-23 00:04 UTC)" in trend
    # The scan with errors: outlined, marked, and "no" in the Complete column.
    assert trend.count('class="hist-dashed"') == 1
    assert "2 collection errors, incomplete" in trend
    rows = trend.split('id="hist-table"')[1].split("<tbody>")[1].split("</tr>")
    assert 'class="no">no<' in rows[1] and 'class="yes">yes<' in rows[0]
    assert "this scan" in rows[0]  # newest first


def test_trend_y_axis_and_bar_heights_follow_the_counts(html: str) -> None:
    trend = _section(html, "trend")
    ticks = [int(v) for v in re.findall(r'class="hist-tick"[^>]*>(\d+)<', trend)]
    assert ticks[0] == 0 and ticks == sorted(ticks) and ticks[-1] >= sum(EARLIER[0].values())
    heights = []
    for point in trend.split('<g class="hist-point')[1:]:
        heights.append(sum(float(h) for h in re.findall(r'class="hist-seg[^"]*"[^>]*'
                                                        r'height="([\d.]+)"', point)))
    totals = [sum(s.values()) for s in EARLIER]
    assert heights[0] > heights[1] > heights[2] > heights[3] > 0
    assert heights[0] / heights[3] == pytest.approx(totals[0] / totals[3], rel=0.05)


def test_trend_tolerates_a_malformed_history() -> None:
    doc = sample_document(errors=False)
    doc["history"] = ["junk", {"finished_at": "yesterday", "fail": "many"},
                      {"failures_by_severity": {"critical": 2, "high": None}, "fail": 2}]
    trend = _section(render_html(doc), "trend")
    assert trend.count('<g class="hist-point') == 2 and "yesterday" in trend


def test_long_histories_label_only_some_dates() -> None:
    doc = sample_document(errors=False)
    doc["history"] = [{"finished_at": f"2026-01-{d:02d}T06:00:00Z", "fail": d,
                       "failures_by_severity": {"high": d}, "complete": True, "errors": 0}
                      for d in range(1, 31)]
    trend = _section(render_html(doc), "trend")
    assert trend.count('<g class="hist-point') == 30
    assert 10 <= trend.count('class="hist-day"') <= 16
    assert ">Jan 30<" in trend  # the current scan is always labelled


# -- waivers --------------------------------------------------------------------------------

def test_waivers_table_lists_every_waiver_worst_first(html: str) -> None:
    waivers = _section(html, "waivers")
    rows = waivers.split("<tbody>")[1].split("</tr>")[:-1]
    states = [re.search(r'class="waiver-row waiver-(\w+)"', r).group(1)  # type: ignore[union-attr]
              for r in rows]
    assert states == ["expired", "stale", "active"]
    assert "migration to an encrypted copy planned" in rows[0]
    assert "2025-12-01" in rows[0] and "days ago" in rows[0] and "due-past" in rows[0]
    assert "eu-west-1" in rows[1] and "any account" in rows[1]
    assert "SSE-RDS accepted for the reporting cluster" in rows[2]
    assert re.search(r'<td class="num">1</td>', rows[2])  # matched one finding


def test_waiver_counts_in_the_summary_and_the_nav(html: str) -> None:
    cards = html.split('id="waiver-cards"')[1].split("</div>\n    </div>")[0]
    for state in ("active", "stale", "expired"):
        assert re.search(rf'data-waiver-state="{state}"[^>]*>\s*<span class="card-n">1</span>',
                         cards), state
    assert re.search(r'<a href="#waivers" class="nav-bad">Waivers <span class="count">3',
                     html)


def test_waiver_text_is_escaped(html: str) -> None:
    waivers = _section(html, "waivers")
    assert "&lt;img src=x onerror=alert(1)&gt;" in waivers
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in waivers
    assert "<img" not in html and SCRIPT_XSS not in html


def test_no_waivers_means_no_waiver_section() -> None:
    html = render_html(sample_document(errors=False))
    assert 'id="waivers"' not in html and 'id="waiver-cards"' not in html


def test_waived_findings_carry_their_waiver_to_the_page(html: str) -> None:
    data = _data(html)
    col = {name: i for i, name in enumerate(data["columns"])}
    waived = [f for f in data["findings"] if f[col["status"]] == "waived"]
    assert [f[col["waiver"]] for f in waived] == [{
        "reason": "SSE-RDS accepted for the reporting cluster", "owner": "dba@example.com",
        "expires": "2026-06-30"}]
    assert '<option value="waived">waived</option>' in html


# -- baseline -------------------------------------------------------------------------------

def test_baseline_line_cards_and_resolved_list(html: str, doc: dict[str, Any]) -> None:
    b = doc["baseline"]
    line = html.split('id="baseline-line"')[1].split("</p>")[0]
    text = re.sub(r"<[^>]+>", "", line).split(">", 1)[1]
    assert " ".join(text.split()) == (
        f"Compared with {BASELINE_SOURCE.replace('<', '&lt;').replace('>', '&gt;')}: "
        f"{b['new']} new, {b['unchanged']} unchanged, 1 resolved")
    resolved = html.split('id="resolved"')[1].split("</details>")[0]
    assert "1 resolved failure:" in resolved
    assert GONE_ARN in resolved and "decommissioned" in resolved
    assert 'id="card-new"' in html and 'id="f-baseline"' in html
    assert '<option value="new">New only</option>' in html


def test_findings_carry_their_baseline_mark(html: str, doc: dict[str, Any]) -> None:
    data = _data(html)
    col = {name: i for i, name in enumerate(data["columns"])}
    marks = [f[col["baseline"]] for f in data["findings"]]
    assert marks == [f["baseline"] for f in doc["findings"]]
    new = {(f[col["rule_id"]], data["resources"][f[col["resource"]]][1])
           for f in data["findings"] if f[col["baseline"]] == "new"}
    assert new == {("snapshot-public", "plain-snap"), ("instance-unencrypted", "billing")}


def test_no_baseline_means_no_baseline_views() -> None:
    html = render_html(sample_document(errors=False))
    for ident in ('id="baseline-line"', 'id="resolved"', 'id="f-baseline"', 'id="card-new"'):
        assert ident not in html
    assert "baseline" not in _data(html)["columns"]  # no column of nulls in the data


def test_fail_on_new_says_so_in_the_verdict() -> None:
    doc = operations_document(history=0)
    doc["summary"]["fail_on_new"] = True
    assert "gate on new failures only (--fail-on-new)" in render_html(doc)


def test_resolved_list_is_capped() -> None:
    doc = operations_document(history=0)
    gone = doc["baseline"]["resolved"][0]
    doc["baseline"]["resolved"] = [{**gone, "resource_id": f"gone-{i}"} for i in range(700)]
    resolved = render_html(doc).split('id="resolved"')[1].split("</details>")[0]
    assert resolved.count("<tr>") == 500 + 1 and "lists all 700" in resolved


# -- accounts -------------------------------------------------------------------------------

def test_account_column_and_filter_only_for_several_accounts(html: str) -> None:
    assert 'data-sort="account"' in html and 'id="f-account"' in html
    assert f'<option value="{OTHER_ACCOUNT}">' in html
    assert _data(html)["multi_account"] is True
    single = render_html(sample_document(errors=False))
    assert 'data-sort="account"' not in single and 'id="f-account"' not in single
    assert _data(single)["multi_account"] is False


# -- the page stays under its policy --------------------------------------------------------

def test_operations_markup_uses_no_inline_style_or_handlers(html: str) -> None:
    parser = _Ids()
    parser.feed(html)
    for tag, attrs in parser.attrs:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if tag == "a" and value.startswith("https://docs.aws.amazon.com/"):
                continue  # a rule's AWS documentation: a link to follow, nothing loaded
            assert not re.match(r"\s*(https?:|//|javascript:)", value, re.I), (tag, value)


def test_trend_draws_waived_failures_apart_from_fixed_ones() -> None:
    """Issue 12: a drop in failures that is only new waivers is accepted risk, not progress.
    The waived part is its own hatched segment above the failing ones (the bar keeps its
    height), the table has its own column, and the note says how much of the drop is waived."""
    doc = sample_document(errors=False)
    doc["history"] = [
        {"finished_at": "2026-01-01T06:00:00Z", "fail": 10, "waived": 0,
         "failures_by_severity": {"high": 10}, "complete": True, "errors": 0},
        {"finished_at": "2026-01-02T06:00:00Z", "fail": 6, "waived": 3,
         "failures_by_severity": {"high": 6}, "complete": True, "errors": 0},
    ]
    trend = _section(render_html(doc), "trend")
    first, second = trend.split('<g class="hist-point')[1:]
    assert 'class="hist-waived"' not in first
    [waived_h] = re.findall(r'class="hist-waived"[^>]*height="([\d.]+)"', second)
    fail_h = [float(h) for h in re.findall(r'class="hist-seg[^"]*"[^>]*height="([\d.]+)"',
                                           second)]
    first_h = [float(h) for h in re.findall(r'class="hist-seg[^"]*"[^>]*height="([\d.]+)"',
                                            first)]
    assert float(waived_h) / sum(fail_h) == pytest.approx(3 / 6, rel=0.05)
    assert (float(waived_h) + sum(fail_h)) / sum(first_h) == pytest.approx(9 / 10, rel=0.05)
    assert "4 fewer" in trend and "(3 of them waived, not fixed)" in trend
    assert "waived (accepted, not fixed)" in trend and 'id="hist-hatch"' in trend
    header = trend.split("<thead>")[1].split("</thead>")[0]
    assert ">Waived<" in header
    rows = trend.split("<tbody>")[1].split("</tr>")
    column = re.findall(r"<th[^>]*>([^<]+)</th>", header).index("Waived")
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)[column] for r in rows[:2]] == ["3", "0"]
    # Without any waived scan, nothing of it is drawn.
    for h in doc["history"]:
        h["waived"] = 0
    plain = _section(render_html(doc), "trend")
    assert "hist-waived" not in plain and "hist-hatch" not in plain and "not fixed" not in plain
