"""Which accounts to scan, and a session in each: the caller's own, a list, or a whole
AWS Organization through an assumed read-only role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3

from rdsaudit.collect.aws import AWS_FAILURES, CallCounter, Failure, describe_failure, retry_config
from rdsaudit.redact import remember_credentials
from rdsaudit.shard import Shard

ROLE_SESSION_NAME = "rdsaudit"
# What the scanning (management or delegated-administrator) account also needs for
# --organization / --accounts; member accounts need only the read-only scan policy.
MULTI_ACCOUNT_ACTIONS = ("organizations:ListAccounts", "sts:AssumeRole")


class AccountsProblem(Exception):
    """The account list cannot be had (e.g. not an Organization's management account)."""


@dataclass(frozen=True)
class AccountsRequest:
    accounts: tuple[str, ...] = ()
    organization: bool = False
    role_name: str | None = None
    role_arn: str | None = None  # template with {account_id}
    external_id: str | None = None
    session_duration: int = 3600
    workers: int = 4  # accounts scanned at once
    shard: Shard | None = None  # scan only the accounts this shard owns

    @property
    def multi(self) -> bool:
        return bool(self.accounts) or self.organization

    def role_for(self, account_id: str, partition: str) -> str:
        if self.role_arn:
            return self.role_arn.format(account_id=account_id)
        return f"arn:{partition}:iam::{account_id}:role/{self.role_name}"


def _client(session: boto3.Session, service: str, region: str, endpoint_url: str | None,
            counter: CallCounter) -> Any:
    kwargs: dict[str, Any] = {"region_name": region, "config": retry_config(3)}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    client = session.client(service, **kwargs)
    counter.attach(client)
    return client


def organization_accounts(session: boto3.Session, region: str, endpoint_url: str | None,
                          counter: CallCounter) -> list[str]:
    """Active member accounts (suspended and closing ones skipped), from the management or a
    delegated administrator account."""
    try:
        org = _client(session, "organizations", region, endpoint_url, counter)
        ids: list[str] = []
        for page in org.get_paginator("list_accounts").paginate():
            for account in page.get("Accounts") or ():
                state = account.get("State") or account.get("Status")
                if state == "ACTIVE" and isinstance(account.get("Id"), str):
                    ids.append(account["Id"])
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        raise AccountsProblem(
            f"cannot list the Organization's accounts (run from the management or a "
            f"delegated administrator account): {failure.code}: {failure.message}") from None
    return sorted(ids)


def assume(session: boto3.Session, request: AccountsRequest, account_id: str, partition: str,
           region: str, endpoint_url: str | None,
           counter: CallCounter) -> boto3.Session | Failure:
    """A session in `account_id` through its audit role, or why there is none."""
    params: dict[str, Any] = {
        "RoleArn": request.role_for(account_id, partition),
        "RoleSessionName": ROLE_SESSION_NAME,
        "DurationSeconds": request.session_duration,
    }
    if request.external_id:
        params["ExternalId"] = request.external_id
    try:
        sts = _client(session, "sts", region, endpoint_url, counter)
        answer = sts.assume_role(**params)
    except AWS_FAILURES as exc:
        return describe_failure(exc)
    creds = answer.get("Credentials") if isinstance(answer, Mapping) else None
    values = [creds.get(k) if isinstance(creds, Mapping) else None
              for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")]
    # Remembered before anything is checked: a half-good answer's values are secrets too.
    remember_credentials(*(v for v in values if isinstance(v, str)))
    if not all(isinstance(v, str) and v for v in values):
        return Failure("MalformedResponse", "AssumeRole answer has no complete Credentials")
    key_id, secret, token = values
    return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                         aws_session_token=token, region_name=region)


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))
