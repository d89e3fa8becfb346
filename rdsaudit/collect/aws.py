"""boto3 clients for a scan: one per (service, region), counted, retried, never mutating.

Every call goes through `AwsClients.call` or `AwsClients.pages`, which count calls per
operation (botocore events, so Stubber and hooks are counted too) and refuse any operation
that is not a Describe, List or Get: rdsaudit is read-only by construction.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import botocore.utils
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import (
    PROTOCOL_PARSERS,
    BaseXMLResponseParser,
    ResponseParserError,
    ResponseParserFactory,
    _text_content,
)
from botocore.retries import standard

from rdsaudit import __version__
from rdsaudit.collect.deadline import Deadline, DeadlineExceeded
from rdsaudit.redact import redact

READ_ONLY_PREFIXES = ("Describe", "List", "Get")
# The only writes rdsaudit may make, each under its own flag (DESIGN.md, "opt-in writes").
# A client allows one only when built with it in `allowed_writes`, i.e. when its flag is on.
OPT_IN_WRITES = {
    "--security-hub": frozenset({"BatchImportFindings"}),
    "--output-dir s3://": frozenset({"PutObject"}),
    "--notify sns:": frozenset({"Publish"}),
}

# A region the account has not enabled answers with one of these (aws-facts §6).
REGION_DISABLED_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "OptInRequired"}
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)


class MalformedAnswer(Exception):
    """An answer botocore parsed into something that is not the modelled structure."""


class RunawayListing(Exception):
    """A listing that would not end: a marker seen before (a cycle) or too many pages."""


# What an AWS call can raise that is AWS's (or the network's) doing, not ours. botocore's
# parser error is not a BotoCoreError, so it is listed on its own.
AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError, MalformedAnswer,
                RunawayListing, DeadlineExceeded)


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
    if isinstance(exc, DeadlineExceeded):
        return Failure("DeadlineExceeded", str(exc))
    if isinstance(exc, RunawayListing):
        return Failure("RunawayPagination", str(exc))
    if isinstance(exc, MalformedAnswer):
        return Failure("MalformedResponse", str(exc))
    if isinstance(exc, ResponseParserError):
        # botocore's text embeds the raw body, which may hold credentials (a truncated
        # AssumeRole answer does): say what went wrong, never what was received.
        return Failure("MalformedResponse", "the response could not be parsed (its body is "
                       "not shown: it may hold secrets)")
    return Failure(type(exc).__name__, _one_line(str(exc)))


def _one_line(text: str, limit: int = 500) -> str:
    flat = redact(" ".join(text.split()))
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
    # (aws-facts §7). AwsClients replaces the standard retry handler with `PatientRetry`;
    # clients made elsewhere (the STS identity check) keep botocore's standard mode.
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=pool,
        user_agent_extra=f"rdsaudit/{__version__}",
    )


class RateLimiter:
    """Client-side pacing for one (service, region), shared by every call to it.

    AIMD, as TCP does congestion control: unlimited until AWS throttles us; then the rate we
    were sending at (over the last second) is halved and requests are spaced to it; each
    success adds `increase / rate`, about `increase` requests a second for every second of
    calm, and past `ceiling` the limit is lifted again. A throttled request sent before the
    last cut says nothing new about the quota, so it cuts nothing: one cut per round trip.
    RDS quotas are per account and region, shared by its Describe calls; KMS quotas are per
    operation (aws-facts §7): see `limiter_scope`.
    """

    def __init__(self, *, floor: float = 0.5, increase: float = 2.0, ceiling: float = 1000.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.floor = floor
        self.increase = increase
        self.ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._next = 0.0
        self._cut_at = -math.inf
        self._recent: deque[float] = deque()

    @property
    def rate(self) -> float | None:
        """Requests a second currently allowed; None: unlimited."""
        with self._lock:
            return self._rate

    def acquire(self) -> float:
        """Wait for this request's turn; returns when it may be sent (its send time)."""
        with self._lock:
            now = self._clock()
            self._recent.append(now)
            while self._recent and self._recent[0] < now - 1.0:
                self._recent.popleft()
            if self._rate is None:
                return now
            slot = max(now, self._next)
            self._next = slot + 1.0 / self._rate
        if slot > now:
            self._sleep(slot - now)
        return slot

    def throttled(self, sent_at: float) -> None:
        with self._lock:
            if sent_at < self._cut_at:
                return
            now = self._clock()
            # The rate we were sending at, over the last second or since we began sending.
            window = min(1.0, max(0.05, now - self._recent[0])) if self._recent else 1.0
            sent = sum(1 for t in self._recent if t >= now - window)
            sending = max(1.0, sent / window)
            current = sending if self._rate is None else min(self._rate, sending)
            self._rate = max(self.floor, current / 2)
            self._cut_at = now
            self._next = max(self._next, now + 1.0 / self._rate)

    def succeeded(self) -> None:
        with self._lock:
            if self._rate is None:
                return
            self._rate += self.increase / self._rate
            if self._rate > self.ceiling:
                self._rate = None


