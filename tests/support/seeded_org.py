"""An AWS Organization seeded in moto for the multi-account tests: the management account
scans with its own credentials, members through the audit role (moto maps the assumed
role's credentials to the member account). Not named `org.py`: a script run from tests/
(aws_fork.py) would shadow the `org` name that the standard library's copy module probes."""

from __future__ import annotations

from typing import Any

import boto3

MANAGEMENT = "123456789012"  # moto's default account: the Organization's management account
ROLE = "rdsaudit-audit"


def in_account(account: str, service: str) -> Any:
    """A boto3 client acting in `account` (inside moto's mock)."""
    if account == MANAGEMENT:
        return boto3.client(service, region_name="us-east-1")
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="seed")["Credentials"]
    return boto3.client(service, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def audited(account: str) -> None:
    """A trail logging every management event, so the account's key use is audited
    (key-usage-not-audited passes): the estate stays compliant. Once per account."""
    name = f"audit-{account}"
    s3 = in_account(account, "s3")
    if name in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        return
    s3.create_bucket(Bucket=name)
    trail = in_account(account, "cloudtrail")
    trail.create_trail(Name=name, S3BucketName=name, IsMultiRegionTrail=True)
    trail.put_event_selectors(TrailName=name, EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    trail.start_logging(Name=name)
