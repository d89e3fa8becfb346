"""Running the installed `rdsaudit` against the emulator with hostile answers.

Shared by the hardening tests: one emulator per module (an estate of a few resources in
us-east-1), a runner that passes sentinel credentials, and a check that a sentinel appears in
no byte of any output (stdout, stderr, every file under a directory).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import boto3

from rdsaudit.demo.emulator import FakeAWS

RDSAUDIT = str(Path(sys.executable).with_name("rdsaudit"))
# Sentinel credentials: shaped like real ones, found nowhere else.
CALLER_KEY_ID = "AKIAQSENTINELCALLER1"
CALLER_SECRET = "cAlLeRsEcReT/s3ntinel+KEY0000000000000001"
CALLER_TOKEN = "IQoJb3JpZ2luX2VjECALLERSENTINELTOKEN" + "x" * 60
ROLE_KEY_ID = "ASIAQSENTINELROLE001"
ROLE_SECRET = "r0LeSeCrEt/s3ntinel+KEY00000000000000002"
ROLE_TOKEN = "IQoJb3JpZ2luX2VjEROLESENTINELTOKEN" + "y" * 60
SENTINELS = (CALLER_KEY_ID, CALLER_SECRET, CALLER_TOKEN, ROLE_KEY_ID, ROLE_SECRET, ROLE_TOKEN,
             ROLE_TOKEN[:40])
OTHER_ACCOUNT = "111122223333"
PW = {"MasterUsername": "admin", "MasterUserPassword": "correct-horse-9"}
REGION = "us-east-1"


@contextlib.contextmanager
def small_estate() -> Iterator[tuple[FakeAWS, str]]:
    """An emulator holding one encrypted and one unencrypted instance, a manual snapshot and
    a customer key with an alias, in us-east-1; yields it and the key ARN."""
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    try:
        kms = boto3.client("kms", region_name=REGION)
        rds = boto3.client("rds", region_name=REGION)
        meta = kms.create_key(Description="rds key")["KeyMetadata"]
        kms.enable_key_rotation(KeyId=meta["KeyId"])
        kms.create_alias(AliasName="alias/rds", TargetKeyId=meta["KeyId"])
        rds.create_db_instance(DBInstanceIdentifier="enc-db", Engine="postgres",
                               DBInstanceClass="db.t3.micro", StorageEncrypted=True,
                               KmsKeyId=meta["Arn"], Tags=[{"Key": "team", "Value": "a"}],
                               **PW)
        rds.create_db_instance(DBInstanceIdentifier="plain-db", Engine="mysql",
                               DBInstanceClass="db.t3.micro", **PW)
        rds.create_db_snapshot(DBInstanceIdentifier="plain-db",
                               DBSnapshotIdentifier="plain-snap")
    finally:
        mock.stop(remove_data=False)
    fake = FakeAWS()
    fake.start()
    try:
        yield fake, str(meta["Arn"])
    finally:
        fake.stop()
        cleanup = mock_aws()
        cleanup.start()
        cleanup.stop()


def assume_role_body(key_id: str = ROLE_KEY_ID, secret: str = ROLE_SECRET,
                     token: str = ROLE_TOKEN) -> str:
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<AssumeRoleResult><Credentials>"
        f"<AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
        f"<SessionToken>{token}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
        "</Credentials><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:rdsaudit</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/audit/rdsaudit</Arn>"
        "</AssumedRoleUser></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>")


def run(fake: FakeAWS, *args: str | Path, timeout: float = 240,
        **env: str) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({
        "AWS_ENDPOINT_URL": fake.endpoint_url, "AWS_ACCESS_KEY_ID": CALLER_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CALLER_SECRET, "AWS_SESSION_TOKEN": CALLER_TOKEN,
        "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
    })
    base.update(env)
    return subprocess.run([RDSAUDIT, *map(str, args)], capture_output=True, env=base,
                          timeout=timeout, check=False)


def output_bytes(proc: subprocess.CompletedProcess[bytes],
                 *dirs: Path) -> Iterable[tuple[str, bytes]]:
    yield "stdout", proc.stdout
    yield "stderr", proc.stderr
    for top in dirs:
        for path in sorted(top.rglob("*")):
            if path.is_file():
                yield str(path), path.read_bytes()


def leaks(proc: subprocess.CompletedProcess[bytes], *dirs: Path,
          sentinels: Iterable[str] = SENTINELS) -> list[str]:
    """Where any sentinel (or its JSON/HTML-escaped form) appears."""
    found = []
    forms = {f: (f.encode(), f.replace("/", "\\/").encode(), f.replace("+", "&#43;").encode())
             for f in sentinels}
    for where, data in output_bytes(proc, *dirs):
        for sentinel, encoded in forms.items():
            if any(e in data for e in encoded):
                found.append(f"{sentinel[:12]}… in {where}")
    return found
