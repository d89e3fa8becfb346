"""Build the report document (contract v2, rdsaudit.report.contract) from a Result.

The document centres on resources: each judged resource is listed once with its posture,
its keys and the rule ids it passes, fails and has waived; that list is the pass evidence.
`findings[]` holds the failing and waived findings in full; the verbose pass findings are
added only with `--evidence full`.

Size (~430 lines): the contract's one builder; every format renders what it returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

from rdsaudit import __version__
from rdsaudit.arns import Arn
from rdsaudit.gate import gate
from rdsaudit.keyref import key_health
from rdsaudit.model import (
    SEVERITY_LABELS,
    EncryptionType,
    Finding,
    KeyLookup,
    KmsKey,
    Remediation,
    Resource,
    ResourceType,
    Result,
    Severity,
    Status,
    WaiverState,
    finding_id,
)
from rdsaudit.policy import Policy
from rdsaudit.report.contract import (
    SCHEMA_VERSION,
    ErrorEntry,
    Evidence,
    FindingEntry,
    KeyEntry,
    KeyRoleEntry,
    KeySummaryEntry,
    RemediationEntry,
    ReportDocument,
    ResourceEntry,
    ResourceRefEntry,
    ScanSection,
    Summary,
    WaiverEntry,
)
from rdsaudit.rules.context import Context
from rdsaudit.serialize import to_data

__all__ = ["SCHEMA_VERSION", "report_document"]

# Custom key stores keep the key material outside KMS's own HSMs (CloudHSM or an external
# key manager): the top rung of the key-protection ladder (DESIGN.md, rule catalogue).
EXTERNAL_STORES = frozenset({"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"})
SEVERITIES = SEVERITY_LABELS


class _FindingWriter:
    """Findings to entries. Findings of one resource share its reference, key summary and
    tags, so those are built once per resource (a large estate has ~6 findings a resource)."""

    def __init__(self) -> None:
        self._refs: dict[int, ResourceRefEntry] = {}
        self._keys: dict[int, KeySummaryEntry | None] = {}
        self._tags: dict[int, dict[str, str]] = {}

    def __call__(self, f: Finding) -> FindingEntry:
        r = f.resource
        ref = self._refs.get(id(r))
        if ref is None:
            ref = self._refs[id(r)] = {"arn": r.arn, "type": r.type.value, "id": r.id,
                                       "region": r.region, "account_id": r.account_id}
        key_id = id(f.kms_key)
        if key_id in self._keys:
            key = self._keys[key_id]
        else:
            k = f.kms_key
            key = self._keys[key_id] = None if k is None else {
                "arn": k.arn, "state": k.state, "manager": k.manager}
        tags = self._tags.get(id(f.tags))
        if tags is None:
            tags = self._tags[id(f.tags)] = dict(f.tags)
        remediation = None if f.remediation is None else remediation_entry(f.remediation)
        waiver: WaiverEntry | None = None
        if f.waiver is not None:
            waiver = {"reason": f.waiver.reason, "owner": f.waiver.owner,
                      "expires": f.waiver.expires}
        return {
            "id": finding_id(r.account_id, r.region, f.rule_id, r.arn),
            "rule_id": f.rule_id,
            "title": f.title,
            "severity": f.severity.label,
            "status": f.status.value,
            "resource": ref,
            "message": f.message,
            "kms_key": key,
            "remediation": remediation,
            "waiver": waiver,
            "tags": tags,
            "baseline": f.baseline.value if f.baseline is not None else None,
        }


def remediation_entry(rem: Remediation) -> RemediationEntry:
    return {"summary": rem.summary,
            "steps": [to_data(s) for s in rem.steps],
            # What the steps may act on beside the finding's own resource (replicas,
            # members, a primary key): `plan` holds steps to it.
            "related": list(rem.related),
            "blocked": rem.blocked,
            # What the plan was made with: `rdsaudit plan` re-plans from these.
            "target_key": rem.target_key,
            "customer_key_required": rem.customer_key_required,
            "strategy": rem.strategy}


# Resource fields every entry already carries; `config` holds the rest (re-planning).
_ENTRY_FIELDS = frozenset({"arn", "type", "id", "region", "account_id", "engine", "status",
                           "tags"})


_REQUIRED = frozenset({"encrypted", "encryption_type", "kms_key_id"})


def resource_config(r: Resource, fields: frozenset[str] = _ENTRY_FIELDS) -> dict[str, Any]:
    """The resource's remaining fields (configuration, relations, keys), as `rdsaudit plan`
    needs them to re-plan without a rescan; null and empty ones are left out."""
    return {k: v for k, v in to_data(r).items()
            if k not in fields and (k in _REQUIRED or v not in (None, []))}


def _planned(result: Result, ctx: Context) -> set[str]:
    """ARNs whose configuration a re-plan needs: every resource with a failure, and the
    replicas and replica sources its plan re-creates or reads."""
    failing = {f.resource.arn for f in result.findings if f.status is Status.FAIL}
    needed = set(failing)
    for arn in failing:
        r = ctx.by_arn.get(arn)
        if r is None:
            continue
        needed.update(x.arn for x in ctx.replicas_of(r))
        source = ctx.replica_source(r)
        if source is not None:
            needed.add(source.arn)
    return needed


def report_document(result: Result, fail_on: Severity = Severity.LOW,
                    only_new: bool = False, evidence: Evidence = "failures") -> ReportDocument:
    from rdsaudit.report.actions import fix_first  # actions read entries of this module

    inv = result.inventory
    ctx = Context(inv, Policy())
    write = _FindingWriter()
    findings = [write(f) for f in result.findings
                if evidence == "full" or f.status is not Status.PASS]
    resources = _resources(result, ctx)
    keys = _keys(result, ctx)
    errors: list[ErrorEntry] = [
        {"account_id": e.account_id, "region": e.region, "service": e.service,
         "operation": e.operation, "code": e.code, "message": e.message,
         "resource": e.resource} for e in inv.errors]
    summary = _summary(result, fail_on, only_new)
    summary["actions"] = fix_first(ctx, resources, findings, keys)
    scan: ScanSection = {
        "started_at": inv.scan.started_at,
        "finished_at": inv.scan.finished_at,
        "accounts": list(inv.scan.accounts),
        "regions": list(inv.scan.regions),
        "api_calls": dict(inv.scan.api_calls),
        "retries": dict(inv.scan.retries),
        "skipped_regions": to_data(inv.scan.skipped_regions),
        "evidence": evidence,
    }
    if inv.scan.shard:
        scan["shard"] = {"index": inv.scan.shard.index, "count": inv.scan.shard.count}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "rdsaudit", "version": __version__},
        "scan": scan,
        "resources": resources,
        "findings": findings,
        "errors": errors,
        "keys": keys,
        "waivers": to_data(result.waivers),
        "baseline": to_data(result.baseline),
        "summary": summary,
    }


# -- resources -------------------------------------------------------------------------------

def _resources(result: Result, ctx: Context) -> list[ResourceEntry]:
    outcomes: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for f in result.findings:
        lists = outcomes.get(f.resource.arn)
        if lists is None:
            lists = outcomes[f.resource.arn] = ([], [], [])
        lists[{Status.FAIL: 0, Status.PASS: 1, Status.WAIVED: 2}[f.status]].append(f.rule_id)
    for arn, rule_id in result.passes:  # compact pass evidence (evaluate, no pass Findings)
        lists = outcomes.get(arn)
        if lists is None:
            lists = outcomes[arn] = ([], [], [])
        lists[1].append(rule_id)
    entries: list[ResourceEntry] = []
    planned = _planned(result, ctx)
    # What many resources have alike is one object each in the document (the JSON is the
    # same): a 100k-resource estate has a handful of tag sets, key lists and rule lists.
    shared: dict[Any, Any] = {}

    def one(value: Any) -> Any:
        key = (type(value), tuple(value)) if isinstance(value, list) else value
        return shared.setdefault(key, value)

    keyed: dict[tuple[Any, ...], tuple[str, list[KeyRoleEntry]]] = {}
    tag_dicts: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for r in ctx.inventory.resources:
        # Cluster members are judged through their cluster, but a few rules (the instance's
        # own status) still judge them: listed when some rule did.
        if not ctx.judged(r) and r.arn not in outcomes:
            continue
        fails, passes, waived = outcomes.pop(r.arn, ([], [], []))
        # Posture and key roles depend on these fields alone (and the inventory's keys).
        key_facts = (r.type, r.encrypted, r.encryption_type, r.kms_key_id, r.region,
                     r.account_id, r.performance_insights_kms_key_id,
                     r.master_user_secret_kms_key_id, r.activity_stream_kms_key_id)
        facts = keyed.get(key_facts)
        if facts is None:
            facts = keyed[key_facts] = (posture(r, ctx), _key_roles(r, ctx))
        tags = tag_dicts.get(r.tags)
        if tags is None:
            tags = tag_dicts[r.tags] = dict(r.tags)
        entries.append({
            "arn": r.arn, "type": r.type.value, "id": r.id, "region": r.region,
            "account_id": r.account_id, "engine": r.engine, "status": r.status,
            "posture": facts[0], "keys": facts[1], "tags": tags,
            "fails": one(sorted(fails)), "passes": one(sorted(passes)),
            "waived": one(sorted(waived))})
        if r.arn not in planned:
            continue
        entries[-1]["config"] = resource_config(r)
        if r.type is ResourceType.DB_CLUSTER and ctx.members_of(r):
            # Members are judged through their cluster; re-planning re-creates them.
            entries[-1]["member_configs"] = [resource_config(m, frozenset())
                                             for m in ctx.members_of(r)]
    # KMS keys are judged too (key-rotation-disabled): they are resources of their own.
    for key in ctx.inventory.keys:
        if key.arn not in outcomes:
            continue
        fails, passes, waived = outcomes.pop(key.arn)
        entries.append({
            "arn": key.arn, "type": ResourceType.KMS_KEY.value,
            "id": key.arn.rsplit("/", 1)[-1], "region": key.region,
            "account_id": key.account_id, "engine": None, "status": key.key_state,
            "posture": _key_posture(key), "keys": [], "tags": {},
            "fails": sorted(fails), "passes": sorted(passes), "waived": sorted(waived)})
    return entries


def posture(r: Resource, ctx: Context) -> str:
    """How the resource's data is protected at rest; `unknown` unless the evidence says."""
    if r.encrypted is None:
        return "unknown"
    if r.encryption_type is EncryptionType.SSE_RDS:
        # Clusters report StorageEncrypted false with an AWS owned key (DESIGN.md, notes).
        return "aws-owned"
    if not r.encrypted:
        return "unencrypted"
    view = ctx.key_of(r)
    if view.aws_managed is True:
        return "aws-managed"
    if view.aws_managed is False and view.key is not None:
        return _key_posture(view.key)
    return "unknown"


