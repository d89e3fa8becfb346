"""The only layer that talks to AWS: sessions in, an `Inventory` out."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from rdsaudit.arns import partition_of_region
from rdsaudit.collect.account_scan import AccountScan, AccountScanner, Progress, ProgressFn
from rdsaudit.collect.accounts import (
    AccountsProblem,
    AccountsRequest,
    assume,
    organization_accounts,
    unique,
)
from rdsaudit.collect.clients import AwsClients, CallCounter, counted_client, retry_config
from rdsaudit.collect.deadline import DEFAULT_TIMEOUT, GRACE, Deadline, DeadlineExceeded, bounded
from rdsaudit.collect.failures import AWS_FAILURES, Failure, describe_failure
from rdsaudit.errors import UsageProblem
from rdsaudit.merge import merge_keys
from rdsaudit.model import CollectionError, Inventory, ScanInfo, ShardInfo
from rdsaudit.redact import remember_session
from rdsaudit.text import identifier_problem, shown
from rdsaudit.timestamps import utcnow

DEFAULT_HOME_REGION = "us-east-1"
T = TypeVar("T")


class CredentialsProblem(UsageProblem):
    """No usable credentials or no reachable endpoint: nothing can be scanned (exit 2)."""


class RegionProblem(UsageProblem):
    """A region named on the command line or in the config that RDS does not have (exit 2)."""


@dataclass(frozen=True)
class ScanRequest:
    regions: Sequence[str] | None = None  # None or ["all"]: every enabled region
    max_attempts: int = 5
    endpoint_url: str | None = None
    workers: int = 16
    read_timeout: float = 30  # seconds; tests shorten it to exercise timeouts quickly
    timeout: float = DEFAULT_TIMEOUT  # seconds the whole scan may take (--timeout)
    accounts: AccountsRequest = field(default_factory=AccountsRequest)


def home_region(session: boto3.Session, regions: Sequence[str] | None) -> str:
    if session.region_name:
        return str(session.region_name)
    if regions and regions[0] != "all":
        return regions[0]
    return DEFAULT_HOME_REGION


def caller_account(session: boto3.Session, region: str, endpoint_url: str | None,
                   counter: CallCounter) -> str:
    """The account the credentials belong to; fails fast (two attempts, short timeouts)."""
    remember_session(session)  # the caller's own key id, secret and token are never shown
    try:
        sts = counted_client(session, "sts", region, retry_config(2), endpoint_url, counter)
        return str(sts.get_caller_identity()["Account"])
    except NoCredentialsError:
        raise CredentialsProblem(
            "no AWS credentials found (set AWS_PROFILE, use --profile, or configure the "
            "credential chain)") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
            ConnectionClosedError) as exc:
        failure = describe_failure(exc)
        raise CredentialsProblem(
            f"cannot reach AWS STS ({failure.code}): {failure.message}") from None
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        raise CredentialsProblem(
            f"cannot use these AWS credentials: {failure.code}: {failure.message}") from None


def known_regions(session: boto3.Session, partition: str) -> list[str]:
    return sorted(session.get_available_regions("rds", partition_name=partition))


def enabled_regions(clients: AwsClients, home: str, partition: str,
                    account_id: str) -> tuple[list[str], list[CollectionError]]:
    """Regions enabled for the account, intersected with RDS's regions for the partition.

    If DescribeRegions itself fails, the error is recorded and every RDS region is tried:
    a region that turns out not to be enabled is then skipped, never silently dropped.
    """
    rds_regions = known_regions(clients.session, partition)
    try:
        answer = clients.call("ec2", home, "DescribeRegions", "describe_regions")
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        error = CollectionError(account_id, home, "ec2", "DescribeRegions", failure.code,
                                failure.message)
        return rds_regions, [error]
    listed = answer.get("Regions")
    enabled = {
        r["RegionName"]
        for r in (listed if isinstance(listed, list) else ())
        # Without AllRegions AWS lists only enabled regions; emulators list all, so the
        # opt-in status is checked as well.
        if isinstance(r, Mapping) and isinstance(r.get("RegionName"), str)
        and r.get("OptInStatus") != "not-opted-in"
    }
    if not isinstance(listed, list):
        error = CollectionError(account_id, home, "ec2", "DescribeRegions",
                                "MalformedResponse", "the answer has no Regions list")
        return rds_regions, [error]  # as for a failed call: try every region
    errors = []
    # A region newer than the installed botocore is scanned only when its name is one of
    # the partition's (botocore's regionRegex): a name from a response must never choose
    # where the credentials are sent.
    newer = sorted(r for r in enabled - set(rds_regions) if region_in_partition(r, partition))
    refused = sorted(r for r in enabled - set(rds_regions) - set(newer)
                     if not any(region_in_partition(r, p) for p in _partitions()))
    if refused:
        errors.append(CollectionError(
            account_id, home, "ec2", "DescribeRegions", "MalformedResponse",
            f"region name(s) of no AWS partition not scanned: "
            f"{', '.join(shown(r) for r in refused)}"))
    regions = [r for r in rds_regions if r in enabled] + newer
    if refused and not regions:
        return rds_regions, errors  # nothing usable in the answer: try every region
    return regions, errors


@functools.cache
def _partitions() -> tuple[str, ...]:
    data = botocore.session.get_session().get_data("endpoints")
    return tuple(str(e["partition"]) for e in data.get("partitions", ()) if "partition" in e)


@functools.cache
def _region_pattern(partition: str) -> re.Pattern[str] | None:
    data = botocore.session.get_session().get_data("endpoints")
    for entry in data.get("partitions", ()):
        if entry.get("partition") == partition and entry.get("regionRegex"):
            return re.compile(str(entry["regionRegex"]))
    return None


def region_in_partition(name: str, partition: str) -> bool:
    """Whether `name` is shaped like a region of `partition` (botocore's endpoint data)."""
    pattern = _region_pattern(partition)
    return (pattern is not None and identifier_problem(name) is None
            and pattern.fullmatch(name) is not None)


def resolve_regions(session: boto3.Session, requested: Sequence[str] | None,
                    partition: str) -> list[str] | None:
    """Validate regions given by the user; None means "discover"."""
    if not requested or any(r == "all" for r in requested):
        return None
    known = set(known_regions(session, partition))
    unknown = [r for r in requested if r not in known and not region_in_partition(r, partition)]
    if unknown:
        raise RegionProblem(
            f"unknown region(s) {', '.join(unknown)} for partition {partition} "
            f"(RDS regions: {', '.join(sorted(known))})")
    return list(dict.fromkeys(requested))


class CombinedProgress:
    """One progress line for the accounts of a scan: the sums over the accounts that have
    reported so far (regions done of regions known, resources, errors)."""

    def __init__(self, progress: ProgressFn) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._last: dict[str, Progress] = {}

    def of(self, account_id: str) -> ProgressFn:
        def report(update: Progress) -> None:
            with self._lock:  # held while printing, so lines never go backwards
                self._last[account_id] = update
                seen = self._last.values()
                self._progress(Progress(sum(p.regions_done for p in seen),
                                        sum(p.regions_total for p in seen),
                                        sum(p.resources for p in seen),
                                        sum(p.errors for p in seen)))

        return report


def scan(session: boto3.Session, request: ScanRequest,
         progress: ProgressFn | None = None) -> Inventory:
    """Scan the caller's account, or every account of `request.accounts`, concurrently,
    within `request.timeout` seconds (see `rdsaudit.collect.deadline`)."""
    started = utcnow()
    deadline = Deadline(request.timeout)
    home = home_region(session, request.regions)
    partition = partition_of_region(home)
    explicit = resolve_regions(session, request.regions, partition)
    counter = CallCounter()
    try:
        caller = bounded(lambda: caller_account(session, home, request.endpoint_url, counter),
                         deadline, "GetCallerIdentity")
    except DeadlineExceeded as exc:
        raise CredentialsProblem(f"cannot reach AWS: {exc}") from None
    targets = [caller]
    early: list[CollectionError] = []
    if request.accounts.multi:
        listed: list[str] = []
        if request.accounts.organization:
            try:
                listed, runaway = bounded(
                    lambda: organization_accounts(session, home, request.endpoint_url,
                                                  counter), deadline, "ListAccounts")
            except DeadlineExceeded as exc:
                runaway = Failure("DeadlineExceeded", str(exc))
            if runaway is not None:
                early.append(CollectionError(caller, home, "organizations", "ListAccounts",
                                             runaway.code, runaway.message))
        targets = unique([*request.accounts.accounts, *listed])
    shard = None
    if request.accounts.shard is not None:
        shard = ShardInfo(request.accounts.shard.index, request.accounts.shard.count,
                          tuple(targets))
        targets = request.accounts.shard.select(targets)
    stage: dict[str, tuple[str, str]] = {}  # account -> the call it is (or was last) in

    combined = CombinedProgress(progress) if progress is not None else None

    def one(account_id: str) -> AccountScan | CollectionError:
        account_session = session
        if account_id != caller:
            stage[account_id] = ("sts", "AssumeRole")
            assumed = assume(session, request.accounts, account_id, partition, home,
                             request.endpoint_url, counter)
            if isinstance(assumed, Failure):
                return CollectionError(account_id, home, "sts", "AssumeRole", assumed.code,
                                       assumed.message)
            account_session = assumed
        clients = AwsClients(account_session, max_attempts=request.max_attempts,
                             endpoint_url=request.endpoint_url, pool=request.workers,
                             counter=counter, read_timeout=request.read_timeout,
                             deadline=deadline)
        errors: list[CollectionError] = []
        if explicit is None:
            stage[account_id] = ("ec2", "DescribeRegions")
            regions, errors = enabled_regions(clients, home, partition, account_id)
        else:
            regions = explicit
        stage[account_id] = ("rds", "scan")
        result = AccountScanner(clients, account_id, regions, workers=request.workers,
                                progress=combined.of(account_id) if combined else None,
                                deadline=deadline).run()
        return replace(result, errors=tuple(errors) + result.errors)

    done = _each_account(targets, one, request.accounts.workers, deadline)
    outcomes: list[AccountScan | CollectionError] = []
    for account_id in targets:
        if account_id in done:
            outcomes.append(done[account_id])
        else:
            # Stuck past the deadline in a call nothing can interrupt (a dripping answer).
            service, operation = stage.get(account_id, ("sts", "AssumeRole"))
            outcomes.append(CollectionError(
                account_id, home, service, operation, "DeadlineExceeded",
                f"the account was not scanned before the --timeout deadline "
                f"({request.timeout:g} s)"))
    scans = [o for o in outcomes if isinstance(o, AccountScan)]
    denied = [o for o in outcomes if isinstance(o, CollectionError)]
    calls, retries = counter.snapshot()
    regions_seen = sorted({r for s in scans for r in s.regions}) if scans else list(
        explicit or [])
    skipped = tuple(x for s in scans for x in s.skipped)
    errors = tuple(early) + tuple(denied) + tuple(e for s in scans for e in s.errors)
    coverage = _coverage_error(caller, home, targets, scans, skipped)
    if not targets and shard is not None and shard.population:
        # A shard whose share of a known account list is empty has nothing to scan by
        # design; `rdsaudit merge` judges coverage across the shards (AccountNotScanned).
        coverage = None
    if coverage is not None and not errors:
        errors = (coverage,)
    elif coverage is not None:
        errors = (*errors, coverage)
    return Inventory(
        scan=ScanInfo(
            started_at=started,
            finished_at=utcnow(),
            accounts=tuple(targets),
            regions=tuple(regions_seen),
            api_calls=calls,
            retries=retries,
            skipped_regions=skipped,
            shard=shard,
        ),
        resources=tuple(r for s in scans for r in s.resources),
        keys=merge_keys(s.keys for s in scans),
        aliases=tuple(a for s in scans for a in s.aliases),
        shares=tuple(x for s in scans for x in s.shares),
        errors=errors,
        trails=tuple(t for s in scans for t in s.trails),
        option_groups=tuple(g for s in scans for g in s.option_groups),
    )


def _coverage_error(caller: str, home: str, targets: Sequence[str],
                    scans: Sequence[AccountScan],
                    skipped: Sequence[Any]) -> CollectionError | None:
    """A scan that read no region at all (no account, no enabled region, every region
    skipped) covered nothing: it is incomplete, never compliant."""
    if not targets:
        return CollectionError(caller, home, "rdsaudit", "Scan", "NothingScanned",
                               "no account to scan (the account list is empty)")
    scanned = {(s.account_id, r) for s in scans for r in s.regions}
    scanned -= {(x.account_id, x.region) for x in skipped}
    if scanned or len(scans) < len(targets):
        return None  # something was read, or the accounts not read carry their own error
    return CollectionError(caller, home, "rdsaudit", "Scan", "NothingScanned",
                           "no region was scanned: none enabled, or every one skipped")


def _each_account(targets: Sequence[str], one: Callable[[str], T], workers: int,
                  deadline: Deadline) -> dict[str, T]:
    """`one(account)` for every account, `workers` at a time, on daemon threads (see
    `rdsaudit.collect.deadline`); the accounts finished before the deadline (+ grace)."""
    results: dict[str, T] = {}
    crash: list[BaseException] = []
    todo = list(reversed(targets))
    lock = threading.Lock()
    finished = threading.Event()

    def work() -> None:
        while True:
            with lock:
                if not todo or crash:
                    if len(results) == len(targets) or crash:
                        finished.set()
                    return
                account = todo.pop()
            try:
                outcome = one(account)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the waiting thread
                with lock:
                    crash.append(exc)
                finished.set()
                return
            with lock:
                results[account] = outcome
                if len(results) == len(targets):
                    finished.set()

    if not targets:
        return results
    for i in range(max(1, min(workers, len(targets)))):
        threading.Thread(target=work, name=f"rdsaudit-account-{i}", daemon=True).start()
    # Ctrl-C interrupts this wait; the daemon threads are then simply left behind.
    while not finished.wait(0.5):
        if deadline.past(GRACE):
            break
    if crash:
        raise crash[0]
    with lock:
        return dict(results)


__all__ = ["AccountsProblem", "AccountsRequest", "CredentialsProblem", "RegionProblem",
           "ScanRequest", "scan"]
