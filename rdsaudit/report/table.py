"""The terminal view (`--format table`): the verdict, the deadlines, the fix-first actions
and the failures as an aligned table, in the terminal's width.

Every value comes from AWS and may hold control characters: they are shown escaped, so a
resource name cannot move the cursor or recolour the terminal. Colour is only added when
the caller says the terminal allows it (`NO_COLOR`, `--no-color`, not a TTY: none).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from rdsaudit.redact import for_terminal

SEVERITY_COLOURS = {"critical": "1;31", "high": "31", "medium": "33", "low": "34",
                    "info": "2"}
VERDICT_COLOURS = {0: "1;32", 1: "1;31", 3: "1;33"}
MIN_WIDTH, MAX_WIDTH = 60, 160


def render_table(doc: Mapping[str, Any], color: bool = False, width: int | None = None) -> str:
    width = max(MIN_WIDTH, min(MAX_WIDTH, width or shutil.get_terminal_size((100, 24)).columns))
    out = _Writer(color, width)
    scan = doc.get("scan") or {}
    summary = doc.get("summary") or {}
    counts = summary.get("findings") or {}
    out.line(f"rdsaudit · scan finished {_safe(scan.get('finished_at'))} · "
             f"{len(scan.get('accounts') or [])} account(s) · "
             f"{len(scan.get('regions') or [])} region(s) · "
             f"{summary.get('resources_total', 0)} resources")
    code = summary.get("exit_code")
    out.line(out.paint(_safe(summary.get("verdict")),
                       VERDICT_COLOURS.get(code if isinstance(code, int) else -1, "1")))
    actions: Sequence[Mapping[str, Any]] = summary.get("actions") or []
    deadlines = [a for a in actions if a.get("deadline")]
    if deadlines:
        out.heading("Deadlines")
        for a in deadlines:
            days = a.get("days_left")
            when = f"{days} day{'s' if days != 1 else ''}" if isinstance(days, int) else "due"
            out.wrapped(f"  {out.paint(when.rjust(8), '1;31')}  ", _safe(a.get("title")), 12)
    if actions:
        out.heading(f"Fix first ({len(actions)} action{'s' if len(actions) != 1 else ''})")
        for a in actions:
            sev = str(a.get("severity"))
            prefix = f"  {str(a.get('urgency')).rjust(3)}  {out.sev(sev)}  "
            n = len(a.get("finding_ids") or [])
            out.wrapped(prefix, f"{_safe(a.get('title'))} ({n} finding{'s' if n != 1 else ''},"
                                f" {_safe(a.get('region'))})", 2 + 3 + 2 + 8 + 2)
    findings = doc.get("findings") or []
    for status, title in (("fail", "Failures"), ("waived", "Waived")):
        rows = [f for f in findings if f.get("status") == status]
        if rows:
            out.heading(f"{title} ({len(rows)})")
            _findings(out, rows, status)
    passes = counts.get("pass", 0)
    if passes:
        by_rule = summary.get("passes_by_rule") or {}
        out.heading(f"Passes ({passes} checks, per rule)")
        out.wrapped("  ", ", ".join(f"{_safe(r)} {n}" for r, n in by_rule.items()), 2)
    errors = doc.get("errors") or []
    if errors:
        out.heading(f"Collection errors ({len(errors)}): the scan is incomplete")
        for e in errors:
            out.wrapped("  ", f"{_safe(e.get('account_id'))} {_safe(e.get('region'))} "
                              f"{_safe(e.get('service'))}:{_safe(e.get('operation'))}: "
                              f"{_safe(e.get('code'))}: {_safe(e.get('message'))}", 4)
    return out.text()


def _findings(out: _Writer, rows: Sequence[Mapping[str, Any]], status: str) -> None:
    def res(f: Mapping[str, Any]) -> Mapping[str, Any]:
        return f.get("resource") or {}

    rule_w = max(len("RULE"), *(len(_safe(f.get("rule_id"))) for f in rows))
    region_w = max(len("REGION"), *(len(_safe(res(f).get("region"))) for f in rows))
    out.line(out.paint(f"  {'SEVERITY':<8}  {'RULE':<{rule_w}}  {'REGION':<{region_w}}  "
                       "RESOURCE", "1"))
    indent = 2 + 8 + 2
    for f in rows:
        r = res(f)
        sev = str(f.get("severity"))
        # A severity badge belongs to a failure; a waived one shows it plain.
        shown = out.sev(sev) if status == "fail" else sev.ljust(8)
        out.line(f"  {shown}  {_safe(f.get('rule_id')):<{rule_w}}  "
                 f"{_safe(r.get('region')):<{region_w}}  {_safe(r.get('id'))} "
                 f"({_safe(r.get('type'))}, {_safe(r.get('account_id'))})")
        out.wrapped(" " * indent, _safe(f.get("message")), indent)
        waiver = f.get("waiver")
        if status == "waived" and waiver:
            out.wrapped(" " * indent, f"waived: {_safe(waiver.get('reason'))} (owner "
                                      f"{_safe(waiver.get('owner'))}, expires "
                                      f"{_safe(waiver.get('expires'))})", indent)
        out.line(" " * indent + out.paint(_safe(r.get("arn")), "2"))


class _Writer:
    def __init__(self, color: bool, width: int) -> None:
        self.color = color
        self.width = width
        self.lines: list[str] = []

    def paint(self, text: str, sgr: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.color else text

    def sev(self, severity: str) -> str:
        return self.paint(severity.ljust(8), SEVERITY_COLOURS.get(severity, "0"))

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def heading(self, text: str) -> None:
        self.lines.append("")
        self.lines.append(self.paint(text, "1;4"))

    def wrapped(self, prefix: str, text: str, indent: int) -> None:
        """`prefix` then `text` wrapped to the width, continuation lines at `indent`.
        Long words (ARNs, commands) are never broken: a full name stays copyable."""
        lines = textwrap.wrap(text, max(20, self.width - indent), break_long_words=False,
                              break_on_hyphens=False) or [""]
        self.lines.append(prefix + lines[0])
        self.lines.extend(" " * indent + rest for rest in lines[1:])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _safe(value: Any) -> str:
    """Text a terminal shows as is: control and invisible format characters escaped (the one
    place that knows them: rdsaudit.redact.for_terminal); a line break becomes a space."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return for_terminal(text.replace("\n", " ").replace("\t", " "))
