"""One account's scan: every listing in every region, concurrently, with key look-ups
streamed as soon as a page reveals a key.

Work is a set of small tasks, each one AWS call: per region, the first page of ListAliases
and of every row of `LISTINGS`; a page that has a next one starts it before its own items
are read; an item that names a KMS key starts that key's DescribeKey at once (and, for a
customer managed key, its GetKeyRotationStatus); an unencrypted manual snapshot starts its
attribute call. A scheduler runs the most urgent task first (listing pages, then keys, then
rotation, then snapshot attributes: the critical path before the rest) with at most
`lanes[service]` calls in flight per service and region and `workers` in all.

The calls are the API floor (`rdsaudit.collect.floor`): each page once, each key looked up
exactly once in its own region, each attribute call once. Every failure becomes a
`CollectionError` (or a `SkippedRegion` for a region the account has not enabled).

Size (~830 lines): one class, `AccountScanner`, whose methods share its scheduler, lock and
accumulated answers; each method is one AWS call and what its answer starts. Splitting it
by service would put that shared state behind an interface for no reader's gain. What does
not need the state is elsewhere: answer checks in `answers`, which call a resource needs in
`specs` and `keyref` (the floor asks the same predicates), the scheduler's lanes here.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rdsaudit.arns import Arn
from rdsaudit.collect.answers import (
    SELECTOR_FREE_TEXT,
    TRAIL_STATUS_FREE_TEXT,
    iso_text,
    key_metadata_problem,
    multi_region_config,
    str_or_none,
    text_problem,
    trail_entry_problem,
)
from rdsaudit.collect.clients import AwsClients
from rdsaudit.collect.deadline import Deadline
from rdsaudit.collect.failures import AWS_FAILURES, Failure, describe_failure
from rdsaudit.collect.paging import PageBound
from rdsaudit.collect.specs import (
    LISTINGS,
    OPTION_GROUP_CALL,
    SNAPSHOT_SHARE_CALLS,
    TRAIL_CALLS,
    ListingSpec,
    MalformedRecord,
    needs_last_usage_call,
    needs_rotation_call,
    needs_share_call,
    option_group_to_describe,
    primary_to_look_up,
)
from rdsaudit.collect.trails import kms_reads_logged
from rdsaudit.keyref import (
    CUSTOM_KEY_STORE_ORIGINS,
    key_dependencies,
    resolve_key,
    rotation_not_applicable,
)
from rdsaudit.model import (
    CollectionError,
    KeyLookup,
    KmsAlias,
    KmsKey,
    OptionGroup,
    Resource,
    RotationLookup,
    SkippedRegion,
    SnapshotShare,
    Trail,
)
from rdsaudit.text import identifier_problem, shown, valid_text

ProgressFn = Callable[["Progress"], None]


@dataclass(frozen=True)
class Progress:
    regions_done: int
    regions_total: int
    resources: int
    errors: int


@dataclass(frozen=True)
class AccountScan:
    """Everything one account's scan read: the raw material of an Inventory."""

    account_id: str
    regions: tuple[str, ...]
    resources: tuple[Resource, ...]
    keys: tuple[KmsKey, ...]
    aliases: tuple[KmsAlias, ...]
    shares: tuple[SnapshotShare, ...]
    errors: tuple[CollectionError, ...]
    skipped: tuple[SkippedRegion, ...]
    trails: tuple[Trail, ...] = ()
    option_groups: tuple[OptionGroup, ...] = ()


class _Malformed(ValueError):
    """An answer that parsed but lacks what the API promises."""


def _failure_of(exc: Exception) -> Failure:
    """A failed call's failure; an answer we found malformed ourselves says so in our words."""
    if isinstance(exc, _Malformed):
        return Failure("MalformedResponse", str(exc))
    return describe_failure(exc)


# What runs first when more work is ready than lanes allow: the critical path. Listing
# pages are chains (page n+1 needs page n's marker) and reveal everything else; a key's
# DescribeKey may have a GetKeyRotationStatus behind it; snapshot attributes end nothing.
LISTING, KEY, ROTATION, SHARE, DETAIL = 0, 1, 2, 3, 4

# Calls in flight at most per service and region, within the scan's `workers` in all: AWS
# throttles per account, region and service (aws-facts §7). A listing holds one RDS lane for
# all its pages (7 listings a region); the rest go to the per-snapshot attribute calls, the
# bulk of the calls (benchmarks/results.md). At 50 ms a call a scan is CPU-bound in the client
# long before these limits bind; they bound the burst AWS sees per region.
DEFAULT_LANES: Mapping[str, int] = {"rds": 16, "kms": 8}

