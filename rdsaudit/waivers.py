"""Waivers: known exceptions with an owner and an end date.

A waiver names a rule (or `*`), a resource ARN or glob, optionally an account and region,
and why, who, until when. A matching failing finding becomes `waived` and never fails the
gate. An expired waiver no longer applies and is reported as expired; a waiver that matches
no failing finding is reported as stale, so exceptions cannot outlive their reason unseen.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rdsaudit.errors import UsageProblem
from rdsaudit.model import Finding, Status, Waiver, WaiverState


class WaiverProblem(UsageProblem, ValueError):
    """A waiver entry we cannot use; the message names the file and the entry."""


@dataclass(frozen=True)
class WaiverRule:
    rule: str  # rule id or "*"
    resource: str  # ARN, or glob over ARNs (fnmatch: *, ?, [seq])
    reason: str
    owner: str
    expires: dt.date
    account: str | None = None
    region: str | None = None

    def matches(self, finding: Finding) -> bool:
        res = finding.resource
        if self.rule not in ("*", finding.rule_id):
            return False
        if self.account is not None and self.account != res.account_id:
            return False
        if self.region is not None and self.region != res.region:
            return False
        return fnmatch.fnmatchcase(res.arn, self.resource)

    def as_waiver(self) -> Waiver:
        return Waiver(self.reason, self.owner, self.expires.isoformat())


@dataclass(frozen=True)
class WaiverOutcome:
    waiver: WaiverRule
    state: WaiverState
    matched: int


_KEYS = {"rule", "resource", "reason", "owner", "expires", "account", "region"}
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def parse_waivers(raw: Any, source: str, rule_ids: Sequence[str]) -> tuple[WaiverRule, ...]:
    if not isinstance(raw, list):
        raise WaiverProblem(f"{source}: waivers must be an array of tables ([[waivers]])")
    return tuple(_parse_one(entry, f"{source}: waivers[{i}]", rule_ids)
                 for i, entry in enumerate(raw))


def _parse_one(entry: Any, where: str, rule_ids: Sequence[str]) -> WaiverRule:
    if not isinstance(entry, Mapping):
        raise WaiverProblem(f"{where}: must be a table")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise WaiverProblem(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("rule", "resource", "reason", "owner", "expires"):
        if key not in entry:
            raise WaiverProblem(f"{where}: missing {key}")
    for key in ("rule", "resource", "reason", "owner", "account", "region"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise WaiverProblem(f"{where}: {key} must be a non-empty string")
    rule = entry["rule"]
    if rule != "*" and rule not in rule_ids:
        raise WaiverProblem(f"{where}: unknown rule id {rule!r} (see 'rdsaudit rules')")
    resource = entry["resource"].strip()
    problem = _glob_problem(resource)
    if problem:
        raise WaiverProblem(f"{where}: bad resource glob {resource!r}: {problem}")
    account = entry.get("account")
    if account is not None and not _ACCOUNT.match(account):
        raise WaiverProblem(f"{where}: account must be a 12-digit account id")
    region = entry.get("region")
    if region is not None and not _REGION.match(region):
        raise WaiverProblem(f"{where}: region {region!r} is not a region name")
    return WaiverRule(rule=rule, resource=resource, reason=entry["reason"].strip(),
                      owner=entry["owner"].strip(), expires=_date(entry["expires"], where),
                      account=account, region=region)


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise WaiverProblem(f"{where}: expires must be a date such as 2027-03-31, not {value!r}")


def _glob_problem(pattern: str) -> str | None:
    if not (pattern.startswith("arn:") or pattern == "*"):
        return "must be a resource ARN or a glob starting with 'arn:' (or '*')"
    depth = 0
    for ch in pattern:
        if ch == "[":
            if depth:
                return "nested '['"
            depth = 1
        elif ch == "]" and depth:
            depth = 0
    if depth:
        return "unclosed '['"
    return None


def apply_waivers(findings: Sequence[Finding], waivers: Sequence[WaiverRule],
                  today: dt.date) -> tuple[tuple[Finding, ...], tuple[WaiverOutcome, ...]]:
    """Waive the failing findings an unexpired waiver matches (the first matching one)."""
    live = [w for w in waivers if w.expires >= today]
    matched = dict.fromkeys(range(len(waivers)), 0)
    index = {id(w): i for i, w in enumerate(waivers)}
    out: list[Finding] = []
    for finding in findings:
        if finding.status is Status.FAIL:
            hit = next((w for w in live if w.matches(finding)), None)
            if hit is not None:
                matched[index[id(hit)]] += 1
                finding = replace(finding, status=Status.WAIVED, waiver=hit.as_waiver())
        out.append(finding)
    outcomes = []
    for i, waiver in enumerate(waivers):
        if waiver.expires < today:
            state = WaiverState.EXPIRED
            count = sum(1 for f in findings if f.status is Status.FAIL and waiver.matches(f))
        else:
            count = matched[i]
            state = WaiverState.ACTIVE if count else WaiverState.STALE
        outcomes.append(WaiverOutcome(waiver, state, count))
    return tuple(out), tuple(outcomes)
