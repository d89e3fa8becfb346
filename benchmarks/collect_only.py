"""The collector alone, as `rdsaudit scan` runs it, minus evaluation and reports.

    AWS_ENDPOINT_URL=... .venv/bin/python benchmarks/collect_only.py --regions R1,R2 \
        --workers 64 --save-inventory inv.json
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

import boto3

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.serialize import iter_inventory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--regions", required=True)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--max-attempts", type=int, default=5)
    ap.add_argument("--save-inventory", type=Path, required=True)
    args = ap.parse_args(argv)
    inventory = scan(boto3.Session(), ScanRequest(regions=args.regions.split(","),
                                                  workers=args.workers,
                                                  max_attempts=args.max_attempts))
    # Peak RSS of collecting alone, before the inventory is turned into JSON.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.save_inventory.with_suffix(".rss").write_text(f"{peak:.1f}\n", encoding="utf-8")
    with args.save_inventory.open("w", encoding="utf-8") as out:  # streamed, as the CLI does
        for chunk in iter_inventory(inventory):
            out.write(chunk)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
