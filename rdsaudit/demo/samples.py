"""Regenerate sample_reports/ from the demo estate: `make samples`.

Every format, a remediation runbook, and (when Debian's Chromium is present) screenshots
of the HTML report (the first screen at 1440 x 900, a phone at 390 px) and the report
printed to PDF (A4), the file an auditor keeps. The scan time is pinned so the committed
samples only change when the product does.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import boto3

from rdsaudit.collect import scan
from rdsaudit.demo.estate import DEMO_REGIONS, demo_environment, demo_policy, demo_scan_request
from rdsaudit.evaluate import evaluate
from rdsaudit.plan.runbook import render_runbook
from rdsaudit.report import FORMATS, report_document

PINNED_START, PINNED_END = "2026-11-27T09:00:00Z", "2026-11-27T09:00:04Z"
CHROMIUM = Path("/usr/bin/chromium")


def main(out: Path) -> None:
    # Dates the estate sets relative to the scan (imported key material's expiry) count
    # from the pinned scan time, so the samples judge them as a live demo does.
    pinned = datetime.fromisoformat(PINNED_END.replace("Z", "+00:00")).timestamp()
    with demo_environment(now=pinned) as (fake, _):
        session = boto3.Session(aws_access_key_id="demo",
                                aws_secret_access_key="demo",  # noqa: S106 - emulator
                                region_name=DEMO_REGIONS[0])
        inventory = scan(session, demo_scan_request(fake.endpoint_url))
    inventory = replace(inventory, scan=replace(inventory.scan, started_at=PINNED_START,
                                                finished_at=PINNED_END))
    doc = report_document(evaluate(inventory, demo_policy()))
    out.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS.values():
        rendered = fmt.render(doc)
        path = out / f"rdsaudit-report.{fmt.extension}"
        if isinstance(rendered, bytes):
            path.write_bytes(rendered)
        else:
            path.write_text(rendered, encoding="utf-8")
    plan = render_runbook(doc, ["legacy-reporting-mysql", "payments-db"],
                          source="rdsaudit-report.json")
    (out / "remediation-plan.sh").write_text(plan, encoding="utf-8")
    if CHROMIUM.exists():
        _screenshot(out / "rdsaudit-report.html", out)
    print(f"samples written to {out}", file=sys.stderr)


def _screenshot(page_path: Path, out: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("html[data-ready=true]")
        page.screenshot(path=str(out / "rdsaudit-report.png"), full_page=False)
        page.pdf(path=str(out / "rdsaudit-report.pdf"), format="A4", print_background=True)
        page.close()
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(page_path.resolve().as_uri())
        phone.wait_for_selector("html[data-ready=true]")
        phone.screenshot(path=str(out / "rdsaudit-report-phone.png"), full_page=False)
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "sample_reports"))
