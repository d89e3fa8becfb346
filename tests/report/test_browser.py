"""The HTML report in a real browser (Debian's Chromium via Playwright), opened from file://.

Every test fails if the page logs a console error, throws, or opens a dialog: the sample
scan carries `alert(1)` payloads in tags, a key description and an error message.

The page's Content-Security-Policy forbids eval, and Playwright's `wait_for_function` with
a string predicate polls through eval: wait with locator assertions (`expect`) instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.report.html import render_html
from tests.report.test_formats import IMG_XSS, OTHER_ACCOUNT, SCRIPT_XSS, sample_document
from tests.report.test_operations import BASELINE_SOURCE, operations_document

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian Chromium is not installed at /usr/bin/chromium (apt-get install chromium; "
           ".ci/run does this)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")

BASELINE_TEXT = f"Compared with {BASELINE_SOURCE}:"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return sample_document()


@pytest.fixture(scope="module")
def report(doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def ops_doc() -> dict[str, Any]:
    return operations_document()


@pytest.fixture(scope="module")
def ops_report(ops_doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "operations.html"
    path.write_text(render_html(ops_doc), encoding="utf-8")
    return path


@pytest.fixture
def page(browser: Any, report: Path) -> Iterator[Any]:
    yield from _open(browser, report)


@pytest.fixture
def ops_page(browser: Any, ops_report: Path) -> Iterator[Any]:
    yield from _open(browser, ops_report)


def _open(browser: Any, report: Path) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(report.as_uri())
    page.wait_for_selector("html[data-ready=true]")
    yield page
    page.close()
    assert problems == []


def _rows(page: Any) -> Any:
    return page.locator("#findings-body tr.row")


def _column(page: Any, index: int) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        "#findings-body tr.row", f"rows => rows.map(r => r.cells[{index}].textContent)")
    return texts


def _resource_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all("#findings-body tr.row .res-id",
                                               "els => els.map(e => e.textContent)")
    return ids


def test_page_renders_cleanly_and_injected_markup_stays_text(page: Any, doc: dict[str, Any]
                                                             ) -> None:
    assert _rows(page).count() == len(doc["findings"])
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    assert SCRIPT_XSS in page.locator("#keys-table").inner_text()
    row = _rows(page).filter(has_text="plain").filter(has_text="instance-unencrypted")
    row.click()
    tags = page.locator("tr.detail section.tags")
    assert IMG_XSS in tags.inner_text() and SCRIPT_XSS in tags.inner_text()
    assert page.locator("img").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)


def test_severity_filter_changes_the_visible_rows(page: Any, doc: dict[str, Any]) -> None:
    before = _rows(page).count()
    page.select_option("#f-severity", "critical")
    critical = [f for f in doc["findings"] if f["severity"] == "critical"]
    assert 0 < _rows(page).count() == len(critical) < before
    assert set(_column(page, 1)) == {"critical"}
    page.select_option("#f-status", "fail")
    assert _rows(page).count() == sum(f["status"] == "fail" for f in critical)
    assert "matching finding" in page.locator("#f-count").inner_text()


def test_free_text_filter(page: Any, doc: dict[str, Any]) -> None:
    page.fill("#f-text", "plain-snap")
    expected = sum(f["resource"]["id"] == "plain-snap" for f in doc["findings"])
    sync_api.expect(_rows(page)).to_have_count(expected)
    assert set(_resource_ids(page)) == {"plain-snap"}
    page.fill("#f-text", "environment=production")  # tags are searchable as key=value
    production = sum(f["tags"].get("environment") == "production" for f in doc["findings"])
    assert production >= 1
    sync_api.expect(_rows(page)).to_have_count(production)
    page.fill("#f-text", "no such thing anywhere")
    page.wait_for_selector("#findings-body tr.no-match")


def test_sorting_by_column(page: Any) -> None:
    page.click("th button[data-sort=resource]")
    ids = _resource_ids(page)
    assert len(set(ids)) > 3 and ids == sorted(ids, key=str.lower)
    assert page.get_attribute("th:has(button[data-sort=resource])", "aria-sort") == "ascending"
    page.click("th button[data-sort=resource]")
    assert _resource_ids(page) == sorted(ids, key=str.lower, reverse=True)
    page.click("th button[data-sort=region]")
    regions = _column(page, 5)
    assert regions == sorted(regions) and regions[0] == "eu-west-1"


def test_failing_finding_expands_to_remediation_with_copy_buttons(page: Any) -> None:
    row = _rows(page).filter(has_text="doomed").filter(has_text="key-unusable")
    row.locator("button.toggle").click()
    assert row.locator("button.toggle").get_attribute("aria-expanded") == "true"
    detail = page.locator("tr.detail")
    assert detail.count() == 1
    steps = detail.locator(".remediation li")
    # Cancel the deletion, enable the key, and turn its rotation back on (a key pending
    # deletion reads rotation off; cancelled, the scan cannot tell its old setting).
    assert steps.count() == 3
    assert "aws kms cancel-key-deletion" in steps.nth(0).inner_text()
    assert "aws kms enable-key-rotation" in steps.nth(2).inner_text()
    assert "PendingDeletion" in detail.inner_text()
    copy = steps.nth(0).locator("button.copy")
    copy.click()
    sync_api.expect(copy).not_to_have_text("Copy")
    assert copy.inner_text() in ("Copied", "Press Ctrl+C")
    row.locator("button.toggle").click()
    assert page.locator("tr.detail").count() == 0
    assert _rows(page).filter(has_text="encryption-credentials-inaccessible").first.locator(
        "button.toggle").count() == 0  # passing rows are compact: nothing to expand


def test_incomplete_banner_and_key_view(page: Any) -> None:
    banner = page.locator("#incomplete")
    assert banner.is_visible()
    assert "INCOMPLETE" in banner.inner_text() and "AccessDenied" in banner.inner_text()
    pending = page.locator("#keys-table tr.key-danger")
    assert pending.count() == 1 and pending.is_visible()
    text = pending.inner_text()
    assert "PendingDeletion" in text and "5 days left" in text and "db:doomed" in text


def test_chart_bar_filters_the_table(page: Any, doc: dict[str, Any]) -> None:
    page.click("#chart-rule .bar[data-value=snapshot-public]")
    assert page.input_value("#f-rule") == "snapshot-public"
    assert page.input_value("#f-status") == "fail"
    assert _column(page, 3) == ["snapshot-public"]


# -- operations: baseline, waivers, history, several accounts -----------------------------

def test_new_badge_and_new_only_filter(ops_page: Any, ops_doc: dict[str, Any]) -> None:
    page = ops_page
    new = [f for f in ops_doc["findings"] if f["baseline"] == "new"]
    assert len(new) == 2
    assert _rows(page).count() == len(ops_doc["findings"])
    sync_api.expect(page.locator("#findings-body .badge-new")).to_have_count(2)
    page.select_option("#f-baseline", "new")
    sync_api.expect(_rows(page)).to_have_count(2)
    assert page.locator("#findings-body tr.row .badge-new").count() == 2
    assert set(_resource_ids(page)) == {"plain-snap", "billing"}
    page.click("#f-reset")
    sync_api.expect(_rows(page)).to_have_count(len(ops_doc["findings"]))
    page.click("#card-new")  # the summary card sets the same filter
    assert page.input_value("#f-baseline") == "new"
    sync_api.expect(_rows(page)).to_have_count(2)
    # The account filter narrows rows, and the account is in each row with two accounts.
    page.click("#f-reset")
    page.select_option("#f-account", OTHER_ACCOUNT)
    other = sum(f["resource"]["account_id"] == OTHER_ACCOUNT for f in ops_doc["findings"])
    sync_api.expect(_rows(page)).to_have_count(other)
    assert set(_column(page, 6)) == {OTHER_ACCOUNT}
    # The resolved failures, folded away until asked for.
    resolved = page.locator("#resolved")
    assert not resolved.locator("table").is_visible()
    page.click("#card-resolved")
    sync_api.expect(resolved.locator("table")).to_be_visible()
    assert "decommissioned" in resolved.inner_text()


def test_waivers_trend_and_a_waived_finding_expanded(ops_page: Any) -> None:
    page = ops_page
    waivers = page.locator("#waivers-table")
    text = waivers.inner_text()
    assert IMG_XSS in text and SCRIPT_XSS in text  # shown as text, never run (no dialog)
    assert page.locator("img").count() == 0
    assert page.locator("#waivers-table tr.waiver-expired").count() == 1
    assert page.locator("#waivers-table tr.waiver-stale").count() == 1
    assert "trend" in page.locator("#trend h2").inner_text().lower()
    assert page.locator("#trend .hist-point").count() == 5
    assert BASELINE_TEXT in page.locator("#baseline-line").inner_text()
    page.select_option("#f-status", "waived")
    sync_api.expect(_rows(page)).to_have_count(1)
    _rows(page).first.locator("button.toggle").click()
    waiver = page.locator("tr.detail section.waiver")
    sync_api.expect(waiver).to_be_visible()
    body = waiver.inner_text()
    for text in ("Reason", "SSE-RDS accepted for the reporting cluster", "Owner",
                 "dba@example.com", "Expires", "2026-06-30"):
        assert text in body
    page.select_option("#f-status", "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-operations.png"), full_page=True)
