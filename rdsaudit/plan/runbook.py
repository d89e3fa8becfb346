"""Render the remediation steps of a JSON report as shell runbooks, one per account.

A runbook must be safe to run whole, from a report that may have been edited:
* every step is an argument vector held to `awscli.check_argv` (a known remediation call on
  the finding's own resource or one the plan creates) and rendered with `shlex.join`; a
  version 1 report's `command` text is `shlex.split` first and held to the same check;
* free text (ids, titles, messages, account ids) reaches the script only as a `#` comment
  reduced to one line with control characters escaped, or through `printf '%s\\n'` with
  `shlex.quote`;
* each runbook starts by checking, with `aws sts get-caller-identity`, that the shell is in
  its account; steps for another account go to that account's runbook, or are comments;
* destructive steps run only after the cut-over, in a section of their own, and only with
  RDSAUDIT_CONFIRM_DELETE=1.

Size (~410 lines): the guarantees above are one renderer's; split, they would be easy to
weaken in one place.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdsaudit.model import SEVERITY_LABELS
from rdsaudit.plan.awscli import BLUE_GREEN_ID, CommandRefused, Scope, blue_green_name, check_argv
from rdsaudit.report.reading import ReportProblem, load_report

__all__ = ["ReportProblem", "StepRefused", "blocked", "load_report", "render_runbook",
           "runbook_accounts"]

SEVERITY_ORDER = SEVERITY_LABELS
# The placeholder older reports use when no target key was configured; the header checks it
# is set, and it is expanded inside double quotes (a variable, never a command).
TARGET_KEY_VARIABLE = "${TARGET_KEY_ARN}"
CONFIRM_VARIABLE = "RDSAUDIT_CONFIRM_DELETE"
_ACCOUNT = re.compile(r"\d{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class StepRefused(ReportProblem):
    """A step of the report that is not a known remediation call on its resources."""


def one_line(text: str) -> str:
    """Text with every control character (newline, CR, escape, NEL, line separators)
    escaped, so it can never leave a `#` comment or move the terminal's cursor."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def comment(text: str) -> str:
    return "# " + one_line(text)


def say(text: str) -> str:
    """A shell line that prints `text` on stderr, quoted: never interpreted."""
    return f"printf '%s\\n' {shlex.quote(one_line(text))} >&2"


def render_argv(argv: Sequence[str]) -> str:
    parts = ['"${TARGET_KEY_ARN}"' if a == TARGET_KEY_VARIABLE else shlex.quote(a)
             for a in argv]
    return " ".join(parts)


# Blue/Green deployments have no waiter, and their identifier exists only once created:
# fixed shell functions (no report data in them) poll a bounded number of times and look the
# identifier up by the deployment's name. RDSAUDIT_POLL_SECONDS (digits only) shortens the
# pause, for tests against an emulator.
BLUE_GREEN_HELPERS = r"""# ── Blue/Green helpers: no waiter exists, so poll at most 240 times
rdsaudit_poll_seconds() {
  case "${RDSAUDIT_POLL_SECONDS:-30}" in
    ''|*[!0-9]*) echo 30 ;;
    *) echo "${RDSAUDIT_POLL_SECONDS:-30}" ;;
  esac
}
# TargetResourceConfigurations (the green's KMS key) is newer than many AWS CLI installs:
# without it the CLI refuses the option, so stop before anything changes.
skeleton="$(aws rds create-blue-green-deployment --generate-cli-skeleton input)"
case "$skeleton" in
  *'"TargetResourceConfigurations"'*) ;;
  *) printf '%s\n' "This AWS CLI's RDS model has no --target-resource-configurations" \
       "(the green environment's KMS key): upgrade the AWS CLI, or re-plan with" \
       "--strategy snapshot. Nothing was changed." >&2
     exit 1 ;;
esac
rdsaudit_bgd_id() {  # REGION NAME: the deployment's identifier (bgd-…)
  local id
  id="$(aws rds describe-blue-green-deployments --region "$1" \
    --filters "Name=blue-green-deployment-name,Values=$2" \
    --query 'BlueGreenDeployments[0].BlueGreenDeploymentIdentifier' --output text)"
  case "$id" in
    bgd-*) printf '%s\n' "$id" ;;
    *) printf 'No Blue/Green deployment named %s\n' "$2" >&2; return 1 ;;
  esac
}
rdsaudit_bgd_wait() {  # REGION NAME STATUS: until the deployment reaches STATUS
  local tries=0 status
  while :; do
    status="$(aws rds describe-blue-green-deployments --region "$1" \
      --filters "Name=blue-green-deployment-name,Values=$2" \
      --query 'BlueGreenDeployments[0].Status' --output text)"
    if [ "$status" = "$3" ]; then return 0; fi
    case "$status" in
      PROVISIONING|AVAILABLE|SWITCHOVER_IN_PROGRESS) ;;
      *) printf 'Blue/Green deployment %s is %s, not %s: stopping\n' "$2" "$status" "$3" >&2
         return 1 ;;
    esac
    tries=$((tries + 1))
    if [ "$tries" -ge 240 ]; then
      printf 'Blue/Green deployment %s is still %s: giving up\n' "$2" "$status" >&2
      return 1
    fi
    sleep "$(rdsaudit_poll_seconds)"
  done
}
"""


