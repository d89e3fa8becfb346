"""The command line: it only wires collect, evaluate, report and gate together."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rdsaudit import __version__
from rdsaudit.arns import Arn
from rdsaudit.gate import ExitCode, gate
from rdsaudit.history import scan_label
from rdsaudit.model import SEVERITY_LABELS, CollectionError, Inventory, Result, Severity, Status
from rdsaudit.policy import ConfigProblem, Policy, load_policy
from rdsaudit.redact import redact, redact_data, say

if TYPE_CHECKING:
    from rdsaudit.report.contract import Evidence, ReportDocument

SEVERITIES = SEVERITY_LABELS
REPORT_STEM = "rdsaudit-report"


class InputProblem(click.ClickException):
    """Bad input the user can fix: one line on stderr, exit 2."""

    exit_code = ExitCode.USAGE


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _formats(values: Sequence[str], default: str = "json") -> list[str]:
    from rdsaudit.report import FORMATS

    names = _split(values) or [default]
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
    return replace(policy, target_keys=target_key_map(policy.target_keys, targets))


def target_key_map(configured: Mapping[str, str], targets: Sequence[str]) -> dict[str, str]:
    """--target-key ARN (the key's own account and region: `ACCOUNT:REGION`) and
    --target-key ACCOUNT=ARN (that key for ACCOUNT's resources in the key's region)."""
    keys = dict(configured)
    for target in targets:
        account, _, key = target.rpartition("=") if "=" in target else ("", "", target)
        arn = Arn.parse(key)
        if arn is None or arn.service != "kms" or not arn.region or not arn.account:
            raise InputProblem(f"--target-key {target!r} is not a KMS key ARN "
                               "(or ACCOUNT=ARN)")
        if account and not (len(account) == 12 and account.isdigit()):
            raise InputProblem(f"--target-key {target!r}: {account!r} is not a 12-digit "
                               "account id")
        keys[f"{account or arn.account}:{arn.region}"] = key
    return keys


def _write_atomically(path: Path, text: str | Iterable[str]) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    _publish(_stage({path: text}))


def _stage(files: Mapping[Path, str | bytes | Iterable[str]]) -> list[tuple[Path, Path]]:
    """Write every file to a temporary name first; nothing is visible yet. A file given as
    an iterable of text chunks (a streaming renderer: whole lines or items, so no secret is
    split between two chunks) is written chunk by chunk, never held whole."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append((Path(tmp_name), path))
            # Reports and inventories are for sharing (CI artifacts, auditors) and hold no
            # secret (redacted below): they take the user's umask, as any file they write,
            # not mkstemp's 0600. The history database is private (rdsaudit.history).
            os.fchmod(fd, 0o666 & ~_umask())
            if isinstance(text, bytes):
                # A binary report (xlsx) is rendered from the redacted document.
                with os.fdopen(fd, "wb") as binary:
                    binary.write(text)
            else:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                    # Every file rdsaudit writes passes through redact, chunk by chunk.
                    for chunk in (_lines_of(text) if isinstance(text, str) else text):
                        handle.write(redact(chunk))
    except BaseException:
        for staged_path, _ in staged:
            staged_path.unlink(missing_ok=True)
        raise
    return staged


def _lines_of(text: str, size: int = 1 << 20) -> Iterator[str]:
    """A rendered report in pieces of about `size` characters, each ending a line: redaction
    works on a piece at a time (no secret spans a line), never on a copy of the whole."""
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = text.find("\n", min(start + size, end_of_text))
        end = end_of_text if end == -1 else end + 1
        yield text[start:end]
        start = end


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _publish(staged: list[tuple[Path, Path]]) -> None:
    """Rename every staged file into place. Ctrl-C is held until all renames are done, so
    the set is either all previous or all new; staged files never outlive this call."""
    held: list[int] = []
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, _: held.append(signum)) \
        if in_main else None
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