# botocore's own classification of what is worth retrying (standard mode), minus its
# attempt limit and retry quota, which PatientRetry replaces.
_RETRYABLE = standard.OrRetryChecker([
    standard.TransientRetryableChecker(),
    standard.ThrottledRetryableChecker(),
    standard.ThrottlingStatusCodeChecker(),
    standard.ModeledRetryableChecker(),
])
_THROTTLING = standard.ThrottlingErrorDetector(standard.RetryEventAdapter())
_STATE = "rdsaudit"  # our key in botocore's per-call request context
_PROGRESS_WAIT = 5.0  # seconds a throttled call out of attempts waits for others' answers
_RECENT = 10.0  # an operation answered this recently is rate limited, not walled off


class PatientRetry:
    """The retry policy of one client (one service in one region).

    * Errors botocore's standard mode retries (throttling, 5xx, timeouts, connection errors)
      are retried with capped exponential backoff and jitter, up to `max_attempts` attempts
      in all (`--max-attempts`). Anything else (AccessDenied, NotFound...) is not retried.
    * A throttled call may go on past `max_attempts`, for up to `patience` seconds from its
      first attempt, if other calls of the same operation in that region are being answered
      (since it began, or in the last 10 s): that is a rate limit, and the shared
      `RateLimiter` slows everyone down to it, so the call will get through. When nothing
      of that operation gets through (a wall, not a rate), it fails after `max_attempts`
      (one more backoff spent looking for progress) and becomes a CollectionError.
    * botocore's retry quota (500 tokens, drained by sustained throttling) is not used: the
      limiter is what keeps a throttled scan from hammering the API.
    """

    def __init__(self, limiter: Callable[[str], RateLimiter], max_attempts: int,
                 patience: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 rand: Callable[[], float] = random.random,
                 sleep: Callable[[float], None] = time.sleep,
                 deadline: Deadline | None = None) -> None:
        self.limiter = limiter  # operation name -> its limiter
        self.deadline = deadline or Deadline(None)
        self._sleep = sleep
        self.max_attempts = max(1, max_attempts)
        self.patience = patience
        self._clock = clock
        self._rand = rand
        self._lock = threading.Condition()
        self._answered: Counter[str] = Counter()  # successes per operation
        self._in_flight: Counter[str] = Counter()  # attempts sent, not yet answered
        self._last_answer: dict[str, float] = {}  # operation -> when it last succeeded

    def attach(self, client: Any) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        # Before the signer (same event, registered first): a request that waited for the
        # limiter is signed when it leaves, not when it queued.
        events.register_first(f"request-created.{service}", self._before_send)
        events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
        events.register_first(f"needs-retry.{service}", self.needs_retry)

    def _before_send(self, request: Any, operation_name: str, **_: Any) -> None:
        state = request.context.setdefault(_STATE, {})
        sent = self.limiter(operation_name).acquire()
        state["sent"] = sent
        with self._lock:
            self._in_flight[operation_name] += 1
            if "started" not in state:
                state["started"] = sent
                state["answered"] = self._answered[operation_name]

    def needs_retry(self, response: Any, attempts: int, caught_exception: Exception | None,
                    request_dict: Mapping[str, Any], operation: Any, **_: Any) -> float | bool:
        """botocore's needs-retry event: a delay in seconds to retry, False to stop."""
        http, parsed = response if response is not None else (None, None)
        state = request_dict["context"].get(_STATE, {})
        ok = caught_exception is None and http is not None and http.status_code < 300
        with self._lock:
            self._in_flight[operation.name] -= 1
            if ok:
                self._answered[operation.name] += 1
                self._last_answer[operation.name] = self._clock()
            self._lock.notify_all()
        if ok:
            self.limiter(operation.name).succeeded()
            return False
        ctx = standard.RetryContext(
            attempt_number=attempts, operation_model=operation, parsed_response=parsed,
            http_response=http, caught_exception=caught_exception,
            request_context=request_dict["context"])
        if not _RETRYABLE.is_retryable(ctx) or self.deadline.expired:
            return False
        throttled = _THROTTLING.is_throttling_error_from_context(ctx)
        if throttled:
            self.limiter(operation.name).throttled(state.get("sent", -math.inf))
        delay = self._backoff(attempts, throttled)
        if attempts < self.max_attempts:
            return delay
        if not throttled or not self._within_patience(state):
            return False
        # Out of attempts, throttled: wait out the backoff here, then retry only if the
        # operation got through meanwhile (a rate limit); if not (a wall), give up.
        self._sleep(delay)
        return 0.0 if self._got_through(state, operation.name) else False

    def _backoff(self, attempts: int, throttled: bool) -> float:
        # Capped exponential backoff with full jitter, as botocore's standard mode, with a
        # shorter scale for throttling (200 ms, not 1 s, capped at 2 s, not 20 s): the
        # shared limiter, not each call's own sleep, is what spaces requests to the quota.
        if throttled:
            return float(self._rand() * min(0.2 * 2 ** (attempts - 1), 2.0))
        return float(self._rand() * min(0.05 * 2 ** (attempts - 1), 20.0))

    def _within_patience(self, state: Mapping[str, Any]) -> bool:
        started = state.get("started")
        return started is not None and self._clock() - started <= self.patience

    def _got_through(self, state: Mapping[str, Any], operation: str) -> bool:
        """Whether calls of the operation get answered: since this call began (waiting a
        little for those still in flight) or within the last `_RECENT` seconds."""
        since = state.get("answered", 0)
        with self._lock:
            self._lock.wait_for(
                lambda: self._answered[operation] > since or self._in_flight[operation] <= 0,
                timeout=_PROGRESS_WAIT)
            last = self._last_answer.get(operation, -math.inf)
            return bool(self._answered[operation] > since or self._clock() - last <= _RECENT)


