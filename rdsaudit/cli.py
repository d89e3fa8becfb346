"""The command line: it only wires collect, evaluate, report and gate together."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click

from rdsaudit import __version__
from rdsaudit.arns import Arn
from rdsaudit.gate import ExitCode, gate
from rdsaudit.model import Inventory, Result, Severity, Status
from rdsaudit.policy import ConfigProblem, Policy, load_policy

SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]
REPORT_STEM = "rdsaudit-report"


class InputProblem(click.ClickException):
    """Bad input the user can fix: one line on stderr, exit 2."""

    exit_code = ExitCode.USAGE


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _formats(values: Sequence[str]) -> list[str]:
    from rdsaudit.report import FORMATS

    names = _split(values) or ["json"]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise InputProblem(f"unknown format(s) {', '.join(unknown)} "
                           f"(available: {', '.join(FORMATS)})")
    return list(dict.fromkeys(names))


def _policy(config: Path | None, fail_on: str | None, targets: Sequence[str]) -> Policy:
    try:
        policy = load_policy(config) if config else Policy()
    except ConfigProblem as exc:
        raise InputProblem(str(exc)) from None
    if fail_on:
        policy = replace(policy, fail_on=Severity.parse(fail_on))
    keys = dict(policy.target_keys)
    for target in targets:
        arn = Arn.parse(target)
        if arn is None or arn.service != "kms" or not arn.region:
            raise InputProblem(f"--target-key {target!r} is not a KMS key ARN")
        keys[arn.region] = target
    return replace(policy, target_keys=keys)


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    _publish(_stage({path: text}))


def _stage(files: dict[Path, str]) -> list[tuple[Path, Path]]:
    """Write every file to a temporary name first; nothing is visible yet."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append((Path(tmp_name), path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
    except BaseException:
        for staged_path, _ in staged:
            staged_path.unlink(missing_ok=True)
        raise
    return staged


def _publish(staged: list[tuple[Path, Path]]) -> None:
    for tmp, path in staged:
        os.replace(tmp, path)


def _emit_reports(result: Result, policy: Policy, formats: list[str],
                  output_dir: Path | None) -> list[Path]:
    from rdsaudit.report import FORMATS, report_document

    doc = report_document(result, policy.fail_on)
    rendered = {name: FORMATS[name].render(doc) for name in formats}
    if output_dir is None:
        click.echo(rendered[formats[0]], nl=False)
        return []
    files = {output_dir / f"{REPORT_STEM}.{FORMATS[name].extension}": text
             for name, text in rendered.items()}
    try:
        # All formats are staged before any is renamed into place: an interruption leaves
        # either the previous reports or the complete new set, never a mix.
        _publish(_stage(files))
    except OSError as exc:
        raise InputProblem(f"cannot write reports to {output_dir}: "
                           f"{exc.strerror or exc}") from None
    return list(files)


def _summary_line(result: Result, code: ExitCode) -> str:
    inv = result.inventory
    failing = [f for f in result.findings if f.status is Status.FAIL]
    counts = {s: sum(1 for f in failing if f.severity is s) for s in Severity}
    by_sev = ", ".join(f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True)
                       if counts[s])
    parts = [
        f"{len(inv.resources)} resources in {len(inv.scan.regions)} region(s) of "
        f"{len(inv.scan.accounts)} account(s)",
        f"{len(failing)} failing" + (f" ({by_sev})" if by_sev else ""),
        f"{sum(1 for f in result.findings if f.status is Status.PASS)} passing",
    ]
    if inv.errors:
        parts.append(f"{len(inv.errors)} collection error(s): INCOMPLETE")
    if inv.scan.skipped_regions:
        parts.append(f"{len(inv.scan.skipped_regions)} region(s) not enabled, skipped")
    calls = sum(n for _, n in inv.scan.api_calls)
    if calls:
        parts.append(f"{calls} API calls")
    return "rdsaudit: " + "; ".join(parts) + f"; exit {int(code)}"


