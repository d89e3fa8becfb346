"""boto3 clients for a scan: one per (service, region), counted, retried, never mutating.

Every call goes through `AwsClients.call` or `AwsClients.pages`, which count calls per
operation (botocore events, so Stubber and hooks are counted too) and refuse any operation
that is not a Describe, List or Get: rdsaudit is read-only by construction.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from rdsaudit import __version__

READ_ONLY_PREFIXES = ("Describe", "List", "Get")

# A region the account has not enabled answers with one of these (aws-facts §6).
REGION_DISABLED_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "OptInRequired"}
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)


# What an AWS call can raise that is AWS's (or the network's) doing, not ours. botocore's
# parser error is not a BotoCoreError, so it is listed on its own.
AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError)


class MutatingCallRefused(RuntimeError):
    """A programming error: something asked for a call that could change an account."""


@dataclass(frozen=True)
class Failure:
    code: str
    message: str

    @property
    def region_disabled(self) -> bool:
        return self.code in REGION_DISABLED_CODES

    @property
    def access_denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES


def describe_failure(exc: Exception) -> Failure:
    """The code and message of a failed call, in AWS's words where AWS gave any."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", "Unknown"))
        message = str(err.get("Message") or exc)
        return Failure(code, _one_line(message))
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Failure("Timeout", _one_line(str(exc)))
    if isinstance(exc, EndpointConnectionError):
        return Failure("EndpointConnectionError", _one_line(str(exc)))
    if isinstance(exc, ResponseParserError):
        return Failure("MalformedResponse", _one_line(str(exc)))
    return Failure(type(exc).__name__, _one_line(str(exc)))


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class CallCounter:
    """Calls and retries per `service:Operation`, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()

    def _on_call(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.calls[_action(event_name)] += 1

    def _on_attempt(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.attempts[_action(event_name)] += 1

    def attach(self, client: Any) -> None:
        events = client.meta.events
        # before-parameter-build fires once per call for every handler (Stubber included);
        # request-created fires once per HTTP attempt, so the difference is botocore's retries.
        events.register("before-parameter-build", self._on_call)
        events.register("request-created", self._on_attempt)

    def snapshot(self) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
        with self._lock:
            calls = tuple(sorted(self.calls.items()))
            retries = tuple(
                sorted(
                    (op, self.attempts[op] - n)
                    for op, n in self.calls.items()
                    if self.attempts[op] > n
                )
            )
        return calls, retries


def _action(event_name: str) -> str:
    # "before-parameter-build.rds.DescribeDBInstances" -> "rds:DescribeDBInstances"
    parts = event_name.split(".")
    return f"{parts[1]}:{parts[2]}" if len(parts) >= 3 else event_name


def retry_config(max_attempts: int, pool: int = 10, read_timeout: float = 30) -> Config:
    # `total_max_attempts` includes the first request, unlike Config's `max_attempts`
    # (aws-facts §7); standard mode retries throttling and 5xx with capped backoff.
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=pool,
        user_agent_extra=f"rdsaudit/{__version__}",
    )


class AwsClients:
    """Lazily created clients of one boto3 session, shared by the scan's worker threads.

    boto3 clients are thread-safe; creating them from one session is not, hence the lock.
    """

    def __init__(
        self,
        session: boto3.Session,
        *,
        max_attempts: int = 5,
        endpoint_url: str | None = None,
        pool: int = 10,
        counter: CallCounter | None = None,
        read_timeout: float = 30,
    ) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.counter = counter or CallCounter()
        self._config = retry_config(max_attempts, pool, read_timeout)
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                kwargs: dict[str, Any] = {"region_name": region, "config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self.session.client(service, **kwargs)
                self.counter.attach(client)
                self._clients[(service, region)] = client
            return client

    def call(self, service: str, region: str, operation: str, method: str,
             **params: Any) -> Mapping[str, Any]:
        _refuse_mutation(operation)
        result: Mapping[str, Any] = getattr(self.client(service, region), method)(**params)
        return result

    def pages(self, service: str, region: str, operation: str, method: str,
              **params: Any) -> Iterator[Mapping[str, Any]]:
        _refuse_mutation(operation)
        paginator = self.client(service, region).get_paginator(method)
        yield from paginator.paginate(**params)


def _refuse_mutation(operation: str) -> None:
    if not operation.startswith(READ_ONLY_PREFIXES):
        raise MutatingCallRefused(f"{operation} is not a read-only operation")
