"""The Organization benchmark: one process against 2 shard processes + merge.

An Organization of `accounts` accounts (the management account and members) in 2 regions,
a small estate in each account and region (a customer key, an encrypted and an unencrypted
DB instance, a manual snapshot of the unencrypted one), is served by `server.py --org N`
(its own process, 50 ms a call). Then, through the real CLI:

* **one process**: `rdsaudit scan --organization --role-name R --account-workers W`;
* **2 shards + merge**: `scan --organization --shard I/2` twice side by side, then
  `rdsaudit merge --shards 2`; the wall time runs from the shards' start to the merge's end.

Calls are compared with the floor: per account `rdsaudit.collect.floor.api_floor` of that
account's part of the inventory (less its GetCallerIdentity), one sts:AssumeRole per member,
and per process one GetCallerIdentity and the ListAccounts pages. From the client CPU per
API call and each account's critical path the accounts per shard at which the API latency,
not the CPU, limits a shard is derived, and a 5,000-account estimate per shard count.

    .venv/bin/python benchmarks/run.py --org-only [--org-accounts 200]
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rdsaudit.arns import Arn
from rdsaudit.collect.floor import api_floor, critical_path
from rdsaudit.model import Inventory
from rdsaudit.serialize import load_inventory

ROLE = "rdsaudit-bench"
REGIONS = ("us-east-1", "eu-west-1")
MANAGEMENT = "123456789012"  # moto's default account: the Organization's management account
LIST_ACCOUNTS_PAGE = 100  # moto's default ListAccounts page (rdsaudit asks for no size)
ACCOUNT_WORKERS = 8
PW = "bench-not-a-secret"  # the emulator's seeded databases


# -- seeding (in the server's process, under mock_aws) --------------------------------------

def seed_org(accounts: int, regions: tuple[str, ...] = REGIONS) -> list[str]:
    """Create the Organization and every account's estate; the account ids, management
    first. Members are seeded through boto3 with moto's account header, in-process."""
    import boto3
    from botocore.config import Config

    config = Config(ignore_configured_endpoint_urls=True)
    org = boto3.client("organizations", region_name="us-east-1", config=config)
    org.create_organization(FeatureSet="ALL")
    ids = [MANAGEMENT]
    for n in range(accounts - 1):
        status = org.create_account(AccountName=f"member-{n}",
                                    Email=f"m{n}@example.com")["CreateAccountStatus"]
        ids.append(str(status["AccountId"]))
    # One client per service and region (creating one costs more than a call); the account
    # each call goes to is moto's account header, set per account.
    current = [MANAGEMENT]
    clients = {(service, region): _in_account(boto3.client(service, region_name=region,
                                                           config=config), current)
               for service in ("kms", "rds") for region in regions}
    for i, account in enumerate(ids):
        current[0] = account
        for region in regions:
            kms, rds = clients[("kms", region)], clients[("rds", region)]
            key = kms.create_key(Description="bench")["KeyMetadata"]
            if i % 2 == 0:
                kms.enable_key_rotation(KeyId=key["KeyId"])
            common = {"DBInstanceClass": "db.t3.micro", "MasterUsername": "admin",
                      "MasterUserPassword": PW, "AllocatedStorage": 20}
            rds.create_db_instance(DBInstanceIdentifier="orders", Engine="postgres",
                                   EngineVersion="16.3", StorageEncrypted=True,
                                   KmsKeyId=key["Arn"], **common)
            rds.create_db_instance(DBInstanceIdentifier="legacy", Engine="mysql",
                                   EngineVersion="8.0.36", **common)
            rds.create_db_snapshot(DBInstanceIdentifier="legacy",
                                   DBSnapshotIdentifier="legacy-manual")
    return ids


def _in_account(client: Any, account: list[str]) -> Any:
    def header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account[0]

    # before-sign: moto answers in-process at before-send, ahead of a handler there.
    client.meta.events.register("before-sign", header)
    return client


def warm_org(endpoint: str, regions: tuple[str, ...]) -> None:
    """One Organization scan at latency 0: every listing rendered and answer memoised."""
    import boto3

    from rdsaudit.collect import ScanRequest, scan
    from rdsaudit.collect.accounts import AccountsRequest

    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench",  # noqa: S106
                            region_name=regions[0])
    inventory = scan(session, ScanRequest(
        regions=list(regions), endpoint_url=endpoint, workers=16,
        accounts=AccountsRequest(organization=True, role_name=ROLE, workers=8)))
    if inventory.errors:
        raise RuntimeError(f"warm-up Organization scan failed: {inventory.errors[:3]}")


# -- the floor of a multi-account scan ---------------------------------------------------------

