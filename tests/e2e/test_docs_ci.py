"""docs/ci.md: its jobs are valid YAML and every rdsaudit command in them parses as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from rdsaudit.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def _blocks() -> list[Any]:
    text = DOC.read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def _commands(node: Any) -> list[str]:
    """Every rdsaudit command line in a job, continuation lines joined."""
    if isinstance(node, dict):
        return [c for v in node.values() for c in _commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _commands(v)]
    if isinstance(node, str):
        joined = node.replace("\\\n", " ")
        return [line.strip() for line in joined.splitlines()
                if line.strip().startswith("rdsaudit ")]
    return []


def test_ci_doc_has_a_github_and_a_gitlab_job_that_parse() -> None:
    github, gitlab = _blocks()
    steps = github["jobs"]["audit"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert github["permissions"]["security-events"] == "write"
    assert gitlab["rdsaudit"]["artifacts"]["reports"]["junit"] == "reports/rdsaudit-report.xml"
    commands = _commands(github) + _commands(gitlab)
    assert len(commands) == 2
    for line in commands:
        args = shlex.split(line)[1:]
        command = cli.commands[args[0]]
        ctx = command.make_context(args[0], args[1:])  # raises on an unknown option
        formats = ",".join(ctx.params["formats"]).split(",")
        assert ctx.params["output_dir"] is not None and ctx.params["fail_on"] == "high"
        assert "sarif" in formats or "junit" in formats


def test_the_sarif_and_junit_paths_of_the_doc_are_what_scan_writes() -> None:
    from rdsaudit.outputs import REPORT_STEM
    from rdsaudit.report import FORMATS

    text = DOC.read_text(encoding="utf-8")
    for name in ("sarif", "junit"):
        assert f"reports/{REPORT_STEM}.{FORMATS[name].extension}" in text