ALIAS_PAGE = 100  # the largest ListAliases page (Limit 1..100)

Lane = tuple[str, str]  # (service, region)
LOCAL: Lane = ("local", "")  # work that makes no call: reading a page


class _Scheduler:
    """Worker threads that always run the most urgent task whose lane has room.

    A task may submit more tasks; `run` returns when none is queued or running. An
    unexpected exception in a task (a bug, not an AWS failure) stops the workers and is
    re-raised by `run`.
    """

    def __init__(self, workers: int, lanes: Mapping[str, int]) -> None:
        self._workers = max(1, workers)
        self._lanes = lanes
        self._cond = threading.Condition()
        self._queues: dict[Lane, list[tuple[int, int, Callable[..., None], tuple[Any, ...]]]] = {}
        self._running: Counter[Lane] = Counter()
        self._pending = 0  # queued + running
        self._seq = itertools.count()
        self._stop: BaseException | None = None
        self._active: dict[int, tuple[Lane, Callable[..., None], tuple[Any, ...]]] = {}
        self.stopped = False  # the deadline passed: nothing more is started

    def submit(self, priority: int, lane: Lane, fn: Callable[..., None], *args: Any) -> bool:
        """Queue a task; False once the scheduler has stopped (it will never run)."""
        with self._cond:
            if self.stopped:
                return False
            heapq.heappush(self._queues.setdefault(lane, []),
                           (priority, next(self._seq), fn, args))
            self._pending += 1
            self._cond.notify()
        return True

    def run(self, deadline: Deadline) -> list[tuple[Lane, Callable[..., None], tuple[Any, ...]]]:
        """Run until no task is left, or the deadline passes: then the tasks never started
        and those still running (perhaps stuck in a call) are returned, and the worker
        threads are left behind (daemons, never joined: `rdsaudit.collect.deadline`)."""
        threads = [threading.Thread(target=self._work, name=f"rdsaudit-{i}", daemon=True)
                   for i in range(self._workers)]
        for thread in threads:
            thread.start()
        try:
            with self._cond:
                while self._pending and self._stop is None and not deadline.expired:
                    self._cond.wait(min(0.5, max(0.01, deadline.remaining())))
                if self._pending and self._stop is None:
                    self.stopped = True
                    self._cond.notify_all()
                    queued = [(lane, fn, args) for lane, queue in self._queues.items()
                              for _, _, fn, args in queue]
                    self._queues.clear()
                    return queued + list(self._active.values())
        except BaseException as exc:
            # Ctrl-C: drop queued work instead of finishing the whole scan first.
            with self._cond:
                self._stop = self._stop or exc
                self._cond.notify_all()
            raise
        with self._cond:
            crash = self._stop
        if crash is not None:
            raise crash
        for thread in threads:
            thread.join()
        return []

    def _take(self) -> tuple[Lane, Callable[..., None], tuple[Any, ...]] | None:
        best: Lane | None = None
        for lane, queue in self._queues.items():
            limit = self._workers if lane == LOCAL else self._lanes.get(lane[0], 1)
            if queue and self._running[lane] < limit:
                if best is None or queue[0][:2] < self._queues[best][0][:2]:
                    best = lane
        if best is None:
            return None
        _, _, fn, args = heapq.heappop(self._queues[best])
        self._running[best] += 1
        return best, fn, args

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop is not None or not self._pending or self.stopped:
                        self._cond.notify_all()
                        return
                    task = self._take()
                    if task is not None:
                        break
                    self._cond.wait()
            lane, fn, args = task
            token = next(self._seq)
            with self._cond:
                self._active[token] = task
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to run(), which re-raises
                with self._cond:
                    self._stop = self._stop or exc
            finally:
                with self._cond:
                    self._active.pop(token, None)
                    self._running[lane] -= 1
                    self._pending -= 1
                    self._cond.notify_all()