def _key_posture(key: KmsKey) -> str:
    if key.lookup is not KeyLookup.OK or key.key_manager not in ("AWS", "CUSTOMER"):
        return "unknown"
    if key.key_manager == "AWS":
        return "aws-managed"
    return "customer-external-store" if key.custom_key_store_type in EXTERNAL_STORES \
        else "customer"


def key_deadline(key: KmsKey | None) -> str | None:
    """When the key stops working for good: its deletion date or its material's expiry."""
    if key is None:
        return None
    dates = [d for d in (key.deletion_date, key.valid_to) if d]
    return min(dates) if dates else None


def _key_roles(r: Resource, ctx: Context) -> list[KeyRoleEntry]:
    roles: list[KeyRoleEntry] = []
    storage = ctx.key_summary(r)
    if storage is not None:
        view = ctx.key_of(r) if ctx.kms_encrypted(r) else None
        roles.append({"role": "storage", "arn": storage.arn, "state": storage.state,
                      "manager": storage.manager,
                      "deadline": key_deadline(view.key if view else None)})
    for role, key_id in (("performance-insights", r.performance_insights_kms_key_id),
                         ("master-user-secret", r.master_user_secret_kms_key_id),
                         ("activity-stream", r.activity_stream_kms_key_id)):
        if not key_id:
            continue
        # The key-health issue resolves these roles like the storage key; until then an
        # ARN is looked up as given, anything else is reported unresolved (state unknown).
        key = ctx.keys.get(key_id) if Arn.parse(key_id) else None
        state = None
        if key is not None:
            state = "NotFound" if key.lookup is KeyLookup.NOT_FOUND else key.key_state
        roles.append({"role": role, "arn": key_id, "state": state,
                      "manager": key.key_manager if key is not None else None,
                      "deadline": key_deadline(key)})
    return roles


