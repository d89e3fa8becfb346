"""The API floor of an estate: the fewest AWS calls a complete scan can make, and the
critical path, the longest chain of them that must run one after another.

Pure functions over an `Inventory`, so the floor can be computed for a live scan or for a
saved inventory alike. What the floor counts, per scanned (account, region) pair (enabled
regions only; `account_regions`):

* every row of `LISTINGS`: max(1, ceil(n / page size)) calls for the n items it returns
  (a listing of nothing still costs its one call); both DescribeDBSnapshots rows count;
* `kms:ListAliases`: max(1, ceil(aliases / ALIAS_PAGE));

and once per account or key:

* `sts:GetCallerIdentity` 1, `ec2:DescribeRegions` 1 when regions are discovered;
* `kms:DescribeKey` once per distinct key the resources name in any key role (storage,
  Performance Insights, master user secret, activity stream; resolved to its ARN), and
  once per multi-Region primary key of such a key that no resource names itself;
* `kms:GetKeyRotationStatus` once per distinct described key that `needs_rotation_call`
  (customer managed, not imported / custom key store / multi-Region replica);
* one `Describe*SnapshotAttributes` call per manual (cluster) snapshot that
  `needs_share_call` (every one that is not KMS-encrypted);
* `kms:GetKeyLastUsage` once per described customer managed key of the account that uses
  it (`needs_last_usage_call`);
* `rds:DescribeOptionGroups` once per distinct non-default option group of an Oracle or
  SQL Server instance (`option_group_to_describe`: TDE);
* `cloudtrail:DescribeTrails` once per scanned (account, region), and
  `cloudtrail:GetTrailStatus` and `cloudtrail:GetEventSelectors` once per distinct trail an
  account lists;
* for a scan of several accounts (`api_floor(caller=…)`): one `sts:AssumeRole` per account
  but the caller's, `ec2:DescribeRegions` per account entered, and the pages of
  `organizations:ListAccounts`.

Items a listing returns but rdsaudit leaves out (DocumentDB, Neptune) are not in an
inventory, so a floor computed from one undercounts pages when there are many of them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rdsaudit.arns import Arn
from rdsaudit.collect.account_scan import ALIAS_PAGE
from rdsaudit.collect.specs import (
    LISTINGS,
    PAGE_SIZE,
    SNAPSHOT_SHARE_CALLS,
    ListingSpec,
    needs_last_usage_call,
    needs_rotation_call,
    needs_share_call,
    option_group_to_describe,
    primary_to_look_up,
)
from rdsaudit.keyref import key_dependencies, resolve_key
from rdsaudit.model import Inventory, Resource

# Listing order, where known: (region, index in LISTINGS) -> item ARNs in the order AWS
# returned them. Without it the critical path is the best case over every possible order.
ListingOrder = Mapping[tuple[str, int], Sequence[str]]


def page_size(spec: ListingSpec, page_cap: int | None = None) -> int:
    """Items per page of a listing: what rdsaudit asks for, or fewer if the service caps
    pages lower (`page_cap`, e.g. an emulator serving one item a page)."""
    size = int(spec.params.get("MaxRecords", PAGE_SIZE))
    return min(size, page_cap) if page_cap is not None else size


def pages(items: int, size: int) -> int:
    """Calls to list `items` in pages of `size`: an empty listing still costs one."""
    return max(1, math.ceil(items / size))


def listing_of(resource: Resource) -> int | None:
    """The row of LISTINGS (its index) that returns this resource, or None.

    Rows of one resource type are told apart by their SnapshotType parameter (the default
    DescribeDBSnapshots listing returns the types no other row asks for), then by whether
    the row and the resource's ARN are a cluster's (instance vs cluster automated backups).
    """
    rows = [i for i, s in enumerate(LISTINGS) if s.resource_type == resource.type]
    if len(rows) > 1:
        typed = [i for i in rows if LISTINGS[i].params.get("SnapshotType") is not None]
        exact = [i for i in typed if LISTINGS[i].params["SnapshotType"] == resource.snapshot_type]
        if exact:
            return exact[0]
        rows = [i for i in rows if i not in typed]
    if len(rows) > 1:
        arn = Arn.parse(resource.arn)
        cluster = arn is not None and arn.resource.startswith("cluster")
        rows = [i for i in rows if LISTINGS[i].result_key.startswith("DBCluster") == cluster]
    return rows[0] if rows else None


def scanned_regions(inventory: Inventory) -> tuple[str, ...]:
    skipped = {s.region for s in inventory.scan.skipped_regions}
    return tuple(r for r in inventory.scan.regions if r not in skipped)


def account_regions(inventory: Inventory) -> tuple[tuple[str, str], ...]:
    """(account, region) pairs the scan read: each account's share of the scanned regions
    (a region skipped for one account may be enabled in another). An account that could
    not be entered (its AssumeRole failed) read no region."""
    skipped = {(s.account_id, s.region) for s in inventory.scan.skipped_regions}
    entered = _entered(inventory)
    return tuple((a, r) for a in inventory.scan.accounts if a in entered
                 for r in inventory.scan.regions if (a, r) not in skipped)


def _entered(inventory: Inventory) -> set[str]:
    """The accounts the scan got into: all but those whose AssumeRole failed (nothing else
    is called there). A failed DescribeRegions still enters: every region is then tried."""
    refused = {e.account_id for e in inventory.errors
               if (e.service, e.operation) == ("sts", "AssumeRole")}
    return set(inventory.scan.accounts) - refused


def listing_items(inventory: Inventory) -> dict[tuple[str, int], int]:
    """Items per (region, LISTINGS row), zeros included for every scanned region."""
    counts: Counter[tuple[str, int]] = Counter()
    for resource in inventory.resources:
        row = listing_of(resource)
        if row is not None:
            counts[(resource.region, row)] += 1
    return {(region, i): counts[(region, i)]
            for region in scanned_regions(inventory) for i in range(len(LISTINGS))}


def keys_of(resource: Resource, aliases: Mapping[str, Mapping[str, Mapping[str, str | None]]],
            regions: Iterable[str]) -> list[tuple[str, str]]:
    """(KmsKeyId as named, key ARN) of each key the scan looks up for this resource, in
    every key role (see `key_dependencies`)."""
    listed = {r: a for r, a in aliases.get(resource.account_id, {}).items() if r in regions}
    out = []
    for _, key_id in key_dependencies(resource):
        ref = resolve_key(key_id, resource.region, resource.account_id, listed)
        if ref.arn is not None:
            out.append((key_id, ref.arn))
    return out


def _aliases(inventory: Inventory) -> dict[str, dict[str, dict[str, str | None]]]:
    out: dict[str, dict[str, dict[str, str | None]]] = defaultdict(dict)
    for region in scanned_regions(inventory):
        for account in inventory.scan.accounts:
            out[account].setdefault(region, {})
    for alias in inventory.aliases:
        out[alias.account_id].setdefault(alias.region, {})[alias.name] = alias.target_key_id
    return out


def keys_looked_up(inventory: Inventory) -> dict[str, list[Resource]]:
    """Key ARN -> the resources that name it (each key is described once)."""
    aliases = _aliases(inventory)
    regions = scanned_regions(inventory)
    out: dict[str, list[Resource]] = defaultdict(list)
    for resource in inventory.resources:
        for _, arn in keys_of(resource, aliases, regions):
            if resource not in out[arn][-1:]:
                out[arn].append(resource)
    return out


def primaries(inventory: Inventory, named: Iterable[str]) -> set[str]:
    """Multi-Region primary keys the scan describes because a key it described is their
    replica, and that no resource names itself (those are already counted)."""
    by_arn = {k.arn: k for k in inventory.keys}
    named = set(named)
    out = set()
    for arn in named:
        key = by_arn.get(arn)
        primary = primary_to_look_up(key) if key is not None else None
        if primary is not None and primary not in named:
            out.add(primary)
    return out


def rotation_keys(inventory: Inventory, described: Iterable[str]) -> set[str]:
    """The described keys GetKeyRotationStatus is asked of (the scanner's own predicate)."""
    wanted = set(described)
    return {k.arn for k in inventory.keys if k.arn in wanted and needs_rotation_call(k)}


def api_floor(inventory: Inventory, discovered_regions: bool = False,
              page_cap: int | None = None, caller: str | None = None,
              list_accounts_pages: int = 0) -> dict[str, int]:
    """`{"rds:DescribeDBInstances": 20, ...}`: the calls a complete scan must make.

    Every per-region call is counted once per (account, region) the scan read. For a scan
    of several accounts, `caller` (the account whose credentials ran it) adds one
    `sts:AssumeRole` per other account, and `list_accounts_pages` the pages of
    `organizations:ListAccounts` an `--organization` scan read."""
    floor: Counter[str] = Counter({"sts:GetCallerIdentity": 1})
    if list_accounts_pages:
        floor["organizations:ListAccounts"] += list_accounts_pages
    if caller is not None:
        others = sum(1 for a in inventory.scan.accounts if a != caller)
        if others:
            floor["sts:AssumeRole"] += others
    pairs = account_regions(inventory)
    if discovered_regions:
        floor["ec2:DescribeRegions"] += len(_entered(inventory)) or 1
    items: Counter[tuple[str, str, int]] = Counter()
    for resource in inventory.resources:
        row = listing_of(resource)
        if row is not None:
            items[(resource.account_id, resource.region, row)] += 1
    for account, region in pairs:
        for row, spec in enumerate(LISTINGS):
            floor[spec.action] += pages(items[(account, region, row)], page_size(spec, page_cap))
    alias_counts = Counter((a.account_id, a.region) for a in inventory.aliases)
    alias_page = min(ALIAS_PAGE, page_cap) if page_cap is not None else ALIAS_PAGE
    for pair in pairs:
        floor["kms:ListAliases"] += pages(alias_counts[pair], alias_page)
    keys = keys_looked_up(inventory)
    described = set(keys) | primaries(inventory, keys)
    # Each account's scan looks its keys up itself: a key two scanned accounts use (a
    # cross-account key) is described, and its rotation asked, once by each of them.
    by_arn = {k.arn: k for k in inventory.keys}
    users = {arn: len(_accounts_using(arn, keys, by_arn)) or 1 for arn in described}
    if described:
        floor["kms:DescribeKey"] += sum(users.values())
    rotated = rotation_keys(inventory, described)
    if rotated:
        floor["kms:GetKeyRotationStatus"] += sum(users[arn] for arn in rotated)
    for resource in inventory.resources:
        if needs_share_call(resource):
            floor[f"rds:{SNAPSHOT_SHARE_CALLS[resource.type][0]}"] += 1
    groups = {(r.account_id, r.region, g) for r in inventory.resources
              if (g := option_group_to_describe(r)) is not None}
    if groups:
        floor["rds:DescribeOptionGroups"] += len(groups)
    last_used = last_usage_keys(inventory, keys, described)
    if last_used:
        floor["kms:GetKeyLastUsage"] += len(last_used)
    floor["cloudtrail:DescribeTrails"] += len(pairs)
    trails = {(t.account_id, t.arn) for t in inventory.trails}
    if trails:
        floor["cloudtrail:GetTrailStatus"] += len(trails)
        floor["cloudtrail:GetEventSelectors"] += len(trails)
    return dict(sorted(floor.items()))


def last_usage_keys(inventory: Inventory, named: Mapping[str, list[Resource]],
                    described: Iterable[str]) -> set[str]:
    """The described keys GetKeyLastUsage is asked of (the scanner's own predicate)."""
    by_arn = {k.arn: k for k in inventory.keys}
    return {arn for arn in described if arn in by_arn and any(
        needs_last_usage_call(by_arn[arn], a) for a in _accounts_using(arn, named, by_arn))}


def _accounts_using(arn: str, named: Mapping[str, list[Resource]],
                    by_arn: Mapping[str, Any]) -> set[str]:
    """Accounts whose scan describes this key: those of its users, or for a multi-Region
    primary no resource names, those of its replicas' users."""
    users = {r.account_id for r in named.get(arn, ())}
    if not users:
        for other, resources in named.items():
            key = by_arn.get(other)
            if key is not None and key.primary_key_arn == arn:
                users |= {r.account_id for r in resources}
    return users


def critical_chain(inventory: Inventory, discovered_regions: bool = False,
                   order: ListingOrder | None = None, page_cap: int | None = None) -> int:
    """The most calls any chain of dependent calls holds, the account's prelude included.

    A chain: GetCallerIdentity (and DescribeRegions) before anything; then the pages of one
    listing, one after another (page n+1 needs page n's marker); then what the page that
    reveals an item starts: the item's attribute call, or its key's DescribeKey followed,
    for a customer managed key, by GetKeyRotationStatus (the key is described once, after
    the first page that names it). A key named by alias also waits for its region's
    ListAliases.

    With `order` (what AWS returned, page by page) the chain is exact. Without it, it is
    the best case over every order: a key is revealed by the first page of some listing,
    and the last page of a listing holds, of its items, those with the least to do.
    """
    prelude = 1 + (1 if discovered_regions else 0)
    aliases = _aliases(inventory)
    regions = scanned_regions(inventory)
    alias_counts = Counter(a.region for a in inventory.aliases)
    alias_page = min(ALIAS_PAGE, page_cap) if page_cap is not None else ALIAS_PAGE
    alias_pages = {r: pages(alias_counts[r], alias_page) for r in regions}
    named_keys = keys_looked_up(inventory)
    all_described = set(named_keys) | primaries(inventory, named_keys)
    rotating = rotation_keys(inventory, all_described)
    # A key's DescribeKey is followed by its rotation status and its last use, in parallel.
    rotating |= last_usage_keys(inventory, named_keys, all_described)
    by_key = {k.arn: k for k in inventory.keys}
    by_arn = {r.arn: r for r in inventory.resources}
    rows: dict[tuple[str, int], list[Resource]] = defaultdict(list)
    for resource in inventory.resources:
        row = listing_of(resource)
        if row is not None:
            rows[(resource.region, row)].append(resource)

    def key_after(resource: Resource, page: int) -> None:
        """Note when the look-up of this resource's keys can start, at the earliest."""
        for named, arn in keys_of(resource, aliases, regions):
            start = page
            ref = Arn.parse(named)
            if named.startswith("alias/") or (ref is not None
                                              and ref.resource.startswith("alias/")):
                alias_region = ref.region if ref is not None else resource.region
                start = max(start, alias_pages.get(alias_region, 1))
            first_seen[arn] = min(first_seen.get(arn, start), start)

    longest = max(alias_pages.values(), default=0)
    if inventory.trails:
        longest = max(longest, 2)  # DescribeTrails, then a trail's status and selectors
    first_seen: dict[str, int] = {}  # key -> earliest call number its look-up can follow
    for (region, row), n in listing_items(inventory).items():
        size = page_size(LISTINGS[row], page_cap)
        count = pages(n, size)
        longest = max(longest, count)
        items = rows.get((region, row), [])
        listed = order.get((region, row)) if order is not None else None
        if listed is not None:
            sequence = [by_arn[a] for a in listed if a in by_arn]
            for index, item in enumerate(sequence):
                page = index // size + 1
                longest = max(longest, page + (1 if needs_share_call(item) else 0))
                key_after(item, page)
            continue
        # Best case: the last page holds the items with the least follow-up work, and
        # every key is named on a first page.
        last = n - size * (count - 1)
        tails = sorted(1 if needs_share_call(r) else 0 for r in items)
        longest = max(longest, count + (tails[last - 1] if tails else 0))
        for item in items:
            key_after(item, 1)
    for arn, start in first_seen.items():
        # DescribeKey, then GetKeyRotationStatus; a multi-Region replica's DescribeKey
        # reveals its primary: DescribeKey and GetKeyRotationStatus of the primary follow.
        chain = 1 + (1 if arn in rotating else 0)
        held = by_key.get(arn)
        primary = primary_to_look_up(held) if held is not None else None
        if primary is not None and primary not in named_keys:
            chain = max(chain, 2 + (1 if primary in rotating else 0))
        longest = max(longest, start + chain)
    return prelude + longest


def critical_path(inventory: Inventory, latency: float, discovered_regions: bool = False,
                  order: ListingOrder | None = None, page_cap: int | None = None) -> float:
    """The critical chain times the latency of one call: no scan can be faster."""
    return critical_chain(inventory, discovered_regions, order, page_cap) * latency