def _of_account(item: Any, account: str) -> bool:
    owner = getattr(item, "account_id", None)
    if owner is None:
        arn = Arn.parse(str(getattr(item, "arn", "") or getattr(item, "key_arn", "")))
        owner = arn.account if arn is not None else None
    return owner == account


def account_part(inventory: Inventory, account: str) -> Inventory:
    """What one account contributed to an inventory, as if it had been scanned alone."""
    def mine(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(x for x in items if _of_account(x, account))

    return replace(inventory, scan=replace(inventory.scan, accounts=(account,)),
                   resources=mine(inventory.resources), keys=mine(inventory.keys),
                   aliases=mine(inventory.aliases), shares=mine(inventory.shares),
                   errors=mine(inventory.errors), trails=mine(inventory.trails),
                   option_groups=mine(inventory.option_groups))


def org_floor(inventory: Inventory, processes: int, organization_size: int) -> dict[str, int]:
    """The fewest calls `processes` processes scanning these accounts can make together: the
    floor of one scan of them all (`api_floor` with the management account as caller), and
    each further process's own identity check and listing of the Organization."""
    pages = max(1, math.ceil(organization_size / LIST_ACCOUNTS_PAGE))
    floor = api_floor(inventory, caller=MANAGEMENT, list_accounts_pages=pages)
    floor["sts:GetCallerIdentity"] = processes
    floor["organizations:ListAccounts"] = processes * pages
    return dict(sorted(floor.items()))


def account_critical_path(inventory: Inventory, latency: float) -> float:
    """The longest per-account critical path: its prelude (GetCallerIdentity there, the
    AssumeRole for a member), the listings, then the keys."""
    return max(critical_path(account_part(inventory, a), latency)
               for a in inventory.scan.accounts)


# -- the runs ----------------------------------------------------------------------------------

@dataclass
class OrgRun:
    label: str
    wall: float  # seconds, from the first process's start to the last one's end
    cpu: float  # user + system of every rdsaudit process of the run
    processes: list[dict[str, Any]]
    answered: dict[str, int]
    floor: dict[str, int]
    scan_seconds: float  # the server's window: first request in to last answer out
    server_cpu: float
    errors: int
    accounts: int
    resources: int
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.answered.values())

    @property
    def exact(self) -> bool:
        return self.answered == self.floor


def _start(cmd: list[str], env: dict[str, str], out: Path) -> tuple[subprocess.Popen[str], Path]:
    timing = out.with_suffix(".time")
    timing.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["/usr/bin/time", "-o", str(timing), "-f", "%e %U %S %M", *cmd],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, timing


def _finish(proc: subprocess.Popen[str], timing: Path, label: str) -> dict[str, Any]:
    _, stderr = proc.communicate(timeout=1800)
    wall, user, system, rss = (float(f) for f in timing.read_text().split()[-4:])
    if proc.returncode != 0:
        raise RuntimeError(f"{label} exited {proc.returncode}: {stderr[-2000:]}")
    return {"label": label, "wall": wall, "cpu": user + system, "rss_mb": rss / 1024}


def run_org(server: Any, rdsaudit: str, env: dict[str, str], work: Path,
            account_workers: int = ACCOUNT_WORKERS) -> list[OrgRun]:
    regions = ",".join(server.info["regions"])
    accounts = len(server.info["accounts"])
    common = ["--organization", "--role-name", ROLE, "--regions", regions,
              "--account-workers", str(account_workers), "--no-history", "--exit-zero",
              "--quiet"]
    runs = []

    # One process.
    server.request("DELETE", "/_window")
    cpu0 = float(server.request("GET", "/_cpu")["seconds"])
    one = work / "one"
    started = time.perf_counter()
    proc, timing = _start([rdsaudit, "scan", *common, "--output-dir", str(one),
                           "--save-inventory", str(one / "inventory.json")], env, one)
    measured = [_finish(proc, timing, "scan")]
    wall = time.perf_counter() - started
    runs.append(_org_run("1 process", wall, measured, server, cpu0,
                         [load_inventory(one / "inventory.json")], 1, accounts))

    # Two shards side by side, then the merge.
    server.request("DELETE", "/_window")
    cpu0 = float(server.request("GET", "/_cpu")["seconds"])
    two = work / "two"
    started = time.perf_counter()
    shards = [_start([rdsaudit, "scan", *common, "--shard", f"{i}/2", "--output-dir",
                      str(two / f"shard-{i}")], env, two / f"shard-{i}") for i in (1, 2)]
    measured = [_finish(p, t, f"shard {i}") for i, (p, t) in enumerate(shards, 1)]
    shards_wall = time.perf_counter() - started
    window = server.request("GET", "/_window")  # the merge calls no AWS
    proc, timing = _start([rdsaudit, "merge", "--shards", "2", str(two), "--output-dir",
                           str(two / "merged"), "--exit-zero", "--quiet"], env,
                          two / "merge")
    measured.append(_finish(proc, timing, "merge"))
    wall = time.perf_counter() - started
    parts = [load_inventory(two / f"shard-{i}" / "rdsaudit-inventory.json") for i in (1, 2)]
    run = _org_run("2 shards + merge", wall, measured, server, cpu0, parts, 2, accounts,
                   window)
    run.notes.append(f"shards alone {shards_wall:.2f} s, merge "
                     f"{measured[-1]['wall']:.2f} s")
    runs.append(run)
    return runs


