"""Pure judgement: (Inventory, Policy) -> Result. Rules never call AWS."""

from __future__ import annotations

from dataclasses import replace

from rdsaudit.model import (
    Finding,
    Inventory,
    KeySummary,
    KmsKey,
    Resource,
    ResourceRef,
    ResourceType,
    Result,
    Status,
    WaiverReport,
)
from rdsaudit.plan.steps import remediation_for
from rdsaudit.policy import Policy
from rdsaudit.rules import RULES, Context
from rdsaudit.waivers import apply_waivers


def _ref(subject: Resource | KmsKey) -> ResourceRef:
    if isinstance(subject, KmsKey):
        return ResourceRef(subject.arn, ResourceType.KMS_KEY, subject.arn.rsplit("/", 1)[-1],
                           subject.region, subject.account_id)
    return ResourceRef(subject.arn, subject.type, subject.id, subject.region,
                       subject.account_id)


def evaluate(inventory: Inventory, policy: Policy, *, pass_findings: bool = True) -> Result:
    """Judge the inventory. With `pass_findings=False` a pass is kept as (ARN, rule id) in
    `Result.passes`, not as a Finding: a large estate's passes are most of its findings."""
    ctx = Context(inventory, policy)
    findings: list[Finding] = []
    passes: list[tuple[str, str]] = []
    # A resource is judged by many rules: its reference and key summary are built once.
    described: dict[str, tuple[ResourceRef, KeySummary | None, tuple[tuple[str, str], ...]]] = {}
    for rule in RULES.values():
        for subject in ctx.subjects(rule.subjects):
            verdict = rule.check(subject, ctx)
            if verdict is None:
                continue
            if not pass_findings and verdict.status is Status.PASS:
                passes.append((subject.arn, rule.id))
                continue
            about = described.get(subject.arn)
            if about is None:
                if isinstance(subject, Resource):
                    about = (_ref(subject), ctx.key_summary(subject), subject.tags)
                else:
                    about = (_ref(subject), KeySummary(subject.arn, subject.key_state,
                                                       subject.key_manager), ())
                described[subject.arn] = about
            ref, key, tags = about
            finding = Finding(
                rule_id=rule.id,
                title=rule.title,
                severity=verdict.severity or rule.severity,
                status=verdict.status,
                resource=ref,
                message=verdict.message,
                kms_key=key,
                tags=tags,
            )
            if finding.status is Status.FAIL:
                finding = replace(finding, remediation=remediation_for(finding, ctx))
            findings.append(finding)
    findings.sort(key=lambda f: (f.status is not Status.FAIL, -f.severity, f.rule_id,
                                 f.resource.arn))
    users = tuple(
        (arn, tuple(sorted(r.arn for r in resources)))
        for arn, resources in sorted(ctx.keys_in_use.items())
    )
    judged, outcomes = apply_waivers(findings, policy.waivers, ctx.now.date())
    waivers = tuple(
        WaiverReport(rule=o.waiver.rule, resource=o.waiver.resource, reason=o.waiver.reason,
                     owner=o.waiver.owner, expires=o.waiver.expires.isoformat(),
                     state=o.state, matched=o.matched, account=o.waiver.account,
                     region=o.waiver.region)
        for o in outcomes
    )
    roles = tuple(
        (arn, tuple(sorted((resource, role.value) for resource, role in dependents)))
        for arn, dependents in sorted(ctx.key_roles.items())
    )
    return Result(inventory, judged, users, waivers, key_roles=roles, passes=tuple(passes))
