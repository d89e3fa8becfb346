"""The core never needs the demo: a real scan, every format, a plan and an evaluate run in a
process that never imports moto, werkzeug or rdsaudit's emulator and demo estate (they are
the optional `demo` extra). The emulated AWS runs in this test's process, not the CLI's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdsaudit.demo.emulator import FakeAWS
from rdsaudit.demo.estate import demo_environment

DEMO_ONLY = ("moto", "werkzeug", "flask", "rdsaudit.demo")
PROBE = """
import atexit, json, sys
def _report():
    loaded = sorted(m for m in sys.modules
                    if any(m == d or m.startswith(d + ".") for d in {demo_only!r}))
    with open({out!r}, "w") as handle:
        json.dump(loaded, handle)
atexit.register(_report)
sys.argv = ["rdsaudit", *{args!r}]
from rdsaudit.cli import main
main()
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAWS]:
    with demo_environment() as (served, _estate):
        yield served


def _probe(fake: FakeAWS, tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)})
    code = PROBE.format(demo_only=DEMO_ONLY, out=str(out), args=list(args))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    loaded: list[str] = json.loads(out.read_text())
    return proc.returncode, loaded


def test_a_scan_and_every_command_after_it_import_nothing_of_the_demo(
        fake: FakeAWS, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    formats = "json,html,csv,xlsx,junit,sarif,asff,ocsf,table"
    code, loaded = _probe(fake, tmp_path, "scan", "--format", formats, "--output-dir",
                          str(reports), "--save-inventory", str(tmp_path / "inv.json"),
                          "--quiet")
    assert code in (1, 3), code  # the demo estate fails, and one key is denied on purpose
    assert (reports / "rdsaudit-report.html").stat().st_size > 0
    assert loaded == []
    for args in (("evaluate", str(tmp_path / "inv.json"), "--output-dir",
                  str(tmp_path / "again"), "--quiet", "--exit-zero"),
                 ("plan", str(reports / "rdsaudit-report.json"), "--output-dir",
                  str(tmp_path / "runbooks")),
                 ("rules",), ("iam-policy",)):
        code, loaded = _probe(fake, tmp_path, *args)
        assert code == 0, (args, code)
        assert loaded == [], args


def test_the_probe_sees_a_demo_import(fake: FakeAWS, tmp_path: Path) -> None:
    """Guards the probe itself: `rdsaudit demo --help` loads nothing, the emulator would."""
    code, loaded = _probe(fake, tmp_path, "demo", "--help")
    assert code == 0 and loaded == []
    out = tmp_path / "m.json"
    probe = PROBE.replace("from rdsaudit.cli import main\nmain()",
                          "import rdsaudit.demo.emulator")
    subprocess.run([sys.executable, "-c", probe.format(demo_only=DEMO_ONLY, out=str(out),
                                                       args=[])], check=True, timeout=120)
    assert "rdsaudit.demo.emulator" in json.loads(out.read_text())
    assert any(m.startswith("moto") or m.startswith("werkzeug")
               for m in json.loads(out.read_text()))