def _org_run(label: str, wall: float, measured: list[dict[str, Any]], server: Any,
             cpu0: float, parts: list[Inventory], processes: int, accounts: int,
             window: dict[str, Any] | None = None) -> OrgRun:
    window = window or server.request("GET", "/_window")
    server_cpu = float(server.request("GET", "/_cpu")["seconds"]) - cpu0
    statuses: dict[str, dict[str, int]] = window["statuses"]
    floor: dict[str, int] = {}
    for part in parts:
        for op, n in org_floor(part, 1, accounts).items():
            floor[op] = floor.get(op, 0) + n
    return OrgRun(
        label=label, wall=wall, cpu=sum(m["cpu"] for m in measured), processes=measured,
        answered={op: s.get("200", 0) for op, s in sorted(statuses.items()) if s.get("200")},
        floor=dict(sorted(floor.items())), scan_seconds=float(window["seconds"] or 0.0),
        server_cpu=server_cpu, errors=sum(len(p.errors) for p in parts),
        accounts=sum(len(p.scan.accounts) for p in parts),
        resources=sum(len(p.resources) for p in parts))


# -- what it means -----------------------------------------------------------------------------

def crossover(runs: list[OrgRun], inventory: Inventory, latency: float, per_call_s: float,
              start_s: float, account_workers: int = ACCOUNT_WORKERS) -> dict[str, Any]:
    """Client CPU per call and per account, and the accounts per shard below which the API
    latency (one account's critical path) rather than the CPU bounds a shard whose
    accounts are all in flight.

    `per_call_s` is the marginal CPU of one call (run.per_call_cpu: DescribeKey through
    AwsClients, no latency); what the scan spent besides start-up and its calls is per
    account (its sessions and clients, its share of evaluating and reporting)."""
    one = runs[0]
    scan_cpu = one.processes[0]["cpu"]
    calls_per_account = one.calls / one.accounts
    whole_per_call = scan_cpu / one.calls
    per_account = max(0.0, scan_cpu - start_s - one.calls * per_call_s) / one.accounts
    account_cpu = per_account + calls_per_account * per_call_s
    path = account_critical_path(inventory, latency)
    return {"per_call_ms": whole_per_call * 1000, "marginal_call_ms": per_call_s * 1000,
            "fixed_account_ms": per_account * 1000, "account_cpu_s": account_cpu,
            "calls_per_account": calls_per_account, "account_path_s": path,
            "accounts_latency_bound": path / account_cpu,
            "wave_cpu_s": account_workers * account_cpu, "account_workers": account_workers,
            "bound_by": "latency" if path > account_workers * account_cpu else "CPU"}


def estimate(cross: dict[str, Any], merge_s_per_account: float, start_s: float,
             after_s_per_account: float, accounts: int = 5000,
             shard_counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
             ) -> list[dict[str, Any]]:
    """Wall time per shard count for `accounts` accounts of this shape, each shard on its
    own CPU with `account_workers` accounts in flight: start-up, the scan (the larger of its
    CPU and latency bounds), evaluating and writing the shard's part, then the merge."""
    rows = []
    path, w = cross["account_path_s"], cross["account_workers"]
    for n in shard_counts:
        share = math.ceil(accounts / n)
        cpu = share * cross["account_cpu_s"]
        latency = math.ceil(share / w) * path
        scan_s = max(cpu, latency)
        merge = start_s + accounts * merge_s_per_account if n > 1 else 0.0
        rows.append({"shards": n, "accounts_per_shard": share, "cpu_s": cpu,
                     "latency_s": latency, "bound": "CPU" if cpu >= latency else "latency",
                     "wall_s": start_s + scan_s + share * after_s_per_account + merge,
                     "merge_s": merge})
    return rows


