"""The command line: it only wires collect, evaluate, report and gate together.

Size (~880 lines): nine click commands and their options, help texts and flag checks;
everything a command does after parsing lives elsewhere (`outputs`, `inputs`, the layers).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rdsaudit import __version__
from rdsaudit.arns import Arn
from rdsaudit.errors import UsageProblem
from rdsaudit.gate import ExitCode
from rdsaudit.inputs import existing_input, local_copy
from rdsaudit.model import SEVERITY_LABELS, CollectionError, Inventory, Severity
from rdsaudit.outputs import REPORT_STEM, Outputs, finish, publish, stage, write_atomically
from rdsaudit.policy import Policy, load_policy
from rdsaudit.redact import redact, say

if TYPE_CHECKING:
    from rdsaudit.report.contract import Evidence, ReportDocument

SEVERITIES = SEVERITY_LABELS


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _formats(values: Sequence[str], default: str = "json") -> list[str]:
    from rdsaudit.report import FORMATS

    names = _split(values) or [default]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise UsageProblem(f"unknown format(s) {', '.join(unknown)} "
                           f"(available: {', '.join(FORMATS)})")
    return list(dict.fromkeys(names))


def _policy(config: Path | None, fail_on: str | None, targets: Sequence[str]) -> Policy:
    policy = load_policy(config) if config else Policy()
    if fail_on:
        policy = replace(policy, fail_on=Severity.parse(fail_on))
    return replace(policy, target_keys=target_key_map(policy.target_keys, targets))


def target_key_map(configured: Mapping[str, str], targets: Sequence[str]) -> dict[str, str]:
    """--target-key ARN (the key's own account and region: `ACCOUNT:REGION`) and
    --target-key ACCOUNT=ARN (that key for ACCOUNT's resources in the key's region)."""
    keys = dict(configured)
    for target in targets:
        account, _, key = target.rpartition("=") if "=" in target else ("", "", target)
        arn = Arn.parse(key)
        if arn is None or arn.service != "kms" or not arn.region or not arn.account:
            raise UsageProblem(f"--target-key {target!r} is not a KMS key ARN "
                               "(or ACCOUNT=ARN)")
        if account and not (len(account) == 12 and account.isdigit()):
            raise UsageProblem(f"--target-key {target!r}: {account!r} is not a 12-digit "
                               "account id")
        keys[f"{account or arn.account}:{arn.region}"] = key
    return keys








































def _progress_printer(quiet: bool) -> Callable[[Any], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def show(p: Any) -> None:
        # Only our own counts and control sequences: the carriage return, and \x1b[K that
        # clears what a longer previous line left; the line is erased at the end.
        click.echo(f"\rrdsaudit: regions {p.regions_done}/{p.regions_total} · "
                   f"{p.resources} resources · {p.errors} errors\x1b[K", err=True, nl=False)

    return show


def _end_progress(progress: Callable[[Any], None] | None) -> None:
    """Erase the progress line, so whatever is printed next starts on a clean line."""
    if progress is not None:
        click.echo("\r\x1b[K", err=True, nl=False)


# -- commands -------------------------------------------------------------------------------

_common_output = [
    click.option("--format", "formats", multiple=True, metavar="FMT[,FMT…]",
                 help="Report format(s), comma-separated: table (the default on a terminal), "
                      "json (the default otherwise and with --output-dir), html, csv, xlsx, "
                      "junit, sarif, asff (Security Hub findings), ocsf."),
    click.option("--output-dir", metavar="DIR|s3://BUCKET/PREFIX/",
                 help="Write DIR/rdsaudit-report.<ext> per format (default: one format to "
                      "stdout); an s3:// prefix uploads them (staged locally first)."),
    click.option("--s3-kms-key", metavar="KEY_ARN",
                 help="With --output-dir s3://…: encrypt the objects with this KMS key "
                      "(SSE-KMS; default: the bucket's default encryption)."),
    click.option("--fail-on", type=click.Choice(SEVERITIES, case_sensitive=False),
                 help="Lowest failing severity that fails the gate (default low)."),
    click.option("--exit-zero", is_flag=True, help="Always exit 0 once the reports are written."),
    click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                 help="TOML config: require_customer_managed_key, min_backup_retention_days, "
                      "regions, fail_on, target_keys, [[waivers]]."),
    click.option("--target-key", "target_keys", multiple=True, metavar="[ACCOUNT=]KEY_ARN",
                 help="KMS key to encrypt with in remediation plans, for the resources of "
                      "the key's account and region (ACCOUNT=ARN: for ACCOUNT's). "
                      "Repeatable."),
    click.option("--baseline", metavar="PREVIOUS.json|s3://…",
                 help="A previous JSON report: mark each failure new or unchanged, list the "
                      "resolved ones."),
    click.option("--fail-on-new", is_flag=True,
                 help="Gate only on failures that are new against --baseline."),
    click.option("--quiet", "-q", is_flag=True, help="No progress or summary on stderr."),
    click.option("--no-color", is_flag=True,
                 help="No colour in the terminal table (NO_COLOR=1 does the same)."),
    click.option("--evidence", type=click.Choice(["failures", "full"]), default="failures",
                 show_default=True,
                 help="full: list every passing check as a finding too (default: passes are "
                      "rule ids on each resource, counted in the summary)."),
]


def _with_output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common_output):
        fn = option(fn)
    return fn


def _with_notify_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--notify", multiple=True, envvar="RDSAUDIT_NOTIFY",
                     metavar="URL|sns:TOPIC_ARN",
                     help="Send one short message (verdict, counts, top 3 actions, report "
                          "location) to a Slack-compatible webhook or any HTTPS endpoint "
                          "taking JSON, or publish it to an SNS topic. Repeatable; "
                          "RDSAUDIT_NOTIFY keeps a webhook's token off the command line."),
        click.option("--notify-on", type=click.Choice(["always", "fail"]),
                     help="fail: only when the gate is not clean, i.e. a failure at or "
                          "above --fail-on or an incomplete scan, even with --exit-zero "
                          "(default always)."),
        click.option("--notify-timeout", type=click.FloatRange(0.1, 300), default=10,
                     show_default=True, metavar="SECONDS",
                     help="Seconds a webhook may take to answer."),
    ]):
        fn = option(fn)
    return fn


def _notify_targets(values: tuple[str, ...], on: str | None) -> list[Any]:
    from rdsaudit.deliver.notify import parse_target

    if on is not None and not values:
        raise UsageProblem("--notify-on needs --notify")
    return [parse_target(v) for v in values]


def _with_notify(out: Outputs, targets: list[Any], on: str | None, timeout: float) -> Outputs:
    """The notification as the last delivery: it sees every earlier one's failure."""
    if not targets:
        return out
    from rdsaudit.deliver.notify import notifier

    def location() -> str:
        if out.s3 is not None:
            return str(out.s3)
        return str(out.output_dir.resolve()) if out.output_dir else "stdout (no report file)"

    deliver = notifier(targets, "fail" if on == "fail" else "always", location, out.aws,
                       timeout, None if out.quiet else say)
    return replace(out, deliveries=(*out.deliveries, deliver))


def _outputs(formats: tuple[str, ...], output_dir: str | None, exit_zero: bool, quiet: bool,
             baseline: str | None, fail_on_new: bool, history: Path | None = None, *,
             s3_kms_key: str | None = None, session: Any = None, evidence: str = "failures",
             no_color: bool = False) -> Outputs:
    from rdsaudit.deliver.s3 import S3Problem, is_s3, parse_s3

    # No format given: the terminal table for a person, the JSON contract for a pipe or a
    # directory of reports.
    default = "table" if output_dir is None and sys.stdout.isatty() else "json"
    names = _formats(formats, default)
    if len(names) > 1 and output_dir is None:
        raise UsageProblem("several formats need --output-dir")
    if fail_on_new and baseline is None:
        raise UsageProblem("--fail-on-new needs --baseline PREVIOUS.json")
    evidence_mode: Evidence = "full" if evidence == "full" else "failures"
    if output_dir is not None and is_s3(output_dir):
        try:
            location = parse_s3(output_dir)
        except S3Problem as exc:
            raise UsageProblem(f"--output-dir: {exc}") from None
        if s3_kms_key is not None and not s3_kms_key.startswith(("arn:", "alias/")):
            raise UsageProblem("--s3-kms-key must be a KMS key ARN or alias/NAME")
        staging = Path(tempfile.mkdtemp(prefix="rdsaudit-staging-"))
        return Outputs(names, staging, exit_zero, quiet, baseline, fail_on_new, history,
                       s3=location, s3_kms_key=s3_kms_key, session=session,
                       evidence=evidence_mode, color=not no_color)
    if s3_kms_key is not None:
        raise UsageProblem("--s3-kms-key needs --output-dir s3://…")
    return Outputs(names, Path(output_dir) if output_dir else None, exit_zero, quiet,
                   baseline, fail_on_new, history, evidence=evidence_mode, color=not no_color)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rdsaudit")
def cli() -> None:
    """Audit Amazon RDS encryption at rest. Read-only: rdsaudit never changes an account."""


SCAN_EPILOG = """\b
Exit codes:
  0    compliant: no unwaived failure at or above --fail-on
  1    at least one unwaived failure at or above --fail-on (default low)
  2    usage, configuration or credential error: nothing was scanned
  3    the scan was incomplete (collection errors) and nothing else failed
  4    internal error (a bug; RDSAUDIT_DEBUG=1 prints the traceback)
  130  interrupted
  --exit-zero exits 0 once the reports are written, whatever the gate says.

\b
Environment:
  AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, ...  the standard AWS credential chain
  AWS_ENDPOINT_URL   send AWS calls to an emulator (like --endpoint-url)
  NO_COLOR           no colour in the terminal table (like --no-color)
  RDSAUDIT_NOTIFY    --notify targets, space-separated (a webhook token stays off argv)
  RDSAUDIT_DEBUG     print the traceback of an internal error

\b
Examples:
  rdsaudit scan --region eu-west-1
      one region, the verdict and the fix-first list in the terminal
  rdsaudit scan --organization --role-name rdsaudit-read-only \\
      --format json,html,xlsx --output-dir reports --fail-on high
      every account of the Organization, reports for people and machines, gate on high
"""


@cli.command(epilog=SCAN_EPILOG)
@click.option("--profile", help="AWS profile (default: the standard credential chain).")
@click.option("--regions", "--region", "regions", multiple=True, metavar="R[,R…]",
              help="Regions to scan, comma-separated (--region is the same option); 'all' "
                   "(default): every enabled region.")
@click.option("--endpoint-url", metavar="URL",
              help="Send every AWS call to this endpoint (an emulator such as `rdsaudit demo "
                   "--serve`); AWS_ENDPOINT_URL does the same.")
@click.option("--verbose", "-v", is_flag=True,
              help="Log every AWS call (botocore debug) to stderr, credentials redacted.")
@click.option("--accounts", multiple=True, metavar="ID[,ID…]",
              help="Scan these accounts through --role-name / --role-arn.")
@click.option("--organization", is_flag=True,
              help="Scan every active account of the AWS Organization (run from the "
                   "management or a delegated administrator account).")
@click.option("--accounts-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Scan the accounts listed in FILE (one 12-digit id a line, # comments), "
                   "like --accounts.")
@click.option("--shard", "shard_text", metavar="I/N",
              help="Scan only shard I of N of the accounts (stable hash of the account id); "
                   "auto/N takes I from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX "
                   "(0-based). The inventory is saved beside the reports for `rdsaudit "
                   "merge`.")
@click.option("--role-name", help="Role to assume in each account (e.g. rdsaudit-read-only).")
@click.option("--role-arn", metavar="TEMPLATE",
              help="Role ARN template with {account_id}, instead of --role-name.")
@click.option("--external-id", help="ExternalId for the role assumption.")
@click.option("--session-duration", type=click.IntRange(900, 43200), default=3600,
              show_default=True, help="Seconds the assumed-role session lasts.")
@click.option("--account-workers", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Accounts scanned at once.")
@click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Attempts per AWS call for retryable errors, the first included; a "
                   "throttled call keeps trying (up to 60 s) while its operation is getting "
                   "through, so a rate limit slows the scan instead of failing it.")
@click.option("--workers", type=click.IntRange(1, 64), default=16, show_default=True,
              help="AWS calls in flight at most, per account.")
@click.option("--timeout", type=click.FloatRange(1, 7 * 86400), default=3600,
              show_default=True, metavar="SECONDS",
              help="Seconds the whole scan may take; then it stops calling AWS, records what "
                   "it could not read as errors and writes the reports (exit 3).")
@click.option("--save-inventory", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save what was collected, for `rdsaudit evaluate`.")
@click.option("--security-hub", is_flag=True,
              help="Import the failing findings (ASFF) into AWS Security Hub in each "
                   "finding's own account and region, and archive those imported earlier "
                   "that now pass. rdsaudit's one write to Security Hub: see `rdsaudit "
                   "iam-policy --security-hub`.")
@click.option("--history", "history_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Scan history database (default: the user data directory).")
@click.option("--no-history", is_flag=True, help="Do not record this scan in the history.")
@_with_notify_options
@_with_output_options
def scan(profile: str | None, regions: tuple[str, ...], accounts: tuple[str, ...],
         accounts_file: Path | None, shard_text: str | None,
         organization: bool, role_name: str | None, role_arn: str | None,
         external_id: str | None, session_duration: int, account_workers: int,
         max_attempts: int, workers: int, timeout: float, save_inventory: Path | None,
         security_hub: bool,
         history_path: Path | None, no_history: bool, formats: tuple[str, ...],
         output_dir: str | None, s3_kms_key: str | None, fail_on: str | None,
         exit_zero: bool, config: Path | None, target_keys: tuple[str, ...],
         baseline: str | None, fail_on_new: bool, quiet: bool, evidence: str, no_color: bool,
         endpoint_url: str | None, verbose: bool, notify: tuple[str, ...],
         notify_on: str | None, notify_timeout: float) -> int:
    """Scan AWS accounts' RDS estates in every enabled region."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    from rdsaudit.collect import (
        AccountsRequest,
        ScanRequest,
        caller_account,
        home_region,
    )
    from rdsaudit.collect import scan as collect

    history = None
    if not no_history:
        from rdsaudit.history import default_path

        history = history_path or default_path()
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise UsageProblem(f"--endpoint-url {endpoint_url!r} is not an http(s) URL")
    if verbose:
        from rdsaudit.verbose import log_aws_calls

        log_aws_calls()
    policy = _policy(config, fail_on, target_keys)
    notify_targets = _notify_targets(notify, notify_on)
    wanted = _split(regions) or list(policy.regions) or None
    account_ids = _split(accounts)
    bad = [a for a in account_ids if not (a.isdigit() and len(a) == 12)]
    if bad:
        raise UsageProblem(f"--accounts: {', '.join(bad)} is not a 12-digit account id")
    if accounts_file is not None:
        account_ids += _accounts_from_file(accounts_file)
    if (account_ids or organization) and not (role_name or role_arn):
        raise UsageProblem("--accounts, --accounts-file and --organization need --role-name "
                           "or --role-arn")
    if role_arn and "{account_id}" not in role_arn:
        raise UsageProblem("--role-arn must contain {account_id}")
    if role_arn:
        try:
            role_arn.format(account_id="123456789012")
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise UsageProblem(f"--role-arn {role_arn!r}: only {{account_id}} may be "
                               f"replaced ({type(exc).__name__}: {exc})") from None
    shard = _shard(shard_text, bool(account_ids or organization), output_dir, save_inventory)
    if shard is not None and output_dir is not None:
        # Array engines give every worker the same arguments: {shard} names its own part.
        output_dir = output_dir.replace("{shard}", str(shard.index))
    request_accounts = AccountsRequest(tuple(account_ids), organization, role_name, role_arn,
                                       external_id, session_duration, account_workers, shard)
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound as exc:
        raise UsageProblem(str(exc)) from None
    except BotoCoreError as exc:
        raise UsageProblem(f"cannot set up AWS session: {exc}") from None
    out = _outputs(formats, output_dir, exit_zero, quiet, baseline, fail_on_new, history,
                   s3_kms_key=s3_kms_key, session=session, evidence=evidence,
                   no_color=no_color)
    out = replace(out, source=(profile, role_name or role_arn,
                               endpoint_url or os.environ.get("AWS_ENDPOINT_URL")))
    if shard is not None and save_inventory is None and out.output_dir is not None:
        from rdsaudit.merge import INVENTORY_NAME

        save_inventory = out.output_dir / INVENTORY_NAME
    progress = _progress_printer(quiet)
    try:
        inventory = collect(session, ScanRequest(regions=wanted, max_attempts=max_attempts,
                                                 workers=workers, accounts=request_accounts,
                                                 timeout=timeout, endpoint_url=endpoint_url),
                            progress)
    finally:
        _end_progress(progress)
    if security_hub:
        from rdsaudit.arns import partition_of_region
        from rdsaudit.collect.accounts import AccountSessions
        from rdsaudit.collect.clients import CallCounter

        home = home_region(session, wanted)
        caller = caller_account(session, home, None, CallCounter())
        sessions = AccountSessions(session, request_accounts, caller,
                                   partition_of_region(home), home, None)
        out = replace(out, deliveries=(*out.deliveries,
                                       _security_hub_delivery(sessions, quiet)))
    out = _with_notify(out, notify_targets, notify_on, notify_timeout)
    return _judge_and_report(inventory, policy, out, save_inventory)


Delivery = Callable[["ReportDocument"], list[CollectionError]]


def _security_hub_delivery(sessions: Any, quiet: bool) -> Delivery:
    def deliver(doc: ReportDocument) -> list[CollectionError]:
        from rdsaudit.deliver.securityhub import SecurityHubSender

        delivery = SecurityHubSender(sessions).send(doc)
        if not quiet:
            say(f"rdsaudit: Security Hub: {delivery.imported} finding(s) imported, "
                f"{delivery.archived} archived, {len(delivery.errors)} failed")
        return delivery.errors

    return deliver


def _accounts_from_file(path: Path) -> list[str]:
    from rdsaudit.userfile import UserFileProblem, read_user_file

    try:
        text = read_user_file(path, "account list", 64 * 1024**2)
    except UserFileProblem as exc:
        raise UsageProblem(f"--accounts-file {exc}") from None
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not (entry.isdigit() and len(entry) == 12):
            raise UsageProblem(f"--accounts-file {path}:{number}: {entry[:40]!r} is not a "
                               "12-digit account id")
        ids.append(entry)
    if not ids:
        raise UsageProblem(f"--accounts-file {path}: no account ids in it")
    return ids


def _shard(text: str | None, multi: bool, output_dir: str | None,
           save_inventory: Path | None) -> Any:
    if text is None:
        return None
    from rdsaudit.shard import parse_shard

    if not multi:
        raise UsageProblem("--shard needs --organization, --accounts or --accounts-file")
    if output_dir is None and save_inventory is None:
        raise UsageProblem("--shard needs --output-dir (or --save-inventory): the merge "
                           "reads the shard's inventory")
    return parse_shard(text, os.environ)


def _judge_and_report(inventory: Inventory, policy: Policy, out: Outputs,
                      save_inventory: Path | None = None) -> int:
    from rdsaudit.evaluate import evaluate
    from rdsaudit.serialize import iter_inventory

    if save_inventory is not None:
        try:
            write_atomically(save_inventory, iter_inventory(inventory))
        except OSError as exc:
            raise UsageProblem(f"cannot write {save_inventory}: {exc.strerror or exc}") from None
    return finish(evaluate(inventory, policy, pass_findings=out.evidence == "full"), policy,
                   out)


@cli.command("evaluate")
@click.argument("inventory_file", metavar="INVENTORY_FILE|s3://…")
@_with_output_options
def evaluate_cmd(inventory_file: str, formats: tuple[str, ...], output_dir: str | None,
                 s3_kms_key: str | None, fail_on: str | None, exit_zero: bool,
                 config: Path | None, target_keys: tuple[str, ...], baseline: str | None,
                 fail_on_new: bool, quiet: bool, evidence: str, no_color: bool) -> int:
    """Judge a saved inventory again, offline (no AWS calls but s3:// reads and writes)."""
    from rdsaudit.serialize import load_inventory

    out = _outputs(formats, output_dir, exit_zero, quiet, baseline, fail_on_new,
                   s3_kms_key=s3_kms_key, evidence=evidence, no_color=no_color)
    policy = _policy(config, fail_on, target_keys)
    inventory = load_inventory(existing_input(inventory_file, "evaluate"))
    return _judge_and_report(inventory, policy, out)


@cli.command("merge")
@click.argument("parts", nargs=-1, required=True, metavar="PART…")
@click.option("--shards", "shard_count", type=click.IntRange(1, 10_000), metavar="N",
              help="The scan had N shards: each PART is a run's directory or s3:// prefix "
                   "holding shard-1/ … shard-N/, and every one of them is expected.")
@_with_notify_options
@_with_output_options
def merge_cmd(parts: tuple[str, ...], shard_count: int | None, formats: tuple[str, ...],
              output_dir: str | None,
              s3_kms_key: str | None, fail_on: str | None, exit_zero: bool,
              config: Path | None, target_keys: tuple[str, ...], baseline: str | None,
              fail_on_new: bool, quiet: bool, evidence: str, no_color: bool,
              notify: tuple[str, ...], notify_on: str | None, notify_timeout: float) -> int:
    """Judge the shards of a sharded scan together: one report, one exit code.

    Each PART is a shard's output directory or its inventory file. A shard that is missing
    is recorded as a collection error (exit 3 unless failures give 1).
    """
    from rdsaudit.deliver.s3 import is_s3
    from rdsaudit.merge import INVENTORY_NAME, MergeProblem, Part, merge_inventories
    from rdsaudit.serialize import load_inventory

    out = _outputs(formats, output_dir, exit_zero, quiet, baseline, fail_on_new,
                   s3_kms_key=s3_kms_key, evidence=evidence, no_color=no_color)
    policy = _policy(config, fail_on, target_keys)
    out = _with_notify(out, _notify_targets(notify, notify_on), notify_on, notify_timeout)
    loaded: list[Part] = []
    not_found: list[str] = []
    if shard_count is not None:
        parts = tuple(f"{p.rstrip('/')}/shard-{i}/" for p in parts
                      for i in range(1, shard_count + 1))
    for text in parts:
        if is_s3(text) and not text.endswith(".json"):
            text = text.rstrip("/") + "/" + INVENTORY_NAME  # a shard's output prefix
        found = local_copy(text, "merge")
        path = found if found is not None else Path(os.devnull, "missing")
        if path.is_dir():
            path = path / INVENTORY_NAME
        if not path.exists():
            not_found.append(text)
            continue
        loaded.append(Part(text, load_inventory(path)))
    if not loaded:
        raise UsageProblem(f"merge: none of the parts exists ({', '.join(parts)})")
    try:
        inventory = merge_inventories(loaded, not_found, shard_count)
    except MergeProblem as exc:
        raise UsageProblem(f"merge: {exc}") from None
    return _judge_and_report(inventory, policy, out)


@cli.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("rdsaudit-demo"), show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--serve", is_flag=True,
              help="Keep the emulated estate running (until Ctrl-C) and print the "
                   "AWS_ENDPOINT_URL to export, so every command can be tried on it.")
def demo(output_dir: Path, quiet: bool, serve: bool) -> int:
    """Scan a built-in demo estate on an emulated AWS (moto on 127.0.0.1); no account needed."""
    try:
        from rdsaudit.demo.estate import (
            DEMO_REGIONS,
            demo_environment,
            demo_policy,
            demo_scan_request,
        )
    except ImportError as exc:
        raise UsageProblem(f"the demo needs the demo extra (pip install 'rdsaudit[demo]'): "
                           f"{exc}") from None
    import boto3

    from rdsaudit.collect import scan as collect
    from rdsaudit.report import FORMATS

    if serve:
        return _serve_demo(demo_environment, DEMO_REGIONS)
    with demo_environment() as (fake, _estate):
        # The emulator accepts any credentials; these are not secrets.
        session = boto3.Session(aws_access_key_id="demo",
                                aws_secret_access_key="demo",  # noqa: S106
                                region_name=DEMO_REGIONS[0])
        if not quiet:
            say(f"rdsaudit: demo estate served by an emulator at {fake.endpoint_url}")
        # Both demo accounts, under the demo's config (rdsaudit.demo.estate.DEMO_CONFIG).
        inventory = collect(session, demo_scan_request(fake.endpoint_url),
                            _progress_printer(quiet))
    # The demo gates nothing (exit 0) and keeps no history: it is a demonstration.
    out = Outputs(list(FORMATS), output_dir, exit_zero=True, quiet=quiet)
    code = _judge_and_report(inventory, demo_policy(), out)
    if not quiet:
        say(f"rdsaudit: demo done; open {output_dir / (REPORT_STEM + '.html')}")
    return code


def _serve_demo(environment: Callable[[], Any], regions: Sequence[str]) -> int:
    """Serve the demo estate until interrupted; tell the newcomer how to use it."""
    from rdsaudit.demo.estate import DEMO_ACCOUNTS, DEMO_CONFIG, DEMO_ROLE

    with environment() as (fake, _estate), tempfile.TemporaryDirectory(
            prefix="rdsaudit-demo-") as tmp:
        url = fake.endpoint_url
        # The demo's config, for the scan of both accounts (removed when the demo stops).
        config = Path(tmp) / "rdsaudit-demo.toml"
        config.write_text(DEMO_CONFIG, encoding="utf-8")
        # SIGTERM (a service manager, `kill`) stops it as Ctrl-C does: the emulator shuts
        # down and the temporary config is removed, never left behind in /tmp. Installed
        # before the instructions are printed: whoever reads them may stop it at once.
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        fault = ('{"service": "kms", "action": "DescribeKey", "region": "' + regions[0]
                 + '", "code": "AccessDenied"}')
        click.echo("\n".join([
            f"rdsaudit: the demo estate is served at {url} (Ctrl-C stops it).",
            "In another shell (the emulator accepts any credentials):",
            "",
            f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=demo "
            f"AWS_SECRET_ACCESS_KEY=demo AWS_REGION={regions[0]}",
            f"  rdsaudit scan --region {','.join(regions)} --no-history",
            f"  rdsaudit scan --region {','.join(regions)} --no-history --format html "
            "--output-dir reports",
            "",
            "Make DescribeKey fail (the scan then reports an incomplete result, exit 3 or 1):",
            f"  curl -X POST $AWS_ENDPOINT_URL/_fault -d '{fault}'",
            "Clear every fault:",
            "  curl -X DELETE $AWS_ENDPOINT_URL/_fault",
            "",
            f"Both demo accounts, as `rdsaudit demo` scans them ({DEMO_ACCOUNTS[1]} through "
            "the audit role, under the demo's config):",
            f"  rdsaudit scan --region {','.join(regions)} --accounts {','.join(DEMO_ACCOUNTS)} "
            f"--role-name {DEMO_ROLE} --config {config} --no-history",
        ]))
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        click.echo("rdsaudit: demo stopped", err=True)
    return ExitCode.COMPLIANT


@cli.command("history")
@click.option("--history", "history_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Scan history database (default: the user data directory).")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--prune", type=click.IntRange(0, 36500), metavar="DAYS",
              help="Delete scans older than DAYS days instead of listing.")
@click.option("--json", "as_json", is_flag=True, help="Print the scans as JSON.")
def history_cmd(history_path: Path | None, limit: int, prune: int | None,
                as_json: bool) -> None:
    """List past scans with failures by severity and account, or prune old ones."""
    from rdsaudit.history import default_path, open_history, recent
    from rdsaudit.history import prune as prune_scans

    path = history_path or default_path()
    if not path.exists():
        raise UsageProblem(f"{path}: no scan history yet (scans record it unless --no-history)")
    with open_history(path) as db:
        if prune is not None:
            removed = prune_scans(db, prune)
            say(f"rdsaudit: pruned {removed} scan(s) older than {prune} day(s) "
                       f"from {path}")
            return
        scans = recent(db, limit)
    if as_json:
        click.echo(redact(json.dumps(scans, indent=2)))
        return
    click.echo(f"{'FINISHED':<21} {'ACCOUNTS':>8} {'RESOURCES':>9} {'FAIL':>5} {'CRIT':>5} "
               f"{'HIGH':>5} {'MED':>5} {'LOW':>5} {'INFO':>5} {'ERR':>4}  EXIT  BY ACCOUNT")
    for s in scans:
        sev = s["failures_by_severity"]
        accounts = ", ".join(f"{a}:{n}" for a, n in s["failures_by_account"].items())
        click.echo(f"{s['finished_at']:<21} {len(s['accounts']):>8} {s['resources']:>9} "
                   f"{s['fail']:>5} {sev['critical']:>5} {sev['high']:>5} {sev['medium']:>5} "
                   f"{sev['low']:>5} {sev['info']:>5} {s['errors']:>4}  {s['exit_code']:>4}  "
                   f"{accounts}")


@cli.command()
@click.argument("report", metavar="REPORT.json|s3://…")
@click.option("--resource", "resources", multiple=True, metavar="ID|ARN",
              help="Only the findings of this resource (repeatable).")
@click.option("--account", metavar="ID",
              help="The account whose runbook to write (needed when the report has several).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the runbook here (default: stdout).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one runbook per account: DIR/runbook-ACCOUNT.sh.")
@click.option("--target-key", "target_keys", multiple=True, metavar="[ACCOUNT=]KEY_ARN",
              help="Re-plan with this KMS key, as scan --target-key (repeatable).")
@click.option("--strategy", type=click.Choice(["snapshot", "blue-green"]),
              help="Re-plan with this strategy (default: the report's plans, snapshot).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Re-plan with this TOML config's key policy and target_keys.")
def plan(report: str, resources: tuple[str, ...], account: str | None, output: Path | None,
         output_dir: Path | None, target_keys: tuple[str, ...], strategy: str | None,
         config: Path | None) -> None:
    """Write reviewed remediation runbooks (shell scripts, one per account) from a JSON
    report; with --target-key, --strategy or --config, re-plan from its resources first."""
    from rdsaudit.plan.replan import replan, replannable
    from rdsaudit.plan.runbook import (
        ReportProblem,
        blocked,
        load_report,
        render_runbook,
        runbook_accounts,
        unmatched_resources,
    )

    if output is not None and output_dir is not None:
        raise UsageProblem("--output and --output-dir cannot be combined")
    source = report.rsplit("/", 1)[-1]
    doc = load_report(existing_input(report, "plan"))
    if target_keys or strategy or config:
        if not replannable(doc):
            raise ReportProblem(f"{source} has no resources[].config (a version 1 report, "
                                "or older): --target-key, --strategy and --config need "
                                "a rescan; without them plan uses the report's steps")
        doc = replan(doc, _policy(config, None, target_keys), strategy or "snapshot")
    missing = unmatched_resources(doc, resources)
    if missing:
        for name in missing:
            say(f"rdsaudit: warning: --resource {name!r} matches no resource of {source}")
        raise UsageProblem(f"--resource matched nothing for {', '.join(map(repr, missing))}")
    accounts = runbook_accounts(doc, resources)
    for line in blocked(doc, resources):
        say(f"rdsaudit: warning: {line}")
    if account is not None and output_dir is None:
        scripts = {account: render_runbook(doc, resources, source, account, accounts)}
    elif output_dir is not None:
        chosen = [account] if account else accounts
        scripts = {a: render_runbook(doc, resources, source, a, accounts)
                   for a in chosen}
    else:
        scripts = {"": render_runbook(doc, resources, source)}
    files: dict[Path, str | bytes]
    if output_dir is not None:
        files = {output_dir / f"runbook-{a}.sh": text for a, text in scripts.items()}
    elif output is not None:
        files = {output: next(iter(scripts.values()))}
    else:
        click.echo(redact(next(iter(scripts.values()))), nl=False)
        return
    try:
        publish(stage(files))
    except OSError as exc:
        raise UsageProblem(f"cannot write runbooks: {exc.strerror or exc}") from None


@cli.command()
def rules() -> None:
    """Print the rule catalogue: id, severity, what it applies to, title."""
    from rdsaudit.rules import RULES

    rows = [(r.id, r.severity_text, r.applies_to, r.title) for r in RULES.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    click.echo(f"{'RULE':<{widths[0]}}  {'SEVERITY':<{widths[1]}}  "
               f"{'APPLIES TO':<{widths[2]}}  TITLE")
    for row in rows:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                   f"{row[3]}")


@cli.command("iam-policy")
@click.option("--organization", is_flag=True,
              help="Add what the scanning account needs for --organization / --accounts.")
@click.option("--role-name", default="rdsaudit-read-only", show_default=True,
              help="The role --organization scans assume: sts:AssumeRole is granted on it "
                   "alone.")
@click.option("--security-hub", is_flag=True,
              help="Add what --security-hub needs (in every account findings go to).")
@click.option("--output-dir", "s3_output", metavar="s3://BUCKET/PREFIX/",
              help="Add s3:PutObject under this prefix (scan/merge --output-dir s3://…).")
@click.option("--s3-kms-key", metavar="KEY_ARN|alias/NAME",
              help="Add kms:GenerateDataKey (writing) / kms:Decrypt (reading) on this key, "
                   "through S3 only.")
@click.option("--s3-input", "s3_inputs", multiple=True, metavar="s3://BUCKET/KEY",
              help="Add s3:GetObject on this object or prefix and s3:ListBucket on its "
                   "bucket (--baseline, evaluate, plan, merge from S3). Repeatable.")
@click.option("--notify", multiple=True, metavar="sns:TOPIC_ARN",
              help="Add sns:Publish on this topic (a webhook URL needs nothing). Repeatable.")
def iam_policy(organization: bool, role_name: str, security_hub: bool,
               s3_output: str | None, s3_kms_key: str | None, s3_inputs: tuple[str, ...],
               notify: tuple[str, ...]) -> None:
    """Print the least-privilege, read-only IAM policy a scan needs; each opt-in write is
    added only with its flag."""
    from rdsaudit.collect.accounts import MULTI_ACCOUNT_ACTIONS
    from rdsaudit.collect.specs import required_actions

    statements: list[dict[str, Any]] = [{
        "Sid": "RdsauditReadOnly", "Effect": "Allow", "Action": required_actions(),
        "Resource": "*"}]
    if organization:
        # ListAccounts has no resource-level permissions; AssumeRole is granted on the
        # audit role of every account and nothing else.
        listing = [a for a in MULTI_ACCOUNT_ACTIONS if a != "sts:AssumeRole"]
        statements.append({"Sid": "RdsauditAccounts", "Effect": "Allow",
                           "Action": listing, "Resource": "*"})
        statements.append({"Sid": "RdsauditAssumeAuditRole", "Effect": "Allow",
                           "Action": ["sts:AssumeRole"],
                           "Resource": f"arn:aws:iam::*:role/{role_name}"})
    if security_hub:
        from rdsaudit.deliver.securityhub import IAM_STATEMENTS

        statements += IAM_STATEMENTS
    statements += _opt_in_statements(s3_output, s3_kms_key, s3_inputs, notify)
    click.echo(json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2))


