"""What a judged result becomes: reports rendered and published, history, deliveries, the
summary line and the exit code.

Every file is staged under a temporary name and renamed into place together with the rest
(`stage`, `publish`): an interruption leaves the previous set or the complete new one, never
a half-written report. Every byte passes `redact` on its way out."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rdsaudit.errors import UsageProblem
from rdsaudit.gate import ExitCode, gate
from rdsaudit.history import scan_label
from rdsaudit.inputs import existing_input
from rdsaudit.model import CollectionError, Result, Severity, Status
from rdsaudit.policy import Policy
from rdsaudit.redact import redact, redact_data, say

if TYPE_CHECKING:
    from rdsaudit.report.contract import Evidence, ReportDocument


REPORT_STEM = "rdsaudit-report"


def write_atomically(path: Path, text: str | Iterable[str]) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    publish(stage({path: text}))


def stage(files: Mapping[Path, str | bytes | Iterable[str]]) -> list[tuple[Path, Path]]:
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
                    for chunk in (lines_of(text) if isinstance(text, str) else text):
                        handle.write(redact(chunk))
    except BaseException:
        for staged_path, _ in staged:
            staged_path.unlink(missing_ok=True)
        raise
    return staged


def lines_of(text: str, size: int = 1 << 20) -> Iterator[str]:
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


def publish(staged: list[tuple[Path, Path]]) -> None:
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


def emit_reports(doc: ReportDocument, out: Outputs) -> list[Path]:
    from rdsaudit.report import FORMATS

    if out.output_dir is None:
        name = out.formats[0]
        if name == "table":
            from rdsaudit.report.table import render_table

            click.echo(redact(render_table(doc, color=color_allowed(out, sys.stdout))),
                       nl=False)
            return []
        fmt = FORMATS[name]
        if fmt.stream is not None:
            for chunk in fmt.stream(doc):
                click.echo(redact(chunk), nl=False)
            return []
        rendered = fmt.render(doc)
        if isinstance(rendered, bytes):
            raise UsageProblem(f"--format {name} writes a binary file: give --output-dir")
        for piece in lines_of(rendered):
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
            staged += stage({path: fmt.stream(doc) if fmt.stream else fmt.render(doc)})
        publish(staged)
    except BaseException as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageProblem(f"cannot write reports to {out.output_dir}: "
                               f"{exc.strerror or exc}") from None
        raise
    return [path for _, path in staged]


def color_allowed(out: Outputs, stream: Any) -> bool:
    """Colour only on a terminal, never with --no-color or NO_COLOR (https://no-color.org)."""
    if not out.color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def summary_line(result: Result, code: ExitCode, exit_zero: bool = False,
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


def finish(result: Result, policy: Policy, out: Outputs) -> int:
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
    written = emit_reports(doc, out)
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
        written = emit_reports(doc, out)
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
        say(summary_line(result, code, out.exit_zero, len(failed)))
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
        emit_reports(with_delivery_errors(doc, failed), out)
        say(f"rdsaudit: error: {len(failed)} report file(s) not uploaded to {out.s3}; "
            f"the reports are in {out.output_dir}")
        return list(files), failed
    shutil.rmtree(out.output_dir, ignore_errors=True)
    return [out.s3.child(p.name) for p in files], []


def _with_baseline(result: Result, text: str) -> Result:
    from rdsaudit.baseline import apply_baseline
    from rdsaudit.report.reading import ReportProblem, load_report

    path = existing_input(text, "--baseline")
    try:
        previous = load_report(path)
    except ReportProblem as exc:
        raise UsageProblem(f"--baseline: {exc}") from None
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