# Services whose request quotas are per operation (KMS: DescribeKey 2000/s, ListAliases
# 500/s, ... aws-facts §7); the others share one quota per account and region (RDS).
PER_OPERATION_QUOTAS = frozenset({"kms"})


def limiter_scope(service: str, operation: str) -> str:
    """What shares a rate limiter within a (service, region): the operation or all ("*")."""
    return operation if service in PER_OPERATION_QUOTAS else "*"


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parsing, without dateutil for the forms AWS sends.

    botocore parses every timestamp of every response with dateutil, which is half of its
    XML parsing time on a snapshot listing (benchmarks/results.md). ISO 8601 text and epoch
    seconds are what the RDS and KMS APIs send; anything else goes to botocore's parser.
    The result is the same aware datetime in UTC.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    result: datetime = botocore.utils.parse_timestamp(value)
    return result


def lenient_timestamp(value: Any) -> Any:
    """`parse_timestamp`, or the value as text when it is not a time (`not-a-date`, 1e20):
    the record holding it is then malformed, instead of the whole page failing."""
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return str(value)


def _lenient(parser: type) -> type:
    """A botocore XML parser that keeps a number or boolean it cannot read as its text.

    botocore raises ValueError for `<BackupRetentionPeriod>seven</…>` (the whole call
    fails, exit 4 before) and reads any boolean but `true` as False; kept as text, the value
    reaches the record's own type checks (`collect.specs`), which refuse that one record.
    """

    class Lenient(parser):  # type: ignore[misc]
        @_text_content  # type: ignore[untyped-decorator]
        def _handle_integer(self, shape: Any, text: str) -> Any:
            try:
                return int(text)
            except ValueError:
                return text

        @_text_content  # type: ignore[untyped-decorator]
        def _handle_float(self, shape: Any, text: str) -> Any:
            try:
                return float(text)
            except ValueError:
                return text

        @_text_content  # type: ignore[untyped-decorator]
        def _handle_boolean(self, shape: Any, text: str) -> Any:
            return {"true": True, "false": False}.get(text, text)

        _handle_long = _handle_integer
        _handle_double = _handle_float

    Lenient.__name__ = f"Lenient{parser.__name__}"
    return Lenient


_LENIENT_PARSERS = {name: _lenient(cls) for name, cls in PROTOCOL_PARSERS.items()
                    if issubclass(cls, BaseXMLResponseParser)}


class LenientParserFactory(ResponseParserFactory):  # type: ignore[misc]
    """botocore's parser factory, with `lenient_timestamp` and lenient XML scalars."""

    def __init__(self) -> None:
        super().__init__()
        self.set_parser_defaults(timestamp_parser=lenient_timestamp)

    def create_parser(self, protocol_name: str) -> Any:
        parser = _LENIENT_PARSERS.get(protocol_name) or PROTOCOL_PARSERS[protocol_name]
        return parser(**self._defaults)


