"""The JSON report contract, schema_version 2, as types: what every format may rely on.

`report_document` builds a `ReportDocument`; the formats read it by these names, so a
renamed member is a mypy error, not a silently empty column. The contract is documented for
users in docs/contract.md; version 1 (findings only, passes included) is still read by
`plan` and `--baseline` (rdsaudit.report.reading).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

SCHEMA_VERSION = 2

Evidence = Literal["failures", "full"]
# How a resource's data is protected at rest, weakest first (the key-protection ladder).
POSTURES = ("unencrypted", "aws-owned", "aws-managed", "customer", "customer-external-store",
            "unknown")
KEY_ROLES = ("storage", "performance-insights", "master-user-secret", "activity-stream")


class ToolInfo(TypedDict):
    name: str
    version: str


class SkippedRegionEntry(TypedDict):
    account_id: str
    region: str
    code: str
    message: str


class ScanSection(TypedDict):
    started_at: str
    finished_at: str
    accounts: list[str]
    regions: list[str]
    api_calls: dict[str, int]
    retries: dict[str, int]
    skipped_regions: list[SkippedRegionEntry]
    evidence: Evidence  # "full": pass findings are in findings[] too
    shard: NotRequired[dict[str, int]]  # {"index", "count"} of a sharded scan (--shard)


class KeyRoleEntry(TypedDict):
    """One key a resource depends on, in one role."""

    role: str  # one of KEY_ROLES
    arn: str | None  # None: AWS owned key, or a KmsKeyId that could not be resolved
    state: str | None  # KeyState; "NotFound" when the key is gone; None when unknown
    manager: str | None  # AWS | CUSTOMER | AWS_OWNED | None when unknown
    deadline: str | None  # ISO 8601: deletion date, or the end of imported key material


class ResourceEntry(TypedDict):
    """One judged resource: its facts and the rule ids it passes, fails and has waived.

    `passes` is the pass evidence: compact, one rule id per passing check.
    """

    arn: str
    type: str
    id: str
    region: str
    account_id: str
    engine: str | None
    status: str | None
    posture: str  # one of POSTURES
    keys: list[KeyRoleEntry]
    tags: dict[str, str]
    fails: list[str]
    passes: list[str]
    waived: list[str]
    # The resource's other fields (configuration, relations, keys: rdsaudit.model.Resource
    # by name; null and empty ones left out), so `rdsaudit plan` can re-plan without a
    # rescan. Only on resources a plan needs: those that fail, their replicas and sources.
    config: NotRequired[dict[str, Any]]
    member_configs: NotRequired[list[dict[str, Any]]]  # db-cluster: its members, in full


class ResourceRefEntry(TypedDict):
    arn: str
    type: str
    id: str
    region: str
    account_id: str


class KeySummaryEntry(TypedDict):
    arn: str | None
    state: str | None
    manager: str | None


class RemediationEntry(TypedDict):
    summary: str
    # Steps are the plan's data (issue 9 owns the Step record); every step has a `title`
    # and a `command` text (None for a manual step).
    steps: list[dict[str, Any]]
    related: list[str]  # resources the steps act on besides the finding's own
    blocked: str | None  # why there are no commands (no key the policy accepts)
    # What the plan was made with (absent in older reports): the target key of the
    # resource's account and region, whether the policy forbade aws/rds there, and the
    # strategy of a re-creating plan (snapshot | blue-green | None).
    target_key: NotRequired[str | None]
    customer_key_required: NotRequired[bool]
    strategy: NotRequired[str | None]


class WaiverEntry(TypedDict):
    reason: str
    owner: str
    expires: str


class FindingEntry(TypedDict):
    id: str  # rdsaudit.model.finding_id(account, region, rule id, resource ARN)
    rule_id: str
    title: str
    severity: str
    status: str  # fail | waived (| pass with --evidence full)
    resource: ResourceRefEntry
    message: str
    kms_key: KeySummaryEntry | None
    remediation: RemediationEntry | None
    waiver: WaiverEntry | None
    tags: dict[str, str]
    baseline: str | None  # new | unchanged against --baseline


class ErrorEntry(TypedDict):
    account_id: str
    region: str
    service: str
    operation: str
    code: str
    message: str
    resource: str | None  # what the failed call was about; None for a whole listing


class KeyDependentEntry(TypedDict):
    arn: str  # the dependent resource
    role: str  # storage | performance-insights | master-user-secret | activity-stream


class KeyEntry(TypedDict):
    """A KMS key in use: the model's KmsKey fields plus what the report adds."""

    arn: str
    region: str
    account_id: str
    lookup: str
    key_state: str | None
    key_manager: str | None
    origin: str | None
    deletion_date: str | None
    rotation: str
    rotation_enabled: bool | None
    note: str | None
    aliases: list[str]
    deadline: str | None
    health: str  # usable | unusable | unverifiable (keyref.key_health)
    dependents: list[str]  # ARNs of the judged resources that use it
    roles: list[KeyDependentEntry]  # each dependent with the role it uses the key in


class Action(TypedDict):
    """One thing to fix: a root cause and every failing finding it explains."""

    id: str
    kind: str  # key | unencrypted-primary | public-snapshot | resource
    title: str
    severity: str  # the worst severity among its findings
    urgency: int  # 1 = fix first
    deadline: str | None  # data-loss deadline (key deletion, key material expiry)
    days_left: int | None
    cause: str  # ARN of the root cause (key, primary, snapshot, resource)
    cause_name: str
    account_id: str
    region: str
    resources: list[str]  # ARNs of every resource the action touches
    finding_ids: list[str]
    remediation: RemediationEntry | None  # the cause's own fix, when it has one


class Summary(TypedDict):
    complete: bool
    resources: dict[str, int]
    resources_total: int
    findings: dict[str, int]  # pass / fail / waived counts (passes counted, not listed)
    failures_by_severity: dict[str, int]
    failures_by_rule: dict[str, int]
    failures_by_region: dict[str, int]
    failures_by_account: dict[str, int]
    by_account: dict[str, dict[str, int]]  # every scanned account, failing or not
    by_region: dict[str, dict[str, int]]  # every scanned region, failing or not
    passes_by_rule: dict[str, int]
    waivers: dict[str, int]
    errors: int
    skipped_regions: int
    fail_on: str
    fail_on_new: bool
    exit_code: int
    verdict: str  # plain words: "Not compliant: 11 critical, 17 high · scan incomplete: …"
    actions: list[Action]


class ReportDocument(TypedDict):
    schema_version: int
    tool: ToolInfo
    scan: ScanSection
    resources: list[ResourceEntry]
    findings: list[FindingEntry]
    errors: list[ErrorEntry]
    keys: list[KeyEntry]
    waivers: list[dict[str, Any]]
    baseline: dict[str, Any] | None
    summary: Summary
    history: NotRequired[list[dict[str, Any]]]  # recorded scans, oldest first (--history)
