"""The rule registry: a rule is a plain function with a stable id and its metadata.

A rule looks at one subject (a resource, or a KMS key used by RDS) through a `Context` and
returns a `Verdict`, or None when it does not apply or cannot know. Unknown is never `pass`:
a rule that lacks the data it needs returns None, and the missing data is already a
`CollectionError` or a `key-unverifiable` failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Union

from rdsaudit.model import KmsKey, Resource, ResourceType, Severity, Status

if TYPE_CHECKING:
    from rdsaudit.rules.context import Context

Subject = Union[Resource, KmsKey]  # noqa: UP007 - used at runtime in a Callable alias


class Verdict(NamedTuple):
    """A rule's judgement of one subject (a named tuple: a large estate has a million)."""

    status: Status
    message: str
    severity: Severity | None = None  # overrides the rule's default (policy-raised rules)


def passed(message: str) -> Verdict:
    return Verdict(Status.PASS, message)


def failed(message: str, severity: Severity | None = None) -> Verdict:
    return Verdict(Status.FAIL, message, severity)


Check = Callable[[Subject, "Context"], Verdict | None]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    applies_to: str
    subjects: tuple[ResourceType, ...]
    check: Check
    raised_by: str | None = None  # policy switch that raises the severity to high

    @property
    def description(self) -> str:
        return " ".join((self.check.__doc__ or "").split())

    @property
    def severity_text(self) -> str:
        if self.raised_by:
            return f"{self.severity.label} (high with {self.raised_by})"
        return self.severity.label


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    title: str,
    severity: Severity,
    applies_to: str,
    subjects: tuple[ResourceType, ...],
    raised_by: str | None = None,
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")
        RULES[rule_id] = Rule(rule_id, title, severity, applies_to, subjects, check, raised_by)
        return check

    return register
