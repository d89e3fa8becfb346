"""The terminal view: `--format table`, the default on a terminal, under a real TTY (`script`).

One `rdsaudit demo --serve` runs for the module; the scans reach it through the
AWS_ENDPOINT_URL it prints, exactly as the newcomer it is for would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rdsaudit.report.table import render_table
from tests.report.test_formats import IMG_XSS, sample_document

RDSAUDIT = str(Path(sys.executable).with_name("rdsaudit"))
SGR = re.compile(r"\x1b\[[0-9;]*m")  # a colour (Select Graphic Rendition) sequence
REGIONS = "us-east-1,eu-west-1"

needs_script = pytest.mark.skipif(shutil.which("script") is None,
                                  reason="util-linux `script` is needed for a real TTY")


@pytest.fixture(scope="module")
def serving() -> Iterator[tuple[dict[str, str], list[str]]]:
    """`rdsaudit demo --serve`: the environment it says to export, and what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NO_COLOR"))}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    proc = subprocess.Popen([RDSAUDIT, "demo", "--serve"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "AWS_ENDPOINT_URL" not in exports:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("export "):
            exports = dict(part.split("=", 1) for part in line.split()[1:])
    assert "AWS_ENDPOINT_URL" in exports, "".join(lines)
    # The rest of the instructions, down to the scan of both demo accounts (the last).
    while len(lines) < 40 and "--accounts" not in lines[-1]:
        lines.append(proc.stdout.readline())
    assert any("curl -X POST $AWS_ENDPOINT_URL/_fault" in line for line in lines)
    yield {**env, **exports}, lines
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def served(serving: tuple[dict[str, str], list[str]]) -> dict[str, str]:
    return serving[0]


