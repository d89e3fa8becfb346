"""The files a command reads: a local path as given, or an s3:// object fetched into a private
temporary directory that is removed at exit."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rdsaudit.errors import UsageProblem

if TYPE_CHECKING:
    pass


def local_copy(text: str, what: str) -> Path | None:
    """A path as given, or an s3:// object fetched into a private temporary directory;
    None when the S3 object does not exist."""
    from rdsaudit.deliver.s3 import S3Problem, download, is_s3, parse_s3

    if not is_s3(text):
        return Path(text)
    import boto3

    try:
        return download(boto3.Session(), parse_s3(text), _scratch())
    except S3Problem as exc:
        raise UsageProblem(f"{what}: {exc}") from None


def _scratch() -> Path:
    import atexit
    import shutil

    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="rdsaudit-"))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return _SCRATCH


_SCRATCH: Path | None = None


def existing_input(text: str, what: str) -> Path:
    path = local_copy(text, what)
    if path is None:
        raise UsageProblem(f"{what}: {text}: no such object")
    return path
