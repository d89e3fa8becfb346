"""boto3 clients for a scan: one per (service, region), counted, retried, never mutating.

Every call goes through `AwsClients.call` or `AwsClients.page`, which count calls per
operation (botocore events, so Stubber and hooks are counted too) and refuse any operation
that is not a Describe, List or Get: rdsaudit is read-only by construction.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from rdsaudit import __version__
from rdsaudit.collect.answers import read_answer, use_lenient_parsers
from rdsaudit.collect.deadline import Deadline
from rdsaudit.collect.paging import PageBound, operation_names, page_of
from rdsaudit.collect.readonly import refuse_mutation
from rdsaudit.collect.throttle import PatientRetry, RateLimiter, limiter_scope


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
    # (aws-facts §7). AwsClients replaces the standard retry handler with `PatientRetry`;
    # clients made elsewhere (the STS identity check) keep botocore's standard mode.
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=pool,
        user_agent_extra=f"rdsaudit/{__version__}",
    )


def counted_client(session: boto3.Session, service: str, region: str, config: Config,
                   endpoint_url: str | None, counter: CallCounter) -> Any:
    """A boto3 client whose every call `counter` counts: the one place rdsaudit makes one
    (`--endpoint-url` / AWS_ENDPOINT_URL send it to an emulator)."""
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    client = session.client(service, **kwargs)
    counter.attach(client)
    return client


class AwsClients:
    """Lazily created clients of one boto3 session, shared by the scan's worker threads.

    boto3 clients are thread-safe; creating them from one session is not, hence the lock.
    Each (service, region) has one client and one `PatientRetry`; rate limiters are shared
    per (service, region) or, where quotas are per operation, per (service, region,
    operation).
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
        throttle_patience: float = 60.0,
        allowed_writes: frozenset[str] = frozenset(),
        deadline: Deadline | None = None,
    ) -> None:
        self.session = session
        self.allowed_writes = allowed_writes
        use_lenient_parsers(session)
        self.deadline = deadline or Deadline(None)
        self.endpoint_url = endpoint_url
        self.counter = counter or CallCounter()
        self.max_attempts = max_attempts
        self.throttle_patience = throttle_patience
        self._config = retry_config(max_attempts, pool, read_timeout)
        self._clients: dict[tuple[str, str], Any] = {}
        self.limiters: dict[tuple[str, str, str], RateLimiter] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = counted_client(self.session, service, region, self._config,
                                        self.endpoint_url, self.counter)
                PatientRetry(functools.partial(self.limiter, service, region),
                             self.max_attempts, self.throttle_patience,
                             deadline=self.deadline).attach(client)
                self._clients[(service, region)] = client
            return client

    def limiter(self, service: str, region: str, operation: str) -> RateLimiter:
        """The limiter every call of this operation goes through (see `limiter_scope`)."""
        key = (service, region, limiter_scope(service, operation))
        with self._lock:
            found = self.limiters.get(key)
            if found is None:
                found = self.limiters[key] = RateLimiter()
            return found

    def has_operation(self, service: str, operation: str) -> bool:
        """Whether this botocore knows the operation (newer APIs are skipped, not broken)."""
        return operation in operation_names(service)

    def call(self, service: str, region: str, operation: str, method: str,
             **params: Any) -> Mapping[str, Any]:
        if operation not in self.allowed_writes:
            refuse_mutation(operation)
        self.deadline.check(operation)
        client = self.client(service, region)
        # The guard reads the API the method really calls, not the name it was given.
        api = client.meta.method_to_api_mapping.get(method, method)
        if api not in self.allowed_writes:
            refuse_mutation(api)
        return read_answer(getattr(client, method), operation, **params)


    def page(self, service: str, region: str, operation: str, method: str,
             bound: PageBound, **params: Any) -> tuple[Mapping[str, Any], str | None]:
        """The next page of a paginated listing and the marker of the one after (None: last).

        Pages are fetched one call at a time, so the scanner can ask for page n+1 the moment
        page n has answered and read page n's items while page n+1 is in flight. `bound`
        holds the listing's position and ends it (`runaway`) when the endpoint loops.
        """
        return page_of(functools.partial(self.call, service, region, operation, method),
                       service, operation, bound, **params)
