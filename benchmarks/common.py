"""What the benchmarks share: the CLI they run and how a run is measured.

Every benchmark runs the installed `rdsaudit` as a subprocess under `/usr/bin/time`, so the
figures are the process's own (wall, user and system CPU, peak RSS), not a Python timer's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RDSAUDIT = str(Path(sys.executable).with_name("rdsaudit"))


@dataclass
class Measured:
    wall: float
    user: float
    sys: float
    rss_mb: float
    rc: int

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def timed(cmd: list[str], env: dict[str, str]) -> Measured:
    """Run under /usr/bin/time: wall, CPU and peak RSS of the process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M", *cmd],
                              env=env, capture_output=True, text=True, timeout=1800,
                              check=False)
        fields = out.read().split()[-4:]
    if proc.returncode not in (0,):
        sys.stderr.write(proc.stderr[-2000:])
    wall, user, system, rss = (float(f) for f in fields)
    return Measured(wall, user, system, rss / 1024, proc.returncode)


def aws_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",  # noqa: S106
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    return env
