"""sample_reports/ is committed: it must exist for every format and match today's demo."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import boto3

from rdsaudit import __version__
from rdsaudit.collect import scan
from rdsaudit.demo.estate import DEMO_REGIONS, demo_environment, demo_policy, demo_scan_request
from rdsaudit.evaluate import evaluate
from rdsaudit.report import FORMATS, report_document

SAMPLES = Path(__file__).resolve().parents[2] / "sample_reports"


def test_every_format_and_a_plan_are_committed() -> None:
    for fmt in FORMATS.values():
        assert (SAMPLES / f"rdsaudit-report.{fmt.extension}").stat().st_size > 0, fmt.name
    plan = (SAMPLES / "remediation-plan.sh").read_text()
    assert plan.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in plan


def test_screenshots_and_a_pdf_of_the_demo_report_are_committed() -> None:
    assert (SAMPLES / "rdsaudit-report.pdf").read_bytes().startswith(b"%PDF-")
    for name in ("rdsaudit-report.png", "rdsaudit-report-phone.png"):
        assert (SAMPLES / name).read_bytes().startswith(b"\x89PNG"), name


def test_samples_are_current_with_the_demo() -> None:
    """Counts by rule, severity and resource type of a fresh demo scan equal the samples'
    (ids of keys and automated snapshots change per run; the judgement must not)."""
    sample = json.loads((SAMPLES / "rdsaudit-report.json").read_text())
    assert sample["tool"]["version"] == __version__, "run `make samples`"
    with demo_environment() as (fake, _):
        session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t",
                                region_name=DEMO_REGIONS[0])
        inventory = scan(session, demo_scan_request(fake.endpoint_url))
    fresh = report_document(evaluate(inventory, demo_policy()))
    assert sample["scan"]["accounts"] == fresh["scan"]["accounts"], "run `make samples`"
    for key in ("failures_by_rule", "failures_by_severity", "resources", "findings",
                "by_account"):
        assert sample["summary"][key] == fresh["summary"][key], f"{key}: run `make samples`"


def test_the_samples_deletion_deadline_is_the_demos_seven_days() -> None:
    """The crm key is scheduled for deletion with a 7-day window: counted from the samples'
    pinned scan time, its deadline is 7 days on (moto dated it from the wall clock)."""
    sample = json.loads((SAMPLES / "rdsaudit-report.json").read_text())
    [crm] = [k for k in sample["keys"] if "alias/crm-retiring" in k["aliases"]]
    finished = datetime.fromisoformat(sample["scan"]["finished_at"].replace("Z", "+00:00"))
    deleted = datetime.fromisoformat(crm["deletion_date"].replace("Z", "+00:00"))
    assert deleted - finished == timedelta(days=7), "run `make samples`"