class AccountScanner:
    def __init__(
        self,
        clients: AwsClients,
        account_id: str,
        regions: Iterable[str],
        *,
        workers: int = 16,
        per_service: Mapping[str, int] | None = None,
        progress: ProgressFn | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.deadline = deadline or Deadline(None)
        self.clients = clients
        self.account_id = account_id
        self.regions = tuple(regions)
        self.workers = workers
        # Per service, in each region.
        self.lanes = {**DEFAULT_LANES, **(per_service or {})}
        self._progress = progress
        self._lock = threading.Lock()
        self._resources: dict[str, Resource] = {}
        self._keys: dict[str, KmsKey] = {}
        self._aliases: dict[str, dict[str, str | None]] = {}
        self._alias_records: list[KmsAlias] = []
        self._waiting_for_aliases: dict[str, list[Resource]] = {}
        self._shares: list[SnapshotShare] = []
        self._errors: list[CollectionError] = []
        self._skipped: dict[str, SkippedRegion] = {}
        self._trails: dict[str, Trail] = {}
        self._option_groups: dict[tuple[str, str], OptionGroup | None] = {}
        # Per region: every row of LISTINGS, ListAliases and DescribeTrails.
        self._open_listings = {r: len(LISTINGS) + 2 for r in self.regions}
        self._scheduler: _Scheduler | None = None

    # -- orchestration -------------------------------------------------------------------

    def run(self) -> AccountScan:
        self._scheduler = _Scheduler(self.workers, self.lanes)
        for region in self.regions:
            self._submit(LISTING, ("kms", region), self._list_aliases, region,
                         PageBound("ListAliases", region), {})
            self._submit(LISTING, ("cloudtrail", region), self._list_trails, region)
            for spec in LISTINGS:
                self._submit(LISTING, (spec.service, region), self._list, region, spec)
        for _lane, fn, args in self._scheduler.run(self.deadline):
            self._unread(fn, args)
        self._unscanned_replications()
        with self._lock:
            # Under the lock: a worker stuck past the deadline may still answer later.
            return AccountScan(
                account_id=self.account_id,
                regions=self.regions,
                resources=tuple(sorted(self._resources.values(), key=lambda r: r.arn)),
                keys=tuple(sorted(self._keys.values(), key=lambda k: k.arn)),
                aliases=tuple(sorted(self._alias_records, key=lambda a: (a.region, a.name))),
                shares=tuple(sorted(self._shares, key=lambda s: s.snapshot_arn)),
                errors=tuple(self._errors),
                skipped=tuple(self._skipped[r] for r in sorted(self._skipped)),
                trails=tuple(sorted(self._trails.values(), key=lambda t: t.arn)),
                option_groups=tuple(sorted((g for g in self._option_groups.values() if g),
                                           key=lambda g: (g.region, g.name))),
            )

    def _unscanned_replications(self) -> None:
        """A backup replicated into a region this scan did not cover is not audited: say
        so, with the region to add. (Discovered regions are every enabled region, so there
        the destination is scanned unless the account has not enabled it.)"""
        seen: set[str] = set()
        for resource in sorted(self._resources.values(), key=lambda r: r.arn):
            for arn in resource.backup_replications:
                parsed = Arn.parse(arn)
                if parsed is None or arn in seen or parsed.region in self.regions:
                    continue
                seen.add(arn)
                self._errors.append(CollectionError(
                    self.account_id, parsed.region, "rds",
                    "DescribeDBInstanceAutomatedBackups", "RegionNotScanned",
                    f"automated backups of {resource.id} ({resource.region}) are replicated "
                    f"to {parsed.region}, which this scan did not cover: their encryption is "
                    f"not audited; add {parsed.region} to --regions (or the config's regions)",
                    arn))

    def _submit(self, priority: int, lane: Lane, fn: Callable[..., None], *args: Any) -> None:
        assert self._scheduler is not None
        if not self._scheduler.submit(priority, lane, fn, *args):
            self._unread(fn, args)

    def _unread(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        """Record work the deadline left undone as the error it is (what was not read)."""
        name = getattr(fn, "__name__", "")
        if name == "_take_page":  # a page already read: its items are in hand, take them
            region, spec, page = args
            fn(region, spec, page)
            return
        message = f"not read before the --timeout deadline ({self.deadline.seconds:g} s)"
        if name == "_list":
            region, spec = args
            self._record_error(region, spec.service, spec.operation,
                               Failure("DeadlineExceeded", message))
        elif name == "_list_aliases":
            self._record_error(args[0], "kms", "ListAliases",
                               Failure("DeadlineExceeded", message))
        elif name == "_describe_key":
            arn, region, _account = args
            self._record_error(region, "kms", "DescribeKey",
                               Failure("DeadlineExceeded", message), arn)
        elif name == "_rotation":
            key = args[0]
            self._record_error(key.region, "kms", "GetKeyRotationStatus",
                               Failure("DeadlineExceeded", message), key.arn)
            with self._lock:
                held = self._keys.get(key.arn, key)
                self._keys[key.arn] = replace(held, rotation=RotationLookup.ERROR,
                                              note=f"rotation status unknown: {message}")
        elif name == "_describe_share":
            snapshot = args[0]
            operation = SNAPSHOT_SHARE_CALLS[snapshot.type][0]
            self._record_error(snapshot.region, "rds", operation,
                               Failure("DeadlineExceeded", message), snapshot.arn)
        elif name == "_list_trails":
            self._record_error(args[0], "cloudtrail", "DescribeTrails",
                               Failure("DeadlineExceeded", message))
        elif name in ("_trail_status", "_trail_selectors"):
            arn, home = args
            operation = TRAIL_CALLS["status" if name == "_trail_status" else "selectors"][0]
            self._record_error(home, "cloudtrail", operation,
                               Failure("DeadlineExceeded", message), arn)
        elif name == "_describe_option_group":
            region, group = args
            self._record_error(region, "rds", OPTION_GROUP_CALL[0],
                               Failure("DeadlineExceeded", message), group)
        elif name == "_last_usage":
            # Shown, never judged, but not read: like any failure of the call but an
            # AccessDenied (see _last_usage), an error as well as a note on the key. A
            # dripping answer the deadline ends is the same unread call as a hung one that
            # the read timeout ends (an error); only a refused permission is not.
            arn, region = args
            self._update_key(arn, last_usage_note=f"last use unknown: {message}")
            self._record_error(region, "kms", "GetKeyLastUsage",
                               Failure("DeadlineExceeded", message), arn)

    def _region_finished(self, region: str) -> None:
        with self._lock:
            self._open_listings[region] -= 1
        self._report_progress()

    def _report_progress(self) -> None:
        if self._progress is None:
            return
        with self._lock:
            done = sum(1 for n in self._open_listings.values() if n <= 0)
            snapshot = Progress(done, len(self.regions), len(self._resources), len(self._errors))
        self._progress(snapshot)

    def _skipping(self, region: str) -> bool:
        with self._lock:
            return region in self._skipped

    def _fail(self, region: str, service: str, operation: str, failure: Failure,
              resource: str | None = None) -> None:
        """Record a failure: a disabled region once as skipped, anything else as an error."""
        with self._lock:
            if failure.region_disabled and service in ("rds", "kms", "ec2", "cloudtrail"):
                if region in self.regions and region not in self._skipped:
                    self._skipped[region] = SkippedRegion(
                        self.account_id, region, failure.code, failure.message
                    )
                    return
                if region in self._skipped:
                    return
            self._errors.append(
                CollectionError(
                    self.account_id, region, service, operation, failure.code,
                    failure.message, resource,
                )
            )

    # -- listings ------------------------------------------------------------------------

    def _list(self, region: str, spec: ListingSpec) -> None:
        """A listing's pages, one after another in this thread (the chain never waits for a
        free worker); each page but the last is read by another task meanwhile. The
        listing's `PageBound` ends it when the endpoint loops."""
        bound = PageBound(spec.operation, region)
        while not self._skipping(region):
            try:
                page, following = self.clients.page(spec.service, region, spec.operation,
                                                    spec.method, bound, **spec.params)
            except AWS_FAILURES as exc:
                self._fail(region, spec.service, spec.operation, describe_failure(exc))
                break
            if following is None:
                self._take_page(region, spec, page)
                if bound.runaway is not None:
                    self._fail(region, spec.service, spec.operation,
                               describe_failure(bound.runaway))
                break
            self._submit(LISTING, LOCAL, self._take_page, region, spec, page)
        self._region_finished(region)

    def _take_page(self, region: str, spec: ListingSpec, page: Mapping[str, Any]) -> None:
        items = page.get(spec.result_key)
        if not isinstance(items, list):
            self._fail(region, spec.service, spec.operation,
                       Failure("MalformedResponse", f"response has no {spec.result_key} list"))
            return
        for item in items:
            try:
                resource = spec.normalize(item) if isinstance(item, Mapping) else None
                if resource is None and not isinstance(item, Mapping):
                    raise MalformedRecord(None, f"{spec.result_key} entry is not a structure")
            except MalformedRecord as bad:
                where = f" ({bad.resource_id})" if bad.resource_id else ""
                self._fail(region, spec.service, spec.operation,
                           Failure("MalformedResponse", f"{bad}{where}"), bad.resource_id)
                continue
            if resource is None:
                continue
            with self._lock:
                if resource.arn in self._resources:
                    continue  # e.g. an AWS Backup snapshot seen by both snapshot listings
                self._resources[resource.arn] = resource
            self._follow_up(resource)

    def _follow_up(self, resource: Resource) -> None:
        if needs_share_call(resource):
            self._submit(SHARE, ("rds", resource.region), self._describe_share, resource)
        self._want_key(resource)
        group = option_group_to_describe(resource)
        if group is not None:
            with self._lock:
                asked = (resource.region, group) in self._option_groups
                self._option_groups.setdefault((resource.region, group), None)
            if not asked:
                self._submit(DETAIL, ("rds", resource.region), self._describe_option_group,
                             resource.region, group)

    def _describe_option_group(self, region: str, name: str) -> None:
        """TDE is an option of the instance's option group (DescribeOptionGroups, once per
        distinct group in use): shown beside the storage key, never judged."""
        operation, method, param = OPTION_GROUP_CALL
        if self._skipping(region):
            return
        try:
            answer = self.clients.call("rds", region, operation, method, **{param: name})
        except AWS_FAILURES as exc:
            self._record_error(region, "rds", operation, describe_failure(exc), name)
            return
        groups = answer.get("OptionGroupsList")
        found = [g for g in groups if isinstance(g, Mapping)
                 and g.get("OptionGroupName") == name] if isinstance(groups, list) else []
        if not found:
            self._record_error(region, "rds", operation, Failure(
                "MalformedResponse", f"no option group {name} in the answer"), name)
            return
        options = tuple(sorted(str(o.get("OptionName")) for o in found[0].get("Options") or ()
                               if isinstance(o, Mapping) and o.get("OptionName")))
        with self._lock:
            self._option_groups[(region, name)] = OptionGroup(
                name, region, self.account_id, str_or_none(found[0].get("EngineName")), options)

    def _describe_share(self, snapshot: Resource) -> None:
        operation, method, id_param, result_key, list_key = SNAPSHOT_SHARE_CALLS[snapshot.type]
        if self._skipping(snapshot.region):
            return
        try:
            answer = self.clients.call(
                "rds", snapshot.region, operation, method, **{id_param: snapshot.id}
            )
        except AWS_FAILURES as exc:
            self._fail(snapshot.region, "rds", operation, describe_failure(exc), snapshot.arn)
            return
        attributes = (answer.get(result_key) or {}).get(list_key)
        if not isinstance(attributes, list):
            self._fail(snapshot.region, "rds", operation,
                       Failure("MalformedResponse", f"no {list_key} for {snapshot.id}"),
                       snapshot.arn)
            return
        restore: list[str] = []
        if not any(isinstance(a, Mapping) and a.get("AttributeName") == "restore"
                   for a in attributes):
            # AWS always lists `restore`; without it, public or not is unknown, not "no".
            self._fail(snapshot.region, "rds", operation,
                       Failure("MalformedResponse", "the answer has no restore attribute"),
                       snapshot.arn)
            return
        for attribute in attributes:
            if isinstance(attribute, Mapping) and attribute.get("AttributeName") == "restore":
                values = attribute.get("AttributeValues") or []
                if not isinstance(values, list) or not all(
                        isinstance(v, str) and identifier_problem(v) is None for v in values):
                    self._fail(snapshot.region, "rds", operation,
                               Failure("MalformedResponse", "restore attribute values are not "
                                       "account ids"), snapshot.arn)
                    return
                restore.extend(values)
        with self._lock:
            self._shares.append(SnapshotShare(snapshot.arn, tuple(restore)))

    # -- KMS -----------------------------------------------------------------------------

    def _list_aliases(self, region: str, bound: PageBound,
                      listed: dict[str, str | None]) -> None:
        """One page of ListAliases; keys named by alias wait for the last page."""
        if self._skipping(region):
            self._region_finished(region)
            return
        try:
            page, following = self.clients.page("kms", region, "ListAliases", "list_aliases",
                                                bound, Limit=ALIAS_PAGE)
            entries = page.get("Aliases")
            if not isinstance(entries, list):
                raise _Malformed("ListAliases answer has no Aliases list")
        except (*AWS_FAILURES, _Malformed) as exc:
            self._fail(region, "kms", "ListAliases", _failure_of(exc))
            with self._lock:
                self._waiting_for_aliases.pop(region, None)
            self._region_finished(region)
            return
        if following is not None:
            self._submit(LISTING, ("kms", region), self._list_aliases, region, bound, listed)
        for entry in entries:
            name = entry.get("AliasName") if isinstance(entry, Mapping) else None
            target = entry.get("TargetKeyId") if isinstance(entry, Mapping) else None
            problem = (None if isinstance(name, str) and identifier_problem(name) is None
                       and (target is None or (isinstance(target, str)
                            and identifier_problem(target) is None))
                       else "an alias whose AliasName or TargetKeyId is not a sound name")
            if problem is not None:
                self._fail(region, "kms", "ListAliases", Failure("MalformedResponse", problem),
                           shown(name) if isinstance(name, str) else None)
                continue
            assert isinstance(name, str)
            listed[name] = target
        if following is not None:
            return
        if bound.runaway is not None:
            self._fail(region, "kms", "ListAliases", describe_failure(bound.runaway))
        records = [KmsAlias(name, region, self.account_id, target)
                   for name, target in listed.items()]
        with self._lock:
            self._aliases[region] = listed
            self._alias_records.extend(records)
            waiting = self._waiting_for_aliases.pop(region, [])
        self._region_finished(region)
        for resource in waiting:
            self._want_key(resource)

    def _want_key(self, resource: Resource) -> None:
        """Start the look-up of each key the resource depends on (storage, Performance
        Insights, master user secret, activity stream) unless it is already started. An
        encrypted resource with no KmsKeyId has nothing to look up: evaluate reports it
        unverifiable."""
        for _, key_id in key_dependencies(resource):
            with self._lock:
                ref = resolve_key(key_id, resource.region, resource.account_id, self._aliases)
                if ref.arn is None:
                    if ref.alias is not None and ref.alias[0] in self.regions:
                        self._waiting_for_aliases.setdefault(ref.alias[0], []).append(
                            resource)
                    continue
            self._look_up(ref.arn)

    def _look_up(self, key_arn: str) -> None:
        """Start DescribeKey for a key ARN unless it is already started: once per key."""
        with self._lock:
            if key_arn in self._keys:
                return
            arn = Arn.parse(key_arn)
            if arn is None:
                return
            # Placeholder until DescribeKey answers; also the "already requested" mark.
            self._keys[key_arn] = KmsKey(key_arn, arn.region, arn.account, KeyLookup.ERROR,
                                         note="look-up did not finish")
        self._submit(KEY, ("kms", arn.region), self._describe_key, key_arn, arn.region,
                     arn.account)

    def _describe_key(self, arn: str, region: str, account: str) -> None:
        try:
            # Always by key ARN, never by alias: DescribeKey on alias/aws/rds can create the
            # AWS managed key (aws-facts §5).
            answer = self.clients.call("kms", region, "DescribeKey", "describe_key", KeyId=arn)
        except AWS_FAILURES as exc:
            failure = describe_failure(exc)
            if failure.code == "NotFoundException":
                key = KmsKey(arn, region, account, KeyLookup.NOT_FOUND, note=failure.message)
            else:
                lookup = KeyLookup.ACCESS_DENIED if failure.access_denied else KeyLookup.ERROR
                key = KmsKey(arn, region, account, lookup,
                             note=f"{failure.code}: {failure.message}")
                self._record_error(region, "kms", "DescribeKey", failure, arn)
            with self._lock:
                self._keys[arn] = key
            return
        meta = answer.get("KeyMetadata")
        problem = key_metadata_problem(meta)
        if problem is not None or not isinstance(meta, Mapping):
            failure = Failure("MalformedResponse", f"DescribeKey {arn}: {problem}")
            self._record_error(region, "kms", "DescribeKey", failure, arn)
            with self._lock:
                self._keys[arn] = KmsKey(arn, region, account, KeyLookup.ERROR,
                                         note=failure.message)
            return
        deletion = meta.get("DeletionDate")
        description = meta.get("Description")
        valid_to = meta.get("ValidTo")
        primary, replicas = multi_region_config(meta.get("MultiRegionConfiguration"))
        origin = str_or_none(meta.get("Origin"))
        window = meta.get("PendingDeletionWindowInDays")
        key = KmsKey(
            arn=arn,
            region=region,
            account_id=account,
            lookup=KeyLookup.OK,
            key_state=meta["KeyState"],
            key_manager=str_or_none(meta.get("KeyManager")),
            origin=origin,
            description=valid_text(description) if description else None,
            deletion_date=iso_text(deletion) if deletion is not None else None,
            multi_region=meta.get("MultiRegion") if isinstance(meta.get("MultiRegion"),
                                                                bool) else None,
            primary_key_arn=primary,
            replica_key_arns=replicas,
            pending_deletion_window_days=(window if isinstance(window, int)
                                          and not isinstance(window, bool) else None),
            valid_to=iso_text(valid_to) if valid_to is not None else None,
            expiration_model=str_or_none(meta.get("ExpirationModel")),
            custom_key_store_type=origin if origin in CUSTOM_KEY_STORE_ORIGINS else None,
        )
        reason = rotation_not_applicable(key)
        if reason is not None and key.key_manager == "CUSTOMER":
            key = replace(key, rotation=RotationLookup.NOT_APPLICABLE,
                          note=f"rotation not applicable: {reason}")
        with self._lock:
            self._keys[arn] = key
        if needs_rotation_call(key):
            self._submit(ROTATION, ("kms", key.region), self._rotation, key)
        if needs_last_usage_call(key, self.account_id) and self.clients.has_operation(
                "kms", "GetKeyLastUsage"):
            self._submit(DETAIL, ("kms", key.region), self._last_usage, key.arn, key.region)
        primary_arn = primary_to_look_up(key)
        if primary_arn is not None:
            self._look_up(primary_arn)

    def _rotation(self, key: KmsKey) -> None:
        changes: dict[str, Any]
        try:
            answer = self.clients.call("kms", key.region, "GetKeyRotationStatus",
                                       "get_key_rotation_status", KeyId=key.arn)
        except AWS_FAILURES as exc:
            failure = describe_failure(exc)
            if failure.code == "UnsupportedOperationException":
                changes = dict(rotation=RotationLookup.NOT_APPLICABLE,
                               note=f"rotation not applicable: {failure.message}")
            else:
                lookup = (RotationLookup.ACCESS_DENIED if failure.access_denied
                          else RotationLookup.ERROR)
                changes = dict(rotation=lookup,
                               note=f"rotation status unknown: {failure.code}")
                self._record_error(key.region, "kms", "GetKeyRotationStatus", failure,
                                   key.arn)
        else:
            enabled = answer.get("KeyRotationEnabled")
            if isinstance(enabled, bool):
                changes = dict(rotation=RotationLookup.OK, rotation_enabled=enabled)
            else:
                failure = Failure("MalformedResponse", "no KeyRotationEnabled in answer")
                self._record_error(key.region, "kms", "GetKeyRotationStatus", failure,
                                   key.arn)
                changes = dict(rotation=RotationLookup.ERROR, note=failure.message)
        # Onto the key as held now: _last_usage may have updated it meanwhile (its note
        # would be lost if `key`, as submitted, were written back).
        with self._lock:
            held = self._keys.get(key.arn, key)
            self._keys[key.arn] = replace(held, **changes)

    # -- key last use and CloudTrail coverage -------------------------------------------

    def _last_usage(self, arn: str, region: str) -> None:
        """kms:GetKeyLastUsage: shown with the key, never judged. A failure leaves the last
        use unknown and says why on the key; an AccessDenied (the permission not granted)
        is only that, other failures are also collection errors, like any other call."""
        try:
            answer = self.clients.call("kms", region, "GetKeyLastUsage", "get_key_last_usage",
                                       KeyId=arn)
        except AWS_FAILURES as exc:
            failure = describe_failure(exc)
            self._update_key(arn, last_usage_note=f"last use unknown: {failure.code}: "
                                                  f"{failure.message}")
            if not failure.access_denied:
                self._record_error(region, "kms", "GetKeyLastUsage", failure, arn)
            return
        problem = text_problem(answer)
        if problem is not None:
            failure = Failure("MalformedResponse", f"GetKeyLastUsage {arn}: {problem}")
            self._update_key(arn, last_usage_note=f"last use unknown: {failure.message}")
            self._record_error(region, "kms", "GetKeyLastUsage", failure, arn)
            return
        usage = answer.get("KeyLastUsage")
        if usage is None and answer.get("TrackingStartDate") is None:
            failure = Failure("MalformedResponse", "GetKeyLastUsage answered neither "
                              "KeyLastUsage nor TrackingStartDate")
            self._update_key(arn, last_usage_note=f"last use unknown: {failure.message}")
            self._record_error(region, "kms", "GetKeyLastUsage", failure, arn)
            return
        if not isinstance(usage, Mapping) or not usage:
            tracking = answer.get("TrackingStartDate")
            since = f" since {iso_text(tracking)}" if tracking is not None else ""
            self._update_key(arn, last_usage_note=f"no cryptographic use recorded{since}")
            return
        when = usage.get("Timestamp")
        self._update_key(arn, last_used_at=iso_text(when) if when is not None else None,
                         last_used_operation=str_or_none(usage.get("Operation")),
                         last_used_event_id=str_or_none(usage.get("CloudTrailEventId")))

    def _update_key(self, arn: str, **changes: Any) -> None:
        with self._lock:
            self._keys[arn] = replace(self._keys[arn], **changes)

    def _list_trails(self, region: str) -> None:
        """DescribeTrails (shadow trails included: multi-region and organization trails
        show in every region they cover); each trail new to the scan gets its status and
        event selectors, once, in its home region."""
        if self._skipping(region):
            self._region_finished(region)
            return
        try:
            answer = self.clients.call("cloudtrail", region, "DescribeTrails",
                                       "describe_trails", includeShadowTrails=True)
            listed = answer.get("trailList")
            if not isinstance(listed, list):
                raise _Malformed("DescribeTrails answer has no trailList")
        except (*AWS_FAILURES, _Malformed) as exc:
            self._fail(region, "cloudtrail", "DescribeTrails", _failure_of(exc))
            self._region_finished(region)
            return
        for entry in listed:
            arn = str_or_none(entry.get("TrailARN")) if isinstance(entry, Mapping) else None
            if arn is None:
                continue
            problem = trail_entry_problem(entry)
            if problem is not None:
                # Its ARN and home region would be used for the next calls: never used.
                self._fail(region, "cloudtrail", "DescribeTrails", Failure(
                    "MalformedResponse", f"DescribeTrails ({shown(arn)}): {problem}"),
                    shown(arn))
                continue
            home = str_or_none(entry.get("HomeRegion")) or region
            with self._lock:
                held = self._trails.get(arn)
                if held is not None:
                    self._trails[arn] = replace(held, regions=(*held.regions, region))
                    continue
                self._trails[arn] = Trail(
                    arn=arn, account_id=self.account_id, home_region=home,
                    name=str_or_none(entry.get("Name")) or arn.rsplit("/", 1)[-1],
                    multi_region=entry.get("IsMultiRegionTrail") is True,
                    organization=entry.get("IsOrganizationTrail") is True,
                    regions=(region,))
            self._submit(DETAIL, ("cloudtrail", home), self._trail_status, arn, home)
            self._submit(DETAIL, ("cloudtrail", home), self._trail_selectors, arn, home)
        self._region_finished(region)

    def _trail_status(self, arn: str, home: str) -> None:
        answer = self._trail_answer("status", arn, home, TRAIL_STATUS_FREE_TEXT, lambda a: (
            None if isinstance(a.get("IsLogging"), bool) else "no IsLogging"))
        if answer is not None:
            with self._lock:
                self._trails[arn] = replace(self._trails[arn], logging=answer["IsLogging"])

    def _trail_selectors(self, arn: str, home: str) -> None:
        answer = self._trail_answer("selectors", arn, home, SELECTOR_FREE_TEXT, lambda a: (
            None if isinstance(a.get("EventSelectors"), list)
            or isinstance(a.get("AdvancedEventSelectors"), list) else "no event selectors"))
        if answer is not None:
            logged, why = kms_reads_logged(answer)
            with self._lock:
                self._trails[arn] = replace(self._trails[arn], logs_kms=logged, note=why)

    def _trail_answer(self, kind: str, arn: str, home: str, free: frozenset[str],
                      missing: Callable[[Mapping[str, Any]], str | None],
                      ) -> Mapping[str, Any] | None:
        """GetTrailStatus or GetEventSelectors of one trail in its home region; None, with
        the error recorded against the trail, when the call failed, a field it needs is
        `missing`, or text sits where AWS writes none (`free` lists where it may)."""
        operation, method, param = TRAIL_CALLS[kind]
        try:
            answer = self.clients.call("cloudtrail", home, operation, method, **{param: arn})
        except AWS_FAILURES as exc:
            self._record_error(home, "cloudtrail", operation, describe_failure(exc), arn)
            return None
        problem = missing(answer) or text_problem(answer, free=free)
        if problem is not None:
            self._record_error(home, "cloudtrail", operation, Failure(
                "MalformedResponse", f"{operation} {arn}: {problem}"), arn)
            return None
        return answer

    def _record_error(self, region: str, service: str, operation: str, failure: Failure,
                      resource: str | None = None) -> None:
        with self._lock:
            self._errors.append(CollectionError(self.account_id, region, service, operation,
                                                failure.code, failure.message, resource))


















__all__ = ["AccountScan", "AccountScanner", "Progress"]
