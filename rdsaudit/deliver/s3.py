"""Reports to and from Amazon S3: `--output-dir s3://…`, and s3:// inputs.

Writing: every file is first written whole to a local staging directory (the same atomic
writes as a local --output-dir), then each is uploaded with one PutObject, so an object is
never half-written and a failed upload loses nothing: the staging directory is kept and
named. Server-side encryption is the bucket's default unless `--s3-kms-key` names a key
(SSE-KMS; the caller then needs kms:GenerateDataKey on it).
Reading: GetObject into a private temporary file, then the ordinary local reader.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from rdsaudit.collect.clients import AwsClients
from rdsaudit.collect.failures import AWS_FAILURES, describe_failure
from rdsaudit.collect.readonly import OPT_IN_WRITES
from rdsaudit.errors import UsageProblem
from rdsaudit.model import CollectionError

SCHEME = "s3://"
CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8",
                 ".csv": "text/csv; charset=utf-8", ".xml": "application/xml",
                 ".sarif": "application/sarif+json"}


class S3Problem(UsageProblem, ValueError):
    """An s3:// location that cannot be used or read (exit 2)."""


def is_s3(text: str | os.PathLike[str] | None) -> bool:
    return isinstance(text, str) and text.startswith(SCHEME)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # an object key, or a prefix ending in "/" (or empty)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Location(self.bucket, prefix + name)


def parse_s3(text: str) -> S3Location:
    bucket, _, key = text[len(SCHEME):].partition("/")
    if not bucket or not (3 <= len(bucket) <= 63) or not all(
            c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise S3Problem(f"{text}: not an s3://BUCKET/KEY location")
    return S3Location(bucket, key)


def _clients(session: boto3.Session, writes: bool = False) -> tuple[AwsClients, str]:
    region = session.region_name or "us-east-1"
    allowed = OPT_IN_WRITES["--output-dir s3://"] if writes else frozenset()
    return AwsClients(session, max_attempts=5, allowed_writes=allowed), region


def download(session: boto3.Session, location: S3Location, into: Path) -> Path | None:
    """The object's bytes in a local file under `into`; None if there is no such object."""
    clients, region = _clients(session)
    try:
        answer = clients.call("s3", region, "GetObject", "get_object",
                              Bucket=location.bucket, Key=location.key)
        data = answer["Body"].read()
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        if failure.code in ("NoSuchKey", "404"):
            return None
        raise S3Problem(f"{location}: cannot read: {failure.code}: {failure.message}") from None
    name = location.key.rsplit("/", 1)[-1] or "object"
    path = Path(tempfile.mkdtemp(prefix="rdsaudit-s3-", dir=into)) / name
    path.write_bytes(data)
    return path


def upload(session: boto3.Session, location: S3Location, files: Sequence[Path],
           kms_key: str | None) -> list[CollectionError]:
    """PutObject each file under the prefix; what failed, as report errors."""
    clients, region = _clients(session, writes=True)
    errors: list[CollectionError] = []
    for path in files:
        target = location.child(path.name)
        params: dict[str, Any] = {
            "Bucket": target.bucket, "Key": target.key, "Body": path.read_bytes(),
            "ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")}
        if kms_key:
            params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
        try:
            clients.call("s3", region, "PutObject", "put_object", **params)
        except AWS_FAILURES as exc:
            failure = describe_failure(exc)
            errors.append(CollectionError("", region, "s3", "PutObject", failure.code,
                                          failure.message, str(target)))
    return errors


def iam_statements(output: S3Location | None, inputs: Sequence[S3Location],
                   kms_key: str | None) -> list[dict[str, Any]]:
    """What `iam-policy --output-dir s3://… [--s3-kms-key K] [--s3-input s3://…]` adds.

    Objects and prefixes are granted as given (a prefix: everything under it). Reading needs
    s3:ListBucket too: without it S3 answers a missing object with 403, not 404, and a
    missing shard would read as a refused one (docs/aws-facts.md §17). The key is usable
    through S3 only: GenerateDataKey to write SSE-KMS objects, Decrypt to read them.
    """
    statements: list[dict[str, Any]] = []
    if output is not None:
        statements.append({"Sid": "RdsauditReportsWrite", "Effect": "Allow",
                           "Action": ["s3:PutObject"],
                           "Resource": [_object_arn(output, prefix=True)]})
    if inputs:
        statements.append({"Sid": "RdsauditReportsRead", "Effect": "Allow",
                           "Action": ["s3:GetObject"],
                           "Resource": sorted({_object_arn(i) for i in inputs})})
        statements.append({"Sid": "RdsauditReportsFindMissing", "Effect": "Allow",
                           "Action": ["s3:ListBucket"],
                           "Resource": sorted({f"arn:*:s3:::{i.bucket}" for i in inputs})})
    if kms_key is not None and (output is not None or inputs):
        actions = (["kms:GenerateDataKey"] if output is not None else []) + (
            ["kms:Decrypt"] if inputs else [])
        condition: dict[str, Any] = {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
        if kms_key.startswith("alias/"):
            # An alias is not a resource of these actions: the key it names is matched.
            condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": kms_key}
        statements.append({"Sid": "RdsauditReportsKey", "Effect": "Allow", "Action": actions,
                           "Resource": "arn:*:kms:*:*:key/*" if kms_key.startswith("alias/")
                           else kms_key, "Condition": condition})
    return statements


def _object_arn(location: S3Location, prefix: bool = False) -> str:
    """The object (a key ending in .json), or every object under the prefix: outputs and
    merge parts are prefixes, with or without their final "/", as `child` reads them."""
    if not prefix and location.key.endswith(".json"):
        return f"arn:*:s3:::{location.bucket}/{location.key}"
    under = location.child("*")
    return f"arn:*:s3:::{under.bucket}/{under.key}"