def _opt_in_statements(output: str | None, kms_key: str | None, inputs: tuple[str, ...],
                       notify: tuple[str, ...]) -> list[dict[str, Any]]:
    from rdsaudit.deliver import notify as notifying
    from rdsaudit.deliver import s3
    from rdsaudit.deliver.notify import NotifyProblem

    try:
        where = s3.parse_s3(output) if output is not None else None
        read = [s3.parse_s3(i) for i in inputs]
        targets = [notifying.parse_target(t) for t in notify]
    except (s3.S3Problem, NotifyProblem) as exc:
        raise UsageProblem(f"iam-policy: {exc}") from None
    if kms_key is not None and ((where is None and not read)
                                or not kms_key.startswith(("arn:", "alias/"))):
        raise UsageProblem("iam-policy --s3-kms-key takes a KMS key ARN or alias/NAME, with "
                           "--output-dir s3://… or --s3-input s3://…")
    return s3.iam_statements(where, read, kms_key) + notifying.iam_statements(targets)


def _fail(message: str, code: int) -> NoReturn:
    say(f"rdsaudit: error: {message}")
    sys.exit(code)


def _guard_stderr() -> None:
    """Whatever else reaches stderr (log records, a worker thread's traceback) is redacted
    and made terminal-safe too."""
    import logging

    from rdsaudit.redact import RedactingFilter

    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("rdsaudit: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
        root.setLevel(logging.WARNING)

    def thread_crash(args: threading.ExceptHookArgs) -> None:
        say("".join(traceback.format_exception(args.exc_type, args.exc_value,
                                               args.exc_traceback)))

    threading.excepthook = thread_crash


def main(argv: Sequence[str] | None = None) -> NoReturn:
    _guard_stderr()
    # A large estate is millions of small acyclic objects (records, report entries): at the
    # default thresholds the cyclic collector walks the growing heap over and over (a third
    # of a 100k-resource evaluate). Young objects are collected 140x less often.
    gc.set_threshold(100_000, 10, 10)
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="rdsaudit",
                      standalone_mode=False)
    except click.UsageError as exc:
        if exc.ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":
            # `rdsaudit` alone: the help as it is meant to be read, then exit 2.
            click.echo(exc.ctx.get_help(), err=True)
            sys.exit(ExitCode.USAGE)
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _fail(" ".join(exc.format_message().split()) + hint, ExitCode.USAGE)
    except UsageProblem as exc:
        # Every input error (rdsaudit.errors), wherever it was found: one line, exit 2.
        _fail(" ".join(str(exc).split()), ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        # Reports are written by rename, so nothing half-written exists. Exit now rather
        # than wait for AWS calls still in flight in worker threads.
        say("rdsaudit: error: interrupted")
        sys.stderr.flush()
        os._exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, exit 4
        if os.environ.get("RDSAUDIT_DEBUG"):
            say(traceback.format_exc())
        _fail(f"internal error: {type(exc).__name__}: {exc} (set RDSAUDIT_DEBUG=1 for the "
              "traceback)", ExitCode.INTERNAL)
    sys.exit(rv if isinstance(rv, int) else 0)
