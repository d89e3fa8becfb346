"""Throttling: client-side pacing per (service, region) and a retry that waits for AWS rather
than giving up while other calls still get answers.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from botocore.retries import standard

from rdsaudit.collect.deadline import Deadline


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
