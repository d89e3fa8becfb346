"""Ctrl-C: exit 130 at once with one line, and never a half-written or mixed report set.

A scan is interrupted with a real SIGINT while a request is held in flight by the emulator;
report writing is interrupted deterministically by a driver that sends the process SIGINT
from inside the staging (`tempfile.mkstemp`) or publishing (`os.replace`) step, then runs
the real `rdsaudit.cli.main`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from rdsaudit.demo.emulator import FakeAWS, Fault
from rdsaudit.demo.estate import DEMO_REGIONS, DemoEstate, demo_environment
from rdsaudit.outputs import stage
from rdsaudit.report import FORMATS
from tests.cli.test_cli import one_line_error, save
from tests.cli.test_cli import run as run_offline
from tests.e2e.test_scan import RDSAUDIT, SECRET_KEY, injected
from tests.support.builders import instance, inventory, snapshot

ALL_FORMATS = ",".join(FORMATS)
REPORTS = {f"rdsaudit-report.{f.extension}" for f in FORMATS.values()}
HELD = 8.0  # seconds the emulator holds the request a scan is interrupted during
PROMPT = 5.0  # seconds the process may take to exit after SIGINT

Served = tuple[FakeAWS, DemoEstate]


@pytest.fixture(scope="module")
def demo() -> Iterator[Served]:
    with demo_environment() as served:
        yield served


def interrupted_line(stderr: str) -> None:
    """One line (click adds an empty line before it, which is kept out of the count)."""
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == ["rdsaudit: error: interrupted"], stderr


def leftovers(directory: Path) -> list[str]:
    """Temporary files of a staged write (`.rdsaudit-report.json.XXXX`, `.inv.json.XXXX`)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def snapshot_of(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def previous_reports(tmp_path: Path, directory: Path) -> dict[str, tuple[bytes, int]]:
    """A complete report set from an earlier run, written by rdsaudit itself."""
    inv = save(tmp_path, inventory(instance("earlier", encrypted=False)), "earlier.json")
    proc = run_offline("evaluate", inv, "--format", ALL_FORMATS, "--output-dir", directory,
                       "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert {p.name for p in directory.iterdir()} == REPORTS
    return snapshot_of(directory)


def start_scan(fake: FakeAWS, *args: str | Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": "AKIAINTERRUPT",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return subprocess.Popen([RDSAUDIT, "scan", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def interrupt_when_held(fake: FakeAWS, proc: subprocess.Popen[str],
                        action: str) -> tuple[str, float]:
    """Send SIGINT once the emulator holds `action`; (stderr, seconds to exit after it)."""
    deadline = time.monotonic() + 60
    while not any(f["action"] == action and f["kind"] == "latency" and f["fired"]
                  for f in fake.faults()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the scan never reached the held request"
        time.sleep(0.02)
    time.sleep(0.3)  # let the other listings get under way too
    assert proc.poll() is None, "the scan finished before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return stderr, time.monotonic() - sent


def held(action: str = "DescribeDBClusterSnapshots") -> list[Fault]:
    """Every RDS and KMS call a little slow, one listing held for HELD seconds."""
    return [Fault("rds", "*", kind="latency", delay=0.2),
            Fault("kms", "*", kind="latency", delay=0.2),
            Fault("rds", action, kind="latency", delay=HELD)]


# -- Ctrl-C during the scan -----------------------------------------------------------------

@pytest.mark.parametrize("earlier", [False, True], ids=["empty-dir", "previous-reports"])
def test_sigint_mid_scan_exits_130_at_once_and_writes_nothing(
        demo: Served, tmp_path: Path, earlier: bool) -> None:
    fake, _ = demo
    out = tmp_path / "reports"
    out.mkdir()
    before = previous_reports(tmp_path, out) if earlier else {}
    with injected(demo, *held()):
        proc = start_scan(fake, "--regions", ",".join(DEMO_REGIONS), "--output-dir", out,
                          "--format", "json,html,csv", "--save-inventory", out / "inv.json",
                          "--history", tmp_path / "history.db")
        stderr, took = interrupt_when_held(fake, proc, "DescribeDBClusterSnapshots")
    assert proc.returncode == 130, stderr
    interrupted_line(stderr)
    assert took < PROMPT, f"exited {took:.1f} s after SIGINT"
    # Nothing new: no report, no inventory, no history, no temporary file; an earlier
    # report set is byte for byte what it was.
    assert snapshot_of(out) == before
    assert leftovers(out) == []
    assert not (tmp_path / "history.db").exists()


def test_sigint_mid_multi_account_scan_exits_at_once(demo: Served, tmp_path: Path) -> None:
    fake, estate = demo
    with injected(demo, *held()):
        proc = start_scan(fake, "--regions", ",".join(DEMO_REGIONS), "--accounts",
                          f"{estate.account_id},111122223333", "--role-name", "audit",
                          "--no-history", "--output-dir", tmp_path)
        stderr, took = interrupt_when_held(fake, proc, "DescribeDBClusterSnapshots")
    assert proc.returncode == 130, stderr
    interrupted_line(stderr)
    assert leftovers(tmp_path) == [] and not list(tmp_path.iterdir())
    assert took < PROMPT, f"exited {took:.1f} s after SIGINT"


# -- Ctrl-C while the reports are written ---------------------------------------------------

DRIVER = textwrap.dedent("""
    import os, signal, sys, tempfile

    step, nth = sys.argv[1], int(sys.argv[2])
    seen = 0

    def interrupt():
        global seen
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered right here

    if step == "stage":  # the nth temporary file is about to be created
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, **kwargs):
            interrupt()
            return real_mkstemp(*args, **kwargs)

        tempfile.mkstemp = mkstemp
    else:  # the nth report has just been renamed into place
        real_replace = os.replace

        def replace(src, dst):
            real_replace(src, dst)
            interrupt()

        os.replace = replace

    from rdsaudit.cli import main

    main(sys.argv[3:])
""")


def interrupt_writing(tmp_path: Path, step: str, nth: int,
                      out: Path) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    inv = save(tmp_path, inventory(instance("now", encrypted=False), snapshot("s1")), "now.json")
    return subprocess.run([sys.executable, str(driver), step, str(nth), "evaluate", str(inv),
                           "--format", ALL_FORMATS, "--output-dir", str(out)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("nth", [1, 3, len(FORMATS)])
def test_sigint_while_staging_keeps_the_previous_reports(tmp_path: Path, nth: int) -> None:
    out = tmp_path / "reports"
    before = previous_reports(tmp_path, out)
    proc = interrupt_writing(tmp_path, "stage", nth, out)
    assert proc.returncode == 130, proc.stderr
    interrupted_line(proc.stderr)
    assert snapshot_of(out) == before
    assert leftovers(out) == []


@pytest.mark.parametrize("nth", [1, len(FORMATS) - 1])
def test_sigint_while_publishing_leaves_one_complete_set(tmp_path: Path, nth: int) -> None:
    out = tmp_path / "reports"
    before = previous_reports(tmp_path, out)
    proc = interrupt_writing(tmp_path, "publish", nth, out)
    assert proc.returncode == 130, proc.stderr
    interrupted_line(proc.stderr)
    after = snapshot_of(out)
    unchanged = {name for name in REPORTS if after.get(name) == before[name]}
    problems = [f"temporary files left: {leftovers(out)}"] if leftovers(out) else []
    if unchanged not in (REPORTS, set()):
        problems.append(f"mixed report set: {sorted(unchanged)} previous, the rest new")
    assert not problems, problems


def test_the_driver_really_writes_when_not_interrupted(tmp_path: Path) -> None:
    """Control for the two tests above: an nth call that never comes changes nothing."""
    out = tmp_path / "reports"
    before = previous_reports(tmp_path, out)
    proc = interrupt_writing(tmp_path, "publish", 99, out)
    assert proc.returncode == 1, proc.stderr
    after = snapshot_of(out)
    assert after.keys() == before.keys() and all(after[n] != before[n] for n in REPORTS)
    assert leftovers(out) == []


# -- a write that fails ---------------------------------------------------------------------

class _Interrupting(Mapping[Path, str]):
    """Files to stage whose second entry is never reached: Ctrl-C arrives in between."""

    def __init__(self, first: Path) -> None:
        self.first = first

    def __getitem__(self, key: Path) -> str:
        raise KeyError(key)

    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Iterator[Path]:
        yield self.first
        raise KeyboardInterrupt

    def items(self) -> Iterator[tuple[Path, str]]:  # type: ignore[override]
        yield self.first, "staged"
        raise KeyboardInterrupt


def test_stage_removes_its_temporary_files_when_a_write_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory would have to be")
    files = {tmp_path / "a.json": "a", blocker / "b.json": "b"}
    with pytest.raises(OSError):
        stage(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]

    with pytest.raises(KeyboardInterrupt):
        stage(_Interrupting(tmp_path / "c.json"))  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


def test_unwritable_output_dir_is_one_line_exit_2_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    inv = save(tmp_path, inventory(instance("plain", encrypted=False)))
    line = one_line_error(run_offline("evaluate", inv, "--format", ALL_FORMATS,
                                      "--output-dir", blocker / "reports"))
    assert "cannot write reports to" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv.json", "not-a-dir"]


def test_failed_publish_leaves_no_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    previous_reports(tmp_path, out)
    (out / "rdsaudit-report.csv").unlink()
    (out / "rdsaudit-report.csv").mkdir()  # renaming a file onto it fails
    inv = save(tmp_path, inventory(instance("plain", encrypted=False)))
    line = one_line_error(run_offline("evaluate", inv, "--format", ALL_FORMATS,
                                      "--output-dir", out))
    assert "cannot write reports to" in line
    assert leftovers(out) == []