def _finish(result: Result, policy: Policy, formats: list[str], output_dir: Path | None,
            exit_zero: bool, quiet: bool) -> int:
    written = _emit_reports(result, policy, formats, output_dir)
    code = gate(result, policy.fail_on)
    if not quiet:
        for error in result.inventory.errors:
            click.echo(f"rdsaudit: error: {error.account_id} {error.region} {error.service}:"
                       f"{error.operation}: {error.code}: {error.message}", err=True)
        for path in written:
            click.echo(f"rdsaudit: wrote {path}", err=True)
        click.echo(_summary_line(result, code), err=True)
    return ExitCode.COMPLIANT if exit_zero else code


def _progress_printer(quiet: bool) -> Callable[[Any], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def show(p: Any) -> None:
        click.echo(f"\rrdsaudit: regions {p.regions_done}/{p.regions_total} · "
                   f"{p.resources} resources · {p.errors} errors   ", err=True, nl=False)

    return show


# -- commands -------------------------------------------------------------------------------

_common_output = [
    click.option("--format", "formats", multiple=True, metavar="FMT[,FMT…]",
                 help="Report format(s), comma-separated: json (default)."),
    click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="Write DIR/rdsaudit-report.<ext> per format (default: one format to "
                      "stdout)."),
    click.option("--fail-on", type=click.Choice(SEVERITIES, case_sensitive=False),
                 help="Lowest failing severity that fails the gate (default low)."),
    click.option("--exit-zero", is_flag=True, help="Always exit 0 once the reports are written."),
    click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                 help="TOML config: require_customer_managed_key, min_backup_retention_days, "
                      "regions, fail_on, target_keys."),
    click.option("--target-key", "target_keys", multiple=True, metavar="KEY_ARN",
                 help="KMS key ARN to encrypt with in remediation plans (one per region)."),
    click.option("--quiet", "-q", is_flag=True, help="No progress or summary on stderr."),
]


def _with_output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common_output):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rdsaudit")
def cli() -> None:
    """Audit Amazon RDS encryption at rest. Read-only: rdsaudit never changes an account."""


@cli.command()
@click.option("--profile", help="AWS profile (default: the standard credential chain).")
@click.option("--regions", multiple=True, metavar="R[,R…]",
              help="Regions to scan, comma-separated; 'all' (default): every enabled region.")
@click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Attempts per AWS call, first one included (botocore standard retries).")
@click.option("--workers", type=click.IntRange(1, 64), default=16, show_default=True,
              help="AWS calls in flight at most.")
