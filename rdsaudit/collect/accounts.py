"""Which accounts to scan, and a session in each: the caller's own, a list, or a whole
AWS Organization through an assumed read-only role."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session

from rdsaudit.collect.answers import read_answer
from rdsaudit.collect.clients import CallCounter, counted_client, retry_config
from rdsaudit.collect.failures import AWS_FAILURES, Failure, MalformedAnswer, describe_failure
from rdsaudit.collect.paging import PageBound, page_of
from rdsaudit.errors import UsageProblem
from rdsaudit.redact import remember_credentials
from rdsaudit.shard import Shard

ROLE_SESSION_NAME = "rdsaudit"
_ACCOUNT_ID = re.compile(r"\d{12}")
# What the scanning (management or delegated-administrator) account also needs for
# --organization / --accounts; member accounts need only the read-only scan policy.
MULTI_ACCOUNT_ACTIONS = ("organizations:ListAccounts", "sts:AssumeRole")


class AccountsProblem(UsageProblem):
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
    return counted_client(session, service, region, retry_config(3), endpoint_url, counter)


def organization_accounts(session: boto3.Session, region: str, endpoint_url: str | None,
                          counter: CallCounter) -> tuple[list[str], Failure | None]:
    """Active member accounts (suspended and closing ones skipped), from the management or a
    delegated administrator account, and why the listing ended early (a runaway listing or
    a failure after the first page; the accounts listed until then are scanned)."""
    org = _client(session, "organizations", region, endpoint_url, counter)
    bound = PageBound("ListAccounts", region)
    ids: list[str] = []
    try:
        while True:
            page, following = page_of(functools.partial(read_answer, org.list_accounts,
                                                        "ListAccounts"),
                                      "organizations", "ListAccounts", bound)
            ids += _active_ids(page)
            if following is None:
                break
    except AWS_FAILURES as exc:
        failure = describe_failure(exc)
        if bound.pages == 0:
            raise AccountsProblem(
                f"cannot list the Organization's accounts (run from the management or a "
                f"delegated administrator account): {failure.code}: {failure.message}"
            ) from None
        return sorted(set(ids)), failure
    runaway = describe_failure(bound.runaway) if bound.runaway is not None else None
    return sorted(set(ids)), runaway


def _active_ids(page: Mapping[str, Any]) -> list[str]:
    accounts = page.get("Accounts")
    if not isinstance(accounts, list):
        raise MalformedAnswer("the ListAccounts answer has no Accounts list")
    ids = []
    for account in accounts:
        if not isinstance(account, Mapping):
            continue
        state = account.get("State") or account.get("Status")
        account_id = account.get("Id")
        if state == "ACTIVE" and isinstance(account_id, str) and _ACCOUNT_ID.fullmatch(
                account_id):
            ids.append(account_id)
    return ids


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
                         aws_session_token=token, region_name=region,
                         botocore_session=_sharing_models(session))


def _sharing_models(session: boto3.Session) -> botocore.session.Session:
    """A fresh botocore session that reuses the caller's loader: the service models are
    read from disk and parsed once, not once per assumed account (measured with the
    Organization bench: about a quarter to a third of an account's client CPU)."""
    fresh = botocore.session.Session()
    fresh.register_component("data_loader", session._session.get_component("data_loader"))
    return fresh


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class AccountSessions:
    """A session in each scanned account, made when first asked for and kept: the opt-in
    writes (Security Hub) are made from each finding's own account."""

    def __init__(self, session: boto3.Session, request: AccountsRequest, caller: str,
                 partition: str, region: str, endpoint_url: str | None) -> None:
        self._session, self._request, self._caller = session, request, caller
        self._partition, self._region, self._endpoint_url = partition, region, endpoint_url
        self._made: dict[str, boto3.Session | Failure] = {}
        self.counter = CallCounter()

    def __call__(self, account_id: str) -> boto3.Session | Failure:
        if account_id == self._caller:
            return self._session
        if not self._request.multi:
            return Failure("NotScanned", f"account {account_id} is not the caller's and no "
                           "role was given to assume")
        made = self._made.get(account_id)
        if made is None:
            made = self._made[account_id] = assume(
                self._session, self._request, account_id, self._partition, self._region,
                self._endpoint_url, self.counter)
        return made