@dataclass(frozen=True)
class Outputs:
    """What to write and how to gate: the options `scan`, `evaluate` and `demo` share."""

    formats: list[str]
    output_dir: Path | None
    exit_zero: bool
    quiet: bool
    baseline: str | None = None  # a path or s3://…
    fail_on_new: bool = False
    history: Path | None = None  # None: do not record
    # (profile, role, endpoint) of a scan: with its accounts and regions, the history label.
    source: tuple[str | None, str | None, str | None] = (None, None, None)
    # Opt-in deliveries after the local reports are written (Security Hub, S3, notify):
    # each takes the document and returns what failed, as errors of the report.
    deliveries: tuple[Callable[[ReportDocument], list[CollectionError]], ...] = ()
    # --output-dir s3://…: `output_dir` is then a local staging directory, uploaded last.
    s3: Any = None  # rdsaudit.deliver.s3.S3Location
    s3_kms_key: str | None = None
    session: Any = None  # boto3.Session for S3 reads and writes (default chain if None)

    def aws(self) -> Any:
        import boto3

        return self.session or boto3.Session()
    evidence: Evidence = "failures"
    color: bool = True  # --no-color turns it off; NO_COLOR and a non-terminal do too


def _emit_reports(doc: ReportDocument, out: Outputs) -> list[Path]:
    from rdsaudit.report import FORMATS

    if out.output_dir is None:
        name = out.formats[0]
        if name == "table":
            from rdsaudit.report.table import render_table

            click.echo(redact(render_table(doc, color=_color_allowed(out, sys.stdout))),
                       nl=False)
            return []
        fmt = FORMATS[name]
        if fmt.stream is not None:
            for chunk in fmt.stream(doc):
                click.echo(redact(chunk), nl=False)
            return []
        rendered = fmt.render(doc)
        if isinstance(rendered, bytes):
            raise InputProblem(f"--format {name} writes a binary file: give --output-dir")
        for piece in _lines_of(rendered):
            click.echo(redact(piece), nl=False)
        return []
    staged: list[tuple[Path, Path]] = []
    try:
        # One format at a time is rendered and staged (a large estate's reports are hundreds
        # of megabytes each); all are renamed into place together at the end, so an
        # interruption leaves either the previous reports or the complete new set.
        for name in out.formats:
            fmt = FORMATS[name]
            path = out.output_dir / f"{REPORT_STEM}.{fmt.extension}"
            staged += _stage({path: fmt.stream(doc) if fmt.stream else fmt.render(doc)})
        _publish(staged)
    except BaseException as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputProblem(f"cannot write reports to {out.output_dir}: "
                               f"{exc.strerror or exc}") from None
        raise
    return [path for _, path in staged]


def _color_allowed(out: Outputs, stream: Any) -> bool:
    """Colour only on a terminal, never with --no-color or NO_COLOR (https://no-color.org)."""
    if not out.color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _summary_line(result: Result, code: ExitCode, exit_zero: bool = False,
                  failed_deliveries: int = 0) -> str:
    inv = result.inventory
    failing = [f for f in result.findings if f.status is Status.FAIL]
    counts = {s: sum(1 for f in failing if f.severity is s) for s in Severity}
    by_sev = ", ".join(f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True)
                       if counts[s])
    parts = [
        f"{len(inv.resources)} resources in {len(inv.scan.regions)} region(s) of "
        f"{len(inv.scan.accounts)} account(s)",
        f"{len(failing)} failing" + (f" ({by_sev})" if by_sev else ""),
        f"{result.pass_count()} passing",
    ]
    if inv.errors:
        parts.append(f"{len(inv.errors)} collection error(s): INCOMPLETE")
    if failed_deliveries:
        parts.append(f"{failed_deliveries} delivery error(s)")
    if inv.scan.skipped_regions:
        parts.append(f"{len(inv.scan.skipped_regions)} region(s) not enabled, skipped")
    calls = sum(n for _, n in inv.scan.api_calls)
    if calls:
        parts.append(f"{calls} API calls")
    # The exit code the process really returns: --exit-zero turns a failing gate into 0.
    real = "exit 0" + (f" (--exit-zero; the gate says {int(code)})" if int(code) else "") \
        if exit_zero else f"exit {int(code)}"
    return "rdsaudit: " + "; ".join(parts) + f"; {real}"