@click.option("--save-inventory", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save what was collected, for `rdsaudit evaluate`.")
@_with_output_options
def scan(profile: str | None, regions: tuple[str, ...], max_attempts: int, workers: int,
         save_inventory: Path | None, formats: tuple[str, ...], output_dir: Path | None,
         fail_on: str | None, exit_zero: bool, config: Path | None,
         target_keys: tuple[str, ...], quiet: bool) -> int:
    """Scan an AWS account's RDS estate in every enabled region."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    from rdsaudit.collect import CredentialsProblem, RegionProblem, ScanRequest
    from rdsaudit.collect import scan as collect

    names = _formats(formats)
    if len(names) > 1 and output_dir is None:
        raise InputProblem("several formats need --output-dir")
    policy = _policy(config, fail_on, target_keys)
    wanted = _split(regions) or list(policy.regions) or None
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound as exc:
        raise InputProblem(str(exc)) from None
    except BotoCoreError as exc:
        raise InputProblem(f"cannot set up AWS session: {exc}") from None
    progress = _progress_printer(quiet)
    try:
        inventory = collect(session, ScanRequest(regions=wanted, max_attempts=max_attempts,
                                                 workers=workers), progress)
    except (CredentialsProblem, RegionProblem) as exc:
        raise InputProblem(str(exc)) from None
    finally:
        if progress is not None:
            click.echo("", err=True)
    return _judge_and_report(inventory, policy, names, output_dir, exit_zero, quiet,
                             save_inventory)


def _judge_and_report(inventory: Inventory, policy: Policy, names: list[str],
                      output_dir: Path | None, exit_zero: bool, quiet: bool,
                      save_inventory: Path | None = None) -> int:
    from rdsaudit.evaluate import evaluate
    from rdsaudit.serialize import dump_inventory

    if save_inventory is not None:
        try:
            _write_atomically(save_inventory, dump_inventory(inventory))
        except OSError as exc:
            raise InputProblem(f"cannot write {save_inventory}: {exc.strerror or exc}") from None
    result = evaluate(inventory, policy)
    return _finish(result, policy, names, output_dir, exit_zero, quiet)


@cli.command("evaluate")
@click.argument("inventory_file", type=click.Path(dir_okay=False, path_type=Path))
@_with_output_options
def evaluate_cmd(inventory_file: Path, formats: tuple[str, ...], output_dir: Path | None,
                 fail_on: str | None, exit_zero: bool, config: Path | None,
                 target_keys: tuple[str, ...], quiet: bool) -> int:
    """Judge a saved inventory again, offline (no AWS calls)."""
    from rdsaudit.serialize import InventoryProblem, load_inventory

    names = _formats(formats)
    if len(names) > 1 and output_dir is None:
        raise InputProblem("several formats need --output-dir")
    policy = _policy(config, fail_on, target_keys)
    try:
        inventory = load_inventory(inventory_file)
    except InventoryProblem as exc:
        raise InputProblem(str(exc)) from None
    return _judge_and_report(inventory, policy, names, output_dir, exit_zero, quiet)


@cli.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("rdsaudit-demo"), show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def demo(output_dir: Path, quiet: bool) -> int:
    """Scan a built-in demo estate on an emulated AWS (moto on 127.0.0.1); no account needed."""
    try:
        from rdsaudit.demo_estate import DEMO_REGIONS, demo_environment
    except ImportError as exc:
        raise InputProblem(f"the demo needs the demo extra (pip install 'rdsaudit[demo]'): "
                           f"{exc}") from None
    import boto3

    from rdsaudit.collect import ScanRequest
    from rdsaudit.collect import scan as collect
    from rdsaudit.report import FORMATS

    policy = Policy()
    with demo_environment() as (fake, _estate):
        # The emulator accepts any credentials; these are not secrets.
        session = boto3.Session(aws_access_key_id="demo",
                                aws_secret_access_key="demo",  # noqa: S106
                                region_name=DEMO_REGIONS[0])
        if not quiet:
            click.echo(f"rdsaudit: demo estate served by an emulator at {fake.endpoint_url}",
                       err=True)
        inventory = collect(session, ScanRequest(regions=list(DEMO_REGIONS),
                                                 endpoint_url=fake.endpoint_url),
                            _progress_printer(quiet))
    code = _judge_and_report(inventory, policy, list(FORMATS), output_dir, exit_zero=True,
                             quiet=quiet)
    if not quiet:
        click.echo(f"rdsaudit: demo done; open {output_dir / (REPORT_STEM + '.json')}", err=True)
    return code


@cli.command()
@click.argument("report", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resource", "resources", multiple=True, metavar="ID|ARN",
              help="Only the findings of this resource (repeatable).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the runbook here (default: stdout).")
def plan(report: Path, resources: tuple[str, ...], output: Path | None) -> None:
    """Print a reviewed remediation runbook (a shell script) from a JSON report."""
    from rdsaudit.runbook import ReportProblem, load_report, render_runbook

    try:
        doc = load_report(report)
    except ReportProblem as exc:
        raise InputProblem(str(exc)) from None
    script = render_runbook(doc, resources, source=report.name)
    if output is None:
        click.echo(script, nl=False)
        return
    try:
        _write_atomically(output, script)
    except OSError as exc:
        raise InputProblem(f"cannot write {output}: {exc.strerror or exc}") from None


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
def iam_policy() -> None:
    """Print the least-privilege, read-only IAM policy a scan needs."""
    from rdsaudit.collect.specs import required_actions

    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "RdsauditReadOnly", "Effect": "Allow", "Action": required_actions(),
        "Resource": "*"}]}
    click.echo(json.dumps(policy, indent=2))


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"rdsaudit: error: {message}", err=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="rdsaudit",
                      standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _fail(" ".join(exc.format_message().split()) + hint, ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        # Reports are written by rename, so nothing half-written exists. Exit now rather
        # than wait for AWS calls still in flight in worker threads.
        click.echo("rdsaudit: error: interrupted", err=True)
        sys.stderr.flush()
        os._exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, exit 4
        if os.environ.get("RDSAUDIT_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set RDSAUDIT_DEBUG=1 for the "
              "traceback)", ExitCode.INTERNAL)
    sys.exit(rv if isinstance(rv, int) else 0)
