"""Re-plan a version 2 report without a rescan (`rdsaudit plan --target-key/--strategy`).

A version 2 report lists every judged resource with its configuration (`resources[].config`,
cluster members in `member_configs`) and every key in use (`keys[]`): enough to rebuild the
part of the inventory that planning reads, and to plan each failing finding again with other
target keys or another strategy. The plan keeps what the report's plans were made with
(`remediation.target_key`, `customer_key_required`) unless told otherwise: a key given now
(`--target-key`, the config's `target_keys`) wins; a policy that forbade the AWS managed key
still forbids it. The new steps are rendered and checked exactly like the report's own
(rdsaudit.plan.runbook, rdsaudit.plan.awscli).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rdsaudit.model import (
    CollectionError,
    Finding,
    Inventory,
    KeyProtection,
    KmsAlias,
    KmsKey,
    Resource,
    ResourceRef,
    ResourceType,
    ScanInfo,
    Severity,
    SkippedRegion,
    Status,
)
from rdsaudit.plan.steps import key_from, remediation_for
from rdsaudit.policy import KeyProtectionRule, Policy
from rdsaudit.report.reading import ReportProblem
from rdsaudit.rules.context import Context
from rdsaudit.serialize import InventoryProblem, build_record

_ENTRY = ("arn", "type", "id", "region", "account_id", "engine", "status")


def replannable(doc: Mapping[str, Any]) -> bool:
    """Whether the report carries what re-planning needs (version 2, written with config)."""
    resources = doc.get("resources")
    if doc.get("schema_version") != 2 or not isinstance(resources, list):
        return False
    failing = any(isinstance(f, dict) and f.get("status") == Status.FAIL.value
                  for f in doc.get("findings") or [])
    # Only resources a plan needs carry config: a report without failures needs none.
    return not failing or any(isinstance(r, dict) and isinstance(r.get("config"), dict)
                              for r in resources)


def _resource(entry: Mapping[str, Any], where: str) -> Resource:
    if not isinstance(entry.get("config"), dict) or not isinstance(entry.get("tags"), dict):
        raise InventoryProblem(f"{where}: no config")
    data = {**entry["config"], **{k: entry.get(k) for k in _ENTRY},
            "tags": [[k, v] for k, v in entry["tags"].items()]}
    record = build_record(Resource, data, where)
    assert isinstance(record, Resource)
    return record


def inventory_of(doc: Mapping[str, Any]) -> Inventory:
    """The planning part of the inventory a version 2 report was made from."""
    resources: list[Resource] = []
    keys: list[KmsKey] = []
    aliases: list[KmsAlias] = []
    names = {f.name for f in dataclasses.fields(KmsKey)}
    try:
        for i, entry in enumerate(doc.get("resources") or []):
            if not isinstance(entry, dict) or entry.get("type") == ResourceType.KMS_KEY.value:
                continue
            if "config" not in entry:
                continue  # older entry: its findings keep the report's own steps
            resources.append(_resource(entry, f"resources[{i}]"))
            for j, member in enumerate(entry.get("member_configs") or []):
                record = build_record(Resource, member, f"resources[{i}].member_configs[{j}]")
                resources.append(record)
        for i, entry in enumerate(doc.get("keys") or []):
            if not isinstance(entry, dict):
                raise InventoryProblem(f"keys[{i}]: not an object")
            key = build_record(KmsKey, {k: v for k, v in entry.items() if k in names},
                               f"keys[{i}]")
            keys.append(key)
            for name in entry.get("aliases") or []:
                if isinstance(name, str):
                    aliases.append(KmsAlias(name, key.region, key.account_id,
                                            key.arn.rsplit("/", 1)[-1]))
        scan = doc.get("scan") or {}
        skipped = tuple(build_record(SkippedRegion, s, f"scan.skipped_regions[{i}]")
                        for i, s in enumerate(scan.get("skipped_regions") or []))
        errors = tuple(build_record(CollectionError, e, f"errors[{i}]")
                       for i, e in enumerate(doc.get("errors") or []))
        info = ScanInfo(str(scan.get("started_at", "")), str(scan.get("finished_at", "")),
                        tuple(scan.get("accounts") or ()), tuple(scan.get("regions") or ()),
                        skipped_regions=skipped)
    except InventoryProblem as exc:
        raise ReportProblem(f"cannot re-plan from the report: {exc}") from None
    return Inventory(info, tuple(resources), tuple(keys), tuple(aliases), errors=errors)


def planning_policy(doc: Mapping[str, Any], policy: Policy) -> Policy:
    """`policy` (config and --target-key) with what the report's plans were made with:
    their target keys where none is given now, and the AWS managed key still refused in
    accounts whose policy refused it."""
    keys = dict(policy.target_keys)
    strict = {rule.account for rule in policy.key_protection}
    for f in doc.get("findings") or []:
        rem = f.get("remediation") if isinstance(f, dict) else None
        if not isinstance(rem, dict):
            continue
        res = f["resource"]
        account, region = res["account_id"], res["region"]
        recorded = rem.get("target_key")
        if isinstance(recorded, str) and key_from(keys, account, region) is None:
            keys[f"{account}:{region}"] = recorded
        if rem.get("customer_key_required") is True and account not in strict:
            strict.add(account)
    rules = tuple(policy.key_protection) + tuple(
        KeyProtectionRule(a, KeyProtection.CUSTOMER) for a in sorted(strict)
        if a not in {r.account for r in policy.key_protection})
    return replace(policy, target_keys=keys, key_protection=rules)


def replan(doc: Mapping[str, Any], policy: Policy, strategy: str) -> dict[str, Any]:
    """A copy of the report whose failing findings carry freshly made plans."""
    from rdsaudit.report.document import remediation_entry

    ctx = Context(inventory_of(doc), planning_policy(doc, policy))
    out = copy.deepcopy(dict(doc))
    for f in out["findings"]:
        if f.get("status") != Status.FAIL.value:
            continue
        res = f["resource"]
        try:
            rtype = ResourceType(res["type"])
            severity = Severity.parse(f["severity"])
        except ValueError:
            continue
        finding = Finding(f["rule_id"], str(f.get("title", "")), severity, Status.FAIL,
                          ResourceRef(res["arn"], rtype, res["id"], res["region"],
                                      res["account_id"]), f["message"])
        rem = remediation_for(finding, ctx, strategy)
        if rem is not None:
            f["remediation"] = remediation_entry(rem)
    return out
