"""HTML report at scale: 20,000 findings rendered, then driven in Debian's Chromium.

Prints the file size, the render time, the page load time and how long a severity filter
change takes to update the rows. Figures only, no assertions: a benchmark, not a test.

    .venv/bin/python benchmarks/bench_html.py [--findings 20000] [--keep report.html]
    .venv/bin/python benchmarks/bench_html.py --html OUT/rdsaudit-report.html
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rdsaudit.evaluate import evaluate
from rdsaudit.model import (
    CollectionError,
    EncryptionType,
    Inventory,
    KeyLookup,
    KmsAlias,
    KmsKey,
    Resource,
    ResourceType,
    RotationLookup,
    ScanInfo,
    SnapshotShare,
)
from rdsaudit.policy import Policy
from rdsaudit.report import report_document
from rdsaudit.report.html import render_html

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
STATES = ("Enabled",) * 6 + ("Disabled", "PendingDeletion")


def _keys() -> tuple[list[KmsKey], list[KmsAlias]]:
    keys, aliases = [], []
    for a, account in enumerate(ACCOUNTS):
        for r, region in enumerate(REGIONS):
            managed_id = f"{a}{r}000000-0000-4000-8000-000000000000"
            keys.append(KmsKey(f"arn:aws:kms:{region}:{account}:key/{managed_id}", region,
                               account, KeyLookup.OK, "Enabled", "AWS", "AWS_KMS",
                               "Default key for RDS"))
            aliases.append(KmsAlias("alias/aws/rds", region, account, managed_id))
            for k in range(4):
                state = STATES[(a + r + k) % len(STATES)]
                keys.append(KmsKey(
                    f"arn:aws:kms:{region}:{account}:key/{a}{r}{k}00000-0000-4000-8000-0000000000{k}0",
                    region, account, KeyLookup.OK, state, "CUSTOMER", "AWS_KMS",
                    f"team {k} data key <{region}>",
                    deletion_date="2026-01-20T00:00:00Z" if state == "PendingDeletion" else None,
                    rotation=RotationLookup.OK, rotation_enabled=k % 2 == 0))
    return keys, aliases


def build_inventory(resources_wanted: int) -> Inventory:
    keys, aliases = _keys()
    by_place: dict[tuple[str, str], list[KmsKey]] = {}
    for key in keys:
        by_place.setdefault((key.account_id, key.region), []).append(key)
    resources: list[Resource] = []
    shares: list[SnapshotShare] = []
    for n in range(resources_wanted):
        account, region = ACCOUNTS[n % 3], REGIONS[(n // 3) % 4]
        place_keys = by_place[(account, region)]
        key = place_keys[n % len(place_keys)]
        encrypted = n % 9 != 0
        tags = (("owner", f"team-{n % 17}"), ("environment", ("prod", "staging", "dev")[n % 3]),
                ("cost-center", f"cc-{n % 50:03d}"))
        enc = EncryptionType.SSE_KMS if encrypted else EncryptionType.NONE
        kind = n % 4
        if kind in (0, 1):
            name = f"db-{n:05d}"
            resources.append(Resource(
                ResourceType.DB_INSTANCE, f"arn:aws:rds:{region}:{account}:db:{name}", name,
                region, account, encrypted, enc, key.arn if encrypted else None,
                engine="postgres", status="available", instance_class="db.r6g.large",
                backup_retention=7 if n % 13 else 0, tags=tags))
        elif kind == 2:
            name = f"snap-{n:05d}"
            arn = f"arn:aws:rds:{region}:{account}:snapshot:{name}"
            resources.append(Resource(
                ResourceType.DB_SNAPSHOT, arn, name, region, account, encrypted, enc,
                key.arn if encrypted else None, snapshot_type="manual",
                source_id=f"db-{n - 2:05d}", tags=tags))
            shares.append(SnapshotShare(arn, ("all",) if n % 97 == 0 else ()))
        else:
            name = f"cluster-{n:05d}"
            owned = n % 7 == 0
            resources.append(Resource(
                ResourceType.DB_CLUSTER, f"arn:aws:rds:{region}:{account}:cluster:{name}",
                name, region, account, encrypted,
                EncryptionType.SSE_RDS if owned and encrypted else enc,
                key.arn if encrypted and not owned else None, engine="aurora-postgresql",
                status="available", tags=tags))
    errors = (CollectionError(ACCOUNTS[2], "ap-southeast-2", "kms", "DescribeKey",
                              "ThrottlingException", "Rate exceeded"),)
    return Inventory(
        scan=ScanInfo("2026-01-01T00:00:00Z", "2026-01-01T00:03:10Z", ACCOUNTS, REGIONS),
        resources=tuple(resources), keys=tuple(keys), aliases=tuple(aliases),
        shares=tuple(shares), errors=errors)


def build_document(findings: int) -> dict[str, Any]:
    resources = findings // 5
    while True:
        result = evaluate(build_inventory(resources), Policy())
        if len(result.findings) >= findings:
            return report_document(replace(result, findings=result.findings[:findings]))
        resources = int(resources * findings / max(1, len(result.findings))) + 10


# Runs one UI action in the page and times it twice: the synchronous JS (the handler that
# rebuilds the rows) and until the next frame after it (style, layout and paint included).
MEASURE_JS = """async (action) => {
  const $ = (id) => document.getElementById(id);
  const set = (id, v, type) => { $(id).value = v; $(id).dispatchEvent(new Event(type)); };
  const act = {
    severity: (v) => set('f-severity', v, 'change'),
    status: (v) => set('f-status', v, 'change'),
    text: (v) => set('f-text', v, 'input'),
    sort: (v) => { document.querySelector('th button[data-sort=' + v + ']').click(); },
    click: (v) => { $(v).click(); },
  };
  const t0 = performance.now();
  act[action[0]](action[1]);
  const t1 = performance.now();
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const t2 = performance.now();
  return {script: t1 - t0, painted: t2 - t0,
          rows: document.querySelectorAll('#findings-body tr.row').length};
}"""


def browse(path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-ready=true]")
        print(f"page load to first rows:    {1000 * (time.perf_counter() - start):8.0f} ms")
        page.wait_for_timeout(500)  # let the background search index finish

        def measure(label: str, *action: str) -> dict[str, Any]:
            figures: dict[str, Any] = page.evaluate(MEASURE_JS, list(action))
            print(f"{label:<28}{figures['script']:8.1f} ms JS, {figures['painted']:7.1f} ms "
                  f"to next frame ({figures['rows']} rows shown)")
            return figures

        script, painted = [], []
        for severity in ("high", "critical", "medium", "", "low", "high", "") * 2:
            figures = page.evaluate(MEASURE_JS, ["severity", severity])
            script.append(figures["script"])
            painted.append(figures["painted"])
        print(f"severity filter, {len(script)} changes: {statistics.median(script):6.1f} ms JS "
              f"(median, max {max(script):.1f}), {statistics.median(painted):.1f} ms to next "
              f"frame (median, max {max(painted):.1f})")

        start = time.perf_counter()
        page.select_option("#f-severity", "critical")
        # Locator waits, not wait_for_function: the page's CSP forbids the eval it uses.
        expect(page.locator("#findings-body tr.row .badge:not(.sev-critical)")).to_have_count(0)
        print(f"{'select_option round trip':<28}{1000 * (time.perf_counter() - start):8.1f} ms "
              "wall (Playwright, includes IPC)")
        page.select_option("#f-severity", "")
        measure("free-text 'team-3 prod'", "text", "team-3 prod")
        measure("free-text cleared", "text", "")
        measure("sort by resource", "sort", "resource")
        measure("sort by severity", "sort", "severity")
        measure("show 200 more", "click", "show-more")
        measure("status = fail", "status", "fail")
        measure("show all failing", "click", "show-all")
        print(f"{'console errors':<28}{len(problems):8d}")
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="also write the report here")
    parser.add_argument("--html", type=Path, help="drive this report (e.g. the 100k one that "
                        "offline.py's CLI run wrote) instead of building one")
    args = parser.parse_args(argv)
    if args.html:
        print(f"file size:                  {args.html.stat().st_size / 1e6:8.2f} MB")
        browse(args.html.resolve())
        return 0

    start = time.perf_counter()
    doc = build_document(args.findings)
    statuses = {s: sum(f["status"] == s for f in doc["findings"]) for s in ("fail", "pass")}
    print(f"findings:                   {len(doc['findings']):8d} "
          f"({statuses['fail']} fail, {statuses['pass']} pass; "
          f"{doc['summary']['resources_total']} resources, {len(doc['keys'])} keys) "
          f"built in {time.perf_counter() - start:.1f} s")

    times = []
    for _ in range(3):
        start = time.perf_counter()
        html = render_html(doc)
        times.append(time.perf_counter() - start)
    size = len(html.encode())
    print(f"render_html:                {1000 * min(times):8.0f} ms (best of 3)")
    print(f"file size:                  {size / 1e6:8.2f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(html, encoding="utf-8")
        if args.keep:
            args.keep.write_text(html, encoding="utf-8")
        if Path(CHROMIUM).exists():
            browse(path)
        else:
            print(f"{CHROMIUM} not found: browser figures skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