def _tty(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `command` on a pseudo-terminal; return its exit code and everything it printed."""
    line = " ".join(f"'{part}'" for part in command)
    proc = subprocess.run(["script", "-qefc", line, "/dev/null"], stdin=subprocess.DEVNULL,
                          capture_output=True, env=env, timeout=300, check=False)
    # Decoded by hand: text=True would turn the progress line's "\r" into "\n".
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _summary_exit(text: str) -> int:
    found = re.findall(r"; exit (\d+)", text)
    assert found, text[-2000:]
    return int(found[-1])


@needs_script
def test_on_a_terminal_the_default_is_the_coloured_table(served: dict[str, str]) -> None:
    code, text = _tty([RDSAUDIT, "scan", "--region", REGIONS, "--no-history"], served)
    assert code == 1
    assert "Not compliant: " in text and "Fix first (" in text and "Deadlines" in text
    assert not text.lstrip().startswith("{")  # not the JSON
    assert SGR.search(text), "colour on a terminal"
    assert _summary_exit(text) == code


@needs_script
def test_progress_line_is_erased_before_anything_else_is_printed(
        served: dict[str, str]) -> None:
    _, text = _tty([RDSAUDIT, "scan", "--region", REGIONS, "--no-history"], served)
    last = text.rfind("rdsaudit: regions ")
    assert last != -1, "a progress line on a terminal"
    rest = text[last:]
    erase = rest.find("\r\x1b[K")
    assert erase != -1, rest[:300]
    # Nothing but more of the progress line comes before the line is erased.
    assert "\n" not in rest[:erase]


@needs_script
@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_color_and_the_flag_turn_colour_off(served: dict[str, str], how: str) -> None:
    env = {**served, "NO_COLOR": "1"} if how == "NO_COLOR" else served
    extra = ["--no-color"] if how == "--no-color" else []
    code, text = _tty([RDSAUDIT, "scan", "--region", REGIONS, "--no-history", *extra], env)
    assert code == 1 and "Not compliant: " in text
    assert not SGR.search(text)


@needs_script
def test_summary_states_the_real_exit_code_with_exit_zero(served: dict[str, str]) -> None:
    code, text = _tty([RDSAUDIT, "scan", "--region", REGIONS, "--no-history", "--exit-zero"],
                      served)
    assert code == 0 and _summary_exit(text) == 0
    assert "--exit-zero; the gate says 1" in text


def test_a_pipe_still_gets_json(served: dict[str, str]) -> None:
    proc = subprocess.run([RDSAUDIT, "scan", "--region", REGIONS, "--no-history"],
                          capture_output=True, text=True, env=served, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 2 and doc["summary"]["actions"]
    assert "\x1b" not in proc.stderr  # no progress line off a terminal


def test_the_scan_of_both_demo_accounts_it_prints_is_the_demo(
        serving: tuple[dict[str, str], list[str]]) -> None:
    """The served estate has two accounts; the command printed for them (the audit role,
    the demo's config in a file that lives while the demo serves) judges them as
    `rdsaudit demo` does: key-below-external-store in the second account only."""
    env, lines = serving
    command = lines[-1].split()
    assert command[:2] == ["rdsaudit", "scan"] and "--accounts" in command, lines[-3:]
    proc = subprocess.run([RDSAUDIT, *command[1:]], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["scan"]["accounts"] == ["123456789012", "444455556666"]
    below = [(f["resource"]["account_id"], f["resource"]["id"]) for f in doc["findings"]
             if f["rule_id"] == "key-below-external-store"]
    assert below == [("444455556666", "cards-vault-export")]


def test_a_fault_injected_as_the_demo_says_makes_the_scan_incomplete(
        served: dict[str, str]) -> None:
    url = served["AWS_ENDPOINT_URL"]
    body = json.dumps({"service": "kms", "action": "DescribeKey", "region": "us-east-1",
                       "code": "AccessDenied"}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/_fault", data=body, method="POST"),
                           timeout=10).read()
    try:
        proc = subprocess.run([RDSAUDIT, "scan", "--region", REGIONS, "--no-history"],
                              capture_output=True, text=True, env=served, timeout=300,
                              check=False)
        doc = json.loads(proc.stdout)
        assert any(e["operation"] == "DescribeKey" and e["code"] == "AccessDenied"
                   for e in doc["errors"])
        assert "scan incomplete" in doc["summary"]["verdict"]
    finally:
        urllib.request.urlopen(urllib.request.Request(url + "/_fault", method="DELETE"),
                               timeout=10).read()


def test_endpoint_url_option_reaches_the_emulator(served: dict[str, str]) -> None:
    env = {k: v for k, v in served.items() if k != "AWS_ENDPOINT_URL"}
    proc = subprocess.run([RDSAUDIT, "scan", "--region", "us-east-1", "--no-history",
                           "--endpoint-url", served["AWS_ENDPOINT_URL"], "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["scan"]["regions"] == ["us-east-1"]


def test_verbose_logs_aws_calls_with_credentials_redacted(served: dict[str, str]) -> None:
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
    token = "FQoGZXIvYXdzEXAMPLETOKENexampletokenvalue0123456789"
    env = {**served, "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
    proc = subprocess.run([RDSAUDIT, "scan", "--region", "us-east-1", "--no-history", "-v",
                           "--format", "json"], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "DescribeDBInstances" in proc.stderr and "botocore" in proc.stderr
    for value in (secret, token, "AKIAIOSFODNN7EXAMPLE"):
        assert value not in proc.stderr and value not in proc.stdout


def test_scan_help_lists_exit_codes_environment_and_examples() -> None:
    proc = subprocess.run([RDSAUDIT, "scan", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    text = proc.stdout
    for needle in ("Exit codes:", "  3    the scan was incomplete", "AWS_ENDPOINT_URL",
                   "NO_COLOR", "Examples:", "rdsaudit scan --region eu-west-1", "--region",
                   "--endpoint-url", "--verbose", "--no-color", "--evidence"):
        assert needle in text, needle


def test_table_escapes_control_characters_and_aligns_rules() -> None:
    doc: Any = sample_document()
    doc["findings"][0]["message"] += " \x1b[2J\x07"
    text = render_table(doc, color=False, width=100)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text
    assert IMG_XSS in " ".join(text.split())  # plain text on a terminal: shown, harmless
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("SEVERITY"))
    header = lines[start]
    section = lines[start + 1:lines.index("", start)]
    rows = [line for line in section if line.startswith("  ") and not line.startswith("   ")]
    rule_col, region_col = header.index("RULE"), header.index("REGION")
    assert rows and all(line[rule_col - 1] == " " and line[rule_col] != " "
                        and line[region_col - 1] == " " and line[region_col] != " "
                        for line in rows)


@needs_script
def test_a_scan_of_several_accounts_shows_one_progress_line_for_all(tmp_path: Path) -> None:
    """The demo scans two accounts: the progress line sums them (2 accounts x 2 regions),
    where it used to show nothing for a multi-account scan."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)
    code, text = _tty([RDSAUDIT, "demo", "--output-dir", str(tmp_path / "out")], env)
    assert code == 0, text[-2000:]
    shown = re.findall(r"rdsaudit: regions (\d+)/(\d+) ", text)
    assert shown, text[-2000:]
    assert shown[-1] == ("4", "4")
    assert all(int(done) <= int(total) for done, total in shown)


def test_demo_serve_stops_cleanly_on_sigterm() -> None:
    """A service manager's SIGTERM stops `demo --serve` as Ctrl-C does: exit 0, and the
    temporary config it printed is removed (it used to stay behind in /tmp)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NO_COLOR"))}
    proc = subprocess.Popen([RDSAUDIT, "demo", "--serve"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    config = None
    deadline = time.monotonic() + 120
    while config is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"--config (\S+)", line)
        config = Path(found.group(1)) if found else None
    assert config is not None and config.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not config.exists()
    assert not config.parent.exists()