# -- keys ------------------------------------------------------------------------------------

def _keys(result: Result, ctx: Context) -> list[KeyEntry]:
    users = dict(result.key_users)
    roles = dict(result.key_roles)
    aliases: dict[tuple[str, str, str], list[str]] = {}
    for a in ctx.inventory.aliases:
        if a.target_key_id:
            aliases.setdefault((a.account_id, a.region, a.target_key_id), []).append(a.name)
    entries: list[KeyEntry] = []
    for k in ctx.inventory.keys:
        # Every KmsKey field, so facts the collector adds reach the report unchanged.
        entry = cast(KeyEntry, to_data(k))
        entry["aliases"] = sorted(aliases.get((k.account_id, k.region,
                                               k.arn.rsplit("/", 1)[-1]), ()))
        entry["deadline"] = key_deadline(k)
        entry["health"] = key_health(k)
        entry["dependents"] = list(users.get(k.arn, ()))
        # The role each dependent uses the key in (storage, performance-insights, ...).
        entry["roles"] = [{"arn": arn, "role": role} for arn, role in roles.get(k.arn, ())]
        entries.append(entry)
    return entries


# -- summary ---------------------------------------------------------------------------------

def _blank() -> dict[str, int]:
    return {"resources": 0, "fail": 0, "waived": 0, "pass": 0, **dict.fromkeys(SEVERITIES, 0),
            "errors": 0}