def use_lenient_parsers(session: boto3.Session) -> None:
    """Parse the session's answers with `LenientParserFactory`: the same values for a
    well-formed answer (and less CPU: `parse_timestamp`), text where one is wrong."""
    core = getattr(session, "_session", None)
    if core is None:
        return
    if not isinstance(core.get_component("response_parser_factory"), LenientParserFactory):
        core.register_component("response_parser_factory", LenientParserFactory())


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
                kwargs: dict[str, Any] = {"region_name": region, "config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self.session.client(service, **kwargs)
                self.counter.attach(client)
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
        return operation in _operation_names(service)

    def call(self, service: str, region: str, operation: str, method: str,
             **params: Any) -> Mapping[str, Any]:
        if operation not in self.allowed_writes:
            _refuse_mutation(operation)
        self.deadline.check(operation)
        client = self.client(service, region)
        # The guard reads the API the method really calls, not the name it was given.
        api = client.meta.method_to_api_mapping.get(method, method)
        if api not in self.allowed_writes:
            _refuse_mutation(api)
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


def read_answer(method: Callable[..., Any], operation: str, **params: Any) -> Mapping[str, Any]:
    """Call `method`; an answer botocore cannot turn into the modelled structure (a value of
    the wrong type, a JSON list for an object) is a `MalformedAnswer`, never a crash."""
    try:
        result = method(**params)
    except AWS_FAILURES:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            UnicodeError, RecursionError) as exc:
        raise MalformedAnswer(f"the {operation} answer is not of the expected shape "
                              f"({type(exc).__name__})") from None
    if not isinstance(result, Mapping):
        raise MalformedAnswer(f"the {operation} answer is not a structure")
    return result


def page_of(call: Callable[..., Mapping[str, Any]], service: str, operation: str,
            bound: PageBound, **params: Any) -> tuple[Mapping[str, Any], str | None]:
    """One page through `call(**params)`, with the marker `bound` holds; the only paging
    loop step in rdsaudit (RDS, KMS and Organizations listings all go through it)."""
    _refuse_mutation(operation)
    tokens = _paging(service, operation)
    if bound.marker is not None:
        params[tokens.input] = bound.marker
    answer = call(**params)
    following = answer.get(tokens.output)
    if tokens.more is not None and not answer.get(tokens.more):
        following = None
    if not isinstance(following, str) or not following:
        following = None
    return answer, bound.advance(following)


# The most pages any listing may take. Every quota that bounds what a listing returns is
# adjustable, so the cap sits far above what AWS grants: RDS pages hold up to 100 items
# (MaxRecords 20..100, aws-facts §2), so 2,000 pages are 200,000 instances, clusters or
# snapshots in one region (default quotas: 40 instances, 40 clusters, 100 manual snapshots
# per region; automated snapshots are one a day for at most 35 days per instance); KMS
# ListAliases pages hold up to 100 aliases (aws-facts §5): 200,000 aliases, twice the
# 100,000 customer managed keys a region holds by default; Organizations ListAccounts pages
# hold up to 20 accounts: 40,000 accounts. No quota justifies more than 2,000 pages.
MAX_PAGES = 2_000


class PageBound:
    """Where one paginated listing is, and the proof that it ends.

    Every marker the listing was given is remembered: a repeat is a cycle of any length
    (the same marker again, or two alternating), and more than `cap` pages (markers that
    keep increasing) is a broken or hostile endpoint. Either ends the listing (the page in
    hand is still read) and sets `runaway`, which the caller records as an error naming the
    operation and region.
    """

    def __init__(self, operation: str, region: str, cap: int = MAX_PAGES) -> None:
        self.operation = operation
        self.region = region
        self.cap = cap
        self.marker: str | None = None
        self.pages = 0
        self.runaway: RunawayListing | None = None
        self._seen: set[str] = set()

    def advance(self, following: str | None) -> str | None:
        """Count a page; the marker to follow, or None when the listing ends here."""
        self.pages += 1
        if following is not None and following in self._seen:
            self.runaway = RunawayListing(
                f"{self.operation} in {self.region}: the next-page marker repeats after "
                f"{self.pages} page(s); listing stopped")
        elif following is not None and self.pages >= self.cap:
            self.runaway = RunawayListing(
                f"{self.operation} in {self.region}: more than {self.cap} pages; listing "
                "stopped")
        if self.runaway is not None:
            following = None
        elif following is not None:
            self._seen.add(following)
        self.marker = following
        return following


@dataclass(frozen=True)
class _Tokens:
    input: str
    output: str
    more: str | None  # the flag that says more pages follow, where the API has one


@functools.cache
def _paging(service: str, operation: str) -> _Tokens:
    """The pagination tokens of an operation, from botocore's paginator model."""
    config = _paginator_model(service).get_paginator(operation)
    more = config.get("more_results")
    return _Tokens(str(config["input_token"]), str(config["output_token"]),
                   str(more) if more else None)


@functools.cache
def _paginator_model(service: str) -> Any:
    # One botocore session for all: its loader caches what it reads from botocore's data
    # (a session per look-up re-scans the data directories, ~50 ms each).
    return _botocore_session().get_paginator_model(service)


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    return frozenset(_botocore_session().get_service_model(service).operation_names)


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


def _refuse_mutation(operation: str) -> None:
    if not operation.startswith(READ_ONLY_PREFIXES):
        raise MutatingCallRefused(f"{operation} is not a read-only operation")