def _option(argv: Sequence[str], name: str) -> str:
    return argv[argv.index(name) + 1] if name in argv[:-1] else ""


def _step_lines(step: _Step) -> list[str]:
    """The shell lines of one runnable step: the argv itself, or for Blue/Green the bounded
    polling loop, and the identifier looked up by the deployment's name."""
    argv = step.argv
    region = shlex.quote(_option(argv, "--region"))
    if argv[2] == "describe-blue-green-deployments" and step.kind == "wait":
        name = blue_green_name(_option(argv, "--filters")) or ""
        status = "SWITCHOVER_COMPLETED" if step.destructive else "AVAILABLE"
        return [f"rdsaudit_bgd_wait {region} {shlex.quote(name)} {status}"]
    names = [blue_green_name(a) for a in argv if BLUE_GREEN_ID.fullmatch(a)]
    if names:
        parts = ['"$bgd_id"' if BLUE_GREEN_ID.fullmatch(a) else shlex.quote(a) for a in argv]
        return [f'bgd_id="$(rdsaudit_bgd_id {region} {shlex.quote(names[0] or "")})"',
                " ".join(parts)]
    return [render_argv(argv)]


@dataclass(frozen=True, slots=True)
class _Step:
    title: str
    kind: str  # command | wait | manual | check
    account: str
    argv: tuple[str, ...]
    destructive: bool


@dataclass(slots=True)
class _Plan:
    severity: str
    rule_id: str
    resource: Mapping[str, Any]
    message: str
    summary: str
    steps: list[_Step] = field(default_factory=list)
    blocked: str | None = None


def _wanted(finding: Mapping[str, Any], resources: Sequence[str]) -> bool:
    if finding.get("status") != "fail" or not finding.get("remediation"):
        return False
    if not resources:
        return True
    res = finding["resource"]
    return res.get("id") in resources or res.get("arn") in resources


def unmatched_resources(doc: Mapping[str, Any], resources: Sequence[str]) -> list[str]:
    """The --resource values that name no resource of the report."""
    names: set[Any] = set()
    for f in doc["findings"]:
        names.update((f["resource"].get("id"), f["resource"].get("arn")))
    for r in doc.get("resources") or []:
        if isinstance(r, dict):
            names.update((r.get("id"), r.get("arn")))
    return [r for r in resources if r not in names]


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


def _step_argv(step: Mapping[str, Any]) -> tuple[str, ...] | None:
    argv = step.get("argv")
    if isinstance(argv, list):
        if not all(isinstance(a, str) for a in argv):
            raise CommandRefused("argv is not a list of strings")
        return tuple(argv) if argv else None
    command = step.get("command")
    if command is None:
        return None
    if not isinstance(command, str):
        raise CommandRefused("command is not text")
    try:
        return tuple(shlex.split(command, comments=False, posix=True))
    except ValueError as exc:
        raise CommandRefused(f"command cannot be split: {exc}") from None


def _kind(step: Mapping[str, Any], argv: tuple[str, ...] | None) -> str:
    kind = step.get("kind")
    if kind in ("command", "wait", "manual", "check"):
        return str(kind)
    if step.get("manual"):
        return "manual"
    if argv is None:
        return "manual"
    return "wait" if len(argv) > 2 and argv[2] == "wait" else "command"


