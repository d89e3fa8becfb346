"""Fix-first actions: failing findings grouped by root cause, most urgent first.

Every failing (not waived) finding belongs to exactly one action. When two causes apply,
the first of these wins (the tie-break):

1. **key**: a finding of a key rule (`KEY_RULES`: fixing the key fixes it) joins the action
   of the key it names (`kms_key.arn`, or the key itself for key-rotation-disabled). The
   action lists every dependent of the key, failing or not, and the key's deadline.
2. **public-snapshot**: every other failing finding of a public snapshot joins that
   snapshot's action: taking it private comes before re-encrypting it.
3. **unencrypted-primary**: a finding of a replica, snapshot or backup whose source (or the
   source's source) is an unencrypted instance or cluster joins that primary's action: the
   re-encryption of the primary recreates its replicas and replaces its copies.
4. **resource**: whatever is left joins the action of its own resource, or of its nearest
   source that fails too (a snapshot with the AWS managed key joins its instance that has it:
   re-encrypting the instance is the fix, and its new snapshots follow).

Order (urgency 1 = first): a data-loss deadline first, soonest first; then the worst
severity; then blast radius (resources touched); then the action's title, so the order is
total and stable.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rdsaudit.model import Resource, ResourceType, Severity
from rdsaudit.report.contract import Action, FindingEntry, KeyEntry, ResourceEntry
from rdsaudit.rules.context import Context
from rdsaudit.timestamps import days_left as days_until
from rdsaudit.timestamps import parse_time

# Rules whose failure the key's owner fixes on the key itself (enable it, cancel its
# deletion, grant rdsaudit DescribeKey, reimport material, turn on rotation).
KEY_RULES = frozenset({"key-unusable", "encryption-credentials-inaccessible",
                       "key-unverifiable", "key-material-expiring", "key-rotation-disabled"})
PRIMARY_TYPES = (ResourceType.DB_INSTANCE, ResourceType.DB_CLUSTER)
TYPE_NOUNS = {"db-instance": ("instance", "instances"), "db-cluster": ("cluster", "clusters"),
              "db-snapshot": ("snapshot", "snapshots"),
              "db-cluster-snapshot": ("cluster snapshot", "cluster snapshots"),
              "db-automated-backup": ("backup", "backups"), "kms-key": ("key", "keys")}

Named = dict[tuple[ResourceType, str, str, str], Resource]


@dataclass
class _Group:
    kind: str
    cause: str
    findings: list[FindingEntry] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)


def fix_first(ctx: Context, resources: Sequence[ResourceEntry],
              findings: Sequence[FindingEntry], keys: Sequence[KeyEntry]) -> list[Action]:
    by_arn = {r["arn"]: r for r in resources}
    key_by_arn = {k["arn"]: k for k in keys}
    public = {f["resource"]["arn"] for f in findings
              if f["status"] == "fail" and f["rule_id"] == "snapshot-public"}
    failing = {f["resource"]["arn"] for f in findings if f["status"] == "fail"}
    named: Named = {(r.type, r.account_id, r.region, r.id): r for r in ctx.inventory.resources}
    groups: dict[tuple[str, str], _Group] = {}
    for f in findings:
        if f["status"] != "fail":
            continue
        kind, cause = _cause(f, public, failing, ctx, named)
        group = groups.get((kind, cause))
        if group is None:
            group = groups[(kind, cause)] = _Group(kind, cause)
        group.findings.append(f)
        if f["resource"]["arn"] not in group.resources:
            group.resources.append(f["resource"]["arn"])
    for group in groups.values():
        if group.kind == "key" and group.cause in key_by_arn:
            for arn in key_by_arn[group.cause]["dependents"]:
                if arn not in group.resources:
                    group.resources.append(arn)
    rank = {t.value: i for i, t in enumerate(ResourceType)}
    for group in groups.values():
        # The cause first, then primaries before their copies, then by name.
        group.resources.sort(key=lambda arn: (arn != group.cause,
                                              rank.get(by_arn[arn]["type"], 9)
                                              if arn in by_arn else 9, arn))
    now = parse_time(ctx.inventory.scan.finished_at)
    actions = [_action(g, by_arn, key_by_arn, now) for g in groups.values()]
    actions.sort(key=lambda a: (_moment(a["deadline"]), -Severity.parse(a["severity"]),
                                -len(a["resources"]), a["title"], a["cause"]))
    for i, action in enumerate(actions, start=1):
        action["urgency"] = i
    return actions


def _moment(deadline: str | None) -> float:
    when = parse_time(deadline)
    return math.inf if when is None else when.timestamp()


def _cause(f: FindingEntry, public: set[str], failing: set[str], ctx: Context,
           named: Named) -> tuple[str, str]:
    arn = f["resource"]["arn"]
    if f["rule_id"] in KEY_RULES:
        if f["resource"]["type"] == ResourceType.KMS_KEY.value:
            return "key", arn
        key = f["kms_key"]
        if key is not None and key["arn"] and key["arn"].startswith("arn:"):
            return "key", key["arn"]
    if arn in public:
        return "public-snapshot", arn
    resource = ctx.by_arn.get(arn)
    if resource is None:
        return "resource", arn
    primary = _unencrypted_primary(resource, ctx, named)
    if primary is not None:
        return "unencrypted-primary", primary.arn
    source = _source(resource, ctx, named)
    seen = {arn}
    while source is not None and source.arn not in seen:
        if source.arn in failing:
            arn = source.arn
        seen.add(source.arn)
        source = _source(source, ctx, named)
    return "resource", arn


def _unencrypted_primary(r: Resource, ctx: Context, named: Named) -> Resource | None:
    """The unencrypted instance or cluster `r` was copied or replicated from, or `r` itself
    when it is one; None when there is no unencrypted primary behind it."""
    seen: set[str] = set()
    found: Resource | None = None
    current: Resource | None = r
    while current is not None and current.arn not in seen:
        seen.add(current.arn)
        if current.type in PRIMARY_TYPES and current.encrypted is False and ctx.judged(current):
            found = current
        current = _source(current, ctx, named)
    return found


def _source(r: Resource, ctx: Context, named: Named) -> Resource | None:
    if r.type is ResourceType.DB_INSTANCE:
        return ctx.replica_source(r)
    if not r.source_id:
        return None
    if r.type in (ResourceType.DB_SNAPSHOT, ResourceType.DB_AUTOMATED_BACKUP):
        kind = ResourceType.DB_INSTANCE
    elif r.type is ResourceType.DB_CLUSTER_SNAPSHOT:
        kind = ResourceType.DB_CLUSTER
    else:
        return None
    if r.source_id.startswith("arn:"):  # a cross-region copy names its source by ARN
        return ctx.by_arn.get(r.source_id)
    return named.get((kind, r.account_id, r.region, r.source_id))



def _action(g: _Group, by_arn: dict[str, ResourceEntry], keys: dict[str, KeyEntry],
            now: datetime | None) -> Action:
    worst = max((Severity.parse(f["severity"]) for f in g.findings), default=Severity.INFO)
    cause = by_arn.get(g.cause)
    key = keys.get(g.cause) if g.kind == "key" else None
    deadline = key["deadline"] if key is not None else None
    days_left = days_until(deadline, now)
    name = _key_name(g.cause, key) if g.kind == "key" else (cause["id"] if cause else g.cause)
    others = [a for a in g.resources if a != g.cause]
    rule_ids = sorted({f["rule_id"] for f in g.findings})
    noun = TYPE_NOUNS.get(cause["type"], ("resource", ""))[0] if cause else "resource"
    if g.kind == "key":
        title = _key_title(name, key, rule_ids, days_left)
        if others:
            title += f": {_describe(others, by_arn)} depend{'s' if len(others) == 1 else ''} on it"
    elif g.kind == "public-snapshot":
        title = f"Make snapshot {name} private: anyone can restore it"
    elif g.kind == "unencrypted-primary":
        title = f"Re-encrypt unencrypted {noun} {name}"
        if others:
            title += f" and replace its {_describe(others, by_arn, named_first=False)}"
    else:
        title = f"Fix {noun} {name}: {', '.join(rule_ids)}"
        if others:
            title += f" (with its {_describe(others, by_arn, named_first=False)})"
    # The cause's own fix: the worst finding about the cause itself (else the worst one).
    own = [f for f in g.findings if f["resource"]["arn"] == g.cause] or g.findings
    lead = max(own, key=lambda f: Severity.parse(f["severity"]))
    if g.kind == "key":
        lead = max(g.findings, key=lambda f: Severity.parse(f["severity"]))
    account, region = _where(g, cause, key)
    return {
        "id": hashlib.sha256(f"{g.kind}\0{g.cause}".encode()).hexdigest()[:16],
        "kind": g.kind, "title": title, "severity": worst.label, "urgency": 0,
        "deadline": deadline, "days_left": days_left, "cause": g.cause, "cause_name": name,
        "account_id": account, "region": region, "resources": g.resources,
        "finding_ids": [f["id"] for f in g.findings], "remediation": lead["remediation"],
    }


def _where(g: _Group, cause: ResourceEntry | None,
           key: KeyEntry | None) -> tuple[str, str]:
    if cause is not None:
        return cause["account_id"], cause["region"]
    if key is not None:
        return key["account_id"], key["region"]
    first = g.findings[0]["resource"]
    return first["account_id"], first["region"]


def _key_title(name: str, key: KeyEntry | None, rule_ids: list[str],
               days_left: int | None) -> str:
    """What to do to the key, by its worst problem."""
    state = key["key_state"] if key is not None else None
    if key is not None and key["lookup"] == "not-found":
        state = "NotFound"
    unusable = {"key-unusable", "encryption-credentials-inaccessible"} & set(rule_ids)
    if unusable and state == "PendingDeletion":
        when = f" is deleted in {days_left} day{'s' if days_left != 1 else ''}" \
            if days_left is not None else " is pending deletion"
        return f"Cancel the deletion of KMS key {name}: it{when}"
    if unusable and state == "Disabled":
        return f"Enable KMS key {name}"
    if unusable and state == "NotFound":
        return f"KMS key {name} no longer exists: restore its data from another copy"
    if unusable:
        return f"Make KMS key {name} usable again ({state or 'state unknown'})"
    if "key-material-expiring" in rule_ids:
        return f"Reimport the key material of KMS key {name} before it expires"
    if "key-unverifiable" in rule_ids:
        return f"Let rdsaudit describe KMS key {name} (its state is unknown)"
    return f"Turn on automatic rotation of KMS key {name}"


def _key_name(arn: str, key: KeyEntry | None) -> str:
    if key is not None and key["aliases"]:
        return key["aliases"][0]
    return arn.rsplit("/", 1)[-1]




def _describe(arns: Sequence[str], by_arn: dict[str, ResourceEntry],
              named_first: bool = True) -> str:
    """"crm-db, 1 snapshot and 2 backups": the first resource by name (if `named_first`),
    the rest counted by kind; a DB instance that depends on another is a replica."""
    if not arns:
        return ""
    parts: list[str] = []
    rest = list(arns)
    if named_first:
        first = by_arn.get(rest[0])
        parts.append(first["id"] if first else rest[0].rsplit(":", 1)[-1])
        rest = rest[1:]
    counts: dict[tuple[str, str], int] = {}
    for arn in rest:
        entry = by_arn.get(arn)
        kind = entry["type"] if entry else "resource"
        nouns = ("replica", "replicas") if kind == "db-instance" and not named_first else \
            TYPE_NOUNS.get(kind, ("resource", "resources"))
        counts[nouns] = counts.get(nouns, 0) + 1
    parts += [f"{n} {nouns[n != 1]}" for nouns, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
