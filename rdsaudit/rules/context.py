"""Everything a rule may ask about the inventory, precomputed once per evaluation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from rdsaudit.arns import Arn
from rdsaudit.keyref import TDE_ENGINES, TDE_OPTIONS, key_dependencies, resolve_key
from rdsaudit.model import (
    EncryptionType,
    Inventory,
    KeyLookup,
    KeyProtection,
    KeyRole,
    KeySummary,
    KmsKey,
    Resource,
    ResourceType,
    SnapshotShare,
    Trail,
)
from rdsaudit.policy import Policy
from rdsaudit.timestamps import days_left, parse_time


@dataclass(frozen=True)
class KeyView:
    """A resource's key as far as we know it."""

    arn: str | None  # resolved key ARN
    key: KmsKey | None  # what DescribeKey said (None: not looked up / not resolvable)
    reason: str | None  # why `arn` is None
    aws_managed: bool | None  # KeyManager AWS, or the target of an alias/aws/* alias
    aliases: tuple[str, ...] = ()


class Context:
    def __init__(self, inventory: Inventory, policy: Policy) -> None:
        # Everything below but the policy is a function of the inventory alone: evaluate and
        # the report document each make a Context of the same inventory, and the second one
        # takes the first one's indexes (a large estate's key views are a second each).
        cached = _LAST_INDEX[0] if _LAST_INDEX else None
        if cached is not None and cached[0] is inventory:
            self.__dict__.update(cached[1])
            self.policy = policy
            return
        self._index(inventory)
        _LAST_INDEX[:] = [(inventory, dict(self.__dict__))]
        self.policy = policy

    def _index(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.now = parse_time(inventory.scan.finished_at) or datetime.now(UTC)
        self.by_arn = {r.arn: r for r in inventory.resources}
        self._by_name: dict[tuple[ResourceType, str, str, str], Resource] = {
            (r.type, r.account_id, r.region, r.id): r for r in inventory.resources
        }
        self.keys = {k.arn: k for k in inventory.keys}
        self.shares: dict[str, SnapshotShare] = {s.snapshot_arn: s for s in inventory.shares}
        self.option_groups = {(g.account_id, g.region, g.name): g
                              for g in inventory.option_groups}
        self._aliases: dict[str, dict[str, dict[str, str | None]]] = defaultdict(dict)
        listed_regions: dict[str, set[str]] = defaultdict(set)
        alias_names: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for alias in inventory.aliases:
            self._aliases[alias.account_id].setdefault(alias.region, {})[alias.name] = (
                alias.target_key_id
            )
            listed_regions[alias.account_id].add(alias.region)
            if alias.target_key_id:
                alias_names[(alias.account_id, alias.region, alias.target_key_id)].append(
                    alias.name
                )
        self._alias_names = alias_names
        # A region whose ListAliases succeeded but returned nothing still counts as listed;
        # one whose ListAliases failed is absent (its aliases are unknown, not missing).
        failed = {
            (e.account_id, e.region)
            for e in inventory.errors
            if e.operation == "ListAliases"
        }
        skipped = {(s.account_id, s.region) for s in inventory.scan.skipped_regions}
        for account in inventory.scan.accounts:
            for region in inventory.scan.regions:
                if (account, region) not in failed and (account, region) not in skipped:
                    self._aliases[account].setdefault(region, {})
        self._replicas: dict[str, list[Resource]] = defaultdict(list)
        self._members: dict[tuple[str, str, str], list[Resource]] = defaultdict(list)
        for r in inventory.resources:
            if r.type is not ResourceType.DB_INSTANCE:
                continue
            if r.cluster_id:
                self._members[(r.account_id, r.region, r.cluster_id)].append(r)
            source = self.replica_source(r)
            if source is not None:
                self._replicas[source.arn].append(r)
        self._key_views: dict[str, KeyView] = {}
        self._of_types: dict[tuple[ResourceType, ...], list[Resource]] = {}
        # (KmsKeyId, region, account) -> its view: most resources share a handful of keys.
        self._id_views: dict[tuple[str, str, str], KeyView] = {}
        self._role_views: dict[str, tuple[tuple[KeyRole, KeyView], ...]] = {}
        # Key ARN -> the judged resources that depend on it, in any role, and which role.
        self.keys_in_use: dict[str, list[Resource]] = defaultdict(list)
        self.key_roles: dict[str, list[tuple[str, KeyRole]]] = defaultdict(list)
        for r in inventory.resources:
            if not self.judged(r):
                continue
            used: set[str] = set()
            for role, view in self.key_views(r):
                if view.arn:
                    if view.arn not in used:
                        used.add(view.arn)
                        self.keys_in_use[view.arn].append(r)
                    self.key_roles[view.arn].append((r.arn, role))
        # Multi-Region primaries of keys in use: rotation is judged on them (DESIGN.md).
        self.judged_keys: list[str] = sorted(self.keys_in_use)
        for arn in list(self.keys_in_use):
            key = self.keys.get(arn)
            primary = key.primary_key_arn if key is not None else None
            if primary and primary != arn and primary not in self.judged_keys:
                self.judged_keys.append(primary)
        self.judged_keys.sort()
        # CloudTrail: (account, region) -> the trails its DescribeTrails listed; regions whose
        # DescribeTrails failed or was not made are absent (coverage unknown).
        self.trails_seen: dict[tuple[str, str], list[Trail]] = {}
        failed_trails = {(e.account_id, e.region) for e in inventory.errors
                         if e.operation == "DescribeTrails"}
        if inventory.trails or _listed_trails(inventory):
            for account in inventory.scan.accounts:
                for region in inventory.scan.regions:
                    if (account, region) not in failed_trails | skipped:
                        self.trails_seen[(account, region)] = []
        for trail in inventory.trails:
            for region in trail.regions:
                self.trails_seen.setdefault((trail.account_id, region), []).append(trail)

    # -- scope --------------------------------------------------------------------------

    @staticmethod
    def judged(r: Resource) -> bool:
        """Aurora and Multi-AZ members take encryption from their cluster: judge the cluster."""
        return not (r.type is ResourceType.DB_INSTANCE and r.cluster_id)

    @staticmethod
    def kms_encrypted(r: Resource) -> bool:
        """Encrypted under a KMS key the customer can see (not an AWS owned key)."""
        return bool(r.encrypted) and r.encryption_type is not EncryptionType.SSE_RDS

    def subjects(self, types: tuple[ResourceType, ...]) -> Iterator[Resource | KmsKey]:
        of_types = self._of_types.get(types)
        if of_types is None:  # rules share a few subject lists: each is made once
            of_types = self._of_types[types] = [r for r in self.inventory.resources
                                                if r.type in types]
        yield from of_types
        if ResourceType.KMS_KEY in types:
            for arn in self.judged_keys:
                key = self.keys.get(arn)
                if key is not None:
                    yield key

    # -- keys ---------------------------------------------------------------------------

    def key_of(self, r: Resource) -> KeyView:
        cached = self._key_views.get(r.arn)
        if cached is None:
            cached = self._key_views[r.arn] = self._view(r)
        return cached

    def key_views(self, r: Resource) -> tuple[tuple[KeyRole, KeyView], ...]:
        """Every key the resource depends on, by role; the storage key first (when the
        resource is KMS-encrypted, even if AWS named no key: that view says why)."""
        cached = self._role_views.get(r.arn)
        if cached is None:
            views: list[tuple[KeyRole, KeyView]] = []
            if self.kms_encrypted(r):
                views.append((KeyRole.STORAGE, self.key_of(r)))
            # Aurora members carry their own Performance Insights settings; judged at the
            # cluster like everything else, their keys count as the cluster's.
            sources = [r, *(self.members_of(r) if r.type is ResourceType.DB_CLUSTER else ())]
            seen: set[tuple[KeyRole, str | None]] = set()
            for source in sources:
                for role, key_id in key_dependencies(source):
                    if role is KeyRole.STORAGE:
                        continue
                    view = self._view_id(source, key_id)
                    if (role, view.arn or key_id) not in seen:
                        seen.add((role, view.arn or key_id))
                        views.append((role, view))
            cached = self._role_views[r.arn] = tuple(views)
        return cached

    def dependents(self, key_arn: str) -> list[Resource]:
        """Resources using the key or, for a multi-Region primary, any of its replicas."""
        out = list(self.keys_in_use.get(key_arn, ()))
        seen = {r.arn for r in out}
        key = self.keys.get(key_arn)
        for replica in key.replica_key_arns if key is not None else ():
            for r in self.keys_in_use.get(replica, ()):
                if r.arn not in seen:
                    seen.add(r.arn)
                    out.append(r)
        return out

    def _view(self, r: Resource) -> KeyView:
        if r.kms_key_id is None:
            if r.encryption_type is EncryptionType.SSE_RDS:
                return KeyView(None, None, "AWS owned key (SSE-RDS)", aws_managed=False)
            return KeyView(None, None, "AWS returned no KmsKeyId for this encrypted resource",
                           aws_managed=None)
        return self._view_id(r, r.kms_key_id)

    def _view_id(self, r: Resource, kms_key_id: str) -> KeyView:
        where = (kms_key_id, r.region, r.account_id)
        view = self._id_views.get(where)
        if view is None:
            view = self._id_views[where] = self._resolve_view(r, kms_key_id)
        return view

    def _resolve_view(self, r: Resource, kms_key_id: str) -> KeyView:
        ref = resolve_key(kms_key_id, r.region, r.account_id,
                          self._aliases.get(r.account_id, {}))
        if ref.arn is None:
            return KeyView(None, None, ref.reason, aws_managed=None)
        key = self.keys.get(ref.arn)
        arn = Arn.parse(ref.arn)
        assert arn is not None
        key_id = arn.resource.removeprefix("key/")
        names = tuple(sorted(self._alias_names.get((arn.account, arn.region, key_id), ())))
        aws_managed: bool | None = None
        if key is not None and key.lookup is KeyLookup.OK and key.key_manager in (
                "AWS", "CUSTOMER"):
            # An unknown KeyManager is neither (key-unverifiable names it).
            aws_managed = key.key_manager == "AWS"
        elif any(n.startswith("alias/aws/") for n in names):
            aws_managed = True
        return KeyView(ref.arn, key, None, aws_managed, names)

    def tde(self, r: Resource) -> str | None:
        """Whether TDE is on for an Oracle / SQL Server instance, as text shown beside its
        storage key; None when it is not known (or not such an instance)."""
        if (r.type is not ResourceType.DB_INSTANCE
                or not (r.engine or "").startswith(TDE_ENGINES)):
            return None
        group = self.option_groups.get((r.account_id, r.region, r.option_group or ""))
        on = sorted(set(group.options) & TDE_OPTIONS) if group is not None else []
        credential = f", TDE credential {r.tde_credential_arn}" if r.tde_credential_arn else ""
        if on or r.tde_credential_arn:
            where = (f"option group {r.option_group}, option {', '.join(on)}" if on
                     else "TdeCredentialArn")
            return (f"TDE is on ({where}{credential}); TDE keys are managed separately from "
                    "the KMS storage key, and TDE does not replace storage encryption at rest")
        if group is not None:
            return f"TDE is off (option group {r.option_group} has no TDE option)"
        return None

    def protection(self, r: Resource) -> KeyProtection | None:
        """Where the storage key of an encrypted resource stands on the key-protection
        ladder; None when unencrypted or not known (the key could not be described)."""
        if not r.encrypted:
            return None
        if r.encryption_type is EncryptionType.SSE_RDS:
            return KeyProtection.AWS_OWNED
        view = self.key_of(r)
        if view.aws_managed is None:
            return None
        if view.aws_managed:
            return KeyProtection.AWS_MANAGED
        key = view.key
        if key is not None and key.lookup is KeyLookup.OK and key.origin in (
                "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"):
            return KeyProtection.CUSTOMER_EXTERNAL_STORE
        return KeyProtection.CUSTOMER

    def key_summary(self, r: Resource) -> KeySummary | None:
        if not r.encrypted:
            return None
        if r.encryption_type is EncryptionType.SSE_RDS:
            return KeySummary(None, None, "AWS_OWNED")
        view = self.key_of(r)
        state = view.key.key_state if view.key else None
        if view.key is not None and view.key.lookup is KeyLookup.NOT_FOUND:
            state = "NotFound"
        manager = None if view.aws_managed is None else ("AWS" if view.aws_managed else
                                                         "CUSTOMER")
        return KeySummary(view.arn or r.kms_key_id, state, manager)

    def deletion_days_left(self, key: KmsKey) -> int | None:
        return self.days_until(key.deletion_date)

    def days_until(self, moment: str | None) -> int | None:
        """Whole days from the end of the scan to `moment`, rounded up; 0 once past."""
        return days_left(moment, self.now)

    # -- relations ----------------------------------------------------------------------

    def replica_source(self, r: Resource) -> Resource | None:
        if r.replica_source:
            return self._find(ResourceType.DB_INSTANCE, r, r.replica_source)
        if r.replica_source_cluster:
            return self._find(ResourceType.DB_CLUSTER, r, r.replica_source_cluster)
        return None

    def _find(self, rtype: ResourceType, near: Resource, ref: str) -> Resource | None:
        # Same-region sources are named by identifier, cross-region ones by ARN (aws-facts §1).
        if ref.startswith("arn:"):
            return self.by_arn.get(ref)
        return self._by_name.get((rtype, near.account_id, near.region, ref))

    def replicas_of(self, r: Resource) -> list[Resource]:
        return self._replicas.get(r.arn, [])

    def members_of(self, cluster: Resource) -> list[Resource]:
        return self._members.get((cluster.account_id, cluster.region, cluster.id), [])


# The last inventory indexed and its indexes (held, so its id cannot be reused by another).
_LAST_INDEX: list[tuple[Inventory, dict[str, object]]] = []


def _listed_trails(inventory: Inventory) -> bool:
    """Whether the scan that made the inventory listed trails at all (inventories saved by
    rdsaudit before CloudTrail coverage have neither trails nor DescribeTrails calls)."""
    return any(name == "cloudtrail:DescribeTrails" for name, _ in inventory.scan.api_calls)