def _known(doc: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    resources: set[str] = set()
    keys: set[str] = set()
    for f in doc["findings"]:
        resources.update((f["resource"]["id"], f["resource"]["arn"]))
        if f["resource"].get("type") == "kms-key":
            keys.add(f["resource"]["arn"])
        key = f.get("kms_key")
        if isinstance(key, dict) and isinstance(key.get("arn"), str):
            keys.add(key["arn"])
    return resources, keys


def _plans(doc: Mapping[str, Any], resources: Sequence[str]) -> list[_Plan]:
    indexed = [(i, f) for i, f in enumerate(doc["findings"]) if _wanted(f, resources)]
    indexed.sort(key=lambda p: SEVERITY_ORDER.index(p[1]["severity"])
                 if p[1]["severity"] in SEVERITY_ORDER else len(SEVERITY_ORDER))
    known, keys = _known(doc)
    created: set[str] = set()
    plans = []
    for index, f in indexed:
        res = f["resource"]
        rem = f["remediation"]
        plan = _Plan(f["severity"], f["rule_id"], res, f["message"], rem["summary"])
        scope = Scope(own={res["id"], res["arn"]}, created=created, known=known, keys=keys)
        if isinstance(f.get("kms_key"), dict) and isinstance(f["kms_key"].get("arn"), str):
            scope.own.add(f["kms_key"]["arn"])
        related = rem.get("related")
        if isinstance(related, list):
            scope.own.update(x for x in related if isinstance(x, str))
        if isinstance(rem.get("blocked"), str):
            plan.blocked = one_line(rem["blocked"])
        for n, step in enumerate(rem.get("steps") or [], start=1):
            where = f"findings[{index}] ({f['rule_id']} on {res['id']}) step {n}"
            try:
                argv = _step_argv(step)
                kind = _kind(step, argv)
                # A manual step is never executed: it reaches the script only as a comment
                # (one line, controls escaped), so it may name any service (CloudTrail for
                # key-usage-not-audited). Everything the shell runs is held to the list.
                if argv is not None and kind != "manual":
                    check_argv(argv, scope)
            except CommandRefused as exc:
                raise StepRefused(one_line(f"{where} refused: {exc}")) from None
            account = step.get("account")
            if not isinstance(account, str) or not account:
                key_account = None
                if argv is not None and argv[1] == "kms" and "--key-id" in argv:
                    key_account = _arn_account(argv[argv.index("--key-id") + 1])
                account = key_account or res["account_id"]
            plan.steps.append(_Step(str(step["title"]), kind, account, argv or (),
                                    bool(step.get("destructive"))))
        plans.append(plan)
    return plans


def blocked(doc: Mapping[str, Any], resources: Sequence[str] = ()) -> list[str]:
    """One line per plan the policy refused (no key it accepts), each once."""
    return list(dict.fromkeys(p.blocked for p in _plans(doc, resources) if p.blocked))


def runbook_accounts(doc: Mapping[str, Any], resources: Sequence[str] = ()) -> list[str]:
    """The accounts a runbook is needed for: every account a wanted step runs in."""
    accounts: set[str] = set()
    for plan in _plans(doc, resources):
        accounts.add(str(plan.resource["account_id"]))
        accounts.update(s.account for s in plan.steps if s.argv)
    return sorted(accounts)


def _guard(account: str) -> list[str]:
    if not _ACCOUNT.fullmatch(account):
        raise ReportProblem(f"account id {one_line(account)!r} is not 12 digits: refusing to "
                            "write a runbook whose account check could not hold")
    message = (f"This runbook is for AWS account {account}: switch credentials (AWS_PROFILE) "
               "and run it again.")
    return [
        "# ── Account check: every command below is for this account only",
        f"expected_account={account}",
        'actual_account="$(aws sts get-caller-identity --query Account --output text)"',
        'if [ "$actual_account" != "$expected_account" ]; then',
        f"  {say(message)}",
        "  exit 1",
        "fi",
        "",
    ]


def render_runbook(doc: Mapping[str, Any], resources: Sequence[str] = (),
                   source: str = "report", account: str | None = None,
                   accounts_with_runbook: Sequence[str] = ()) -> str:
    """The runbook for `account` (default: the only account the findings concern)."""
    plans = _plans(doc, resources)
    if account is None:
        involved = sorted({str(p.resource["account_id"]) for p in plans}) or [
            str(a) for a in doc.get("scan", {}).get("accounts", [])][:1]
        if len(involved) > 1:
            raise ReportProblem(f"the findings concern accounts {', '.join(involved)}: pass "
                                "--account ID or --output-dir DIR (one runbook per account)")
        account = involved[0] if involved else "000000000000"
    scan = doc.get("scan", {})
    accounts = scan.get("accounts", []) if isinstance(scan.get("accounts"), list) else []
    out = [
        "#!/usr/bin/env bash",
        f"# rdsaudit remediation runbook for account {one_line(account)}",
        comment(f"From {source}: scan finished {scan.get('finished_at', '?')}, accounts "
                f"{', '.join(str(a) for a in accounts) or '?'}."),
        "# Review every step before running it. rdsaudit never runs this script.",
        "# Steps marked MANUAL are comments: do them by hand when the step before is verified.",
        f"# Deletions run only after the cut-over, and only with {CONFIRM_VARIABLE}=1.",
        "set -euo pipefail",
        "",
        *_guard(account),
    ]
    if any(TARGET_KEY_VARIABLE in s.argv for p in plans for s in p.steps
           if s.account == account and s.kind != "manual"):
        out += [': "${TARGET_KEY_ARN:?set TARGET_KEY_ARN to a customer managed KMS key ARN}"',
                ""]
    if any("blue-green" in s.argv[2] for p in plans for s in p.steps
           if s.argv and s.account == account and s.kind != "manual"):
        out += [*BLUE_GREEN_HELPERS.splitlines(), ""]
    mine = [p for p in plans
            if p.resource["account_id"] == account or any(s.account == account and s.argv
                                                           for s in p.steps)]
    if not mine:
        out.append("# Nothing to remediate: no failing finding matched.")
    issued: set[tuple[str, ...]] = set()
    cleanup: list[tuple[_Plan, _Step]] = []
    for p in mine:
        res = p.resource
        out.append(comment(f"── [{p.severity}] {p.rule_id} · {res.get('type')} {res.get('id')} "
                           f"({res.get('region')}, account {res.get('account_id')})"))
        out.append(comment(p.message))
        out.append(comment(p.summary))
        for n, step in enumerate(p.steps, start=1):
            manual = step.kind == "manual"
            if step.destructive and not manual and step.account == account:
                out.append(comment(f"Step {n}: {step.title} (in the clean-up section below)"))
                cleanup.append((p, step))
                continue
            out.append(comment(f"Step {n}{' (MANUAL)' if manual else ''}: {step.title}"))
            if not step.argv:
                continue
            text = render_argv(step.argv)
            if step.account != account:
                where = ("its runbook" if step.account in accounts_with_runbook
                         else "that account (not in this report)")
                out.append(comment(f"runs in account {step.account} ({where}): {text}"))
            elif manual:
                out.append(comment(text))
            elif step.argv in issued and step.kind != "wait":  # waiting again is needed
                out.append(comment(f"already done above: {text}"))
            else:
                issued.add(step.argv)
                out += _step_lines(step)
        out.append("")
    if cleanup:
        out += _cleanup(cleanup, issued)
    return "\n".join(out).rstrip("\n") + "\n"


def _cleanup(cleanup: list[tuple[_Plan, _Step]], issued: set[tuple[str, ...]]) -> list[str]:
    # Read replicas go before their sources, and everything waits for its deletion: the
    # plans emit each resource's deletions in order, and replicas are deleted without a
    # final snapshot (AWS keeps no snapshot of a read replica).
    commands = [(p, s) for p, s in cleanup if s.argv not in issued]
    out = [
        "# ── Clean-up after the cut-over: deletes what the steps above replaced",
        f"# Set {CONFIRM_VARIABLE}=1 only once applications use the new databases and you have",
        "# verified their data. Unset, these deletions are skipped and the old (unencrypted or",
        "# wrongly keyed) resources remain: the next scan still reports them.",
        f'if [ "${{{CONFIRM_VARIABLE}:-}}" = 1 ]; then',
    ]
    remaining: list[str] = []
    for p, step in commands:
        if step.argv in issued and step.kind != "wait":
            # Two plans delete the same resource (a replica of a re-created source that
            # also fails on its own): the second deletion would fail under set -e.
            out.append("  " + comment(f"{p.rule_id} · {p.resource.get('id')}: {step.title} "
                                      "(already done above)"))
            continue
        issued.add(step.argv)
        out.append("  " + comment(f"{p.rule_id} · {p.resource.get('id')}: {step.title}"))
        out += ["  " + line for line in _step_lines(step)]
        if step.kind != "wait":
            remaining.append(step.title)
    out.append("else")
    out.append("  " + say(f"{CONFIRM_VARIABLE} is not 1: skipped {len(remaining)} deletion(s); "
                          "these remain until you rerun with it set:"))
    out += ["  " + say(f"  - {title}") for title in remaining]
    out += ["fi", ""]
    return out
