"""The only layer that talks to AWS: sessions in, an `Inventory` out."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.exceptions import NoCredentialsError

from rdsaudit.arns import partition_of_region
from rdsaudit.collect.accounts import (
    AccountsProblem,
    AccountsRequest,
    assume,
    organization_accounts,
    unique,
)
from rdsaudit.collect.aws import (
    AWS_FAILURES,
    AwsClients,
    CallCounter,
    Failure,
    describe_failure,
    retry_config,
)
from rdsaudit.collect.scan import AccountScan, AccountScanner, ProgressFn
from rdsaudit.merge import merge_keys
from rdsaudit.model import CollectionError, Inventory, ScanInfo, ShardInfo
from rdsaudit.redact import remember_session
from rdsaudit.timestamps import utcnow

DEFAULT_HOME_REGION = "us-east-1"


class CredentialsProblem(Exception):
    """No usable credentials or no reachable endpoint: nothing can be scanned (exit 2)."""


class RegionProblem(Exception):
    """A region named on the command line or in the config that RDS does not have (exit 2)."""


@dataclass(frozen=True)
class ScanRequest:
    regions: Sequence[str] | None = None  # None or ["all"]: every enabled region
    max_attempts: int = 5
    endpoint_url: str | None = None
    workers: int = 16
    read_timeout: float = 30  # seconds; tests shorten it to exercise timeouts quickly
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
    kwargs: dict[str, Any] = {"region_name": region, "config": retry_config(2)}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    remember_session(session)  # the caller's own key id, secret and token are never shown
    try:
        sts = session.client("sts", **kwargs)
        counter.attach(sts)
        return str(sts.get_caller_identity()["Account"])
    except NoCredentialsError:
        raise CredentialsProblem(
            "no AWS credentials found (set AWS_PROFILE, use --profile, or configure the "
            "credential chain)") from None
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
    enabled = {
        r["RegionName"]
        for r in answer.get("Regions") or ()
        # Without AllRegions AWS lists only enabled regions; emulators list all, so the
        # opt-in status is checked as well.
        if r.get("OptInStatus") != "not-opted-in"
    }
    return [r for r in rds_regions if r in enabled], []


def resolve_regions(session: boto3.Session, requested: Sequence[str] | None,
                    partition: str) -> list[str] | None:
    """Validate regions given by the user; None means "discover"."""
    if not requested or any(r == "all" for r in requested):
        return None
    known = set(known_regions(session, partition))
    unknown = [r for r in requested if r not in known]
    if unknown:
        raise RegionProblem(
            f"unknown region(s) {', '.join(unknown)} for partition {partition} "
            f"(RDS regions: {', '.join(sorted(known))})")
    return list(dict.fromkeys(requested))


def scan(session: boto3.Session, request: ScanRequest,
         progress: ProgressFn | None = None) -> Inventory:
    """Scan the caller's account, or every account of `request.accounts`, concurrently."""
    started = utcnow()
    home = home_region(session, request.regions)
    partition = partition_of_region(home)
    explicit = resolve_regions(session, request.regions, partition)
    counter = CallCounter()
    caller = caller_account(session, home, request.endpoint_url, counter)
    targets = [caller]
    if request.accounts.multi:
        listed = (organization_accounts(session, home, request.endpoint_url, counter)
                  if request.accounts.organization else [])
        targets = unique([*request.accounts.accounts, *listed])
    shard = None
    if request.accounts.shard is not None:
        shard = ShardInfo(request.accounts.shard.index, request.accounts.shard.count,
                          tuple(targets))
        targets = request.accounts.shard.select(targets)

    def one(account_id: str) -> AccountScan | CollectionError:
        account_session = session
        if account_id != caller:
            assumed = assume(session, request.accounts, account_id, partition, home,
                             request.endpoint_url, counter)
            if isinstance(assumed, Failure):
                return CollectionError(account_id, home, "sts", "AssumeRole", assumed.code,
                                       assumed.message)
            account_session = assumed
        clients = AwsClients(account_session, max_attempts=request.max_attempts,
                             endpoint_url=request.endpoint_url, pool=request.workers,
                             counter=counter, read_timeout=request.read_timeout)
        errors: list[CollectionError] = []
        if explicit is None:
            regions, errors = enabled_regions(clients, home, partition, account_id)
        else:
            regions = explicit
        result = AccountScanner(clients, account_id, regions, workers=request.workers,
                                progress=progress if len(targets) == 1 else None).run()
        return replace(result, errors=tuple(errors) + result.errors)

    if len(targets) <= 1:
        outcomes = [one(t) for t in targets]
    else:
        pool = ThreadPoolExecutor(min(request.accounts.workers, len(targets)),
                                  thread_name_prefix="rdsaudit-account")
        try:
            outcomes = list(pool.map(one, targets))
        except BaseException:
            # Ctrl-C: do not wait for the accounts still being scanned.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    scans = [o for o in outcomes if isinstance(o, AccountScan)]
    denied = [o for o in outcomes if isinstance(o, CollectionError)]
    calls, retries = counter.snapshot()
    regions_seen = sorted({r for s in scans for r in s.regions}) if scans else list(
        explicit or [])
    return Inventory(
        scan=ScanInfo(
            started_at=started,
            finished_at=utcnow(),
            accounts=tuple(targets),
            regions=tuple(regions_seen),
            api_calls=calls,
            retries=retries,
            skipped_regions=tuple(x for s in scans for x in s.skipped),
            shard=shard,
        ),
        resources=tuple(r for s in scans for r in s.resources),
        keys=merge_keys(s.keys for s in scans),
        aliases=tuple(a for s in scans for a in s.aliases),
        shares=tuple(x for s in scans for x in s.shares),
        errors=tuple(denied) + tuple(e for s in scans for e in s.errors),
    )


__all__ = ["AccountsProblem", "AccountsRequest", "CredentialsProblem", "RegionProblem",
           "ScanRequest", "scan"]
