"""`make bench`: scan benchmark estates through the real CLI and hold them to the API floor.

For each size (1k, 10k, 50k resources over 4 regions): start `server.py` (its own process,
seeded through moto's backends, 50 ms a call), run `rdsaudit scan` as a subprocess under
`/usr/bin/time`, then compare the calls the server answered with the floor computed from the
saved inventory (`rdsaudit.collect.floor`), and the scan's wall time with the critical path.
The same estate is then scanned with DescribeKey throttled to 20 calls a second per region,
and by the collector alone (no evaluation or reports) to separate its memory and CPU from
the rest. Finally `offline.py` times `rdsaudit evaluate` with every format on 100k
resources. Writes benchmarks/results.md (QUICK=1: 1k only, printed, nothing written).

    .venv/bin/python benchmarks/run.py [--quick] [--sizes 1000,10000] [--workers 64]
    .venv/bin/python benchmarks/run.py --peer 'prowler aws ...'   # same estate, side by side
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


from common import RDSAUDIT, Measured, aws_env, timed  # noqa: E402

from rdsaudit.collect.floor import ListingOrder, api_floor, critical_path  # noqa: E402
from rdsaudit.collect.specs import LISTINGS  # noqa: E402
from rdsaudit.model import Inventory  # noqa: E402
from rdsaudit.serialize import load_inventory  # noqa: E402

PYTHON = sys.executable
LATENCY = 0.05
THROTTLE = ("kms:DescribeKey", 20.0)
PLAIN_SIZE = 10000  # the size also scanned against plain FakeAWS
RESULTS = HERE / "results.md"
ALL_FORMATS = "json,html,csv,junit,sarif,asff,ocsf,table,xlsx"


class Server:
    """server.py in a process of its own; it stops when we close its stdin."""

    def __init__(self, size: int, latency: float, plain: bool = False,
                 org: int | None = None) -> None:
        self.size = size
        self.latency = latency
        self.plain = plain
        self.org = org  # an Organization of this many accounts instead of a sized estate
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Server:
        cmd = [PYTHON, str(HERE / "server.py"), "--size", str(self.size), "--latency",
               str(self.latency), "--max-seconds", "3600", *(["--plain"] if self.plain else []),
               *(["--org", str(self.org)] if self.org else [])]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 600)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"benchmark server for {self.size} did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def endpoint(self) -> str:
        return str(self.info["endpoint"])

    def request(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310 - 127.0.0.1 only
            return json.loads(resp.read())


def listing_order(server: Server) -> ListingOrder:
    """What the server returned, by (region, LISTINGS row): makes the critical path exact."""
    out: dict[tuple[str, int], list[str]] = {}
    for entry in server.request("GET", "/_order"):
        for i, spec in enumerate(LISTINGS):
            wanted = {k: str(v) for k, v in spec.params.items() if k != "MaxRecords"}
            if spec.operation == entry["action"] and wanted == entry["params"]:
                out[(entry["region"], i)] = entry["arns"]
    return out


@dataclass
class Run:
    label: str
    size: int
    command: str
    measured: Measured
    scan_seconds: float
    parse_seconds: float
    bound_seconds: float
    best_case_seconds: float
    floor: dict[str, int]
    answered: dict[str, int]  # HTTP 200 per operation, at the server
    refused: dict[str, int]  # throttled (or failed) attempts per operation
    reported_calls: dict[str, int]
    retries: dict[str, int]
    errors: int
    resources: int
    server_cpu: float = 0.0
    collector_rss_mb: float | None = None  # collector runs: peak before writing the JSON
    reports_mb: float = 0.0  # every report file the run wrote (10^6 bytes)
    notes: list[str] = field(default_factory=list)

    @property
    def floor_total(self) -> int:
        return sum(self.floor.values())

    @property
    def answered_total(self) -> int:
        return sum(self.answered.values())

    @property
    def exact(self) -> bool:
        return self.answered == self.floor and self.reported_calls == self.floor


def scan(server: Server, label: str, workdir: Path, workers: int,
         collector_only: bool = False) -> Run:
    server.request("DELETE", "/_window")
    out = workdir / label
    out.mkdir(parents=True, exist_ok=True)
    inv_path = out / "inventory.json"
    regions = ",".join(server.info["regions"])
    cpu_before = float(server.request("GET", "/_cpu")["seconds"])
    if collector_only:
        cmd = [PYTHON, str(HERE / "collect_only.py"), "--regions", regions, "--workers",
               str(workers), "--save-inventory", str(inv_path)]
    else:
        # Every format, as the reports issue's target reads ("a scan with every format").
        cmd = [RDSAUDIT, "scan", "--regions", regions, "--workers", str(workers),
               "--format", ALL_FORMATS, "--output-dir", str(out),
               "--save-inventory", str(inv_path), "--exit-zero", "--quiet"]
    measured = timed(cmd, aws_env(server.endpoint))
    server_cpu = float(server.request("GET", "/_cpu")["seconds"]) - cpu_before
    window = server.request("GET", "/_window")
    parse = server.request("GET", "/_parse_time")
    inventory: Inventory = load_inventory(inv_path)
    order = listing_order(server)
    statuses: dict[str, dict[str, int]] = window["statuses"]
    shown = " ".join(shlex.quote(c) for c in cmd).replace(str(out), "OUT")
    shown = shown.replace(PYTHON, ".venv/bin/python").replace(RDSAUDIT, "rdsaudit")
    shown = shown.replace(str(HERE) + "/", "benchmarks/")
    return Run(
        label=label,
        size=server.size,
        command=f"AWS_ENDPOINT_URL=<server> {shown}",
        measured=measured,
        scan_seconds=float(window["seconds"] or 0.0),
        parse_seconds=float(parse["seconds"]),
        bound_seconds=critical_path(inventory, server.latency, order=order),
        best_case_seconds=critical_path(inventory, server.latency),
        floor=api_floor(inventory, discovered_regions=False),
        answered={op: s.get("200", 0) for op, s in sorted(statuses.items()) if s.get("200")},
        refused={op: sum(n for code, n in s.items() if code != "200")
                 for op, s in sorted(statuses.items())
                 if any(code != "200" for code in s)},
        reported_calls=dict(inventory.scan.api_calls),
        retries=dict(inventory.scan.retries),
        errors=len(inventory.errors),
        resources=len(inventory.resources),
        server_cpu=server_cpu,
        collector_rss_mb=(float(inv_path.with_suffix(".rss").read_text())
                          if collector_only else None),
        reports_mb=sum(f.stat().st_size for f in out.glob("rdsaudit-report.*")) / 1e6,
    )


def bench_size(size: int, workdir: Path, workers: int, peer: str | None) -> dict[str, Any]:
    print(f"== {size} resources: seeding the server", flush=True)
    with Server(size, LATENCY) as server:
        print(f"   seeded in {server.info['seed_seconds']} s, listings rendered in "
              f"{server.info['warm_seconds']} s; scanning", flush=True)
        runs = [scan(server, f"{size}-cli", workdir, workers)]
        runs.append(scan(server, f"{size}-collector", workdir, workers, collector_only=True))
        server.request("POST", "/_throttle", {"op": THROTTLE[0], "rate": THROTTLE[1]})
        runs.append(scan(server, f"{size}-throttled", workdir, workers))
        server.request("DELETE", "/_throttle")
        per_call = per_call_cpu(server)
        plain_cost = server.request("GET", "/_plain_cost")
        peer_run = None
        if peer:
            server.request("DELETE", "/_window")
            measured = timed(shlex.split(peer), aws_env(server.endpoint))
            window = server.request("GET", "/_window")
            peer_run = {"command": peer, "measured": asdict(measured),
                        "scan_seconds": window["seconds"], "statuses": window["statuses"]}
        for run in runs:
            print(f"   {run.label}: wall {run.measured.wall:.2f} s, scan "
                  f"{run.scan_seconds:.2f} s, bound {run.bound_seconds:.2f} s, parse "
                  f"{run.parse_seconds:.2f} s, calls {run.answered_total}/{run.floor_total}"
                  f"{' exact' if run.exact else ' NOT THE FLOOR'}, rss "
                  f"{run.measured.rss_mb:.0f} MB, CPU {run.measured.cpu:.1f} s, reports "
                  f"{run.reports_mb:.1f} MB, errors {run.errors}", flush=True)
        plain = None
        if size == PLAIN_SIZE:
            print("   the same collector against plain FakeAWS", flush=True)
            with Server(size, LATENCY, plain=True) as plain_server:
                plain = scan(plain_server, f"{size}-plain-emulator", workdir, workers,
                             collector_only=True)
            print(f"   {plain.label}: scan {plain.scan_seconds:.2f} s, server CPU "
                  f"{plain.server_cpu:.2f} s", flush=True)
        return {"size": size, "server": server.info, "runs": runs, "peer": peer_run,
                "per_call_cpu": per_call, "plain_cost": plain_cost, "plain": plain}


def per_call_cpu(server: Server, calls: int = 300) -> float:
    """Client CPU of one small call (DescribeKey) through AwsClients, one thread, no latency:
    what each call costs the scanner besides parsing its answer."""
    import boto3

    from rdsaudit.collect.clients import AwsClients

    server.request("POST", "/_latency", {"latency": 0})
    try:
        session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench",  # noqa: S106
                                region_name="us-east-1")
        clients = AwsClients(session, endpoint_url=server.endpoint)
        keys = [k["KeyArn"] for k in clients.call("kms", "us-east-1", "ListKeys", "list_keys",
                                                   Limit=1000)["Keys"]]
        for key in keys[:20]:
            clients.call("kms", "us-east-1", "DescribeKey", "describe_key", KeyId=key)
        start = time.process_time()
        for i in range(calls):
            clients.call("kms", "us-east-1", "DescribeKey", "describe_key",
                         KeyId=keys[i % len(keys)])
        return (time.process_time() - start) / calls
    finally:
        server.request("POST", "/_latency", {"latency": server.latency})


# -- results.md ------------------------------------------------------------------------------


def _ok(flag: bool) -> str:
    return "holds" if flag else "**does not hold**"


def render(results: list[dict[str, Any]], offline: dict[str, Any] | None, workers: int,
           elapsed: float) -> str:
    lines = [
        "# rdsaudit benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run.py`); do not edit by hand. Machine: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.machine()}; the whole suite took {elapsed / 60:.1f} min.",
        "",
        "Every scan is the real CLI as a subprocess against `benchmarks/server.py` (moto behind "
        f"the emulator's WSGI layer, {LATENCY * 1000:.0f} ms added to every call, in a "
        "process of its own) on 127.0.0.1, scanning 4 regions with "
        f"`--workers {workers}`. *Wall*, *CPU* (user + system) and *peak RSS* are the "
        "rdsaudit process's, from `/usr/bin/time`. *Scan* is the server's view: first "
        "request in to last response out (no interpreter start-up, evaluation or report "
        "writing). *Bound* is the critical path (`rdsaudit.collect.floor.critical_path`, "
        "exact for the order the server returned items) times the latency. *Parse* is "
        "botocore parsing every response body of the scan, single-threaded (the part of "
        "the client's work no concurrency can hide on one interpreter). *Calls* are "
        "answered calls at the server against the floor computed from the saved inventory "
        "(`api_floor`); rdsaudit's own count (`scan.api_calls`) is compared too.",
        "",
        "## Scans",
        "",
        "| run | resources | wall s | scan s | bound s | parse s | 1.3 bound + parse "
        "| calls / floor | peak RSS MB | CPU s | server CPU s | reports MB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for run in res["runs"]:
            target = 1.3 * run.bound_seconds + run.parse_seconds
            calls = f"{run.answered_total} / {run.floor_total} " + (
                "exact" if run.exact else "**differs**")
            rss = f"{run.measured.rss_mb:.0f}"
            if run.collector_rss_mb is not None:
                rss += f" ({run.collector_rss_mb:.0f} before the JSON)"
            lines.append(
                f"| {run.label} | {run.resources} | {run.measured.wall:.2f} | "
                f"{run.scan_seconds:.2f} | {run.bound_seconds:.2f} | {run.parse_seconds:.2f} | "
                f"{target:.2f} | {calls} | {rss} | {run.measured.cpu:.2f} | "
                f"{run.server_cpu:.2f} | {run.reports_mb:.1f} | {run.errors} |")
    lines += ["", "Runs: `-cli` is `rdsaudit scan` (collect, evaluate, every report format, "
              "saved inventory); `-collector` is the collector alone "
              "(`benchmarks/collect_only.py`, same code path, no evaluation or report) to show "
              "what collecting costs; "
              f"`-throttled` is the CLI with {THROTTLE[0]} limited to {THROTTLE[1]:.0f} calls a "
              "second per region by the server (token bucket, burst 1): throttled attempts "
              "are answered `ThrottlingException` and retried.", ""]
    lines += ["## Calls by operation against the floor", ""]
    for res in results:
        run = res["runs"][0]
        throttled = res["runs"][2]
        lines += [f"### {res['size']} resources", "",
                  "| operation | floor | answered (cli) | rdsaudit count | answered (throttled) "
                  "| throttled attempts | retries reported |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        ops = sorted(set(run.floor) | set(run.answered) | set(throttled.answered))
        for op in ops:
            lines.append(
                f"| {op} | {run.floor.get(op, 0)} | {run.answered.get(op, 0)} | "
                f"{run.reported_calls.get(op, 0)} | {throttled.answered.get(op, 0)} | "
                f"{throttled.refused.get(op, 0)} | {throttled.retries.get(op, 0)} |")
        lines += ["", f"Server: seeded in {res['server']['seed_seconds']} s through moto's "
                  f"backends, listings rendered once in {res['server']['warm_seconds']} s.", ""]
        if res["peer"]:
            peer = res["peer"]
            lines += [f"Peer on the same estate: `{peer['command']}`: wall "
                      f"{peer['measured']['wall']:.2f} s, RSS {peer['measured']['rss_mb']:.0f}"
                      f" MB, calls {sum(s.get('200', 0) for s in peer['statuses'].values())}.",
                      ""]
    lines += _emulator(results)
    lines += _targets(results, offline)
    if offline:
        lines += offline["markdown"]
    lines += ["## Commands", "",
              "Each figure comes from the command shown (OUT: a temporary directory; "
              "`<server>`: the endpoint `benchmarks/server.py --size N --latency 0.05` "
              "printed):", ""]
    for res in results:
        for run in res["runs"]:
            lines.append(f"* {run.label}: `{run.command}`")
    lines.append("")
    return "\n".join(lines)


def _emulator(results: list[dict[str, Any]]) -> list[str]:
    out = ["## The emulator", ""]
    for res in results:
        plain = res.get("plain")
        if plain is None:
            continue
        ours = res["runs"][1]
        out.append(
            f"* {res['size']} resources, the same collector against plain `FakeAWS` "
            f"(`server.py --plain`: werkzeug, `Connection: close`, pages cut from the whole "
            f"listing, moto for every answer): scan {plain.scan_seconds:.2f} s, server CPU "
            f"{plain.server_cpu:.2f} s, against {ours.scan_seconds:.2f} s and "
            f"{ours.server_cpu:.2f} s for `BenchAWS`; calls {plain.answered_total} / "
            f"{plain.floor_total} {'exact' if plain.exact else 'differ'}.")
    for res in results:
        cost = res.get("plain_cost") or {}
        if cost and res["size"] == max(r["size"] for r in results):
            out.append(
                f"* {res['size']} resources: plain `FakeAWS` parses the whole cached listing for "
                f"every page. Its largest listing here ({cost['listing']}, {cost['items']} "
                f"items, {cost['bytes'] / 1e6:.1f} MB of XML) costs "
                f"{cost['seconds_per_page'] * 1000:.0f} ms of server CPU per page, "
                f"{cost['seconds_per_listing']:.1f} s for its {cost['pages']} pages (per "
                "listing: pages x listing size, quadratic), on a server that serves every "
                "request on one interpreter.")
    out.append("")
    return out


def _targets(results: list[dict[str, Any]], offline: dict[str, Any] | None) -> list[str]:
    out = ["## Targets", ""]
    runs = [r for res in results for r in res["runs"]]
    exact = all(r.exact for r in runs if not r.label.endswith("-throttled"))
    out.append(f"* API calls equal the floor exactly at every size: {_ok(exact)}.")
    ten = next((r for r in runs if r.label == "10000-cli"), None)
    per_call = next((res["per_call_cpu"] for res in results if res["size"] == 10000), None)
    if ten is not None:
        target = 1.3 * ten.bound_seconds + ten.parse_seconds
        out.append(f"* 10k at 50 ms: scan {ten.scan_seconds:.2f} s ≤ 1.3 x "
                   f"{ten.bound_seconds:.2f} + {ten.parse_seconds:.2f} = {target:.2f} s: "
                   f"{_ok(ten.scan_seconds <= target)} (process wall {ten.measured.wall:.2f} "
                   "s includes start-up, evaluation and the report).")
        if per_call is not None:
            calls = ten.answered_total
            cpu = ten.parse_seconds + calls * per_call
            out.append(
                f"  The scan is bound by the client's CPU, not by the API: besides parsing, "
                f"every call costs the client {per_call * 1000:.2f} ms of CPU in botocore "
                f"(building, signing, sending, reading; measured one call at a time, no "
                f"latency), {calls} x {per_call * 1000:.2f} ms = {calls * per_call:.2f} s. "
                f"Parsing plus that is {cpu:.2f} s of work for one interpreter, before "
                f"normalising {ten.resources} records and the cost of dozens of threads "
                "taking turns on the GIL. The critical path itself "
                f"({ten.bound_seconds:.2f} s) is hidden: the longest listing's pages go out "
                "back to back while everything else runs beside them.")
    big = [r for r in runs if r.size == 50000 and not r.label.endswith("-throttled")]
    for r in big:
        if r.collector_rss_mb is not None:
            out.append(f"* Peak RSS at 50k, collecting: {r.collector_rss_mb:.0f} MB ≤ 300 MB: "
                       f"{_ok(r.collector_rss_mb <= 300)}; {r.measured.rss_mb:.0f} MB once the "
                       "inventory is also written as JSON (`serialize.dump_inventory` builds "
                       f"the whole document in memory): {_ok(r.measured.rss_mb <= 300)}.")
        else:
            out.append(f"* Peak RSS at 50k, `rdsaudit scan` (collect, evaluate, JSON report): "
                       f"{r.measured.rss_mb:.0f} MB ≤ 300 MB: {_ok(r.measured.rss_mb <= 300)}"
                       " (the findings and the report document, not the collector).")
    by_size = {r.size: r for r in runs if r.label.endswith("-collector")}
    for a, b in ((1000, 10000), (10000, 50000), (1000, 50000)):
        if a in by_size and b in by_size:
            small, large = by_size[a], by_size[b]
            rss_a = small.collector_rss_mb or small.measured.rss_mb
            rss_b = large.collector_rss_mb or large.measured.rss_mb
            out.append(f"* Growth {a // 1000}k → {b // 1000}k (collector, x{b // a} resources): "
                       f"scan x{large.scan_seconds / small.scan_seconds:.1f}, CPU "
                       f"x{large.measured.cpu / small.measured.cpu:.1f}, RSS "
                       f"x{rss_b / rss_a:.1f}: linear or better "
                       "(fixed costs, start-up and clients, weigh on the small end).")
    throttled = [r for r in runs if r.label.endswith("-throttled")]
    out.append("* Throttled runs complete with no recorded error: "
               f"{_ok(all(r.errors == 0 for r in throttled))}.")
    if offline:
        out.append(f"* Evaluate + all formats on 100k resources: CPU {offline['cpu']:.1f} s "
                   f"(wall {offline['wall']:.1f} s) ≤ 10 s: {_ok(offline['cpu'] <= 10)}.")
    out.append("")
    return out


ORG_BEGIN, ORG_END = "<!-- org-bench -->", "<!-- /org-bench -->"


def bench_org(accounts: int, workdir: Path) -> list[str]:
    """The Organization run (benchmarks/organization.py): its section of results.md."""
    import organization as org

    started = time.perf_counter()
    print(f"== Organization of {accounts} accounts: seeding the server", flush=True)
    with Server(0, LATENCY, org=accounts) as server:
        print(f"   seeded in {server.info['seed_seconds']} s, warmed in "
              f"{server.info['warm_seconds']} s; scanning", flush=True)
        runs = org.run_org(server, RDSAUDIT, aws_env(server.endpoint), workdir / "org")
        per_call = per_call_cpu(server)
    for run in runs:
        print(f"   {run.label}: wall {run.wall:.2f} s, client CPU {run.cpu:.2f} s, server CPU "
              f"{run.server_cpu:.2f} s, calls {run.calls}/{sum(run.floor.values())}"
              f"{' exact' if run.exact else ' NOT THE FLOOR'}, errors {run.errors}", flush=True)
    inventory = load_inventory(workdir / "org" / "one" / "inventory.json")
    # Start-up: an rdsaudit process that imports the CLI and exits; after the scan: what the
    # one-process run spent outside the server's window besides that (evaluate, reports).
    start = timed([RDSAUDIT, "iam-policy"], aws_env(server.endpoint)).wall
    cross = org.crossover(runs, inventory, LATENCY, per_call, start)
    one, two = runs
    after = max(0.0, one.wall - one.scan_seconds - start) / one.accounts
    merge = max(0.0, two.processes[-1]["wall"] - start) / two.accounts
    rows = org.estimate(cross, merge, start, after)
    cross.update(start_s=start, after_ms=after * 1000, merge_ms=merge * 1000)
    shown = [f"`AWS_ENDPOINT_URL=<server> rdsaudit scan --organization --role-name "
             f"{org.ROLE} --regions {','.join(org.REGIONS)} --account-workers "
             f"{org.ACCOUNT_WORKERS} --no-history --exit-zero --quiet --output-dir OUT/one "
             "--save-inventory OUT/one/inventory.json`",
             "the same with `--shard 1/2 --output-dir OUT/two/shard-1` and `--shard 2/2 "
             "--output-dir OUT/two/shard-2` side by side, then `rdsaudit merge --shards 2 "
             "OUT/two --output-dir OUT/two/merged --exit-zero --quiet`",
             f"server: `.venv/bin/python benchmarks/server.py --org {accounts} --latency "
             f"{LATENCY}`"]
    lines = org.markdown(runs, cross, rows, LATENCY, shown, time.perf_counter() - started)
    lines.insert(3, f"Load average at the end of the scans: {os.getloadavg()[0]:.1f} on "
                    f"{os.cpu_count()} CPUs (other work on the machine inflates every "
                    "figure).\n")
    return [ORG_BEGIN, *lines, ORG_END]


def splice_org(text: str, section: list[str]) -> str:
    """results.md with its Organization section replaced (or added at the end)."""
    block = "\n".join(section)
    if ORG_BEGIN in text and ORG_END in text:
        head, rest = text.split(ORG_BEGIN, 1)
        return head + block + rest.split(ORG_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", default=bool(os.environ.get("QUICK")))
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--workers", type=int, default=48)
    ap.add_argument("--offline-size", type=int, default=100_000)
    ap.add_argument("--no-offline", action="store_true", help="skip the 100k offline run")
    ap.add_argument("--peer", help="another scanner's command, run against the same estate")
    ap.add_argument("--org-accounts", type=int, default=200)
    ap.add_argument("--no-org", action="store_true", help="skip the Organization run")
    ap.add_argument("--org-only", action="store_true",
                    help="only the Organization run; its section of results.md is rewritten")
    args = ap.parse_args(argv)
    if args.org_only:
        with tempfile.TemporaryDirectory(prefix="rdsaudit-bench-") as tmp:
            section = bench_org(args.org_accounts, Path(tmp))
        RESULTS.write_text(splice_org(RESULTS.read_text(encoding="utf-8"), section),
                           encoding="utf-8")
        print("\n".join(section))
        print(f"wrote the Organization section of {RESULTS}")
        return 0
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="rdsaudit-bench-") as tmp:
        for size in sizes:
            results.append(bench_size(size, Path(tmp), args.workers, args.peer))
        offline = None
        if not args.quick and not args.no_offline:
            import offline as offline_bench

            offline = offline_bench.run(args.offline_size, Path(tmp))
        org_section = None if args.quick or args.no_org else bench_org(args.org_accounts,
                                                                      Path(tmp))
    text = render(results, offline, args.workers, time.perf_counter() - started)
    if org_section is not None:
        text = splice_org(text, org_section)
    if args.quick or args.no_offline:
        print(text)
    else:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
