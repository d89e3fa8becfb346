from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest

from tests.support.aws_hooks import FaultHook, PagedAnswers

_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_CONFIG_FILE",
             "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Dummy credentials only: no test can reach a real account."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def paged() -> PagedAnswers:
    return PagedAnswers()


@pytest.fixture
def faults() -> FaultHook:
    return FaultHook()


@pytest.fixture
def session(moto: None, paged: PagedAnswers, faults: FaultHook) -> boto3.Session:
    """A session on in-process moto, with the answers moto cannot give.

    moto has no DescribeDBClusterAutomatedBackups and returns instance automated backups
    without their encryption fields: both are answered by `paged` (empty unless a test adds
    records).
    """
    s = boto3.Session(region_name="us-east-1")
    paged.add("DescribeDBClusterAutomatedBackups", "DBClusterAutomatedBackups", [])
    paged.add("DescribeDBInstanceAutomatedBackups", "DBInstanceAutomatedBackups", [])
    paged.install(s)
    faults.install(s)
    s.events.register("before-call.kms.GetKeyLastUsage", _no_last_usage)
    return s


def _no_last_usage(params: object, **_: object) -> object:
    """moto has no GetKeyLastUsage: answer as AWS does for a key not used since tracking
    began (KeyLastUsage absent)."""
    from datetime import UTC, datetime

    from botocore.awsrequest import AWSResponse

    return AWSResponse("https://stub", 200, {}, None), {
        "TrackingStartDate": datetime(2025, 1, 1, tzinfo=UTC)}


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Scan history goes to the user data directory: keep the suite's out of the real one."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old