def _grouped(result: Result, names: Iterable[str], part: str,
             pass_counts: Counter[str] | None = None) -> dict[str, dict[str, int]]:
    """Counts per account or per region: every scanned one, failing or not."""
    groups = {name: _blank() for name in names}

    def group(name: str) -> dict[str, int]:
        counts = groups.get(name)
        if counts is None:
            counts = groups[name] = _blank()
        return counts

    for r in result.inventory.resources:
        if Context.judged(r):
            group(getattr(r, part))["resources"] += 1
    for f in result.findings:
        counts = group(getattr(f.resource, part))
        counts[f.status.value] += 1
        if f.status is Status.FAIL:
            counts[f.severity.label] += 1
    if result.passes:
        if pass_counts is None:
            pass_counts = Counter(arn for arn, _ in result.passes)
        where = {r.arn: getattr(r, part) for r in result.inventory.resources}
        where.update((k.arn, getattr(k, part)) for k in result.inventory.keys)
        for arn, n in pass_counts.items():
            group(where.get(arn, "unknown"))["pass"] += n
    for e in result.inventory.errors:
        group(getattr(e, part))["errors"] += 1
    return dict(sorted(groups.items()))


def verdict(by_severity: dict[str, int], fail_on: Severity, errors: int) -> str:
    """The plain-words verdict every readable format leads with."""
    gating = [f"{by_severity[s.label]} {s.label}" for s in sorted(Severity, reverse=True)
              if s >= fail_on and by_severity.get(s.label)]
    below = sum(n for label, n in by_severity.items() if Severity.parse(label) < fail_on)
    if gating:
        text = "Not compliant: " + ", ".join(gating)
    elif below:
        text = f"Compliant at --fail-on {fail_on.label} ({below} below it)"
    else:
        text = "Compliant: no failing finding"
    if errors:
        text += f" · scan incomplete: {errors} error{'s' if errors != 1 else ''}"
    return text


def _summary(result: Result, fail_on: Severity, only_new: bool) -> Summary:
    inv = result.inventory
    status_counts = Counter(f.status.value for f in result.findings)
    status_counts[Status.PASS.value] += len(result.passes)
    failing = [f for f in result.findings if f.status is Status.FAIL]
    by_severity = Counter(f.severity.label for f in failing)
    severities = {s: by_severity.get(s, 0) for s in SEVERITIES}
    waiver_states = Counter(w.state for w in result.waivers)
    pass_counts = Counter(arn for arn, _ in result.passes)
    return {
        "complete": not inv.errors,
        "resources": dict(sorted(Counter(r.type.value for r in inv.resources).items())),
        "resources_total": len(inv.resources),
        "findings": {s.value: status_counts.get(s.value, 0) for s in Status},
        "failures_by_severity": severities,
        "failures_by_rule": dict(sorted(Counter(f.rule_id for f in failing).items())),
        "failures_by_region": dict(sorted(Counter(f.resource.region for f in failing).items())),
        "failures_by_account": dict(sorted(
            Counter(f.resource.account_id for f in failing).items())),
        "by_account": _grouped(result, inv.scan.accounts, "account_id", pass_counts),
        "by_region": _grouped(result, inv.scan.regions, "region", pass_counts),
        "passes_by_rule": dict(sorted((Counter(f.rule_id for f in result.findings
                                               if f.status is Status.PASS)
                                       + Counter(rule for _, rule in result.passes)).items())),
        "waivers": {state.value: waiver_states.get(state, 0) for state in (
            WaiverState.ACTIVE, WaiverState.STALE, WaiverState.EXPIRED)},
        "errors": len(inv.errors),
        "skipped_regions": len(inv.scan.skipped_regions),
        "fail_on": fail_on.label,
        "fail_on_new": only_new,
        "exit_code": int(gate(result, fail_on, only_new)),
        "verdict": verdict(severities, fail_on, len(inv.errors))
        + (" · gate on new failures only (--fail-on-new)" if only_new else ""),
        "actions": [],
    }