def _finish(result: Result, policy: Policy, out: Outputs) -> int:
    from rdsaudit.report import report_document

    if out.baseline is not None:
        result = _with_baseline(result, out.baseline)
    # Redacted before anything renders it: every format, and the history, see the same.
    # In place: the document is new and held by no one else (a copy of a 100k-resource
    # document's containers is 200 MB).
    doc: ReportDocument = redact_data(report_document(result, policy.fail_on,
                                                      out.fail_on_new, out.evidence),
                                      in_place=True)
    warnings: list[str] = []
    label = ""
    if out.history is not None:
        profile, role, endpoint = out.source
        label = scan_label(profile=profile, role=role, endpoint=endpoint,
                           accounts=list(doc["scan"]["accounts"]),
                           regions=list(doc["scan"]["regions"]))
        # Read before rendering (the HTML draws the trend), written after publishing: the
        # history never costs a scan its reports or its exit code.
        doc["history"] = _read_history(out.history, doc, label, warnings)
    written = _emit_reports(doc, out)
    code = gate(result, policy.fail_on, out.fail_on_new)
    if out.history is not None:
        _write_history(out.history, doc, label, warnings)
    failed: list[CollectionError] = []
    from rdsaudit.deliver import with_delivery_errors

    for deliver in out.deliveries:
        # Each sees what failed before it: the notification (last) tells of a failed import.
        failed += deliver(with_delivery_errors(doc, failed))
    if failed:
        # The reports are already safe on disk; written again, they say what failed.
        doc = with_delivery_errors(doc, failed)
        written = _emit_reports(doc, out)
        if code is ExitCode.COMPLIANT:
            code = ExitCode.INCOMPLETE
    if out.s3 is not None:
        written, upload_failed = _upload(doc, out)
        failed += upload_failed
        if upload_failed and code is ExitCode.COMPLIANT:
            code = ExitCode.INCOMPLETE
    if not out.quiet:
        for warning in warnings:
            say(f"rdsaudit: warning: {warning}")
        for error in (*result.inventory.errors, *failed):
            say(f"rdsaudit: error: {error.account_id} {error.region} {error.service}:"
                       f"{error.operation}: {error.code}: {error.message}")
        for waiver in result.waivers:
            if waiver.state != "active":
                say(f"rdsaudit: warning: {waiver.state} waiver: rule {waiver.rule}, "
                           f"resource {waiver.resource} (owner {waiver.owner}, expires "
                           f"{waiver.expires})")
        if result.baseline is not None:
            b = result.baseline
            say(f"rdsaudit: against {b.source}: {b.new} new, {b.unchanged} unchanged, "
                       f"{len(b.resolved)} resolved failure(s)")
        for path in written:
            say(f"rdsaudit: wrote {path}")
        say(_summary_line(result, code, out.exit_zero, len(failed)))
    return ExitCode.COMPLIANT if out.exit_zero else code


def _upload(doc: ReportDocument, out: Outputs) -> tuple[list[Any], list[CollectionError]]:
    """Upload the staged reports; on failure keep them and say where they are."""
    import shutil

    from rdsaudit.deliver import with_delivery_errors
    from rdsaudit.deliver.s3 import upload

    assert out.output_dir is not None
    files = sorted(p for p in out.output_dir.iterdir() if p.is_file()
                   and not p.name.startswith("."))
    failed = upload(out.aws(), out.s3, files, out.s3_kms_key)
    if failed:
        # The staged copy is complete and stays; its JSON says what did not upload.
        _emit_reports(with_delivery_errors(doc, failed), out)
        say(f"rdsaudit: error: {len(failed)} report file(s) not uploaded to {out.s3}; "
            f"the reports are in {out.output_dir}")
        return list(files), failed
    shutil.rmtree(out.output_dir, ignore_errors=True)
    return [out.s3.child(p.name) for p in files], []