def markdown(runs: list[OrgRun], cross: dict[str, Any], rows: list[dict[str, Any]],
             latency: float, commands: list[str], elapsed: float) -> list[str]:
    one, two = runs
    ratio = two.wall / one.wall
    lines = [
        "## Organization: one process vs 2 shards + merge", "",
        f"`benchmarks/run.py --org-only` ({elapsed / 60:.1f} min): {one.accounts} accounts "
        f"x {len(REGIONS)} regions ({', '.join(REGIONS)}), each holding a customer key, an "
        "encrypted and an unencrypted DB instance and a manual snapshot (with the automated "
        f"snapshots and backups moto adds: {one.resources} resources), served by "
        f"`server.py --org` in its own process with {latency * 1000:.0f} ms a call; "
        f"`--account-workers {cross['account_workers']}` (default `--workers 16`) in every "
        "scan. The server memoises answers after a warm-up scan (so it measures serving, "
        "not moto) and runs on the same 2 cores as the clients.", "",
        "| run | wall s | scan s (server) | client CPU s | server CPU s | calls / floor "
        "| errors |", "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        calls = f"{r.calls} / {sum(r.floor.values())} " + ("exact" if r.exact
                                                             else "**differs**")
        lines.append(f"| {r.label} | {r.wall:.2f} | {r.scan_seconds:.2f} | {r.cpu:.2f} | "
                     f"{r.server_cpu:.2f} | {calls} | {r.errors} |")
    lines += [""]
    for r in runs:
        parts = ", ".join(f"{p['label']} wall {p['wall']:.2f} s CPU {p['cpu']:.2f} s RSS "
                          f"{p['rss_mb']:.0f} MB" for p in r.processes)
        lines.append(f"* {r.label}: {parts}" + (f"; {'; '.join(r.notes)}" if r.notes else ""))
    differs = [f"{op} {r.answered.get(op, 0)}/{r.floor.get(op, 0)}" for r in runs
               for op in sorted(set(r.answered) | set(r.floor))
               if r.answered.get(op, 0) != r.floor.get(op, 0)]
    lines += [
        f"* Calls equal the floor in both: {'holds' if not differs else '**does not hold**'}"
        + (f" ({', '.join(differs)})" if differs else "") + ".",
        f"* 2-shard wall (merge included) / one-process wall = {two.wall:.2f} / "
        f"{one.wall:.2f} = {ratio:.2f} (target ≤ 0.6): "
        f"{'holds' if ratio <= 0.6 else '**does not hold**'}.",
        f"* Client CPU per API call: {cross['per_call_ms']:.2f} ms over the whole "
        f"one-process scan ({one.calls} calls, start-up, evaluation and report included); "
        f"of it {cross['marginal_call_ms']:.2f} ms is the call itself (one DescribeKey "
        "through AwsClients, no latency) and the rest is per account: "
        f"{cross['fixed_account_ms']:.0f} ms CPU for each account's sessions and clients "
        "(a boto3 session and its clients per assumed role; the service models are shared) and its "
        f"share of evaluating and reporting. An account costs "
        f"{cross['account_cpu_s'] * 1000:.0f} ms of CPU for "
        f"{cross['calls_per_account']:.1f} calls; its critical path (AssumeRole, listings, "
        f"keys) is {cross['account_path_s'] * 1000:.0f} ms at {latency * 1000:.0f} ms a call.",
        f"* A shard whose accounts are all in flight is bound by the API latency up to "
        f"**{cross['accounts_latency_bound']:.1f} account(s)** (critical path / CPU per "
        "account), by its CPU beyond. With "
        f"`--account-workers {cross['account_workers']}` a wave of accounts costs "
        f"{cross['wave_cpu_s']:.2f} s of CPU against {cross['account_path_s']:.2f} s of "
        f"latency: {cross['bound_by']}-bound at any shard size.",
        "",
        "5,000 accounts of this shape (2 regions, a small estate), estimated from these "
        "figures: each shard on its own vCPU, `--account-workers "
        f"{cross['account_workers']}`; wall = start-up ({cross['start_s']:.1f} s, an "
        "rdsaudit process that only starts) + the scan's larger bound + evaluating and "
        f"writing the shard ({cross['after_ms']:.0f} ms an account, measured outside the "
        "server's window in the one-process run) + the merge "
        f"(start-up + {cross['merge_ms']:.0f} ms an account, this run's merge scaled "
        "linearly: it re-evaluates every account on one CPU). No container start or S3 "
        "transfer:", "",
        "| shards | accounts per shard | CPU s | latency s | bound by | merge s "
        "| wall (estimate) |", "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['shards']} | {row['accounts_per_shard']} | {row['cpu_s']:.0f} "
                     f"| {row['latency_s']:.0f} | {row['bound']} | {row['merge_s']:.0f} | "
                     f"{_duration(row['wall_s'])} |")
    lines += ["", "A real account scanned in 17 regions makes about 8.5x these calls "
              "(the listings are per region), so the CPU column grows about 8.5x and "
              "the crossover moves to about 1/8.5 of the accounts above; real RDS latency "
              "is not the emulator's 50 ms. Commands:", ""]
    lines += [f"* {c}" for c in commands]
    lines.append("")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
