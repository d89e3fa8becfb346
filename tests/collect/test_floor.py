"""The API floor: its arithmetic on hand-built inventories, and a scan that makes exactly the
floor's calls (counted by the emulator), even with DescribeKey throttled to a rate.

A regression that adds a call (an extra empty page, a key described twice, ListAliases
repeated) fails `test_scan_makes_exactly_the_floor_calls`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest

from rdsaudit.collect import ScanRequest, scan
from rdsaudit.collect.floor import api_floor, critical_chain, critical_path, listing_of
from rdsaudit.collect.specs import LISTINGS
from rdsaudit.collect.throttle import RateLimiter
from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.demo.emulator.wire import Request as EmulatorRequest
from rdsaudit.model import EncryptionType, Inventory, KmsAlias, ResourceType, SkippedRegion
from tests.support.builders import (
    ACCOUNT,
    KEY,
    KEY2,
    REGION,
    backup,
    cluster_snapshot,
    instance,
    inventory,
    key_arn,
    kms_key,
    resource,
    snapshot,
)

OTHER = "eu-west-1"
EMPTY = {"sts:GetCallerIdentity": 1, "kms:ListAliases": 2}
PER_REGION_LISTINGS = Counter(spec.action for spec in LISTINGS)


def _empty_floor(regions: int = 2) -> dict[str, int]:
    floor = {"sts:GetCallerIdentity": 1, "kms:ListAliases": regions,
             "cloudtrail:DescribeTrails": regions}
    for action, rows in PER_REGION_LISTINGS.items():
        floor[action] = rows * regions
    return floor


# -- arithmetic -------------------------------------------------------------------------------


def test_an_empty_estate_still_costs_one_call_per_listing_and_region() -> None:
    floor = api_floor(inventory(keys=()))
    assert floor == _empty_floor()
    # Both DescribeDBSnapshots rows (default and awsbackup) are listed in each region.
    assert floor["rds:DescribeDBSnapshots"] == 4
    assert api_floor(inventory(keys=()), discovered_regions=True)["ec2:DescribeRegions"] == 1


@pytest.mark.parametrize(("n", "pages"), [(99, 1), (100, 1), (101, 2), (250, 3), (1000, 10)])
def test_listing_pages_are_ceil_n_over_100(n: int, pages: int) -> None:
    items = [instance(f"db{i}", encrypted=False) for i in range(n)]
    floor = api_floor(inventory(*items, keys=()))
    assert floor["rds:DescribeDBInstances"] == pages + 1  # + the empty other region
    assert api_floor(inventory(*items, keys=()), page_cap=7)["rds:DescribeDBInstances"] == (
        -(-n // 7) + 1)


def test_each_resource_belongs_to_exactly_the_listing_that_returns_it() -> None:
    cases = {
        instance("i"): "describe_db_instances",
        resource(ResourceType.DB_CLUSTER, "c"): "describe_db_clusters",
        snapshot("manual"): "describe_db_snapshots",
        snapshot("auto", snapshot_type="automated"): "describe_db_snapshots",
        cluster_snapshot("cs"): "describe_db_cluster_snapshots",
        backup("ab-1"): "describe_db_instance_automated_backups",
    }
    for res, method in cases.items():
        row = listing_of(res)
        assert row is not None and LISTINGS[row].method == method, res.id
        assert "SnapshotType" not in LISTINGS[row].params
    aws_backup = snapshot("awsbackup:job-1", snapshot_type="awsbackup")
    row = listing_of(aws_backup)
    assert row is not None and LISTINGS[row].params.get("SnapshotType") == "awsbackup"
    cluster_backup = replace(backup("cab-1"), arn=f"arn:aws:rds:{REGION}:{ACCOUNT}:"
                                                  "cluster-auto-backup:cab-1")
    row = listing_of(cluster_backup)
    assert row is not None and LISTINGS[row].method == "describe_db_cluster_automated_backups"
    # Every row of the table is reachable: a new listing cannot be left out of the floor.
    claimed = {listing_of(r) for r in [*cases, aws_backup, cluster_backup]}
    assert claimed == set(range(len(LISTINGS)))


def test_snapshot_listings_split_by_type() -> None:
    snaps = [snapshot(f"m{i}") for i in range(150)] + [
        snapshot(f"b{i}", snapshot_type="awsbackup") for i in range(120)]
    floor = api_floor(inventory(*snaps))
    # us-east-1: default 2 pages + awsbackup 2 pages; eu-west-1: 1 + 1.
    assert floor["rds:DescribeDBSnapshots"] == 6


def test_keys_are_described_once_and_rotation_asked_only_of_customer_keys() -> None:
    managed = key_arn("33333333-2222-3333-4444-555555555555")
    inv = inventory(
        instance("a", key=KEY), instance("b", key=KEY), snapshot("s", key=KEY),
        instance("c", key=KEY2), instance("d", key=managed),
        instance("owned", key=None, encryption_type=EncryptionType.SSE_RDS),
        instance("plain", encrypted=False),
        keys=(kms_key(KEY), kms_key(KEY2), kms_key(managed, key_manager="AWS")),
    )
    floor = api_floor(inv)
    assert floor["kms:DescribeKey"] == 3
    assert floor["kms:GetKeyRotationStatus"] == 2


def test_a_key_two_scanned_accounts_use_is_described_by_each() -> None:
    """Each account's scan looks up its own keys: a cross-account key used by both scanned
    accounts costs each of them a DescribeKey and a GetKeyRotationStatus (the inventory
    merges the two look-ups into one record, so counting records would say one)."""
    other = "210987654321"
    inv = inventory(instance("a", key=KEY), instance("b", key=KEY, account=other),
                    instance("c", key=KEY2), keys=(kms_key(KEY), kms_key(KEY2)))
    inv = replace(inv, scan=replace(inv.scan, accounts=(ACCOUNT, other)))
    floor = api_floor(inv, caller=ACCOUNT)
    assert floor["kms:DescribeKey"] == 3  # KEY by each account, KEY2 by its own
    assert floor["kms:GetKeyRotationStatus"] == 3
    assert floor["kms:GetKeyLastUsage"] == 2  # only in the key's own account
    assert floor["sts:AssumeRole"] == 1


def test_multi_region_primary_is_described_once_and_rotation_asked_of_it_only() -> None:
    primary = key_arn("mrk-1234abcd12ab34cd56ef1234567890ab")
    replica = key_arn("mrk-1234abcd12ab34cd56ef1234567890ab", region=OTHER)
    replica2 = key_arn("mrk-1234abcd12ab34cd56ef1234567890ab", region="eu-central-1")
    keys = (kms_key(primary, primary_key_arn=primary, replica_key_arns=(replica, replica2)),
            kms_key(replica, primary_key_arn=primary), kms_key(replica2, primary_key_arn=primary))
    inv = inventory(instance("r1", key=replica, region=OTHER),
                    instance("r2", key=replica2, region=OTHER), keys=keys)
    floor = api_floor(inv)
    assert floor["kms:DescribeKey"] == 3  # two replicas named, their primary once
    assert floor["kms:GetKeyRotationStatus"] == 1  # the primary only
    # Named by a resource too: still once.
    both = replace(inv, resources=(*inv.resources, instance("p", key=primary)))
    assert api_floor(both)["kms:DescribeKey"] == 3
    # Replica page -> DescribeKey(replica) -> DescribeKey(primary) -> rotation(primary).
    assert critical_chain(inv) == 1 + 1 + 3


def test_new_calls_cost_one_per_region_group_trail_or_key_never_per_resource() -> None:
    from rdsaudit.model import Trail
    oracle = [instance(f"erp{i}", engine="oracle-ee", option_group="erp-tde") for i in range(5)]
    default = instance("erp-default", engine="oracle-ee", option_group="default:oracle-ee-19")
    trails = (Trail(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/t", ACCOUNT, REGION, "t",
                    True, False, (REGION, OTHER), True, True),)
    inv = replace(inventory(*oracle, default, instance("pi", performance_insights_kms_key_id=KEY2)),
                  trails=trails)
    floor = api_floor(inv)
    assert floor["rds:DescribeOptionGroups"] == 1  # one distinct non-default group
    assert floor["cloudtrail:DescribeTrails"] == 2  # per region
    assert floor["cloudtrail:GetTrailStatus"] == floor["cloudtrail:GetEventSelectors"] == 1
    assert floor["kms:DescribeKey"] == 2  # storage KEY and the PI key KEY2, once each
    assert floor["kms:GetKeyLastUsage"] == 2  # the account's own customer keys


def test_rotation_is_not_asked_of_keys_that_cannot_rotate() -> None:
    keys = tuple(kms_key(key_arn(f"{i}1111111-2222-3333-4444-555555555555"), origin=origin)
                 for i, origin in enumerate(("EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")))
    inv = inventory(*(instance(f"i{n}", key=k.arn) for n, k in enumerate(keys)), keys=keys)
    floor = api_floor(inv)
    assert floor["kms:DescribeKey"] == 3
    assert "kms:GetKeyRotationStatus" not in floor


def test_a_key_named_by_alias_is_the_key_named_by_arn() -> None:
    key_id = KEY.rsplit("/", 1)[1]
    inv = inventory(instance("by-alias", key="alias/orders"), instance("by-arn", key=KEY),
                    aliases=(KmsAlias("alias/orders", REGION, ACCOUNT, key_id),),
                    keys=(kms_key(KEY),))
    assert api_floor(inv)["kms:DescribeKey"] == 1
    # An alias that does not exist is not looked up at all.
    lost = inventory(instance("lost", key="alias/nowhere"), keys=())
    assert "kms:DescribeKey" not in api_floor(lost)


def test_attribute_calls_for_manual_snapshots_that_are_not_kms_encrypted() -> None:
    inv = inventory(
        snapshot("plain", encrypted=False), snapshot("enc"),
        snapshot("auto-plain", encrypted=False, snapshot_type="automated"),
        cluster_snapshot("cplain", encrypted=False), cluster_snapshot("cenc"),
        cluster_snapshot("cauto", encrypted=False, snapshot_type="automated"),
        # An AWS owned key is no evidence against `all`: asked too.
        cluster_snapshot("cowned", key=None, encryption_type=EncryptionType.SSE_RDS),
    )
    floor = api_floor(inv)
    assert floor["rds:DescribeDBSnapshotAttributes"] == 1
    assert floor["rds:DescribeDBClusterSnapshotAttributes"] == 2


def test_aliases_page_by_100_and_skipped_regions_cost_nothing() -> None:
    aliases = tuple(KmsAlias(f"alias/a{i}", REGION, ACCOUNT, None) for i in range(150))
    assert api_floor(inventory(aliases=aliases, keys=()))["kms:ListAliases"] == 3
    skipped = (SkippedRegion(ACCOUNT, OTHER, "OptInRequired", "not enabled"),)
    assert api_floor(inventory(keys=(), skipped=skipped)) == _empty_floor(regions=1)


def test_critical_chain() -> None:
    # Nothing but the identity call and one page of everything.
    assert critical_chain(inventory(keys=())) == 1 + 1
    assert critical_chain(inventory(keys=()), discovered_regions=True) == 3
    # A customer key: a first page names it, then DescribeKey, then GetKeyRotationStatus.
    assert critical_chain(inventory(instance("a"), keys=(kms_key(KEY),))) == 1 + 3
    # 250 plain instances: three pages, nothing after.
    plain = [instance(f"db{i:03d}", encrypted=False) for i in range(250)]
    assert critical_chain(inventory(*plain, keys=())) == 1 + 3
    # 250 unencrypted manual snapshots: the last page's attribute calls come after it.
    snaps = [snapshot(f"s{i:03d}", encrypted=False) for i in range(250)]
    assert critical_chain(inventory(*snaps, keys=())) == 1 + 3 + 1
    # Best case: the last page can hold the encrypted ones, whose keys were named earlier.
    mixed = snaps[:60] + [snapshot(f"e{i:03d}") for i in range(190)]
    inv = inventory(*mixed, keys=(kms_key(KEY),))
    assert critical_chain(inv) == 1 + 3
    # With the order AWS returned: a key first named on page 3 is described after it.
    row = listing_of(mixed[0])
    assert row is not None
    late = [s.arn for s in mixed[60:]] + [s.arn for s in mixed[:60]]
    assert critical_chain(inv, order={(REGION, row): late}) == 1 + 3 + 1
    # 210 plain then 40 encrypted: the key is first named on page 3, then described and
    # its rotation asked.
    few = [snapshot(f"s{i:03d}", encrypted=False) for i in range(210)] + [
        snapshot(f"k{i:03d}") for i in range(40)]
    inv = inventory(*few, keys=(kms_key(KEY),))
    assert critical_chain(inv) == 1 + 3 + 1
    assert critical_chain(inv, order={(REGION, row): [s.arn for s in few]}) == 1 + 3 + 2
    assert critical_path(inv, 0.05) == pytest.approx(0.25)


# -- the rate limiter -------------------------------------------------------------------------


@dataclass
class _Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_halves_on_throttling_once_per_round_trip_and_recovers() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, increase=2.0, ceiling=100.0)
    sent = [limiter.acquire() for _ in range(10)]  # unlimited: no waiting
    assert limiter.rate is None and clock.now == 100.0
    clock.now += 0.5
    limiter.throttled(sent[0])
    assert limiter.rate == pytest.approx(10.0)  # 10 sent over the last 0.5 s: 20/s, halved
    limiter.throttled(sent[1])  # sent before the cut: no new information
    assert limiter.rate == pytest.approx(10.0)
    first = limiter.acquire()
    second = limiter.acquire()
    assert second - first == pytest.approx(0.1)  # spaced to the rate
    limiter.throttled(second)
    assert limiter.rate == pytest.approx(5.0)
    for _ in range(3000):
        limiter.succeeded()
    assert limiter.rate is None  # past the ceiling: the limit is lifted


# -- scans against the emulator ---------------------------------------------------------------

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
PAGE_CAP = 7
PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}


class RateLimitedAWS(FakeAWS):
    """FakeAWS that lets an operation through at most `rate` times a second per region and
    answers the rest ThrottlingException, as AWS does under a request quota."""

    def __init__(self, operation: str, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operation = operation
        self.rate: float | None = None
        self._rate = rate
        self._next: dict[str, float] = {}
        self._throttle_lock = threading.Lock()

    def throttling(self, on: bool) -> None:
        self.rate = self._rate if on else None

    def _pick_fault(self, req: EmulatorRequest) -> tuple[Fault | None, float]:
        fault, delay = super()._pick_fault(req)
        if fault is not None or self.rate is None or req.action != self.operation:
            return fault, delay
        with self._throttle_lock:
            now = time.monotonic()
            if now >= self._next.get(req.region, 0.0):
                self._next[req.region] = now + 1.0 / self.rate
                return None, delay
        return Fault(service=req.service, action=req.action, code="ThrottlingException",
                     status=400, message="Rate exceeded"), delay


def _seed() -> None:
    for r, region in enumerate(REGIONS):
        kms = boto3.client("kms", region_name=region)
        rds = boto3.client("rds", region_name=region)
        keys = []
        for k in range(4):
            meta = kms.create_key(Description=f"k{k}")["KeyMetadata"]
            kms.create_alias(AliasName=f"alias/k{k}", TargetKeyId=meta["KeyId"])
            keys.append(meta["Arn"])
        for i in range(12 + 5 * r):
            extra = ({"StorageEncrypted": True, "KmsKeyId": keys[i % 4]} if i % 3 else {})
            rds.create_db_instance(DBInstanceIdentifier=f"db{i}", Engine="postgres",
                                   DBInstanceClass="db.t3.micro", **PW, **extra)
            if i % 2 == 0:
                rds.create_db_snapshot(DBInstanceIdentifier=f"db{i}",
                                       DBSnapshotIdentifier=f"snap{i}")
        rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql",
                              StorageEncrypted=True, KmsKeyId=keys[0], **PW)
        rds.create_db_cluster(DBClusterIdentifier="plain", Engine="aurora-postgresql", **PW)
        for c in range(3):
            rds.create_db_cluster_snapshot(DBClusterIdentifier=("aurora", "plain")[c % 2],
                                           DBClusterSnapshotIdentifier=f"csnap{c}")


@pytest.fixture(scope="module")
def served() -> Iterator[RateLimitedAWS]:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        _seed()
    finally:
        mock.stop(remove_data=False)
    fake = RateLimitedAWS("DescribeKey", rate=10.0, page_size_cap=PAGE_CAP)
    fake.start()
    try:
        for region in REGIONS:
            fake.register_cluster_automated_backup(region, {"DBClusterIdentifier": "gone"})
        yield fake
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def _scan(fake: FakeAWS, max_attempts: int = 3) -> Inventory:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name=REGIONS[0])
    return scan(session, ScanRequest(regions=REGIONS, endpoint_url=fake.endpoint_url,
                                     max_attempts=max_attempts, workers=16))


def test_scan_makes_exactly_the_floor_calls(served: RateLimitedAWS) -> None:
    served.throttling(False)
    served.reset_calls()
    inv = _scan(served)
    assert inv.errors == ()
    floor = api_floor(inv, page_cap=PAGE_CAP)
    # Every listing is several pages, keys and snapshot attributes are asked for.
    assert floor["rds:DescribeDBInstances"] > len(REGIONS)
    assert floor["kms:DescribeKey"] == 4 * len(REGIONS)
    assert floor["rds:DescribeDBSnapshotAttributes"] > 0
    assert floor["rds:DescribeDBClusterSnapshotAttributes"] > 0
    assert served.call_counts() == floor  # counted by the server: nothing twice, no extra
    assert dict(inv.scan.api_calls) == floor  # and by rdsaudit itself
    assert not any(c.status != 200 for c in served.calls())


def test_throttled_describe_key_slows_down_instead_of_failing(served: RateLimitedAWS) -> None:
    served.throttling(True)
    served.reset_calls()
    try:
        inv = _scan(served, max_attempts=1)
    finally:
        served.throttling(False)
    assert inv.errors == ()
    assert all(k.lookup.value == "ok" for k in inv.keys)
    throttled = [c for c in served.calls() if c.action == "DescribeKey" and c.status == 400]
    assert throttled, "the scan was never throttled: the test proves nothing"
    # --max-attempts 1 allows no retry, yet none failed: throttled calls went on while
    # others of the operation got through.
    assert dict(inv.scan.retries)["kms:DescribeKey"] == len(throttled)
    answered = Counter(c.key for c in served.calls() if c.status == 200)
    assert dict(answered) == api_floor(inv, page_cap=PAGE_CAP)