def _local_copy(text: str, what: str) -> Path | None:
    """A path as given, or an s3:// object fetched into a private temporary directory;
    None when the S3 object does not exist."""
    from rdsaudit.deliver.s3 import S3Problem, download, is_s3, parse_s3

    if not is_s3(text):
        return Path(text)
    import boto3

    try:
        return download(boto3.Session(), parse_s3(text), _scratch())
    except S3Problem as exc:
        raise InputProblem(f"{what}: {exc}") from None


def _scratch() -> Path:
    import atexit
    import shutil

    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="rdsaudit-"))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return _SCRATCH


_SCRATCH: Path | None = None


def _existing(text: str, what: str) -> Path:
    path = _local_copy(text, what)
    if path is None:
        raise InputProblem(f"{what}: {text}: no such object")
    return path


def _with_baseline(result: Result, text: str) -> Result:
    from rdsaudit.baseline import apply_baseline
    from rdsaudit.reportfile import ReportProblem, load_report

    path = _existing(text, "--baseline")
    try:
        previous = load_report(path)
    except ReportProblem as exc:
        raise InputProblem(f"--baseline: {exc}") from None
    return apply_baseline(result, previous, text.rsplit("/", 1)[-1])


def _read_history(path: Path, doc: ReportDocument, label: str,
                  warnings: list[str]) -> list[dict[str, Any]]:
    """The earlier scans of the same label (oldest first) and this one, for the trend; a
    history that cannot be read is a warning, and the trend shows this scan alone."""
    from rdsaudit.history import SCHEMA_VERSION, entry_for, open_history, recent, writable

    current = entry_for(doc, label)
    if not path.exists():
        return [current]
    try:
        with open_history(path, create=False) as db:
            if not writable(db):
                warnings.append(f"{path}: history schema is newer than this rdsaudit's "
                                f"({SCHEMA_VERSION}): read only, this scan is not recorded")
            return [*recent(db, 29, label), current]
    except Exception as exc:  # noqa: BLE001 - any history failure is a warning, never fatal
        warnings.append(f"history not read: {_history_problem(exc)}")
        return [current]


def _write_history(path: Path, doc: ReportDocument, label: str,
                   warnings: list[str]) -> None:
    from rdsaudit.history import open_history, record, writable

    try:
        with open_history(path) as db:
            if writable(db):
                record(db, doc, label)
    except Exception as exc:  # noqa: BLE001 - any history failure is a warning, never fatal
        warnings.append(f"scan not recorded in the history: {_history_problem(exc)}")


