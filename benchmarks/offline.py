"""Offline speed: `rdsaudit evaluate` and every report format on a saved inventory of 100k.

The inventory is built directly (no AWS): 4 regions, 64 customer keys and one AWS managed key
per region, the resource mix of estate.py, one in five resources unencrypted. Three passes:

1. the CLI, `rdsaudit evaluate inv.json --format <all> --output-dir OUT`, under
   /usr/bin/time (wall, CPU, peak RSS): the figure the target is about;
2. the same pipeline in-process, stage by stage (load, evaluate, document, each renderer);
3. the same again under cProfile, for where each stage spends its time.

    .venv/bin/python benchmarks/offline.py [--size 100000] [--no-profile] [--update-results]
    .venv/bin/python benchmarks/offline.py --scaling [--update-results]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rdsaudit.model import (
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

HERE = Path(__file__).resolve().parent
ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
KEYS_PER_REGION = 16


def _key_id(region: int, k: int) -> str:
    return f"{region:02d}{k:06d}-0000-4000-8000-000000000000"


def build_inventory(size: int) -> Inventory:
    keys: list[KmsKey] = []
    aliases: list[KmsAlias] = []
    region_keys: dict[str, list[str]] = {}
    for r, region in enumerate(REGIONS):
        arns = []
        for k in range(KEYS_PER_REGION + 1):
            kid = _key_id(r, k)
            arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{kid}"
            managed = k == KEYS_PER_REGION
            keys.append(KmsKey(arn, region, ACCOUNT, KeyLookup.OK, key_state="Enabled",
                               key_manager="AWS" if managed else "CUSTOMER", origin="AWS_KMS",
                               rotation=RotationLookup.NOT_CHECKED if managed
                               else RotationLookup.OK,
                               rotation_enabled=None if managed else k % 2 == 0))
            aliases.append(KmsAlias("alias/aws/rds" if managed else f"alias/bench-{k}", region,
                                    ACCOUNT, kid))
            arns.append(arn)
        region_keys[region] = arns
    resources: list[Resource] = []
    shares: list[SnapshotShare] = []
    per_region = size // len(REGIONS)
    for region in REGIONS:
        arns = region_keys[region]
        instances = per_region // 5
        for i in range(per_region):
            encrypted = i % 5 != 4
            key = arns[i % len(arns)] if encrypted else None
            enc = EncryptionType.SSE_KMS if encrypted else EncryptionType.NONE
            tags = (("team", f"team-{i % 7}"), ("environment", "production"))
            base = f"arn:aws:rds:{region}:{ACCOUNT}"
            kind = i % 10
            if kind < 2:
                rid = f"db-{i:06d}"
                resources.append(Resource(ResourceType.DB_INSTANCE, f"{base}:db:{rid}", rid,
                                          region, ACCOUNT, encrypted, enc, key,
                                          engine="postgres", status="available",
                                          instance_class="db.m6g.large", backup_retention=7,
                                          tags=tags))
            elif kind < 4:
                rid = f"rds:db-{i % max(1, instances):06d}-2026-11-27-{i:06d}"
                resources.append(Resource(ResourceType.DB_SNAPSHOT, f"{base}:snapshot:{rid}",
                                          rid, region, ACCOUNT, encrypted, enc, key,
                                          engine="postgres", status="available",
                                          snapshot_type="automated", source_id="db", tags=tags))
            elif kind < 6:
                rid = f"ab-{i:020d}"
                resources.append(Resource(ResourceType.DB_AUTOMATED_BACKUP,
                                          f"{base}:auto-backup:{rid}", rid, region, ACCOUNT,
                                          encrypted, enc, key, engine="postgres",
                                          status="active", snapshot_type="automated",
                                          source_id="db", backup_retention=7, tags=tags))
            elif kind < 9:
                rid = f"snap-{i:06d}"
                arn = f"{base}:snapshot:{rid}"
                resources.append(Resource(ResourceType.DB_SNAPSHOT, arn, rid, region, ACCOUNT,
                                          encrypted, enc, key, engine="postgres",
                                          status="available", snapshot_type="manual",
                                          source_id="db", tags=tags))
                if not encrypted:
                    shares.append(SnapshotShare(arn, ()))
            else:
                rid = f"aurora-{i:06d}"
                resources.append(Resource(ResourceType.DB_CLUSTER, f"{base}:cluster:{rid}", rid,
                                          region, ACCOUNT, encrypted, enc, key,
                                          engine="aurora-postgresql", status="available",
                                          backup_retention=7, tags=tags))
    scan = ScanInfo(started_at="2026-11-27T12:00:00Z", finished_at="2026-11-27T12:01:00Z",
                    accounts=(ACCOUNT,), regions=REGIONS)
    return Inventory(scan=scan, resources=tuple(resources), keys=tuple(keys),
                     aliases=tuple(aliases), shares=tuple(shares))


def _stages(path: Path, out: Path) -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    from rdsaudit.evaluate import evaluate
    from rdsaudit.policy import Policy
    from rdsaudit.report import FORMATS, report_document
    from rdsaudit.serialize import load_inventory

    def load(s: dict[str, Any]) -> None:
        s["inventory"] = load_inventory(path)

    def judge(s: dict[str, Any]) -> None:
        s["result"] = evaluate(s["inventory"], Policy(), pass_findings=False)  # as the CLI

    def document(s: dict[str, Any]) -> None:
        s["doc"] = report_document(s["result"])

    stages = [("load inventory", load), ("evaluate", judge), ("report document", document)]
    for name, fmt in FORMATS.items():
        def render(s: dict[str, Any], fmt: Any = fmt) -> None:
            target = out / f"report.{fmt.extension}"
            if fmt.stream is not None:  # as the CLI writes it: chunk by chunk
                with target.open("w", encoding="utf-8", newline="") as handle:
                    handle.writelines(fmt.stream(s["doc"]))
                return
            rendered = fmt.render(s["doc"])
            data = rendered if isinstance(rendered, bytes) else rendered.encode()
            target.write_bytes(data)

        stages.append((f"render {name} (+ write)", render))
    return stages


def run(size: int, workdir: Path, profile: bool = True) -> dict[str, Any]:
    """All three passes; returns figures and the markdown for results.md."""
    import subprocess

    sys.path.insert(0, str(HERE))
    from common import RDSAUDIT, timed

    from rdsaudit.report import FORMATS
    from rdsaudit.serialize import dump_inventory

    print(f"== offline: building an inventory of {size} resources", flush=True)
    inventory = build_inventory(size)
    path = workdir / "offline-inventory.json"
    path.write_text(dump_inventory(inventory), encoding="utf-8")
    del inventory
    out = workdir / "offline-out"
    out.mkdir(exist_ok=True)
    cmd = [RDSAUDIT, "evaluate", str(path), "--format", ",".join(FORMATS), "--output-dir",
           str(out), "--exit-zero", "--quiet"]
    print("   rdsaudit evaluate, every format", flush=True)
    env = {"PATH": "/usr/bin:/bin"}
    measured = timed(cmd, env)
    sizes = {p.name.removeprefix("rdsaudit-report."): p.stat().st_size
             for p in out.iterdir() if p.is_file()}
    stage_times: list[tuple[str, float, float]] = []  # (stage, wall, CPU)
    state: dict[str, Any] = {}
    print("   stage by stage", flush=True)
    gc.set_threshold(100_000, 10, 10)  # as rdsaudit.cli.main sets it
    for name, fn in _stages(path, out):
        start, cpu = time.perf_counter(), time.process_time()
        fn(state)
        stage_times.append((name, time.perf_counter() - start, time.process_time() - cpu))
    findings = len(state["result"].findings)
    state.clear()
    print("   under cProfile", flush=True)
    profiles: list[tuple[str, str]] = []
    for name, fn in _stages(path, out) if profile else []:
        prof = cProfile.Profile()
        prof.enable()
        fn(state)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(8)
        profiles.append((name, _top(text.getvalue())))
    subprocess.run(["rm", "-rf", str(out)], check=False)
    total = sum(c for _, _, c in stage_times)
    html_mb = sizes.get("html", 0) / 1e6
    md = [
        f"## Offline: evaluate and every format on {size // 1000}k resources",
        "",
        f"Inventory: {size} resources (`benchmarks/offline.py --size {size}`, built without "
        f"AWS), {path.stat().st_size / 1e6:.0f} MB of JSON, {findings} failing findings (every "
        "rule judges every resource it applies to; the report lists the failing ones and keeps "
        "each pass as a rule id on its resource).",
        "",
        f"`rdsaudit evaluate inv.json --format {','.join(FORMATS)} --output-dir OUT`: CPU "
        f"(user + sys) **{measured.cpu:.1f} s**, peak RSS **{measured.rss_mb:.0f} MB**, wall "
        f"{measured.wall:.1f} s (on a machine shared with other work: CPU is the figure to "
        f"compare); reports {sum(sizes.values()) / 1e6:.0f} MB, of which HTML "
        f"{html_mb:.1f} MB.",
        "",
        f"* ≤ 10 s: {_verdict(measured.cpu <= 10)} (CPU {measured.cpu:.1f} s).",
        f"* ≤ 500 MB peak RSS: {_verdict(measured.rss_mb <= 500)} ({measured.rss_mb:.0f} MB).",
        f"* HTML ≤ 20 MB: {_verdict(html_mb <= 20)} ({html_mb:.1f} MB).",
        "",
        "| stage (in-process) | CPU s | wall s | share of CPU | output MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, wall, cpu in stage_times:
        fmt = name.split()[1] if name.startswith("render") else None
        ext = FORMATS[fmt].extension if fmt else None
        mb = f"{sizes[ext] / 1e6:.1f}" if ext in sizes else ""
        md.append(f"| {name} | {cpu:.2f} | {wall:.2f} | {100 * cpu / total:.0f}% | {mb} |")
    md.append(f"| total | {total:.2f} | {sum(w for _, w, _ in stage_times):.2f} | | |")
    md += ["", "Where each stage spends its time (cProfile, top functions by own time; "
           "profiling roughly doubles the times):", ""]
    for name, top in profiles:
        md += [f"<details><summary>{name}</summary>", "", "```", top, "```", "</details>", ""]
    return {"wall": measured.wall, "cpu": measured.cpu, "measured": measured,
            "stages": stage_times, "findings": findings, "sizes": sizes, "markdown": md}


def scaling(sizes: list[int], workdir: Path) -> list[str]:
    """The CLI pass alone at each size: CPU, peak RSS and reports, and the growth per
    resource against the smallest size (linear: about flat per resource)."""
    sys.path.insert(0, str(HERE))
    from common import RDSAUDIT, timed

    from rdsaudit.report import FORMATS
    from rdsaudit.serialize import dump_inventory

    rows = []
    for size in sizes:
        print(f"== scaling: {size} resources", flush=True)
        path = workdir / f"scaling-{size}.json"
        path.write_text(dump_inventory(build_inventory(size)), encoding="utf-8")
        out = workdir / f"scaling-{size}"
        out.mkdir(exist_ok=True)
        measured = timed([RDSAUDIT, "evaluate", str(path), "--format", ",".join(FORMATS),
                          "--output-dir", str(out), "--exit-zero", "--quiet"],
                         {"PATH": "/usr/bin:/bin"})
        reports = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
        html = (out / "rdsaudit-report.html").stat().st_size
        rows.append((size, measured, reports, html))
        path.unlink()
    base = rows[0]
    md = [f"## Offline scaling: evaluate and every format, {sizes[0]} to {sizes[-1]} "
          "resources", "",
          "`benchmarks/offline.py --scaling`: the CLI run of the section above at each size. "
          "CPU and peak RSS per 1,000 resources should stay about flat (linear); start-up and "
          "the one-time load of the botocore model weigh on the small end.", "",
          "| resources | CPU s | wall s | peak RSS MB | reports MB | HTML MB | CPU s / 1k | "
          "RSS MB / 1k above 1k's |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, m, reports, html in rows:
        extra = (m.rss_mb - base[1].rss_mb) / ((size - base[0]) / 1000) if size > base[0] \
            else 0.0
        md.append(f"| {size} | {m.cpu:.1f} | {m.wall:.1f} | {m.rss_mb:.0f} | "
                  f"{reports / 1e6:.0f} | {html / 1e6:.1f} | {1000 * m.cpu / size:.2f} | "
                  f"{extra:.1f} |")
    return md


def _verdict(ok: bool) -> str:
    return "holds" if ok else "**does not hold**"


def _top(report: str) -> str:
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    root = str(HERE.parent) + "/"
    stdlib = str(Path(os.__file__).parent)
    kept = [line.replace(str(Path(sys.prefix)), "<venv>").replace(root, "")
            .replace(stdlib, "<python>") for line in lines[start:] if line]
    return "\n".join(kept[:9])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile pass")
    ap.add_argument("--update-results", action="store_true",
                    help="replace this size's offline section of benchmarks/results.md")
    ap.add_argument("--scaling", action="store_true",
                    help="only the CLI run at 1k, 10k, 20k, 50k and 100k resources")
    args = ap.parse_args(argv)
    if args.scaling:
        with tempfile.TemporaryDirectory(prefix="rdsaudit-offline-") as tmp:
            md = scaling([1000, 10_000, 20_000, 50_000, 100_000], Path(tmp))
        print("\n".join(md))
        if args.update_results:
            update_results(HERE / "results.md", md)
        return 0
    with tempfile.TemporaryDirectory(prefix="rdsaudit-offline-") as tmp:
        result = run(args.size, Path(tmp), profile=not args.no_profile)
    print("\n".join(result["markdown"]))
    if args.update_results:
        update_results(HERE / "results.md", result["markdown"])
    return 0


def update_results(path: Path, section: list[str]) -> None:
    """Put `section` (a `## ` heading and its text) in place of the section of that heading
    in results.md, or at its end."""
    lines = path.read_text(encoding="utf-8").splitlines()
    heading = section[0]
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines[start:end] = [*section, ""]
    else:
        lines += ["", *section]
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
