"""Reading a file the user named (inventory, report, config, baseline): only a regular file,
of bounded size, as UTF-8 text. `/dev/zero` would be read until memory ran out and a FIFO
would block the scan forever; both are refused at once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rdsaudit.errors import UsageProblem

# The largest input rdsaudit reads: a saved inventory of a 100,000-resource estate is a few
# hundred megabytes (benchmarks/results.md); more is not an rdsaudit file.
MAX_INPUT_BYTES = 2 * 1024**3


class UserFileProblem(UsageProblem, ValueError):
    """A file that cannot be read as rdsaudit input (the message names it)."""


def read_user_file(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait for one.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UserFileProblem(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserFileProblem(f"{path}: {what} is not a regular file")
        if info.st_size > limit:
            raise UserFileProblem(f"{path}: {what} is larger than {limit // 1024**2} MiB")
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UserFileProblem(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise UserFileProblem(f"{path}: {what} is larger than {limit // 1024**2} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserFileProblem(f"{path}: {what} is not UTF-8 text") from None
