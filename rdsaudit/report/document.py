"""Build the report document from a Result: the one structure every format renders."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rdsaudit import __version__
from rdsaudit.gate import gate
from rdsaudit.model import Finding, Result, Severity, Status
from rdsaudit.serialize import to_data

SCHEMA_VERSION = 1


class _FindingWriter:
    """Findings to dicts. Findings of one resource share its reference and key summary, so
    those dicts are built once per resource (a large estate has ~6 findings a resource)."""

    def __init__(self) -> None:
        self._refs: dict[int, dict[str, Any]] = {}
        self._keys: dict[int, dict[str, Any] | None] = {}
        self._tags: dict[int, dict[str, str]] = {}

    def __call__(self, f: Finding) -> dict[str, Any]:
        ref = self._refs.get(id(f.resource))
        if ref is None:
            r = f.resource
            ref = self._refs[id(f.resource)] = {
                "arn": r.arn, "type": r.type.value, "id": r.id, "region": r.region,
                "account_id": r.account_id}
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
        return {
            "rule_id": f.rule_id,
            "title": f.title,
            "severity": f.severity.label,
            "status": f.status.value,
            "resource": ref,
            "message": f.message,
            "kms_key": key,
            "remediation": None if f.remediation is None else to_data(f.remediation),
            "waiver": None if f.waiver is None else to_data(f.waiver),
            "tags": tags,
            "baseline": f.baseline,
        }


def report_document(result: Result, fail_on: Severity = Severity.LOW,
                    only_new: bool = False) -> dict[str, Any]:
    inv = result.inventory
    users = dict(result.key_users)
    aliases: dict[tuple[str, str, str], list[str]] = {}
    for a in inv.aliases:
        if a.target_key_id:
            aliases.setdefault((a.account_id, a.region, a.target_key_id), []).append(a.name)
    keys = []
    for k in inv.keys:
        entry = to_data(k)
        entry["aliases"] = sorted(aliases.get((k.account_id, k.region, k.arn.rsplit("/", 1)[-1]),
                                              ()))
        entry["resources"] = list(users.get(k.arn, ()))
        keys.append(entry)
    status_counts = Counter(f.status.value for f in result.findings)
    failing = [f for f in result.findings if f.status is Status.FAIL]
    by_severity = Counter(f.severity.label for f in failing)
    by_rule = Counter(f.rule_id for f in failing)
    by_region = Counter(f.resource.region for f in failing)
    by_account = Counter(f.resource.account_id for f in failing)
    by_type = Counter(r.type.value for r in inv.resources)
    exit_code = gate(result, fail_on, only_new)
    write = _FindingWriter()
    waiver_states = Counter(w.state for w in result.waivers)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "rdsaudit", "version": __version__},
        "scan": {
            "started_at": inv.scan.started_at,
            "finished_at": inv.scan.finished_at,
            "accounts": list(inv.scan.accounts),
            "regions": list(inv.scan.regions),
            "api_calls": dict(inv.scan.api_calls),
            "retries": dict(inv.scan.retries),
            "skipped_regions": to_data(inv.scan.skipped_regions),
            **({"shard": {"index": inv.scan.shard.index, "count": inv.scan.shard.count}}
               if inv.scan.shard else {}),
        },
        "findings": [write(f) for f in result.findings],
        "errors": to_data(inv.errors),
        "keys": keys,
        "waivers": to_data(result.waivers),
        "baseline": to_data(result.baseline),
        "summary": {
            "complete": not inv.errors,
            "resources": dict(sorted(by_type.items())),
            "resources_total": len(inv.resources),
            "findings": {s.value: status_counts.get(s.value, 0) for s in Status},
            "failures_by_severity": {s.label: by_severity.get(s.label, 0)
                                     for s in sorted(Severity, reverse=True)},
            "failures_by_rule": dict(sorted(by_rule.items())),
            "failures_by_region": dict(sorted(by_region.items())),
            "failures_by_account": dict(sorted(by_account.items())),
            "waivers": {state: waiver_states.get(state, 0)
                        for state in ("active", "stale", "expired")},
            "errors": len(inv.errors),
            "skipped_regions": len(inv.scan.skipped_regions),
            "fail_on": fail_on.label,
            "fail_on_new": only_new,
            "exit_code": int(exit_code),
        },
    }
