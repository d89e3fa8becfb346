"""Combine the inventories of a sharded scan into one, to be judged together.

Judging the union (not concatenating the shards' findings) re-joins what a shard could not
see alone: a key owned by one account and used in another is described once, its best
look-up kept, and its dependents in every account counted. What is missing (a shard that
wrote nothing, an account no shard scanned) becomes a `CollectionError`, so the merged
report is incomplete (exit 3) rather than silently smaller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rdsaudit.errors import UsageProblem
from rdsaudit.model import (
    CollectionError,
    Inventory,
    KeyLookup,
    KmsKey,
    ScanInfo,
)
from rdsaudit.shard import shard_of

INVENTORY_NAME = "rdsaudit-inventory.json"
MERGE_SERVICE = "rdsaudit"  # errors the merge itself records, not an AWS service's


class MergeProblem(UsageProblem, ValueError):
    """Parts that cannot belong to one sharded scan (exit 2)."""


@dataclass(frozen=True)
class Part:
    source: str  # where it was read from, for messages
    inventory: Inventory


def merge_keys(groups: Iterable[Iterable[KmsKey]]) -> tuple[KmsKey, ...]:
    """One record per key ARN: two accounts may use the same (cross-account) key; keep the
    look-up that succeeded if one did."""
    merged: dict[str, KmsKey] = {}
    for group in groups:
        for key in group:
            held = merged.get(key.arn)
            if held is None or (held.lookup is not KeyLookup.OK and key.lookup is KeyLookup.OK):
                merged[key.arn] = key
    return tuple(sorted(merged.values(), key=lambda k: k.arn))


def _counts(groups: Iterable[Iterable[tuple[str, int]]]) -> tuple[tuple[str, int], ...]:
    total: Counter[str] = Counter()
    for group in groups:
        for name, n in group:
            total[name] += n
    return tuple(sorted(total.items()))


def _shard_count(parts: Sequence[Part], expected: int | None) -> int | None:
    counts = {p.inventory.scan.shard.count for p in parts if p.inventory.scan.shard}
    if expected is not None and counts - {expected}:
        raise MergeProblem(f"--shards {expected}, but the parts come from "
                           f"{', '.join(str(c) for c in sorted(counts))} shard(s)")
    if expected is not None and not counts:
        raise MergeProblem(f"--shards {expected}, but no part is a shard (scanned with "
                           "--shard)")
    if len(counts) > 1:
        raise MergeProblem(f"the parts come from different shard counts "
                           f"({', '.join(str(c) for c in sorted(counts))})")
    if counts and any(p.inventory.scan.shard is None for p in parts):
        plain = next(p.source for p in parts if p.inventory.scan.shard is None)
        raise MergeProblem(f"{plain} is not a shard (scanned without --shard) but other "
                           "parts are")
    seen: dict[int, str] = {}
    for p in parts:
        shard = p.inventory.scan.shard
        if shard is None:
            continue
        if shard.index in seen:
            raise MergeProblem(f"shard {shard.index}/{shard.count} given twice "
                               f"({seen[shard.index]} and {p.source})")
        seen[shard.index] = p.source
    return counts.pop() if counts else None


def merge_inventories(parts: Sequence[Part], not_found: Sequence[str] = (),
                      expected: int | None = None) -> Inventory:
    """The inventory a single run over every part's accounts would have collected, plus an
    error for each missing shard, part and account."""
    count = _shard_count(parts, expected)
    invs = [p.inventory for p in parts]
    population = list(dict.fromkeys(a for inv in invs if inv.scan.shard
                                    for a in inv.scan.shard.population))
    scanned = list(dict.fromkeys(a for inv in invs for a in inv.scan.accounts))
    order = {a: i for i, a in enumerate([*population, *scanned])}
    accounts = sorted(scanned, key=order.__getitem__)
    home = next((inv.scan.regions[0] for inv in invs if inv.scan.regions), "")
    missing: list[CollectionError] = []
    present = {inv.scan.shard.index for inv in invs if inv.scan.shard}
    absent = [i for i in range(1, count + 1) if i not in present] if count else []
    where = f" (not found: {', '.join(not_found)})" if not_found else ""
    for index in absent:
        owned = [a for a in population if shard_of(a, count or 1) == index]
        listed = ", ".join(owned[:10]) + (f" and {len(owned) - 10} more" if len(owned) > 10
                                          else "")
        missing.append(CollectionError(
            "", home, MERGE_SERVICE, "Merge", "ShardMissing",
            f"shard {index}/{count} is missing from the merge{where}: "
            + (f"its accounts were not scanned: {listed}" if owned
               else "no account of the known population belongs to it")))
    if not_found and not absent:
        missing.append(CollectionError("", home, MERGE_SERVICE, "Merge", "PartMissing",
                                       f"part(s) not found: {', '.join(not_found)}"))
    if not absent:
        # Every shard is here: an account one shard listed that none scanned (the
        # Organization changed between the shards' listings) is not covered.
        covered = set(scanned)
        for account in population:
            if account not in covered:
                missing.append(CollectionError(
                    account, home, MERGE_SERVICE, "Merge", "AccountNotScanned",
                    f"account {account} was listed by a shard but scanned by none"))
    errors = sorted((e for inv in invs for e in inv.errors),
                    key=lambda e: (order.get(e.account_id, len(order)), e.region, e.service,
                                   e.operation, e.resource or "", e.code, e.message))
    return Inventory(
        scan=ScanInfo(
            started_at=min((inv.scan.started_at for inv in invs), default=""),
            finished_at=max((inv.scan.finished_at for inv in invs), default=""),
            accounts=tuple(accounts),
            regions=tuple(sorted({r for inv in invs for r in inv.scan.regions})),
            api_calls=_counts(inv.scan.api_calls for inv in invs),
            retries=_counts(inv.scan.retries for inv in invs),
            skipped_regions=tuple(x for inv in invs for x in inv.scan.skipped_regions),
        ),
        resources=tuple(r for inv in invs for r in inv.resources),
        keys=merge_keys(inv.keys for inv in invs),
        aliases=tuple(dict.fromkeys(a for inv in invs for a in inv.aliases)),
        shares=tuple(dict.fromkeys(s for inv in invs for s in inv.shares)),
        errors=tuple(missing) + tuple(errors),
        trails=tuple(dict.fromkeys(t for inv in invs for t in inv.trails)),
        option_groups=tuple(dict.fromkeys(g for inv in invs for g in inv.option_groups)),
    )
