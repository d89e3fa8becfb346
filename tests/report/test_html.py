"""HTML report, read as text: self-contained, escaped, and showing what the contract says.

What the page does in a browser is in report/test_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from rdsaudit.report.html import environment, render_html
from tests.report.test_formats import (
    IMG_XSS,
    KEY_PENDING_DELETION,
    SCRIPT_XSS,
    html_rows,
    sample_document,
)


class _Page(HTMLParser):
    """Scripts, styles, meta tags and the elements with an id, as parsed by a real parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.meta: list[dict[str, str | None]] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self._open: str | None = None
        self._script_attrs: dict[str, str | None] = {}
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append((tag, dict(attrs)))
        if tag == "meta":
            self.meta.append(dict(attrs))
        if tag in ("script", "style"):
            self._open, self._script_attrs, self._text = tag, dict(attrs), ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open == "script":
            self.scripts.append((self._script_attrs, self._text))
        elif tag == "style" and self._open == "style":
            self.styles.append(self._text)
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text += data


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return sample_document()


@pytest.fixture(scope="module")
def html(doc: dict[str, Any]) -> str:
    return render_html(doc)


@pytest.fixture(scope="module")
def page(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    return parser


def test_autoescape_is_on() -> None:
    assert environment().autoescape is True


def test_attacker_text_never_appears_as_markup(html: str) -> None:
    assert "<img" not in html
    assert SCRIPT_XSS not in html
    assert "alert(1)</script>" not in html
    # The key description is printed by the template: escaped, visible as text.
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The error message too (the INCOMPLETE banner).
    assert "User is not authorized &lt;img src=x onerror=alert(1)&gt;" in html


def test_only_two_scripts_and_the_data_cannot_break_out(page: _Page, doc: dict[str, Any]
                                                         ) -> None:
    kinds = [attrs.get("type") for attrs, _ in page.scripts]
    assert kinds == ["application/json", None]
    data_attrs, data_text = page.scripts[0]
    assert data_attrs.get("id") == "report-data"
    assert not re.search(r"[<>&]", data_text), "the JSON must escape < > & as \\u00xx"
    tags = {tuple(t) for r in html_rows_of(data_text) for t in r}
    assert ("owner", IMG_XSS) in tags and ("team", SCRIPT_XSS) in tags
    assert all("src" not in attrs for attrs, _ in page.scripts)


def html_rows_of(data_text: str) -> list[list[list[str]]]:
    data = json.loads(data_text)
    # [prefix, id, tags, …]: tags index data["tagsets"] (html._table_data)
    return [data["tagsets"][r[2]] for r in data["resources"]]


def test_page_is_self_contained(html: str, page: _Page) -> None:
    for tag, attrs in page.attrs:
        for name in ("src", "href", "action", "data", "srcset"):
            value = attrs.get(name) or ""
            if tag == "a" and name == "href" and value.startswith(
                    "https://docs.aws.amazon.com/"):
                continue  # a rule's AWS documentation: a link to follow, nothing loaded
            assert not re.match(r"\s*(https?:|//|ftp:)", value, re.I), (tag, name, value)
        if tag == "link":
            assert attrs.get("rel") == "icon" and attrs.get("href") == "data:,"
    for css in page.styles:
        assert "@import" not in css and "url(" not in css
    assert "fonts.googleapis" not in html and "cdn" not in html.lower()


def test_content_security_policy_allows_exactly_the_inline_script_and_style(page: _Page
                                                                              ) -> None:
    csp = next(m["content"] for m in page.meta
               if (m.get("http-equiv") or "").lower() == "content-security-policy")
    assert csp is not None and "default-src 'none'" in csp

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    code = page.scripts[1][1]
    assert f"script-src '{digest(code)}'" in csp
    assert f"style-src '{digest(page.styles[0])}'" in csp
    assert "unsafe-inline" not in csp
    # Inline handlers and style attributes would be refused by that policy: none are used.
    for _, attrs in page.attrs:
        assert "style" not in attrs
        assert not any(name.startswith("on") for name in attrs)


def test_header_shows_accounts_regions_time_and_version(html: str, doc: dict[str, Any]
                                                        ) -> None:
    assert "111111111111" in html
    assert "us-east-1, eu-west-1" in html
    assert doc["scan"]["started_at"] in html and doc["scan"]["finished_at"] in html
    assert f"rdsaudit {doc['tool']['version']}" in html


def test_incomplete_banner_lists_errors_only_when_incomplete(html: str) -> None:
    assert 'id="incomplete"' in html and "INCOMPLETE" in html
    assert "rds:DescribeDBSnapshots" in html and "AccessDenied" in html
    complete = render_html(sample_document(errors=False))
    assert 'id="incomplete"' not in complete and "INCOMPLETE" not in complete


def test_summary_counts_and_charts(html: str, doc: dict[str, Any]) -> None:
    for sev, n in doc["summary"]["failures_by_severity"].items():
        assert re.search(rf'data-severity="{sev}"[^>]*>\s*<span class="card-n">{n}</span>',
                         html), sev
    rule_chart = html.split('id="chart-rule"')[1].split("</figure>")[0]
    for rule_id, n in doc["summary"]["failures_by_rule"].items():
        assert f'data-value="{rule_id}"' in rule_chart
        assert f"<title>{rule_id}: {n} failing" in rule_chart
    region_chart = html.split('id="chart-region"')[1].split("</figure>")[0]
    for region, n in doc["summary"]["failures_by_region"].items():
        assert f"<title>{region}: {n} failing" in region_chart


def test_charts_fold_long_tails_into_one_bar() -> None:
    doc = sample_document()
    template = next(f for f in doc["findings"] if f["status"] == "fail")
    doc["findings"] = [{**template, "resource": {**template["resource"], "region": f"r-{i}"}}
                       for i in range(40)]
    html = render_html(doc)
    region_chart = html.split('id="chart-region"')[1].split("</figure>")[0]
    assert region_chart.count('<g class="bar') == 15
    assert "26 others: 26 failing" in region_chart


def test_key_view_lists_keys_with_days_left_and_dependants(html: str) -> None:
    keys = html.split('id="keys-table"')[1]
    rows = keys.split('<tr id="key-')[1:]
    assert len(rows) == 4  # three described keys and the AWS owned row
    pending = rows[0]  # unusable keys come first
    assert KEY_PENDING_DELETION in pending and "key-danger" in pending
    assert "PendingDeletion" in pending and "2026-01-06T00:00:00Z" in pending
    assert "5 days left" in pending
    assert "arn:aws:rds:us-east-1:111111111111:db:doomed" in pending
    assert "Customer managed" in pending and "disabled" in pending
    assert any("AWS managed" in r and "alias/aws/rds" in r for r in rows)
    owned = next(r for r in rows if "AWS owned key (SSE-RDS)" in r)
    assert "arn:aws:rds:us-east-1:111111111111:cluster:owned" in owned


def test_days_left_count_from_the_end_of_the_scan() -> None:
    doc = sample_document()
    doc["scan"]["finished_at"] = "2026-01-05T12:00:00Z"
    assert "1 day left" in render_html(doc)
    doc["scan"]["finished_at"] = "2026-02-01T00:00:00Z"  # already past: never negative
    assert "0 days left" in render_html(doc)


def test_embedded_rows_match_the_findings(html: str, doc: dict[str, Any]) -> None:
    rows = html_rows(html)
    assert [(r["rule_id"], r["arn"], r["status"], r["severity"]) for r in rows] == [
        (f["rule_id"], f["resource"]["arn"], f["status"], f["severity"])
        for f in doc["findings"]]
    failing = [r for r in rows if r["status"] == "fail"]
    assert all(r["remediation"]["steps"] for r in failing if r["rule_id"] != "key-rotation-"
               "disabled")


def test_embedded_texts_give_back_every_message_and_remediation(doc: dict[str, Any]) -> None:
    """Messages and remediations are stored once per shape, the resource's names standing
    as control characters (html.TEXT_SLOTS): put back, each is exactly the finding's own,
    also when a message holds such a character or a name that JSON escapes."""
    import copy

    doc = copy.deepcopy(doc)
    failing = [f for f in doc["findings"] if f["status"] != "pass"]
    failing[0]["message"] = "holds \x01 and \x02 of its own: " + failing[0]["message"]
    odd = failing[1]["resource"]
    for r in doc["resources"]:
        if r["arn"] == odd["arn"]:
            r["id"] = odd["id"] = 'db"quoted\\'
            r["arn"] = odd["arn"] = odd["arn"] + 'db"quoted\\'
    rows = html_rows(render_html(doc))
    assert [(r["message"], r["remediation"]) for r in rows] == [
        (f["message"], f["remediation"] or None) for f in failing]
    # The same failure of 50 resources: its message and remediation are stored once.
    template, entry = failing[2], next(r for r in doc["resources"]
                                       if r["arn"] == failing[2]["resource"]["arn"])
    rid, arn = template["resource"]["id"], template["resource"]["arn"]
    for i in range(50):
        name = f"copy-{i:02d}"

        def renamed(value: Any, name: str = name) -> Any:
            return json.loads(json.dumps(value).replace(arn, arn[:-len(rid)] + name)
                              .replace(rid, name))

        doc["findings"].append(renamed(template))
        doc["resources"].append(renamed(entry))
    text = render_html(doc)
    data = json.loads(text.split('id="report-data">')[1].split("</script>")[0])
    assert len(data["texts"]) == 2 * len(failing)
    assert len(html_rows(text)) == len(failing) + 50


def test_resources_are_stored_once(html: str, doc: dict[str, Any]) -> None:
    data = json.loads(html.split('id="report-data">')[1].split("</script>")[0])
    arns = {f["resource"]["arn"] for f in doc["findings"]}
    # Every judged resource once (the resource view and the pass evidence need them all).
    assert len(data["resources"]) == len(doc["resources"])
    listed = {data["prefixes"][r[0]][0] + r[1] if len(r) < 7 else r[6]
              for r in data["resources"]}
    assert arns <= listed == {r["arn"] for r in doc["resources"]}


def test_templates_ship_as_package_resources() -> None:
    root = importlib.resources.files("rdsaudit.templates")
    names = {p.name for p in root.iterdir()}
    assert {"report.html.j2", "charts.j2", "report.css.j2", "report.js.j2"} <= names
    assert "placeholder.html.j2" not in names


def test_renders_a_minimal_document() -> None:
    html = render_html({"findings": [], "keys": [], "errors": []})
    assert "No failures." in html and "No KMS keys in use." in html


def test_account_chart_only_for_several_accounts(html: str) -> None:
    assert 'id="chart-account"' not in html
    doc = sample_document()
    doc["scan"]["accounts"].append("222222222222")
    moved = next(f for f in doc["findings"] if f["status"] == "fail")
    moved["resource"]["account_id"] = "222222222222"
    chart = render_html(doc).split('id="chart-account"')[1].split("</figure>")[0]
    assert 'data-value="222222222222"' in chart and 'data-value="111111111111"' in chart


def test_key_view_names_the_role_each_dependent_uses_the_key_in() -> None:
    """Issue 11: a key is a storage key for some resources and, say, the Performance
    Insights key of others; the key view says which, per dependent, and counts them."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "sample_reports" / "rdsaudit-report.json"
    doc = json.loads(sample.read_text("utf-8"))
    [key] = [k for k in doc["keys"]
             if {r["role"] for r in k["roles"]} == {"storage", "performance-insights"}][:1]
    html = render_html(doc)
    row = html.split(f"<code class=\"arn\">{key['arn']}</code>", 1)[1].split("</tr>", 1)[0]
    users = re.findall(r'<div class="key-user"><code class="arn">([^<]+)</code>'
                       r'(?: <span class="chip key-role">([^<]+) key</span>)?</div>', row)
    assert sorted(users) == sorted((r["arn"], "" if r["role"] == "storage" else r["role"])
                                   for r in key["roles"])
    counts = {role: sum(1 for r in key["roles"] if r["role"] == role)
              for role in ("performance-insights", "storage")}
    assert (f"performance-insights key of {counts['performance-insights']}, "
            f"storage key of {counts['storage']}") in row
    # A key every dependent uses for storage says nothing more.
    plain = next(k for k in doc["keys"] if k["roles"] and {r["role"] for r in k["roles"]}
             == {"storage"})
    row = html.split(f"<code class=\"arn\">{plain['arn']}</code>", 1)[1].split("</tr>", 1)[0]
    assert "key-role" not in row and "key-roles" not in row