def _history_problem(exc: Exception) -> str:
    from rdsaudit.history import HistoryProblem

    if isinstance(exc, HistoryProblem):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


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
    from rdsaudit.deliver.notify import NotifyProblem, parse_target

    if on is not None and not values:
        raise InputProblem("--notify-on needs --notify")
    try:
        return [parse_target(v) for v in values]
    except NotifyProblem as exc:
        raise InputProblem(str(exc)) from None


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
        raise InputProblem("several formats need --output-dir")
    if fail_on_new and baseline is None:
        raise InputProblem("--fail-on-new needs --baseline PREVIOUS.json")
    evidence_mode: Evidence = "full" if evidence == "full" else "failures"
    if output_dir is not None and is_s3(output_dir):
        try:
            location = parse_s3(output_dir)
        except S3Problem as exc:
            raise InputProblem(f"--output-dir: {exc}") from None
        if s3_kms_key is not None and not s3_kms_key.startswith(("arn:", "alias/")):
            raise InputProblem("--s3-kms-key must be a KMS key ARN or alias/NAME")
        staging = Path(tempfile.mkdtemp(prefix="rdsaudit-staging-"))
        return Outputs(names, staging, exit_zero, quiet, baseline, fail_on_new, history,
                       s3=location, s3_kms_key=s3_kms_key, session=session,
                       evidence=evidence_mode, color=not no_color)
    if s3_kms_key is not None:
        raise InputProblem("--s3-kms-key needs --output-dir s3://…")
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
        AccountsProblem,
        AccountsRequest,
        CredentialsProblem,
        RegionProblem,
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
        raise InputProblem(f"--endpoint-url {endpoint_url!r} is not an http(s) URL")
    if verbose:
        from rdsaudit.verbose import log_aws_calls

        log_aws_calls()
    policy = _policy(config, fail_on, target_keys)
    notify_targets = _notify_targets(notify, notify_on)
    wanted = _split(regions) or list(policy.regions) or None
    account_ids = _split(accounts)
    bad = [a for a in account_ids if not (a.isdigit() and len(a) == 12)]
    if bad:
        raise InputProblem(f"--accounts: {', '.join(bad)} is not a 12-digit account id")
    if accounts_file is not None:
        account_ids += _accounts_from_file(accounts_file)
    if (account_ids or organization) and not (role_name or role_arn):
        raise InputProblem("--accounts, --accounts-file and --organization need --role-name "
                           "or --role-arn")
    if role_arn and "{account_id}" not in role_arn:
        raise InputProblem("--role-arn must contain {account_id}")
    if role_arn:
        try:
            role_arn.format(account_id="123456789012")
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise InputProblem(f"--role-arn {role_arn!r}: only {{account_id}} may be "
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
        raise InputProblem(str(exc)) from None
    except BotoCoreError as exc:
        raise InputProblem(f"cannot set up AWS session: {exc}") from None
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
    except (CredentialsProblem, RegionProblem, AccountsProblem) as exc:
        raise InputProblem(str(exc)) from None
    finally:
        _end_progress(progress)
    if security_hub:
        from rdsaudit.arns import partition_of_region
        from rdsaudit.collect.accounts import AccountSessions
        from rdsaudit.collect.aws import CallCounter

        home = home_region(session, wanted)
        try:
            caller = caller_account(session, home, None, CallCounter())
        except CredentialsProblem as exc:
            raise InputProblem(str(exc)) from None
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
        raise InputProblem(f"--accounts-file {exc}") from None
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not (entry.isdigit() and len(entry) == 12):
            raise InputProblem(f"--accounts-file {path}:{number}: {entry[:40]!r} is not a "
                               "12-digit account id")
        ids.append(entry)
    if not ids:
        raise InputProblem(f"--accounts-file {path}: no account ids in it")
    return ids


def _shard(text: str | None, multi: bool, output_dir: str | None,
           save_inventory: Path | None) -> Any:
    if text is None:
        return None
    from rdsaudit.shard import ShardProblem, parse_shard

    if not multi:
        raise InputProblem("--shard needs --organization, --accounts or --accounts-file")
    if output_dir is None and save_inventory is None:
        raise InputProblem("--shard needs --output-dir (or --save-inventory): the merge "
                           "reads the shard's inventory")
    try:
        return parse_shard(text, os.environ)
    except ShardProblem as exc:
        raise InputProblem(str(exc)) from None


def _judge_and_report(inventory: Inventory, policy: Policy, out: Outputs,
                      save_inventory: Path | None = None) -> int:
    from rdsaudit.evaluate import evaluate
    from rdsaudit.serialize import iter_inventory

    if save_inventory is not None:
        try:
            _write_atomically(save_inventory, iter_inventory(inventory))
        except OSError as exc:
            raise InputProblem(f"cannot write {save_inventory}: {exc.strerror or exc}") from None
    return _finish(evaluate(inventory, policy, pass_findings=out.evidence == "full"), policy,
                   out)


@cli.command("evaluate")
@click.argument("inventory_file", metavar="INVENTORY_FILE|s3://…")
@_with_output_options
def evaluate_cmd(inventory_file: str, formats: tuple[str, ...], output_dir: str | None,
                 s3_kms_key: str | None, fail_on: str | None, exit_zero: bool,
                 config: Path | None, target_keys: tuple[str, ...], baseline: str | None,
                 fail_on_new: bool, quiet: bool, evidence: str, no_color: bool) -> int:
    """Judge a saved inventory again, offline (no AWS calls but s3:// reads and writes)."""
    from rdsaudit.serialize import InventoryProblem, load_inventory

    out = _outputs(formats, output_dir, exit_zero, quiet, baseline, fail_on_new,
                   s3_kms_key=s3_kms_key, evidence=evidence, no_color=no_color)
    policy = _policy(config, fail_on, target_keys)
    try:
        inventory = load_inventory(_existing(inventory_file, "evaluate"))
    except InventoryProblem as exc:
        raise InputProblem(str(exc)) from None
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
    from rdsaudit.serialize import InventoryProblem, load_inventory

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
        found = _local_copy(text, "merge")
        path = found if found is not None else Path(os.devnull, "missing")
        if path.is_dir():
            path = path / INVENTORY_NAME
        if not path.exists():
            not_found.append(text)
            continue
        try:
            loaded.append(Part(text, load_inventory(path)))
        except InventoryProblem as exc:
            raise InputProblem(str(exc)) from None
    if not loaded:
        raise InputProblem(f"merge: none of the parts exists ({', '.join(parts)})")
    try:
        inventory = merge_inventories(loaded, not_found, shard_count)
    except MergeProblem as exc:
        raise InputProblem(f"merge: {exc}") from None
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
        from rdsaudit.demo_estate import DEMO_REGIONS, demo_environment
    except ImportError as exc:
        raise InputProblem(f"the demo needs the demo extra (pip install 'rdsaudit[demo]'): "
                           f"{exc}") from None
    import boto3

    from rdsaudit.collect import ScanRequest
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
        inventory = collect(session, ScanRequest(regions=list(DEMO_REGIONS),
                                                 endpoint_url=fake.endpoint_url),
                            _progress_printer(quiet))
    # The demo gates nothing (exit 0) and keeps no history: it is a demonstration.
    out = Outputs(list(FORMATS), output_dir, exit_zero=True, quiet=quiet)
    code = _judge_and_report(inventory, Policy(), out)
    if not quiet:
        say(f"rdsaudit: demo done; open {output_dir / (REPORT_STEM + '.html')}")
    return code


def _serve_demo(environment: Callable[[], Any], regions: Sequence[str]) -> int:
    """Serve the demo estate until interrupted; tell the newcomer how to use it."""
    with environment() as (fake, _estate):
        url = fake.endpoint_url
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
        ]))
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
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
    from rdsaudit.history import HistoryProblem, default_path, open_history, recent
    from rdsaudit.history import prune as prune_scans

    path = history_path or default_path()
    if not path.exists():
        raise InputProblem(f"{path}: no scan history yet (scans record it unless --no-history)")
    try:
        with open_history(path) as db:
            if prune is not None:
                removed = prune_scans(db, prune)
                say(f"rdsaudit: pruned {removed} scan(s) older than {prune} day(s) "
                           f"from {path}")
                return
            scans = recent(db, limit)
    except HistoryProblem as exc:
        raise InputProblem(str(exc)) from None
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
    from rdsaudit.replan import replan, replannable
    from rdsaudit.runbook import (
        ReportProblem,
        blocked,
        load_report,
        render_runbook,
        runbook_accounts,
        unmatched_resources,
    )

    if output is not None and output_dir is not None:
        raise InputProblem("--output and --output-dir cannot be combined")
    try:
        source = report.rsplit("/", 1)[-1]
        doc = load_report(_existing(report, "plan"))
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
            raise InputProblem(f"--resource matched nothing for {', '.join(map(repr, missing))}")
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
    except ReportProblem as exc:
        raise InputProblem(str(exc)) from None
    files: dict[Path, str | bytes]
    if output_dir is not None:
        files = {output_dir / f"runbook-{a}.sh": text for a, text in scripts.items()}
    elif output is not None:
        files = {output: next(iter(scripts.values()))}
    else:
        click.echo(redact(next(iter(scripts.values()))), nl=False)
        return
    try:
        _publish(_stage(files))
    except OSError as exc:
        raise InputProblem(f"cannot write runbooks: {exc.strerror or exc}") from None


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
        raise InputProblem(f"iam-policy: {exc}") from None
    if kms_key is not None and ((where is None and not read)
                                or not kms_key.startswith(("arn:", "alias/"))):
        raise InputProblem("iam-policy --s3-kms-key takes a KMS key ARN or alias/NAME, with "
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
